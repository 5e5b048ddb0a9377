"""Anchors of the consent audit (issue 14): what the hash chains cannot show alone.

A chain proves that no row inside it was changed or removed, but not that its newest rows
still exist: delete a person's last rows and the rest still verifies. An anchor is a
snapshot of every chain's head (per pseudonym: last seq and row hash) plus one root hash
over all heads, written to a file outside the database and signed with an HMAC key that the
database never holds. Verifying against it later catches a chain that was truncated (its
anchored head is gone), removed (the pseudonym is gone) or rewritten (the row at the
anchored seq has another hash); an edited anchor fails its signature. Rows added since the
anchor are fine.

The key comes from CHORUS_ANCHOR_KEY or a file named by CHORUS_ANCHOR_KEY_FILE.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg

FORMAT = "chorus-consent-anchor/1"

HEADS = """
select distinct on (a.subject) a.subject, a.seq, encode(a.row_hash, 'hex')
from app.consent_audit as a
order by a.subject, a.seq desc
"""


class AnchorError(Exception):
    """The anchor cannot be written or read; the message says what to do."""


def anchor_key() -> bytes:
    key = os.environ.get("CHORUS_ANCHOR_KEY", "")
    key_file = os.environ.get("CHORUS_ANCHOR_KEY_FILE", "")
    if not key and key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as exc:
            raise AnchorError(f"cannot read CHORUS_ANCHOR_KEY_FILE {key_file}: {exc.strerror}") from None
    if len(key) < 32:
        raise AnchorError(
            "set CHORUS_ANCHOR_KEY (or CHORUS_ANCHOR_KEY_FILE) to a secret of at least 32 characters kept outside "
            "the database, e.g. `openssl rand -hex 32`"
        )
    return key.encode()


def root_hash(heads: list[list]) -> str:
    """SHA-256 over the heads in subject order, one `subject seq hash` line each."""
    lines = "".join(f"{subject} {seq} {row_hash}\n" for subject, seq, row_hash in sorted(heads))
    return hashlib.sha256(lines.encode()).hexdigest()


def _signed_part(document: dict) -> bytes:
    return json.dumps({k: v for k, v in document.items() if k != "hmac"}, sort_keys=True, separators=(",", ":")).encode()


def sign(document: dict, key: bytes) -> str:
    return hmac.new(key, _signed_part(document), hashlib.sha256).hexdigest()


def read_heads(url: str) -> tuple[list[list], str]:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        heads = [list(row) for row in conn.execute(HEADS).fetchall()]
        (database,) = conn.execute("select current_database()").fetchone()
    return heads, database


def make_anchor(url: str, key: bytes) -> dict:
    heads, database = read_heads(url)
    document = {
        "format": FORMAT,
        "database": database,
        "takenAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subjects": len(heads),
        "root": root_hash(heads),
        "heads": sorted(heads),
    }
    document["hmac"] = sign(document, key)
    return document


def write_anchor(url: str, out: Path, key: bytes) -> dict:
    document = make_anchor(url, key)
    if out.is_dir():
        out = out / f"consent-anchor-{document['database']}-{document['takenAt'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    tmp.chmod(0o600)
    tmp.replace(out)
    document["path"] = str(out)
    return document


@dataclass
class AnchorReport:
    taken_at: str
    checked: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.intact:
            return f"every one of the {self.checked} chain(s) anchored at {self.taken_at} still ends at or after its anchored head"
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        return f"{len(self.problems)} chain(s) differ from the anchor of {self.taken_at}:\n{shown}{more}"


def load_anchor(path: Path, key: bytes) -> dict:
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise AnchorError(f"cannot read the anchor {path}: {exc.strerror}") from None
    except ValueError:
        raise AnchorError(f"{path} is not an anchor written by `invoke gdpr.anchor` (not JSON)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise AnchorError(f"{path} is not an anchor written by `invoke gdpr.anchor`")
    if not hmac.compare_digest(str(document.get("hmac", "")), sign(document, key)):
        raise AnchorError(
            f"the signature of {path} does not match: the file was edited, or CHORUS_ANCHOR_KEY is not the key it was signed with"
        )
    if root_hash(document["heads"]) != document["root"]:
        raise AnchorError(f"the root hash of {path} does not match its heads")
    return document


def verify_against(url: str, path: Path, key: bytes) -> AnchorReport:
    document = load_anchor(path, key)
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        current = {
            subject: (seq, row_hash) for subject, seq, row_hash in conn.execute(HEADS).fetchall()
        }
        problems = []
        for subject, seq, row_hash in document["heads"]:
            now = current.get(subject)
            if now is None:
                problems.append(f"subject {subject}: the whole chain (anchored at seq {seq}) was removed")
                continue
            if now[0] < seq:
                problems.append(f"subject {subject}: truncated: the chain ends at seq {now[0]}, the anchor saw seq {seq}")
                continue
            found = conn.execute(
                "select encode(row_hash, 'hex') from app.consent_audit where subject = %s and seq = %s", (subject, seq)
            ).fetchone()
            if found is None or found[0] != row_hash:
                problems.append(f"subject {subject}: rewritten: seq {seq} no longer has the anchored hash")
    return AnchorReport(document["takenAt"], len(document["heads"]), problems)
