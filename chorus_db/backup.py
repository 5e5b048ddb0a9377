"""`invoke db.backup` and `invoke db.restore`: logical backups with pg_dump's custom format.

A backup is verified before it is reported: pg_restore must read its table of contents, and
that must hold every table of the `app` schema (definition, and data for every table that
has rows of its own). A restore goes into a database the operator names, never over a
non-empty one unless told to, in one transaction.

pg_cron exists only in the database named by cron.database_name. A dump of that database
carries the extension and its job table; restored anywhere else those entries are left out
(the build declares the jobs again when it runs in pg_cron's database).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import config
from .errors import UserError

# "3665; 0 21064 TABLE DATA app leads postgres", "2; 3079 20942 EXTENSION - pg_cron "
TOC_LINE = re.compile(
    r"^\d+; \d+ \d+ (?P<desc>[A-Z]+(?: [A-Z]+)*) (?P<schema>\S+) (?P<name>.*?)(?: (?P<owner>\S+))?\s*$"
)


def ensure_roles_sql() -> str:
    """The roles the dump's grants name, created when missing (they are cluster-wide, so a fresh
    server lacks them) by the statements that create them in a build: the roles blocks of
    db/schema/000-foundation.sql and 381-field-encryption.sql (the key reader's owner) and the
    membership blocks of db/policies/000-foundation.sql and 045-field-encryption.sql (a role
    membership is no part of a dump, and without it the restored key reader reads nothing)."""
    blocks = []
    for path, tag in ((config.SCHEMA_DIR / "000-foundation.sql", "roles"),
                      (config.SCHEMA_DIR / "381-field-encryption.sql", "roles"),
                      (config.POLICIES_DIR / "000-foundation.sql", "membership"),
                      (config.POLICIES_DIR / "045-field-encryption.sql", "membership")):
        found = re.search(rf"^do \${tag}\$.*?\${tag}\$;$", path.read_text(), re.S | re.M)
        if found is None:
            raise BackupError(f"{path.relative_to(config.ROOT)} has no do ${tag}$ block: restore the file from git")
        blocks.append(found.group(0))
    return "\n".join(blocks)


class BackupError(UserError):
    """A backup or restore that failed or could not be verified; the message says why."""


def _bin(name: str) -> str:
    return str(config.pg_bindir() / name)


def _dbname(url: str) -> str:
    return conninfo_to_dict(url).get("dbname") or config.DB_NAME


def default_backup_path(url: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return config.RUN_DIR / "backups" / f"{_dbname(url)}-{stamp}.dump"


@dataclass
class TocEntry:
    desc: str
    schema: str
    name: str
    line: str


def table_of_contents(dump: Path) -> list[TocEntry]:
    """pg_restore --list, parsed; BackupError when the archive cannot be read."""
    proc = subprocess.run([_bin("pg_restore"), "--list", str(dump)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{dump} is not a readable pg_dump archive: {proc.stderr.strip()}")
    entries = []
    for line in proc.stdout.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        match = TOC_LINE.match(line)
        if not match:
            raise BackupError(f"unexpected line in the table of contents of {dump}: {line!r}")
        entries.append(TocEntry(match["desc"], match["schema"], match["name"], line))
    return entries


def app_tables(url: str) -> dict[str, bool]:
    """Tables of the app schema: name -> whether it holds rows itself (a partitioned
    parent does not: its partitions do)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """
            select c.relname, c.relkind = 'r'
            from pg_class as c
            where c.relnamespace = 'app'::regnamespace and c.relkind in ('r', 'p')
            order by 1
            """
        ).fetchall()
    return dict(rows)


def verify_dump(dump: Path, tables: dict[str, bool]) -> list[TocEntry]:
    """Check that the archive reads and names every app table (and its data)."""
    toc = table_of_contents(dump)
    defined = {e.name for e in toc if e.desc == "TABLE" and e.schema == "app"}
    with_data = {e.name for e in toc if e.desc == "TABLE DATA" and e.schema == "app"}
    missing = [t for t in tables if t not in defined]
    missing += [f"{t} (data)" for t, has_rows in tables.items() if has_rows and t not in with_data]
    if missing:
        raise BackupError(f"{dump} lacks app tables: {', '.join(missing)}")
    return toc


@dataclass
class BackupResult:
    path: Path
    size: int
    tables: int
    toc_entries: int


# Progress of a long step: on_step(done, total, what) after each table or archive entry.
Step = Callable[[int, int, str], None]


def _run_verbose(argv: list[str], step_line: str, total: int, on_step: Step | None) -> tuple[int, str]:
    """Run pg_dump or pg_restore with --verbose; each stderr line matching step_line (group 1: what
    it is at) is one step of total, reported to on_step as it comes. Returns the exit status and
    the lines that are not progress (the errors)."""
    errors = []
    done = 0
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stderr:
            line = line.rstrip("\n")
            match = re.match(step_line, line)
            if match and on_step:
                done += 1
                on_step(min(done, total), total, match.group(1))
            if "error" in line.lower() or not re.match(r"pg_(dump|restore): (?!error)", line):
                errors.append(line)
    return proc.returncode, "\n".join(errors).strip()


def _data_tables(url: str) -> int:
    """Tables whose rows a dump holds (what pg_dump --verbose counts as it goes)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            """
            select count(*) from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
            where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
              and n.nspname !~ '^pg_(toast|temp_)'
            """
        ).fetchone()[0]


def backup(url: str, out: Path | None = None, on_step: Step | None = None) -> BackupResult:
    """pg_dump -Fc of the database at `url` into `out`, then verified."""
    out = Path(out) if out else default_backup_path(url)
    out.parent.mkdir(parents=True, exist_ok=True)
    tables = app_tables(url)
    if not tables:
        raise BackupError("the database has no app tables: is it built (invoke db.build)?")
    partial = out.with_name(out.name + ".partial")
    returncode, errors = _run_verbose(
        [_bin("pg_dump"), "--verbose", "--format=custom", "--file", str(partial), "--dbname", url],
        r'pg_dump: dumping contents of table "?([^"]+)"?', _data_tables(url), on_step,
    )
    if returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {errors}")
    try:
        toc = verify_dump(partial, tables)
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    # Only a verified dump gets the final name.
    partial.replace(out)
    out.chmod(0o600)  # it holds personal data and the pseudonym pepper
    return BackupResult(path=out, size=out.stat().st_size, tables=len(tables), toc_entries=len(toc))


def target_url(server_url: str, target: str) -> str:
    """A database name on the same server as `server_url`, or a full URL."""
    if "://" in target or "=" in target:
        return target
    return make_conninfo(server_url, dbname=target)


def _is_empty(conn: psycopg.Connection) -> bool:
    (count,) = conn.execute(
        """
        select count(*) from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
          and n.nspname !~ '^pg_(toast_)?temp_'
        """
    ).fetchone()
    return count == 0


class TargetNotEmpty(BackupError):
    """The target database exists and holds objects; --yes replaces it."""


@dataclass
class RestoreResult:
    url: str
    created: bool
    replaced: bool
    skipped: list[str] = field(default_factory=list)


def restore(dump: Path, url: str, *, replace: bool = False, on_step: Step | None = None) -> RestoreResult:
    """Restore `dump` into the database at `url` (created if missing) in one transaction.

    An existing non-empty database is refused unless `replace`, which drops and recreates it.
    """
    dump = Path(dump)
    table_of_contents(dump)  # readable at all?
    name = _dbname(url)
    maintenance = make_conninfo(url, dbname="postgres")
    result = RestoreResult(url=url, created=False, replaced=False)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists:
            with psycopg.connect(url, autocommit=True) as target:
                empty = _is_empty(target)
            if not empty:
                if not replace:
                    raise TargetNotEmpty(
                        f"database {name} exists and is not empty: choose another --target or add --yes to replace it"
                    )
                conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
                result.replaced = True
                exists = None
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            result.created = True
        conn.execute(ensure_roles_sql())
        cron_database = conn.execute("select current_setting('cron.database_name', true)").fetchone()[0]

    # Leave pg_cron out where it cannot exist.
    keep: list[str] = []
    for entry in table_of_contents(dump):
        # The extension ("EXTENSION - pg_cron"), its comment, and everything in its schema.
        is_cron = entry.schema == "cron" or re.search(r" EXTENSION (- )?pg_cron\s*$", entry.line) is not None
        if is_cron and name != cron_database:
            result.skipped.append(f"{entry.desc} {entry.schema} {entry.name}")
            continue
        keep.append(entry.line)
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as listing:
        listing.write("\n".join(keep) + "\n")
    try:
        returncode, errors = _run_verbose(
            [
                _bin("pg_restore"), "--verbose", "--single-transaction", "--exit-on-error", "--no-owner",
                "--use-list", listing.name, "--dbname", url, str(dump),
            ],
            r"pg_restore: (?:creating|processing data for|executing) (.+)", len(keep), on_step,
        )
    finally:
        os.unlink(listing.name)
    if returncode != 0:
        if result.created:
            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        raise BackupError(f"pg_restore failed, nothing was restored: {errors}")
    if result.replaced and name == cron_database:
        result.skipped.append(
            "note: pg_cron's scheduler stops when its database is dropped: restart PostgreSQL to resume the jobs"
        )
    return result


def row_counts(url: str) -> dict[str, int]:
    """Rows per table of the app schema (partitions counted once, through their parent)."""
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                """
                select c.relname from pg_class as c
                where c.relnamespace = 'app'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
                order by 1
                """
            )
        ]
        return {
            name: conn.execute(sql.SQL("select count(*) from app.{}").format(sql.Identifier(name))).fetchone()[0]
            for name in names
        }
