"""Paths and settings shared by the tasks, the build and the tests.

Everything is derived from the checkout's location and a handful of environment
variables, so the same code serves a developer, CI (as root) and the containers.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_DIR = ROOT / "db"
SCHEMA_DIR = DB_DIR / "schema"
FUNCTIONS_DIR = DB_DIR / "functions"
POLICIES_DIR = DB_DIR / "policies"
TESTS_SQL_DIR = DB_DIR / "tests"
DEPLOY_DIR = ROOT / "deploy"
# The static pages nginx serves under /dashboard/ and /form/ (web/README: what builds them).
WEB_DIR = ROOT / "web"
WEB_ROOT = WEB_DIR / "public"

# The embedded cluster and every runtime file live in the checkout, git-ignored.
PGDATA = Path(os.environ.get("CHORUS_PGDATA", ROOT / ".pgdata"))
RUN_DIR = Path(os.environ.get("CHORUS_RUN_DIR", ROOT / ".run"))

DB_NAME = os.environ.get("CHORUS_DB_NAME", "chorus_website")
# initdb and postgres refuse root: as root the cluster runs as this OS user.
PG_OS_USER = os.environ.get("CHORUS_PG_OS_USER", "chorusdb")
# First port tried for the embedded cluster; 5432 is left to any server already there.
PG_FIRST_PORT = int(os.environ.get("CHORUS_PG_PORT", "54329"))

API_PORT = int(os.environ.get("API_PORT", "8080"))
POSTGREST_PORT = int(os.environ.get("POSTGREST_PORT", "3000"))
POSTGREST_ADMIN_PORT = int(os.environ.get("POSTGREST_ADMIN_PORT", "3001"))

# Roles the build owns. The authenticator logs in and switches to the others.
AUTHENTICATOR = "authenticator"
ANON_ROLE = "anon"
API_ROLES = ("reader", "admin")
PROJECT_ROLES = (AUTHENTICATOR, ANON_ROLE, *API_ROLES)

# Project-owned pg_cron jobs carry this prefix; jobs without it belong to others.
CRON_JOB_PREFIX = "chorus_website:"


def pg_bindir() -> Path:
    """Directory of the PostgreSQL 15 server binaries (Debian keeps them off PATH)."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return Path(explicit)
    for candidate in (Path("/usr/lib/postgresql/15/bin"),):
        if (candidate / "postgres").exists():
            return candidate
    raise FileNotFoundError(
        "PostgreSQL 15 server binaries not found: install postgresql-15 or set PG_BINDIR."
    )
