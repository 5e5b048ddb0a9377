"""The compose stack's secrets: files in ./secrets (never in .env, never in the environment of a
container), checked before anything starts and handed to PostgREST as files.

    python -m chorus_db.compose_secrets check SECRETS_DIR
        exit 1 with one line naming the file and what to do when a secret is missing, a
        placeholder or weak (the `secrets` service; every other service waits for it);
    python -m chorus_db.compose_secrets postgrest SECRETS_DIR OUT_DIR SOCKET_DIR DB_HOST DB_PORT
        write PostgREST's db-uri and jwt-secret files (read with PostgREST's @file syntax) into
        OUT_DIR, readable by PostgREST's user only, and prepare its socket directory, which only
        it writes and nginx's workers enter (the `migrate` service, after the build).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from . import config

NAMES = ("postgres_password", "authenticator_password", "jwt_secret")
MIN_LENGTH = 32
# They go into connection URLs unescaped.
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
PLACEHOLDERS = ("change-me", "changeme", "password", "secret", "example")
# The official images' users: PostgREST runs as 1000 (compose gives it nginx's group, 101, so
# the socket's group lets nginx's workers connect).
POSTGREST_UID = 1000
NGINX_GID = 101

MAKE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > secrets/{name}"
# The field-encryption key file (chorus_db.fieldkeys; mounted by the postgres service only, so
# checked when present): "<version> <64 hex digits>" lines.
KEY_FILE = "field_keys"
KEY_LINE = re.compile(r"^\s*([0-9]{1,4})\s+[0-9a-fA-F]{64}\s*$")
MAKE_KEYS = "python3 -c 'import secrets; print(1, secrets.token_hex(32))' > secrets/field_keys"


class SecretError(ValueError):
    """A secret that must not be used; the message says which and what to do."""


def read_secret(directory: Path, name: str) -> str:
    path = directory / name
    fix = f"write a random one: {MAKE.format(name=name)}"
    if not path.is_file():
        raise SecretError(f"secrets/{name} is missing: {fix}")
    value = path.read_text().strip()
    if not value:
        raise SecretError(f"secrets/{name} is empty: {fix}")
    if any(word in value.lower() for word in PLACEHOLDERS):
        raise SecretError(f"secrets/{name} holds a placeholder, not a secret: {fix}")
    if len(value) < MIN_LENGTH:
        raise SecretError(f"secrets/{name} is {len(value)} characters, fewer than {MIN_LENGTH}: {fix}")
    if not URL_SAFE.match(value):
        raise SecretError(f"secrets/{name} may hold only letters, digits, - and _ (it goes into URLs): {fix}")
    return value


def check_key_file(directory: Path) -> None:
    path = directory / KEY_FILE
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise SecretError(f"secrets/{KEY_FILE} holds no key: write one: {MAKE_KEYS}")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#") and not KEY_LINE.match(line):
            raise SecretError(f'line {number} of secrets/{KEY_FILE} is not "<version> <64 hex digits>": correct it')


def check(directory: Path) -> dict[str, str]:
    check_key_file(directory)
    values = {name: read_secret(directory, name) for name in NAMES}
    if len(set(values.values())) < len(values):
        raise SecretError("secrets/ holds the same value twice: give every secret its own random value")
    return values


def _write(path: Path, text: str, uid: int) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if os.geteuid() == 0:
        os.chown(path, uid, -1)


def write_postgrest(directory: Path, out: Path, socket_dir: Path, host: str, port: str) -> None:
    values = check(directory)
    uri = f"postgres://{config.AUTHENTICATOR}:{values['authenticator_password']}@{host}:{port}/{config.DB_NAME}"
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "db_uri", uri, POSTGREST_UID)
    _write(out / "jwt_secret", values["jwt_secret"], POSTGREST_UID)
    out.chmod(0o500)
    socket_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(out, POSTGREST_UID, -1)
        os.chown(socket_dir, POSTGREST_UID, NGINX_GID)
    socket_dir.chmod(0o750)


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 2 and argv[0] == "check":
            check(Path(argv[1]))
        elif len(argv) == 6 and argv[0] == "postgrest":
            write_postgrest(Path(argv[1]), Path(argv[2]), Path(argv[3]), argv[4], argv[5])
        else:
            print(__doc__.strip().split("\n\n", 1)[1], file=sys.stderr)
            return 2
    except SecretError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
