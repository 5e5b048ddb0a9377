"""Paths and settings shared by the tasks, the build and the tests.

Everything is derived from the checkout's location and a handful of environment
variables, so the same code serves a developer, CI (as root) and the containers.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .errors import UserError

ROOT = Path(__file__).resolve().parent.parent
# Names this checkout's temporary directories (test cluster, test and bench stacks), so that
# `invoke down` finds what this checkout started and nothing of another checkout's.
CHECKOUT_ID = os.environ.get("CHORUS_CHECKOUT_ID") or hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
DB_DIR = ROOT / "db"
SCHEMA_DIR = DB_DIR / "schema"
FUNCTIONS_DIR = DB_DIR / "functions"
POLICIES_DIR = DB_DIR / "policies"
TESTS_SQL_DIR = DB_DIR / "tests"
DEPLOY_DIR = ROOT / "deploy"
# The static pages nginx serves under /dashboard/ and /form/ (web/README: what builds them).
WEB_DIR = ROOT / "web"
WEB_ROOT = WEB_DIR / "public"

# Every runtime file lives in the checkout, git-ignored; so does the embedded cluster, except
# as root in a checkout its OS user cannot enter (chorus_db.cluster.embedded_datadir).
RUN_DIR = Path(os.environ.get("CHORUS_RUN_DIR", ROOT / ".run"))

DB_NAME = os.environ.get("CHORUS_DB_NAME", "chorus_website")
# initdb and postgres refuse root: as root the cluster runs as this OS user.
PG_OS_USER = os.environ.get("CHORUS_PG_OS_USER", "chorusdb")
# First port tried for the embedded cluster; 5432 is left to any server already there.
PG_FIRST_PORT = int(os.environ.get("CHORUS_PG_PORT", "54329"))

API_PORT = int(os.environ.get("API_PORT", "8080"))

# Roles the build owns. The authenticator logs in and switches to the others.
AUTHENTICATOR = "authenticator"
ANON_ROLE = "anon"
API_ROLES = ("reader", "admin")
# Owns the field-encryption key reader (db/functions/045-field-encryption.sql); its grants on the
# tables are revoked and granted again with the others on every declarative rebuild.
KEYHOLDER_ROLE = "chorus_keyholder"
PROJECT_ROLES = (AUTHENTICATOR, ANON_ROLE, *API_ROLES, KEYHOLDER_ROLE)

# Project-owned pg_cron jobs carry this prefix; jobs without it belong to others.
CRON_JOB_PREFIX = "chorus_website:"


PG_MAJOR = 15


class PostgresMissing(UserError, FileNotFoundError):
    """No PostgreSQL 15 server binaries where they are looked for."""


def pg_bindir() -> Path:
    """Directory of the PostgreSQL 15 server binaries (Debian keeps them off PATH)."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        if not (Path(explicit) / "postgres").exists():
            raise PostgresMissing(f"PG_BINDIR={explicit} holds no `postgres` binary: point it at PostgreSQL {PG_MAJOR}'s bin directory")
        return Path(explicit)
    for candidate in (Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin"),):
        if (candidate / "postgres").exists():
            return candidate
    raise PostgresMissing(
        f"PostgreSQL {PG_MAJOR} server binaries were not found: install them (`apt-get install "
        f"postgresql-{PG_MAJOR} postgresql-{PG_MAJOR}-cron`, or run `bash .ci/run`) or set PG_BINDIR"
    )


def scratch_dir(what: str) -> Path:
    """A new temporary directory of this checkout (see CHECKOUT_ID), open to the server's OS user."""
    path = Path(tempfile.mkdtemp(prefix=f"chorus-{CHECKOUT_ID}-{what}-"))
    path.chmod(0o755)
    return path


def scratch_dirs() -> list[Path]:
    """Every temporary directory this checkout made and did not remove (a run that was killed)."""
    return sorted(Path(tempfile.gettempdir()).glob(f"chorus-{CHECKOUT_ID}-*"))
