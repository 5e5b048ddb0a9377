"""Tasks of the lead-capture backend: `invoke --list` shows them all.

Collections: db (cluster and build), api (keys), test, lint, plus `up` / `down` for the
whole local stack. Each task echoes what it runs and ends with one sentence on failure.
"""

from __future__ import annotations

import os
import sys
import time

from invoke import Collection, Exit, task

from chorus_db import config, tasks_bench, tasks_gdpr, tasks_ops, tasks_stack


def _echo(message: str) -> None:
    print(f"» {message}", flush=True)


def _url() -> str:
    from chorus_db.cluster import database_url

    return database_url()


# -- db ------------------------------------------------------------------------------------
@task
def db_up(c):
    """Start the embedded PostgreSQL cluster (.pgdata, pg_cron preloaded) and print DATABASE_URL."""
    from chorus_db.cluster import embedded

    cluster = embedded()
    created = cluster.init()
    if created:
        _echo(f"initialised a new cluster in {cluster.datadir}")
    started = cluster.start()
    _echo(("started" if started else "already running") + f" on 127.0.0.1:{cluster.port}")
    print(f"DATABASE_URL={cluster.url()}")


@task(help={"force": "re-apply db/functions and db/policies even when unchanged"})
def db_build(c, force=False):
    """Build or upgrade the database at DATABASE_URL (default: the embedded cluster). Atomic, idempotent."""
    from chorus_db.build import BuildError, build

    url = _url()
    _echo(f"building {url.rsplit('@', 1)[-1]}")
    try:
        result = build(url, force=force)
    except BuildError as exc:
        raise Exit(f"build failed, nothing was changed: {exc}", code=1)
    if result.jobs_scheduled:
        _echo("pg_cron jobs: " + ", ".join(result.jobs_scheduled))
    tasks_ops.after_build(url)


@task
def db_status(c):
    """Show applied and pending schema files, declarative state, drift and pg_cron jobs; exit 1 on drift."""
    from chorus_db.build import status
    from chorus_db.drift import drift

    url = _url()
    st = status(url)
    print("applied schema files:")
    for version, at in st.applied:
        print(f"  {version}  {at}")
    print("pending schema files: " + (", ".join(st.pending) or "none"))
    print("declarative source (functions, policies): " + ("in sync" if st.declarative_in_sync else "CHANGED since last build"))
    if st.jobs:
        print("pg_cron jobs:")
        for name, schedule, active, last_run, last_status in st.jobs:
            print(f"  {name}  '{schedule}'  active={active}  last run={last_run or 'never'} {last_status or ''}")
    problems = list(st.changed)
    diff = drift(url)
    if diff:
        print("drift: the live schema differs from a fresh build of the source:")
        print(diff)
        problems.append("schema drift")
    else:
        print("drift: none (live schema equals a fresh build of the source)")
    if st.changed:
        print("applied files changed since they were applied: " + ", ".join(st.changed))
    if problems:
        raise Exit("the database does not match the source: run `invoke db.build` or investigate the drift above", code=1)


@task
def db_psql(c):
    """Open psql on the database."""
    c.run(f"psql '{_url()}'", pty=True)


# -- stack -----------------------------------------------------------------------------------
@task
def down(c):
    """Stop what `up` and `db.up` started (PostgREST, nginx, the embedded cluster), keeping the data."""
    from chorus_db import stack
    from chorus_db.cluster import embedded

    from chorus_db import ops_stack, replica

    for name in stack.stop_all() + ops_stack.stop_extras(standby=replica.replica_cluster()):
        _echo(f"stopped {name}")
    if embedded().stop():
        _echo("stopped the embedded PostgreSQL cluster")
    else:
        _echo("the embedded PostgreSQL cluster was not running")


# -- api keys --------------------------------------------------------------------------------
@task(name="key-create", help={"name": "a name for the key", "role": "reader or admin"})
def key_create(c, name, role="reader"):
    """Create an API key and print it once; only its hash is stored."""
    import psycopg

    if role not in config.API_ROLES:
        raise Exit(f"--role must be reader or admin, not {role!r}")
    with psycopg.connect(_url(), autocommit=True) as conn:
        try:
            (key,) = conn.execute("select app_logic.create_api_key(%s, %s)", (name, role)).fetchone()
        except psycopg.errors.UniqueViolation:
            raise Exit(f"an active key named {name!r} exists: revoke it first or choose another name")
        except psycopg.errors.CheckViolation:
            raise Exit("a key name is letters, digits, '.', '_' or '-', at most 64 characters")
    print(key)
    print(f"(role {role}; store it now: it cannot be shown again)", file=sys.stderr)


@task(name="key-revoke", help={"name": "the key's name"})
def key_revoke(c, name):
    """Revoke the active API key with that name; effective on the next request."""
    import psycopg

    with psycopg.connect(_url(), autocommit=True) as conn:
        (count,) = conn.execute("select app_logic.revoke_api_key(%s)", (name,)).fetchone()
    if not count:
        raise Exit(f"no active key named {name!r}: `invoke api.keys` lists them")
    _echo(f"revoked {name}")


@task
def keys(c):
    """List API keys (name, role, prefix, created, revoked), never their secrets."""
    import psycopg

    with psycopg.connect(_url(), autocommit=True) as conn:
        rows = conn.execute(
            "select name, role, key_prefix, created_at, revoked_at from app.api_keys order by created_at"
        ).fetchall()
    print(f"{'name':24} {'role':7} {'prefix':11} {'created':26} revoked")
    for name, role, prefix, created, revoked in rows:
        print(f"{name:24} {role:7} {prefix:11} {str(created)[:25]:26} {revoked or ''}")


# -- lint ------------------------------------------------------------------------------------
@task
def lint_sql(c):
    """sqlfluff (postgres dialect) over db/."""
    _echo("sqlfluff lint db")
    c.run("sqlfluff lint db --dialect postgres --disable-progress-bar")


@task
def lint_migrations(c):
    """Check the schema/declarative split (chorus_db.migration_lint)."""
    from chorus_db.migration_lint import lint

    _echo("migration lint over db/")
    problems = lint()
    for problem in problems:
        print(f"  {problem}")
    if problems:
        raise Exit(f"{len(problems)} migration lint problem(s): fix the files named above", code=1)
    print("  no problems")


@task
def lint_plpgsql(c):
    """plpgsql_check on every PL/pgSQL function, trigger functions with their table."""
    from chorus_db.testing import build_template, run_plpgsql_check, test_cluster

    _echo("plpgsql_check on a fresh build in the test cluster")
    cluster = test_cluster()
    build_template(cluster)
    findings = run_plpgsql_check(cluster)
    for fn, line, level, message, hint in findings:
        print(f"  {fn}:{line}: {level}: {message}" + (f" ({hint})" if hint else ""))
    if findings:
        raise Exit(f"plpgsql_check found {len(findings)} problem(s): fix the functions named above", code=1)
    print("  no problems")


@task(pre=[lint_sql, lint_migrations, lint_plpgsql], default=True)
def lint_all(c):
    """Every linter: sqlfluff, migration lint, plpgsql_check."""


# -- test ------------------------------------------------------------------------------------
@task
def test_pgtap(c):
    """pgTAP tests in db/tests, run by pg_prove on a fresh build."""
    from chorus_db.testing import build_template, run_pgtap, test_cluster

    _echo("pg_prove db/tests/*.sql")
    cluster = test_cluster()
    build_template(cluster)
    if run_pgtap(cluster) != 0:
        raise Exit("pgTAP tests failed: see the failures above", code=1)


@task(help={"k": "only tests matching this expression", "x": "stop at the first failure"})
def test_pytest(c, k="", x=False):
    """pytest: build, tasks, SQL-level API, HTTP (skipped where PostgREST is absent)."""
    args = ["-q"] + (["-k", k] if k else []) + (["-x"] if x else [])
    _echo("pytest " + " ".join(args))
    c.run(f"{sys.executable} -m pytest " + " ".join(args), pty=False)


@task(default=True)
def test_all(c):
    """Every check CI runs: SQL lint, migration lint, plpgsql_check, pgTAP, pytest."""
    started = time.monotonic()
    for step in (lint_sql, lint_migrations, lint_plpgsql, test_pgtap, test_pytest):
        step(c)
    _echo(f"every check passed in {time.monotonic() - started:.0f} s")


ns = Collection()
ns.add_task(down)

db = Collection("db")
db.add_task(db_up, "up")
db.add_task(db_build, "build")
db.add_task(db_status, "status")
db.add_task(db_psql, "psql")
ns.add_collection(db)

api = Collection("api")
api.add_task(key_create)
api.add_task(key_revoke)
api.add_task(keys)
ns.add_collection(api)

lint = Collection("lint")
lint.add_task(lint_all, "all", default=True)
lint.add_task(lint_sql, "sql")
lint.add_task(lint_migrations, "migrations")
lint.add_task(lint_plpgsql, "plpgsql")
ns.add_collection(lint)

test = Collection("test")
test.add_task(test_all, "all", default=True)
test.add_task(test_pgtap, "pgtap")
test.add_task(test_pytest, "pytest")
ns.add_collection(test)

# The stack (up), gdpr (and db.backup/restore/retention) and bench tasks live in their modules.
for register in (tasks_stack.register, tasks_gdpr.register, tasks_bench.register, tasks_ops.register):
    register(ns)

os.environ.setdefault("PYTHONUNBUFFERED", "1")
