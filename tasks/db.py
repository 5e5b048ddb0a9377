"""`invoke db.*`: the embedded cluster, the build, its state, psql, backups and retention."""

from __future__ import annotations

from pathlib import Path

from invoke import Exit

from ._helpers import database_url, echo, progress, set_password_from_env, start_embedded, task, where


@task
def up(c):
    """Start the embedded PostgreSQL cluster (pg_cron preloaded) and print DATABASE_URL."""
    cluster = start_embedded()
    print(f"DATABASE_URL={cluster.url()}")


@task(help={"force": "re-apply db/functions and db/policies even when unchanged"})
def build(c, force=False):
    """Build or upgrade the database at DATABASE_URL (default: the embedded cluster). Atomic, idempotent."""
    from chorus_db.build import BuildError
    from chorus_db.build import build as run_build

    url = database_url()
    echo(f"building {where(url)}")
    try:
        result = run_build(url, force=force)
    except BuildError as exc:
        raise Exit(f"build failed, nothing was changed: {exc}", code=1)
    if result.jobs_scheduled:
        echo("pg_cron jobs: " + ", ".join(result.jobs_scheduled))
    from chorus_db import ops_stack

    ops_stack.after_build(url)  # the replica's PostgREST cannot LISTEN for the reload


@task
def status(c):
    """Show applied and pending schema files, declarative state, drift and pg_cron jobs; exit 1 on drift."""
    from chorus_db.build import status as build_status
    from chorus_db.drift import drift

    url = database_url()
    st = build_status(url)
    print("applied schema files:")
    for version, at in st.applied:
        print(f"  {version}  {at}")
    print("pending schema files: " + (", ".join(st.pending) or "none"))
    print("declarative source (functions, policies): " + ("in sync" if st.declarative_in_sync else "CHANGED since last build"))
    problems = list(st.changed)
    if st.jobs_placement == "local":
        print("pg_cron: installed in this database, which runs the jobs")
    elif st.jobs_placement == "remote":
        print(f"pg_cron: runs in database {st.jobs_cron_database} of this server; the jobs are scheduled "
              "there for this database (cron.schedule_in_database)")
    elif st.jobs_placement == "none":
        print(f"pg_cron: NO JOB RUNS for this database: {st.jobs_detail}; retention, rate-limit counter purges "
              "and new page-view partitions have stopped (partitions exist 3 months ahead of the last run)")
        problems.append("no pg_cron job runs")
    if st.jobs:
        print("pg_cron jobs:")
        for name, schedule, active, last_run, last_status in st.jobs:
            print(f"  {name}  '{schedule}'  active={active}  last run={last_run or 'never'} {last_status or ''}")
    diff = drift(url)
    if diff:
        print("drift: the live schema differs from a fresh build of the source:")
        print(diff)
        problems.append("schema drift")
    else:
        print("drift: none (live schema equals a fresh build of the source)")
    if st.changed:
        print("applied files changed since they were applied: " + ", ".join(st.changed))
    if "no pg_cron job runs" in problems and len(problems) == 1:
        raise Exit("no pg_cron job runs for this database: install pg_cron in the server's cron.database_name "
                   "(or set it to this database), then run `invoke db.build --force`", code=1)
    if problems:
        raise Exit("the database does not match the source: run `invoke db.build` or investigate the drift above", code=1)


@task
def psql(c):
    """Open psql on the database."""
    c.run(f"psql '{database_url()}'", pty=True)


@task(name="authenticator-password")
def authenticator_password(c):
    """Set the password of PostgREST's login role (authenticator) to $AUTHENTICATOR_PASSWORD on DATABASE_URL."""
    from chorus_db import config

    set_password_from_env(config.AUTHENTICATOR, "AUTHENTICATOR_PASSWORD", "PostgREST logs in with")


# -- backups ---------------------------------------------------------------------------------
@task(help={"out": "the dump file (default .run/backups/<db>-<UTC time>.dump)"})
def backup(c, out=None):
    """Write a pg_dump custom-format backup and verify it (readable, every app table in it)."""
    from chorus_db.backup import BackupError
    from chorus_db.backup import backup as make_backup

    url = database_url()
    echo(f"pg_dump --format=custom {where(url)}")
    try:
        with progress("tables dumped") as step:
            result = make_backup(url, Path(out) if out else None, on_step=step)
    except BackupError as exc:
        raise Exit(f"backup failed: {exc}", code=1)
    print(f"{result.path}  {result.size / 1024:.0f} KiB, {result.toc_entries} entries, {result.tables} app tables verified")
    print("the dump holds personal data and the pseudonym pepper: store it encrypted, like the database")


@task(
    help={
        "file": "a dump written by db.backup",
        "target": "database name on the DATABASE_URL server, or a full URL",
        "yes": "replace the target database if it exists and is not empty",
    }
)
def restore(c, file, target, yes=False):
    """Restore a db.backup dump into a database of your choosing (refuses a non-empty one unless --yes)."""
    from chorus_db.backup import BackupError, TargetNotEmpty, target_url
    from chorus_db.backup import restore as do_restore

    url = target_url(database_url(), target)
    echo(f"pg_restore {file} into {where(url)}")
    try:
        with progress("archive entries restored") as step:
            result = do_restore(Path(file), url, replace=yes, on_step=step)
    except TargetNotEmpty as exc:
        raise Exit(str(exc), code=1)
    except BackupError as exc:
        raise Exit(f"restore failed: {exc}", code=1)
    for line in result.skipped:
        print(f"  left out: {line}")
    print(("replaced" if result.replaced else "created" if result.created else "restored into") + f" {where(url)}")
    print("check it: DATABASE_URL=... invoke gdpr.verify")


# -- retention -------------------------------------------------------------------------------
@task(help={"apply": "apply the rules now (what the daily pg_cron job does)", "kind": "only this kind (with --apply)"})
def retention(c, apply=False, kind=None):
    """Show the retention rules and the latest runs; --apply runs them now, in committed batches."""
    from chorus_db.gdpr import apply_retention, retention_rules, retention_runs

    url = database_url()
    if apply:
        echo("call app_logic.run_retention(" + (repr(kind) if kind else "") + ")")
        batches = 0
        with progress("retention batches") as step:

            def batch(line: str) -> None:
                nonlocal batches
                batches += 1
                step(batches, None, line.removeprefix("retention: "))

            apply_retention(url, kind, on_batch=batch)
    print("retention rules:")
    for rule_kind, keep_for, enabled, condition in retention_rules(url):
        print(f"  {rule_kind:26} keep {keep_for:12} {'enabled' if enabled else 'DISABLED'}  {condition}")
    print("latest runs:")
    for started, run_kind, rows, partitions, duration, complete, error in retention_runs(url):
        extra = f" dropped {', '.join(partitions)}" if partitions else ""
        extra += "" if complete else " (batch limit: more is due)"
        extra += f" ERROR {error}" if error else ""
        print(f"  {str(started)[:19]}  {run_kind:26} {rows:>9} row(s) in {duration}{extra}")


@task(
    name="rotate-key",
    help={
        "new_key": "first append a new key version to the key file (the server's, when it is on this machine)",
        "key_file": "the key file to add the version to (default: the one the server names; CHORUS_FIELD_KEY_FILE)",
        "batch": "rows per committed batch (default 1000)",
    },
)
def rotate_key(c, new_key=False, key_file=None, batch=1000):
    """Re-encrypt the encrypted fields under the newest field key, in committed batches; resumable."""
    from chorus_db import fieldkeys

    url = database_url()
    echo(f"re-encrypting the sealed fields of {where(url)} in batches of {batch}")
    path = Path(key_file) if key_file else fieldkeys.key_file_from_env()
    try:
        done = fieldkeys.rotate(url, int(batch), log=lambda line: echo(line), new_key=new_key, key_file=path)
    except KeyboardInterrupt:
        raise Exit("interrupted: every committed batch stays re-encrypted; run invoke db.rotate-key again to go on", code=1)
    echo("re-encrypted " + ", ".join(f"app.{t}: {n:,} rows" for t, n in done.items()))
