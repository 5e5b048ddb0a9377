"""The field-encryption key file (db/functions/045-field-encryption.sql): lines
"<version> <64 hex digits>", outside the data directory, readable by the server's OS user only,
named to PostgreSQL by the server setting chorus.field_key_file (never by a role, database or
session setting, which a dump or a web role could read or change).

The embedded and test clusters keep theirs next to the data directory, as
`<pgdata>.field-keys` (chorus_db.cluster writes one with the cluster and names it in chorus.conf);
compose mounts the secret file secrets/field_keys. `invoke db.rotate-key --new-key` appends a
version to the file, then re-encrypts the rows batch by batch (rotate()).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg

from .errors import UserError

SETTING = "chorus.field_key_file"
SUFFIX = "field-keys"
LINE = re.compile(r"^\s*([0-9]{1,4})\s+([0-9a-fA-F]{64})\s*$")
TABLES = ("accessibility_preferences", "brand_engagement")
HEADER = "# chorus-website-db field-encryption keys: <version> <64 hex digits>; the highest version encrypts.\n"


class FieldKeyError(UserError):
    """A key file or rotation problem; the message says what to do."""


def new_key_file(path: Path, owner: str | None = None) -> None:
    """A key file with version 1 (mode 600, owned by the server's OS user)."""
    path.write_text(HEADER + f"1 {secrets.token_hex(32)}\n")
    path.chmod(0o600)
    if owner:
        shutil.chown(path, user=owner)


def versions(path: Path) -> list[int]:
    """The versions a key file holds; a malformed line is an error naming its number, never its text."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FieldKeyError(f"the field-encryption key file {path} is missing: restore it from where the keys are kept") from None
    except PermissionError:
        raise FieldKeyError(f"the field-encryption key file {path} cannot be read: run as its owner (or root)") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if not match or not 1 <= int(match[1]) <= 32767:
            raise FieldKeyError(f'line {number} of {path} is not "<version 1-32767> <64 hex digits>": correct it')
        found.append(int(match[1]))
    return found


def add_version(path: Path) -> int:
    """Append a new key, one version above the highest; the file keeps its owner and mode."""
    held = versions(path)
    version = max(held, default=0) + 1
    if version > 32767:
        raise FieldKeyError(f"{path} already holds version 32767: remove the retired versions and renumber")
    with path.open("a") as handle:
        handle.write(f"{version} {secrets.token_hex(32)}\n")
    return version


def configured_path(conn: psycopg.Connection) -> Path | None:
    row = conn.execute("select nullif(current_setting(%s, true), '')", (SETTING,)).fetchone()
    return Path(row[0]) if row and row[0] else None


def status(conn: psycopg.Connection) -> list[tuple]:
    """(table, key_version or None, rows, key present, newest) per table and version."""
    try:
        return conn.execute("select * from app_logic.field_key_status()").fetchall()
    except psycopg.Error as exc:
        raise FieldKeyError(_sentence(exc)) from None


def _sentence(exc: psycopg.Error) -> str:
    message = (exc.diag.message_primary or str(exc)).strip()
    if "Wrong key or corrupt data" in message:
        return ("a row does not decrypt with the key its version names: the key file holds another key under that "
                "version (restore the original line) or the row was altered")
    return message[0].lower() + message[1:].rstrip(".") if message else "the database refused the rotation"


def rotate(url: str, batch: int, log: Callable[[str], None], new_key: bool = False,
           key_file: Path | None = None) -> dict[str, int]:
    """Bring every row under the newest key in committed batches; resumable (each row carries
    its key version, so a second run starts where the first stopped). Returns rows per table."""
    if not 1 <= batch <= 100000:
        raise FieldKeyError(f"--batch takes 1 to 100000 rows, not {batch}")
    with psycopg.connect(url, autocommit=True) as conn:
        if new_key:
            path = key_file or configured_path(conn)
            if path is None:
                raise FieldKeyError(f"the server names no key file ({SETTING}): set it, or pass --key-file")
            if not path.exists():
                raise FieldKeyError(f"{path} is not on this machine: add the new line to the server's key file there "
                                "(\"<version> <64 hex digits>\"), then run db.rotate-key without --new-key")
            version = add_version(path)
            log(f"added key version {version} to {path}")
        before = status(conn)
        missing = [(t, v) for t, v, _n, present, _new in before if not present]
        if missing:
            table, version = missing[0]
            raise FieldKeyError(f"rows of app.{table} are encrypted with key version {version}, which the key file does "
                            "not hold: put that key back in the file and run again")
        newest = before[0][4] if before else None
        done = dict.fromkeys(TABLES, 0)
        for table in TABLES:
            todo = sum(n for t, v, n, _p, _new in before if t == table and v != newest)
            while True:
                try:
                    (rows,) = conn.execute("select app_logic.reseal_batch(%s, %s)", (table, batch)).fetchone()
                except psycopg.Error as exc:
                    raise FieldKeyError(_sentence(exc) + f" (app.{table}, after {done[table]} rows; run again to go on)") from None
                if rows == 0:
                    break
                done[table] += rows
                log(f"app.{table}: {done[table]:,} of {todo:,} rows under key version {newest}")
        after = status(conn)
        retired = sorted({v for _t, v, _n, _p, _new in before if v is not None and v != newest}
                         - {v for _t, v, _n, _p, _new in after if v is not None and v != newest})
        left = sum(n for _t, v, n, _p, _new in after if v != newest)
        if left:
            log(f"{left} rows are still under another key (locked by writers): run db.rotate-key again")
        else:
            log(f"every row is under key version {newest}"
                + (f"; versions {', '.join(map(str, retired))} may now leave the key file" if retired else ""))
    return done


def key_file_from_env() -> Path | None:
    value = os.environ.get("CHORUS_FIELD_KEY_FILE")
    return Path(value) if value else None
