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
    # (name, schedule, command) of every job db/policies declared, when they were re-applied.
    declared_jobs: list[tuple[str, str, str]] = field(default_factory=list)
    # Where pg_cron runs the jobs: local, remote, none or not_applicable (app.job_scheduler).
    jobs_placement: str = ""
    jobs_detail: str = ""

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


# The build's two ledgers, one shape: a checksum per applied name (a schema file; the
# declarative source as one component), and when it was applied.
LEDGERS = (
    ("schema_migrations", "version", "db/schema files applied to this database, with the checksum they had (chorus_db.build)."),
    ("schema_state", "component", "Checksum of the declarative source (db/functions + db/policies) last applied."),
)
BOOTSTRAP = "".join(
    f"""
create table if not exists public.{table} (
    {key} text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
);
comment on table public.{table} is
    '{comment}';
alter table public.{table} enable row level security;"""
    for table, key, comment in LEDGERS
) + "\n"

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
            "insert into app_logic.routes (method, path, target, key, success, rate_limit, health, rule)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s)",
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
        if result.declarative_applied:
            place_jobs(conn, url, result, log)
    return result


# `create schema if not exists` (db/schema/000) adopts a schema someone else made; on a shared
# server that would put our tables in another role's schema (pgspot PS010).
OWNED_SCHEMAS = (*TABLE_SCHEMAS, "extensions")
_FOREIGN_SCHEMAS = """
with recursive mine (oid) as (
    select oid from pg_catalog.pg_roles where rolname = current_user
    union
    select m.roleid from pg_catalog.pg_auth_members as m join mine on m.member = mine.oid
)
select n.nspname, pg_catalog.pg_get_userbyid(n.nspowner) from pg_catalog.pg_namespace as n
where n.nspname = any(%s) and n.nspowner not in (select oid from mine)
order by 1
"""


def check_schema_owners(conn: psycopg.Connection) -> None:
    """The project's schemas belong to the build's login (or a role it is a member of)."""
    foreign = conn.execute(_FOREIGN_SCHEMAS, (list(OWNED_SCHEMAS),)).fetchall()
    if foreign:
        schema, owner = foreign[0]
        raise BuildError(
            f"schema {schema} is owned by role {owner}, not by {conn.info.user} (the build's login) or a role it "
            f"belongs to: another project may own it; build into another database, or run "
            f"`alter schema {schema} owner to {conn.info.user}` if it is this project's"
        )


class _NoRemoteCron(Exception):
    pass


def place_jobs(conn: psycopg.Connection, url: str, result: BuildResult, log: Callable[[str], None]) -> None:
    """Decide where the declared jobs run and record it in app.job_scheduler. In the project's
    database on a server whose cron.database_name is another database (a shared server), they
    are scheduled there with cron.schedule_in_database, which runs them in this database."""
    dbname = conn.info.dbname
    cron_db, detail = None, ""
    if result.cron_available:
        placement, cron_db = "local", dbname
    elif dbname != config.DB_NAME:
        placement = "not_applicable"
    else:
        cron_db = conn.execute("select current_setting('cron.database_name', true)").fetchone()[0] or None
        if cron_db is None:
            placement, detail = "none", "pg_cron is not loaded on this server (shared_preload_libraries)"
        else:
            try:
                result.jobs_scheduled, result.jobs_removed = schedule_in_cron_database(
                    make_conninfo(url, dbname=cron_db), dbname, result.declared_jobs
                )
                placement = "remote"
                log(f"pg_cron runs in database {cron_db}: {len(result.jobs_scheduled)} job(s) scheduled there "
                    f"for {dbname} with cron.schedule_in_database")
            except (psycopg.Error, _NoRemoteCron) as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                placement = "none"
                detail = f"pg_cron runs in database {cron_db} of this server and could not schedule jobs for {dbname} there: {reason}"
    result.jobs_placement, result.jobs_detail = placement, detail
    if placement == "none":
        log(f"WARNING: {detail}; no job runs: retention, counter purges and new page-view partitions stop. "
            f"Ask the server's administrator to install pg_cron in {cron_db or 'cron.database_name'} or to set it to {dbname}.")
    if conn.execute("select to_regclass('app.job_scheduler') is not null").fetchone()[0]:
        conn.execute(
            """
            insert into app.job_scheduler (placement, cron_database, detail) values (%s, %s, nullif(%s, ''))
            on conflict (singleton) do update
            set placement = excluded.placement, cron_database = excluded.cron_database,
                detail = excluded.detail, checked_at = now()
            """,
            (placement, cron_db, detail[:1000]),
        )


def schedule_in_cron_database(cron_url: str, dbname: str, jobs: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """Schedule the jobs for `dbname` from pg_cron's database and unschedule the project's jobs
    for `dbname` that left the source. Returns (scheduled, removed)."""
    names = [name for name, _, _ in jobs]
    with psycopg.connect(cron_url, autocommit=True, connect_timeout=10) as cron:
        usable = cron.execute(
            "select exists (select from pg_extension where extname = 'pg_cron')"
            " and to_regproc('cron.schedule_in_database') is not null"
        ).fetchone()[0]
        if not usable:
            raise _NoRemoteCron("pg_cron 1.4 or later is not installed there (cron.schedule_in_database)")
        with cron.transaction():
            for name, schedule, command in jobs:
                cron.execute("select cron.schedule_in_database(%s, %s, %s, %s)", (name, schedule, command, dbname))
            stale = cron.execute(
                "select jobid, jobname from cron.job where database = %s and jobname like %s and jobname <> all(%s) order by 2",
                (dbname, config.CRON_JOB_PREFIX + "%", names),
            ).fetchall()
            for jobid, _name in stale:
                cron.execute("select cron.unschedule(%s)", (jobid,))
    return names, [name for _, name in stale]


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

    check_schema_owners(conn)

    # Jobs declared by db/policies are collected here, then reconciled with cron.job.
    conn.execute(
        "create temporary table chorus_declared_jobs (jobname text primary key, schedule text, command text) on commit drop"
    )
    for path in source.declarative_files:
        log(f"applying db/{path.parent.name}/{path.name}")
        run_file(conn, path)
    fill_routes(conn, source, log)
    result.declarative_applied = True

    result.cron_available = _cron_available(conn)
    result.declared_jobs = conn.execute("select jobname, schedule, command from chorus_declared_jobs order by 1").fetchall()
    declared = [name for name, _, _ in result.declared_jobs]
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
    # From app.job_scheduler: where pg_cron runs the jobs, its database, why none runs.
    jobs_placement: str = ""
    jobs_cron_database: str | None = None
    jobs_detail: str | None = None


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
        placement = ("", None, None)
        if conn.execute("select to_regclass('app.job_scheduler') is not null").fetchone()[0]:
            placement = conn.execute("select placement, cron_database, detail from app.job_scheduler").fetchone() or placement
        jobs: list[tuple] = []
        if _cron_available(conn):
            jobs = conn.execute(JOBS_QUERY, (config.CRON_JOB_PREFIX + "%", conn.info.dbname)).fetchall()
        elif placement[0] == "remote":
            try:
                with psycopg.connect(make_conninfo(url, dbname=placement[1]), autocommit=True, connect_timeout=10) as cron:
                    jobs = cron.execute(JOBS_QUERY, (config.CRON_JOB_PREFIX + "%", conn.info.dbname)).fetchall()
            except psycopg.Error as exc:
                placement = ("none", placement[1], f"pg_cron's database {placement[1]} cannot be read: {str(exc).strip().splitlines()[0]}")
    return Status(
        applied=[(v, str(at)) for v, _, at in applied_rows],
        pending=pending,
        changed=changed,
        declarative_in_sync=bool(state and state[0] == source.declarative_checksum()),
        jobs=jobs,
        jobs_placement=placement[0],
        jobs_cron_database=placement[1],
        jobs_detail=placement[2],
    )


JOBS_QUERY = """
select j.jobname, j.schedule, j.active,
       (select max(d.start_time) from cron.job_run_details d where d.jobid = j.jobid),
       (select d.status from cron.job_run_details d where d.jobid = j.jobid
        order by d.start_time desc limit 1)
from cron.job j where j.jobname like %s and j.database = %s order by 1
"""
