"""`invoke gdpr.*`: the consent audit's hash chains and one person's data (export, erase), with
the same SQL as the endpoints (chorus_db.gdpr)."""

from __future__ import annotations

import json
from pathlib import Path

from invoke import Exit

from ._helpers import confirm, database_url, echo, task, where


@task(help={"anchor": "also compare the chains' heads with this anchor file (invoke gdpr.anchor)"})
def verify(c, anchor=None):
    """Walk the consent audit's hash chains; name the first broken row (exit 1) or count what verified."""
    from chorus_db.gdpr import verify_chain

    url = database_url()
    echo(f"verifying the consent audit of {where(url)}")
    _show_verified(
        verify_chain(url),
        "the consent audit was altered behind its back: keep this database as evidence and "
        "compare the named subject's chain with the latest backup",
    )
    if anchor:
        from chorus_db.anchor import AnchorError, anchor_key, verify_against

        echo(f"comparing the chains' heads with the anchor {anchor}")
        try:
            checked = verify_against(url, Path(anchor), anchor_key())
        except AnchorError as exc:
            raise Exit(str(exc), code=1)
        _show_verified(
            checked,
            "consent records were deleted or rewritten since the anchor was taken: keep this database as "
            "evidence and restore the named chains from the backup taken nearest after the anchor",
        )


def _show_verified(result, what_to_do: str) -> None:
    """Print a verification's result (describe()); exit 1 saying what to do when it is not intact."""
    print(result.describe())
    if not result.intact:
        raise Exit(what_to_do, code=1)


@task(name="anchor", help={"out": "the anchor file, or a directory for consent-anchor-<db>-<time>.json (default .run/anchors/)"})
def anchor_(c, out=None):
    """Write the heads of the consent audit's chains, signed with CHORUS_ANCHOR_KEY, to a file outside the database."""
    from chorus_db import config
    from chorus_db.anchor import AnchorError, anchor_key, write_anchor

    url = database_url()
    try:
        key = anchor_key()
        target = Path(out) if out else config.RUN_DIR / "anchors"
        if not out:
            target.mkdir(parents=True, exist_ok=True)
        document = write_anchor(url, target, key)
    except AnchorError as exc:
        raise Exit(str(exc), code=1)
    except OSError as exc:
        raise Exit(f"cannot write the anchor: {exc.strerror or exc}", code=1)
    echo(f"anchored {document['subjects']} chain(s) of {where(url)}, root {document['root'][:16]}...")
    print(document["path"])
    print("keep it where the database's operators cannot change it (README: Anchoring the consent audit)")


@task(help={"email": "the person's email address (any letter case)", "out": "write the JSON here instead of stdout"})
def export(c, email, out=None):
    """Print everything held about one person as one JSON document (like POST /api/gdpr/export)."""
    from chorus_db.gdpr import export as export_data

    url = database_url()
    # On stderr: stdout is the document alone, ready for a file or jq.
    echo(f"exporting the personal data of {email} from {where(url)}", err=True)
    document = export_data(url, email)
    if document is None:
        raise Exit(f"no personal data is held for {email}", code=1)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out:
        Path(out).write_text(text + "\n")
        Path(out).chmod(0o600)
        echo(f"wrote {out}")
    else:
        print(text)


@task(help={"email": "the person's email address (any letter case)", "yes": "do not ask for confirmation"})
def erase(c, email, yes=False):
    """Erase one person's personal data everywhere (like POST /api/gdpr/erase); asks unless --yes."""
    from chorus_db.gdpr import erase as erase_data
    from chorus_db.gdpr import export as export_data
    from chorus_db.gdpr import held_summary

    url = database_url()
    held = held_summary(export_data(url, email))
    found = {k: v for k, v in held.items() if v}
    if found:
        print(f"held about {email}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
        print("the consent audit rows stay (pseudonymous) and gain an erasure record")
    else:
        print(f"nothing is held about {email}; the request will still be recorded in the consent audit")
    if not yes and not confirm(f"erase the personal data of {email} from {where(url)}?"):
        raise Exit("nothing was erased", code=1)
    removed = erase_data(url, email)
    echo("erased: " + ", ".join(f"{k} {v}" for k, v in removed.items()))
