"""Drift: the live schema against a fresh build of the source.

A scratch database is built from the source on the same server, both are dumped with
pg_dump --schema-only, and the dumps are compared. pg_cron's own schema is left out (it
exists only in cron.database_name), and so is the random pepper in app.settings (data).
"""

from __future__ import annotations

import difflib
import re
import secrets
import subprocess

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import config
from .build import Source, build


def _pg_dump() -> str:
    return str(config.pg_bindir() / "pg_dump")


def _partitions(url: str) -> list[str]:
    """Partitions of the project's tables, as pg_dump patterns."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """
            select format('%I.%I', n.nspname, c.relname) from pg_class as c
            join pg_namespace as n on n.oid = c.relnamespace
            where c.relispartition and n.nspname = 'app' order by 1
            """
        ).fetchall()
    return [f"--exclude-table={name}" for (name,) in rows]


# Functions a trigger compiles from the rows of a table (data, not schema): their bodies.
COMPILED_FROM_DATA = {
    "CREATE FUNCTION app_logic.spam_rule(p_action text) RETURNS text": "<the rules of app.spam_rules>",
    "CREATE FUNCTION app_logic.consent_text_at(p_at timestamp with time zone) RETURNS text": (
        "<the texts of app.consent_texts>"
    ),
    "CREATE FUNCTION app_logic.rate_limit_max(p_action text, p_scope text) RETURNS text": "<the limits of app.rate_limit_rules>",
    "CREATE FUNCTION app_logic.rate_limit_window(p_action text, p_scope text) RETURNS text": (
        "<the windows of app.rate_limit_rules>"
    ),
}

# The check of a domain compiled likewise (the versions app.consent_audit may name): its expression.
COMPILED_DOMAIN_CHECK = ("ALTER DOMAIN app.consent_text_version", "    ADD CONSTRAINT consent_text_version_known CHECK")


def schema_dump(url: str) -> str:
    """pg_dump --schema-only, normalised so two equal schemas give equal text.

    Partitions are left out: a job makes them month by month (app.page_views), so a database
    built in March rightly holds partitions a fresh build no longer makes.
    """
    proc = subprocess.run(
        [_pg_dump(), "--schema-only", "--no-owner", "--exclude-schema=cron", *_partitions(url), "--dbname", url],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = []
    for line in proc.stdout.splitlines():
        if line.startswith("--") or not line.strip():
            continue
        if re.match(r"^(CREATE|COMMENT ON) EXTENSION .*pg_cron", line):
            continue
        if line.startswith("\\restrict") or line.startswith("\\unrestrict"):
            continue  # pg_dump's random per-dump key
        if line == "ALTER TABLE app.leads DISABLE TRIGGER leads_notify_team;":
            continue  # follows app.settings (data): enabled only while the team is notified
        if len(lines) >= 3 and lines[-2:] == ["    LANGUAGE sql STABLE", "    AS $$"] and lines[-3] in COMPILED_FROM_DATA:
            line = COMPILED_FROM_DATA[lines[-3]]  # compiled from the table (data) by its trigger
        if lines[-1:] == [COMPILED_DOMAIN_CHECK[0]] and line.startswith(COMPILED_DOMAIN_CHECK[1]):
            line = COMPILED_DOMAIN_CHECK[1] + " <the versions of app.consent_texts>"  # compiled likewise
        lines.append(line)
    return "\n".join(lines) + "\n"


def drift(url: str, source: Source | None = None) -> str:
    """A unified diff (empty when none) of the live schema against a fresh build."""
    params = conninfo_to_dict(url)
    scratch = f"{params.get('dbname', config.DB_NAME)}_drift_{secrets.token_hex(4)}"
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(scratch)))
    try:
        scratch_url = make_conninfo(url, dbname=scratch)
        build(scratch_url, source=source, log=lambda _m: None)
        fresh = schema_dump(scratch_url)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(scratch)))
    live = schema_dump(url)
    return "".join(
        difflib.unified_diff(fresh.splitlines(True), live.splitlines(True), "fresh build of the source", "live database")
    )
