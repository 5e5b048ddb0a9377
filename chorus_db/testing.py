"""The test cluster, the template database, the PostgREST the HTTP tests use and the SQL-level
checks `invoke test` runs.

The test cluster is a second embedded cluster, in the system temp directory (TEST_PGDATA, one per
checkout), so tests never touch the developer's data. Whoever starts it stops it
(`running_test_cluster`). The built schema is loaded once into a template database; every test
gets a fresh copy of it (pytest-postgresql's DatabaseJanitor), which takes milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from . import config
from .build import Source, build
from .cluster import Cluster

TEMPLATE_DB = "chorus_test_template"
# Outside the checkout: a fresh clone may sit below a directory the server's OS user cannot
# enter (CI clones anywhere), while the temporary directory is open to every user.
CHECKOUT_TEST_PGDATA = Path(
    os.environ.get(
        "CHORUS_TEST_PGDATA",
        Path(tempfile.gettempdir()) / f"chorus-test-{config.CHECKOUT_ID}" / "pgdata",
    )
)


def worker_number() -> int:
    """Which parallel pytest worker this is (pytest-xdist's gw0, gw1, ...; 0 outside one)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


# The first worker (and every run without workers: lint, pgTAP, `invoke bench`) uses the
# checkout's test cluster; each other worker a cluster of its own beside it (pgdata-gw1, ...),
# on its own first port, so no two workers share databases, roles, settings or a crash.
TEST_PGDATA = CHECKOUT_TEST_PGDATA.with_name(
    CHECKOUT_TEST_PGDATA.name + (f"-gw{worker_number()}" if worker_number() else "")
)


def test_cluster_unstarted() -> Cluster:
    first_port = int(os.environ.get("CHORUS_TEST_PG_PORT", "55432")) + worker_number()
    return Cluster(TEST_PGDATA, first_port=first_port)


def worker_test_clusters() -> list[Cluster]:
    """The clusters of this checkout's parallel pytest workers (beside the test cluster)."""
    return [Cluster(path) for path in sorted(CHECKOUT_TEST_PGDATA.parent.glob(CHECKOUT_TEST_PGDATA.name + "-gw*"))
            if path.is_dir()]


def test_cluster() -> Cluster:
    """The test cluster, started if needed (and left running: see running_test_cluster)."""
    cluster = test_cluster_unstarted()
    cluster.start()
    return cluster


@contextlib.contextmanager
def running_test_cluster() -> Iterator[Cluster]:
    """The test cluster for the duration of a block; stopped at its end when the block started it,
    so a run leaves behind only what was already running before it."""
    cluster = test_cluster_unstarted()
    started = cluster.start()
    try:
        yield cluster
    finally:
        if started:
            cluster.stop()


def postgrest_for_tests() -> Path | None:
    """The PostgREST the HTTP tests run: POSTGREST_BIN or `postgrest` on PATH when configured,
    else the vendored copy (chorus_db.vendor), which is then exported as POSTGREST_BIN so every
    subprocess (an `invoke up` under test) finds the same binary."""
    if os.environ.get("POSTGREST_BIN") or shutil.which("postgrest"):
        from .stack import find_postgrest

        return find_postgrest()
    from .vendor import vendored_postgrest

    binary = vendored_postgrest()
    if binary is not None:
        os.environ["POSTGREST_BIN"] = str(binary)
    return binary


def recreate_database(cluster: Cluster, name: str, template: str | None = None) -> str:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        if template:
            conn.execute(
                sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template))
            )
        else:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return cluster.url(name)


# `invoke test` needs the template in three steps (plpgsql_check, pgTAP, pytest in a
# subprocess): the first builds it and names the source it built in this variable, which the
# later steps (and their subprocesses) inherit; they reuse the template while the source, the
# cluster and the template's own mark still agree. A run without it builds afresh.
TEMPLATE_BUILT_ENV = "CHORUS_TEST_TEMPLATE_BUILT"


def source_fingerprint() -> str:
    """SHA-256 of what a build reads: db/ (but its tests) and the build's Python code."""
    digest = hashlib.sha256()
    files = [p for p in sorted(config.DB_DIR.rglob("*")) if p.is_file() and config.TESTS_SQL_DIR not in p.parents]
    files += sorted((config.ROOT / "chorus_db").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(config.ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _template_mark(cluster: Cluster) -> str | None:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        row = conn.execute(
            "select shobj_description(oid, 'pg_database') from pg_catalog.pg_database where datname = %s", (TEMPLATE_DB,)
        ).fetchone()
    return row[0] if row else None


def build_template(cluster: Cluster, source: Source | None = None, quiet: bool = True) -> str:
    """Build the source into a fresh template database and return its URL; the checkout's own
    source is built once per `invoke test` (see TEMPLATE_BUILT_ENV)."""
    mark = f"built from {source_fingerprint()} on port {cluster.port}" if source is None else None
    if mark and os.environ.get(TEMPLATE_BUILT_ENV) == mark and _template_mark(cluster) == mark:
        return cluster.url(TEMPLATE_DB)
    os.environ.pop(TEMPLATE_BUILT_ENV, None)
    url = recreate_database(cluster, TEMPLATE_DB)
    build(url, source=source, log=(lambda _msg: None) if quiet else print)
    if mark:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("comment on database {} is {}").format(sql.Identifier(TEMPLATE_DB), sql.Literal(mark)))
        os.environ[TEMPLATE_BUILT_ENV] = mark
    return url


def copy_of_template(cluster: Cluster, name: str, extensions: tuple[str, ...] = ()) -> str:
    url = recreate_database(cluster, name, template=TEMPLATE_DB)
    if extensions:
        with psycopg.connect(url, autocommit=True) as conn:
            for ext in extensions:
                conn.execute(sql.SQL("create extension if not exists {}").format(sql.Identifier(ext)))
    return url


def psql_env(cluster: Cluster, dbname: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PGHOST="127.0.0.1",
        PGPORT=str(cluster.port),
        PGUSER="postgres",
        PGPASSWORD=cluster.password,
        PGDATABASE=dbname,
    )
    return env


PGTAP_HELPERS = config.TESTS_SQL_DIR / "support" / "helpers.sql"


def run_pgtap(cluster: Cluster, files: list[Path] | None = None) -> int:
    """Run pg_prove over db/tests on a copy of the template, with the shared helpers
    (db/tests/support/helpers.sql) loaded first; returns pg_prove's exit code."""
    dbname = "chorus_pgtap"
    url = copy_of_template(cluster, dbname, extensions=("pgtap",))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PGTAP_HELPERS.read_text().encode())
    files = files or sorted(config.TESTS_SQL_DIR.glob("*.sql"))
    cmd = ["pg_prove", "--failures", "--comments", *[str(f) for f in files]]
    return subprocess.run(cmd, env=psql_env(cluster, dbname)).returncode


PLPGSQL_CHECK = """
with targets as (
    select p.oid, p.oid::regprocedure as fn, t.tgrelid
    from pg_proc as p
    join pg_namespace as n on n.oid = p.pronamespace
    join pg_language as l on l.oid = p.prolang
    left join lateral (
        select tg.tgrelid from pg_trigger as tg where tg.tgfoid = p.oid limit 1
    ) as t on true
    where l.lanname = 'plpgsql' and n.nspname in ('api', 'app_logic')
      and (p.prorettype <> 'trigger'::regtype or t.tgrelid is not null)
)
select t.fn::text, r.lineno, r.level, r.message, r.hint
from targets as t
cross join lateral plpgsql_check_function_tb(
    t.oid, coalesce(t.tgrelid, 0), fatal_errors => false,
    other_warnings => false, extra_warnings => false
) as r
where r.level in ('error', 'warning')
order by 1, 2
"""


def run_plpgsql_check(cluster: Cluster) -> list[tuple]:
    """Every PL/pgSQL function of api and app_logic (trigger functions with their table)."""
    dbname = "chorus_plpgsql_check"
    url = copy_of_template(cluster, dbname, extensions=("plpgsql_check",))
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(PLPGSQL_CHECK).fetchall()
