"""`invoke api.*`: API keys (created once and shown once; only their hash is stored)."""

from __future__ import annotations

import sys

from invoke import Exit

from ._helpers import database_url, echo, task


@task(name="key-create", help={"name": "a name for the key", "role": "reader or admin"})
def key_create(c, name, role="reader"):
    """Create an API key and print it once; only its hash is stored."""
    import psycopg

    from chorus_db import config

    if role not in config.API_ROLES:
        raise Exit(f"--role must be reader or admin, not {role!r}", code=1)
    with psycopg.connect(database_url(), autocommit=True) as conn:
        try:
            (key,) = conn.execute("select app_logic.create_api_key(%s, %s)", (name, role)).fetchone()
        except psycopg.errors.UniqueViolation:
            raise Exit(f"an active key named {name!r} exists: revoke it first or choose another name", code=1)
        except psycopg.errors.CheckViolation:
            raise Exit("a key name is letters, digits, '.', '_' or '-', at most 64 characters", code=1)
    print(key)
    print(f"(role {role}; store it now: it cannot be shown again)", file=sys.stderr)


@task(name="key-revoke", help={"name": "the key's name"})
def key_revoke(c, name):
    """Revoke the active API key with that name; effective on the next request."""
    import psycopg

    with psycopg.connect(database_url(), autocommit=True) as conn:
        (count,) = conn.execute("select app_logic.revoke_api_key(%s)", (name,)).fetchone()
    if not count:
        raise Exit(f"no active key named {name!r}: `invoke api.keys` lists them", code=1)
    echo(f"revoked {name}")


@task
def keys(c):
    """List API keys (name, role, prefix, created, revoked), never their secrets."""
    import psycopg

    with psycopg.connect(database_url(), autocommit=True) as conn:
        rows = conn.execute(
            "select name, role, key_prefix, created_at, revoked_at from app.api_keys order by created_at"
        ).fetchall()
    print(f"{'name':24} {'role':7} {'prefix':11} {'created':26} revoked")
    for name, role, prefix, created, revoked in rows:
        print(f"{name:24} {role:7} {prefix:11} {str(created)[:25]:26} {revoked or ''}")
