"""`invoke db.build`: bring a database to the state the source describes, atomically.

Two kinds of source, two rules:

* ``db/schema`` holds tables, types and indexes: ordered files, each applied once and
  recorded with its checksum in ``public.schema_migrations``. An applied file that changed,
  or vanished, is refused by name: changes arrive as new files.
* ``db/functions`` and ``db/policies`` are the full desired state (views, functions,
  triggers, RLS, grants, pg_cron jobs). When their content changes they are re-applied
  from scratch: the schemas ``api`` and ``app_logic`` are dropped, every policy and grant on
  the project's tables is removed, and everything is created again. Whatever left the
  source therefore leaves the database. Schema files must never reference objects of those
  two schemas (the migration lint enforces it), or the drop would cascade into tables.

Everything happens in one transaction: a failure anywhere leaves the database exactly as
it was, and the error names the file, the line and PostgreSQL's message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import config
from .errors import UserError, missing_extension

DECLARATIVE_SCHEMAS = ("api", "app_logic")
TABLE_SCHEMAS = ("app",)


class BuildError(UserError):
    """A build that stopped; the database is unchanged."""


@dataclass
class Source:
    """The SQL files of one checkout (HEAD, or an older commit in the upgrade test)."""

    root: Path = config.DB_DIR

    def files(self, kind: str) -> list[Path]:
        return sorted((self.root / kind).glob("*.sql"))

    @property
    def schema_files(self) -> list[Path]:
        return self.files("schema")

    @property
    def declarative_files(self) -> list[Path]:
        return self.files("functions") + self.files("policies")

    @property
    def routes_file(self) -> Path | None:
        """db/routes.toml, the public route table (older commits of the upgrade test have none)."""
        path = self.root / "routes.toml"
        return path if path.exists() else None

    def declarative_checksum(self) -> str:
        digest = hashlib.sha256()
        for path in self.declarative_files + ([self.routes_file] if self.routes_file else []):
            digest.update(f"{path.parent.name}/{path.name}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
        return digest.hexdigest()


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class BuildResult:
    applied_migrations: list[str] = field(default_factory=list)
    declarative_applied: bool = False
    jobs_scheduled: list[str] = field(default_factory=list)
    jobs_removed: list[str] = field(default_factory=list)
    cron_available: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.applied_migrations or self.declarative_applied or self.jobs_removed)


def ensure_database(url: str) -> None:
    """Create the target database when it does not exist yet (CREATE DATABASE cannot run
    inside the build's transaction)."""
    params = conninfo_to_dict(url)
    dbname = params.get("dbname") or config.DB_NAME
    maintenance = make_conninfo(url, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def _line_of(text: str, position: int | None) -> int | None:
    if not position:
        return None
    return text.count("\n", 0, position - 1) + 1


def run_file(conn: psycopg.Connection, path: Path) -> None:
    """Execute one SQL file as a whole; on error name the file and line.

    A savepoint-free execute is enough: any error aborts the build's single transaction.
    """
    text = path.read_text()
    try:
        conn.execute(text.encode())  # no parameters: simple protocol, many statements
    except psycopg.Error as exc:
        diag = exc.diag
        position = diag.statement_position
        line = _line_of(text, int(position)) if position else None
        where = f"{path.relative_to(path.parent.parent.parent)}"
        where += f":{line}" if line else ""
        missing = missing_extension(str(diag.message_primary or exc))
        if missing:
            raise BuildError(f"{where}: {missing}") from exc
        context = f"\n  context: {diag.context.strip()}" if diag.context else ""
        raise BuildError(f"{where}: {diag.message_primary or exc}{context}") from exc


BOOTSTRAP = """
create table if not exists public.schema_migrations (
    version text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
);
comment on table public.schema_migrations is
    'db/schema files applied to this database, with the checksum they had (chorus_db.build).';
alter table public.schema_migrations enable row level security;
create table if not exists public.schema_state (
    component text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
);
comment on table public.schema_state is
    'Checksum of the declarative source (db/functions + db/policies) last applied.';
alter table public.schema_state enable row level security;
"""

TEARDOWN = """
do $teardown$
declare
    r record;
begin
    -- Every policy on the project's tables: db/policies recreates the ones still wanted.
    for r in select schemaname, tablename, policyname from pg_policies
             where schemaname = any({schemas})
    loop
        execute format('drop policy %I on %I.%I', r.policyname, r.schemaname, r.tablename);
    end loop;
    -- Every privilege the API roles hold on them, likewise.
    for r in select rolname from pg_roles where rolname = any({roles})
    loop
        if to_regnamespace('app') is not null then
            execute format('revoke all on all tables in schema app from %I', r.rolname);
            execute format('revoke all on all sequences in schema app from %I', r.rolname);
            execute format('revoke all on schema app from %I', r.rolname);
        end if;
    end loop;
end
$teardown$;
"""


def fill_routes(conn: psycopg.Connection, source: Source, log: Callable[[str], None]) -> None:
    """Copy db/routes.toml into app_logic.routes, after every declarative file ran (so grants
    are in place), and refuse a route whose api object, privilege or health table is missing:
    such a route would be a 404 in production and a hole in the OpenAPI document."""
    from . import routes as routes_module

    if source.routes_file is None:
        return
    try:
        table = routes_module.load(source.routes_file)
    except routes_module.RouteError as exc:
        raise BuildError(f"db/{exc}") from exc
    problems = routes_module.missing_objects(conn, table)
    if problems:
        raise BuildError(
            "db/routes.toml: " + "; ".join(problems)
            + ". Add the object (or the grant), or remove the route."
        )
    with conn.cursor() as cur:
        cur.executemany(
            "insert into app_logic.routes (method, path, target, key, success, rate_limit, health)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            routes_module.sql_rows(table),
        )
    log(f"filled app_logic.routes from db/routes.toml ({len(table)} routes)")


def _cron_available(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select exists (select 1 from pg_extension where extname = 'pg_cron')"
    ).fetchone()
    return bool(row and row[0])


def check_server_version(conn: psycopg.Connection) -> None:
    """PostgreSQL 15 or later (the SQL uses 15's features; the project is tested on 15)."""
    version = conn.info.server_version
    if version < config.PG_MAJOR * 10000:
        raise BuildError(
            f"the server at {conn.info.host}:{conn.info.port} runs PostgreSQL {version // 10000}.{version % 10000}, "
            f"the project needs {config.PG_MAJOR}: point DATABASE_URL at a PostgreSQL {config.PG_MAJOR} server"
        )


def build(
    url: str,
    source: Source | None = None,
    log: Callable[[str], None] = print,
    force: bool = False,
) -> BuildResult:
    """Build or upgrade the database at `url` to `source`. Atomic and idempotent."""
    source = source or Source()
    ensure_database(url)
    result = BuildResult()
    with psycopg.connect(url, autocommit=True) as conn:
        check_server_version(conn)
        conn.execute("set client_min_messages = warning")
        conn.add_notice_handler(lambda diag: log(f"  notice: {diag.message_primary}"))
        try:
            with conn.transaction():
                _build_in_transaction(conn, source, result, log, force)
        except BuildError:
            log("build failed: rolled back, the database is unchanged")
            raise
    return result


def _build_in_transaction(conn, source: Source, result: BuildResult, log, force: bool) -> None:
    # One build at a time per database; waiting on PostgREST's locks is bounded.
    conn.execute("select pg_advisory_xact_lock(hashtext('chorus_db.build'))")
    conn.execute("set local lock_timeout = '15s'")
    conn.execute(BOOTSTRAP)

    applied = dict(conn.execute("select version, checksum from public.schema_migrations").fetchall())
    on_disk = {p.name: p for p in source.schema_files}
    for version, recorded in sorted(applied.items()):
        path = on_disk.get(version)
        if path is None:
            raise BuildError(f"db/schema/{version} was applied to this database but is missing from the source")
        if checksum(path) != recorded:
            raise BuildError(
                f"db/schema/{version} was applied to this database and has changed since; "
                "applied schema files are never edited: restore it and add a new file"
            )
    pending = [p for name, p in on_disk.items() if name not in applied]
    last_applied = max(applied) if applied else ""
    for path in pending:
        if path.name < last_applied:
            raise BuildError(
                f"db/schema/{path.name} sorts before {last_applied}, which is already applied; "
                "give new schema files a higher number"
            )

    wanted = source.declarative_checksum()
    row = conn.execute("select checksum from public.schema_state where component = 'declarative'").fetchone()
    declarative_changed = force or row is None or row[0] != wanted or bool(pending)

    if not pending and not declarative_changed:
        log("nothing to do: the database already matches the source")
        result.cron_available = _cron_available(conn)
        conn.execute("notify pgrst, 'reload schema'")
        return

    log("dropping declarative objects (api, app_logic, policies, grants)")
    for schema in DECLARATIVE_SCHEMAS:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL(TEARDOWN).format(
            schemas=sql.Literal(list(TABLE_SCHEMAS)), roles=sql.Literal(list(config.PROJECT_ROLES))
        )
    )

    for path in pending:
        log(f"applying db/schema/{path.name}")
        run_file(conn, path)
        conn.execute(
            "insert into public.schema_migrations (version, checksum) values (%s, %s)",
            (path.name, checksum(path)),
        )
        result.applied_migrations.append(path.name)

    # Jobs declared by db/policies are collected here, then reconciled with cron.job.
    conn.execute("create temporary table chorus_declared_jobs (jobname text primary key) on commit drop")
    for path in source.declarative_files:
        log(f"applying db/{path.parent.name}/{path.name}")
        run_file(conn, path)
    fill_routes(conn, source, log)
    result.declarative_applied = True

    result.cron_available = _cron_available(conn)
    declared = [r[0] for r in conn.execute("select jobname from chorus_declared_jobs order by 1")]
    if result.cron_available:
        result.jobs_scheduled = declared
        stale = conn.execute(
            "select jobname from cron.job where jobname like %s and jobname <> all(%s) order by 1",
            (config.CRON_JOB_PREFIX + "%", declared),
        ).fetchall()
        for (jobname,) in stale:
            conn.execute("select cron.unschedule(%s)", (jobname,))
            log(f"unscheduled pg_cron job {jobname} (no longer in the source)")
            result.jobs_removed.append(jobname)
    elif declared:
        log(
            f"pg_cron is not installed in this database: {len(declared)} job(s) declared but not "
            "scheduled (pg_cron runs only in cron.database_name)"
        )

    conn.execute(
        """
        insert into public.schema_state (component, checksum) values ('declarative', %s)
        on conflict (component) do update set checksum = excluded.checksum, applied_at = now()
        """,
        (wanted,),
    )
    conn.execute("notify pgrst, 'reload schema'")
    log(
        f"built: {len(result.applied_migrations)} schema file(s) applied, "
        f"{len(source.declarative_files)} declarative file(s) re-applied"
    )


@dataclass
class Status:
    applied: list[tuple[str, str]]
    pending: list[str]
    changed: list[str]
    declarative_in_sync: bool
    jobs: list[tuple]


def status(url: str, source: Source | None = None) -> Status:
    source = source or Source()
    with psycopg.connect(url, autocommit=True) as conn:
        has_table = conn.execute("select to_regclass('public.schema_migrations') is not null").fetchone()[0]
        applied_rows = (
            conn.execute("select version, checksum, applied_at from public.schema_migrations order by 1").fetchall()
            if has_table
            else []
        )
        on_disk = {p.name: p for p in source.schema_files}
        changed = [v for v, c, _ in applied_rows if v not in on_disk or checksum(on_disk[v]) != c]
        applied_names = {v for v, _, _ in applied_rows}
        pending = [name for name in on_disk if name not in applied_names]
        state = (
            conn.execute("select checksum from public.schema_state where component = 'declarative'").fetchone()
            if has_table
            else None
        )
        jobs: list[tuple] = []
        if _cron_available(conn):
            jobs = conn.execute(
                """
                select j.jobname, j.schedule, j.active,
                       (select max(d.start_time) from cron.job_run_details d where d.jobid = j.jobid),
                       (select d.status from cron.job_run_details d where d.jobid = j.jobid
                        order by d.start_time desc limit 1)
                from cron.job j where j.jobname like %s order by 1
                """,
                (config.CRON_JOB_PREFIX + "%",),
            ).fetchall()
    return Status(
        applied=[(v, str(at)) for v, _, at in applied_rows],
        pending=pending,
        changed=changed,
        declarative_in_sync=bool(state and state[0] == source.declarative_checksum()),
        jobs=jobs,
    )
