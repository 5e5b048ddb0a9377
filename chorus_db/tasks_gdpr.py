"""Tasks of the data protection part: `gdpr.verify`, `gdpr.export`, `gdpr.erase`, and
`db.backup`, `db.restore`, `db.retention` added to the existing db collection.

tasks.py calls register(ns) when this module is present. The logic lives in chorus_db.gdpr
and chorus_db.backup; the tasks print and ask.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from invoke import Collection, Exit, task


def _echo(message: str) -> None:
    print(f"» {message}", flush=True)


def _url() -> str:
    from chorus_db.cluster import database_url

    return database_url()


def _where(url: str) -> str:
    """host:port/dbname of a URL or conninfo string, never its password."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def _confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        return False
    return answer.strip().lower() in ("y", "yes")


# -- gdpr ------------------------------------------------------------------------------------
@task(help={"anchor": "also check the chains against this anchor file (invoke gdpr.anchor)"})
def verify(c, anchor=None):
    """Walk the consent audit's hash chains; name the first broken row (exit 1) or count what verified."""
    from chorus_db.gdpr import verify_chain

    url = _url()
    _echo(f"verifying the consent audit of {_where(url)}")
    report = verify_chain(url)
    print(report.describe())
    if not report.intact:
        raise Exit(
            "the consent audit was altered behind its back: keep this database as evidence and "
            "compare the named subject's chain with the latest backup",
            code=1,
        )
    if anchor:
        from chorus_db.anchor import AnchorError, anchor_key, verify_against

        _echo(f"comparing the chains' heads with the anchor {anchor}")
        try:
            checked = verify_against(url, Path(anchor), anchor_key())
        except AnchorError as exc:
            raise Exit(str(exc), code=1)
        print(checked.describe())
        if not checked.intact:
            raise Exit(
                "consent records were deleted or rewritten since the anchor was taken: keep this database as "
                "evidence and restore the named chains from the backup taken nearest after the anchor",
                code=1,
            )


@task(name="anchor", help={"out": "the anchor file, or a directory for consent-anchor-<db>-<time>.json (default .run/anchors/)"})
def anchor_task(c, out=None):
    """Write the heads of the consent audit's chains, signed with CHORUS_ANCHOR_KEY, to a file outside the database."""
    from chorus_db import config
    from chorus_db.anchor import AnchorError, anchor_key, write_anchor

    url = _url()
    try:
        key = anchor_key()
        target = Path(out) if out else config.RUN_DIR / "anchors"
        if not out:
            target.mkdir(parents=True, exist_ok=True)
        document = write_anchor(url, target, key)
    except AnchorError as exc:
        raise Exit(str(exc), code=1)
    except OSError as exc:
        raise Exit(f"cannot write the anchor: {exc}", code=1)
    _echo(f"anchored {document['subjects']} chain(s) of {_where(url)}, root {document['root'][:16]}…")
    print(document["path"])
    print("keep it where the database's operators cannot change it (see README, Anchoring the consent audit)")


@task(help={"email": "the person's email address (any letter case)", "out": "write the JSON here instead of stdout"})
def export(c, email, out=None):
    """Print everything held about one person as one JSON document (like POST /api/gdpr/export)."""
    from chorus_db.gdpr import InvalidRequest
    from chorus_db.gdpr import export as export_data

    url = _url()
    # On stderr: stdout is the document alone, ready for a file or jq.
    print(f"» exporting the personal data of {email} from {_where(url)}", file=sys.stderr, flush=True)
    try:
        document = export_data(url, email)
    except InvalidRequest as exc:
        raise Exit(f"{exc}", code=1)
    if document is None:
        raise Exit(f"no personal data is held for {email}", code=1)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out:
        Path(out).write_text(text + "\n")
        Path(out).chmod(0o600)
        _echo(f"wrote {out}")
    else:
        print(text)


@task(help={"email": "the person's email address (any letter case)", "yes": "do not ask for confirmation"})
def erase(c, email, yes=False):
    """Erase one person's personal data everywhere (like POST /api/gdpr/erase); asks unless --yes."""
    from chorus_db.gdpr import InvalidRequest, held_summary
    from chorus_db.gdpr import erase as erase_data
    from chorus_db.gdpr import export as export_data

    url = _url()
    try:
        held = held_summary(export_data(url, email))
    except InvalidRequest as exc:
        raise Exit(f"{exc}", code=1)
    found = {k: v for k, v in held.items() if v}
    if found:
        print(f"held about {email}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
        print("the consent audit rows stay (pseudonymous) and gain an erasure record")
    else:
        print(f"nothing is held about {email}; the request will still be recorded in the consent audit")
    if not yes and not _confirm(f"erase the personal data of {email} from {_where(url)}?"):
        raise Exit("nothing was erased", code=1)
    removed = erase_data(url, email)
    _echo("erased: " + ", ".join(f"{k} {v}" for k, v in removed.items()))


# -- db: backups -----------------------------------------------------------------------------
@task(help={"out": "the dump file (default .run/backups/<db>-<UTC time>.dump)"})
def backup(c, out=None):
    """Write a pg_dump custom-format backup and verify it (readable, every app table in it)."""
    from chorus_db.backup import BackupError
    from chorus_db.backup import backup as make_backup

    url = _url()
    _echo(f"pg_dump --format=custom {_where(url)}")
    try:
        result = make_backup(url, Path(out) if out else None)
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

    url = target_url(_url(), target)
    _echo(f"pg_restore {file} into {_where(url)}")
    try:
        result = do_restore(Path(file), url, replace=yes)
    except TargetNotEmpty as exc:
        raise Exit(str(exc), code=1)
    except BackupError as exc:
        raise Exit(f"restore failed: {exc}", code=1)
    for line in result.skipped:
        print(f"  left out: {line}")
    print(("replaced" if result.replaced else "created" if result.created else "restored into") + f" {_where(url)}")
    print("check it: DATABASE_URL=... invoke gdpr.verify")


# -- db: retention ---------------------------------------------------------------------------
@task(help={"apply": "apply the rules now (what the daily pg_cron job does)", "kind": "only this kind (with --apply)"})
def retention(c, apply=False, kind=None):
    """Show the retention rules and the latest runs; --apply runs them now, in committed batches."""
    from chorus_db.gdpr import apply_retention, retention_rules, retention_runs

    url = _url()
    if apply:
        _echo("call app_logic.run_retention(" + (repr(kind) if kind else "") + ")")
        apply_retention(url, kind)
    print("retention rules:")
    for rule_kind, keep_for, enabled, condition in retention_rules(url):
        print(f"  {rule_kind:26} keep {keep_for:12} {'enabled' if enabled else 'DISABLED'}  {condition}")
    print("latest runs:")
    for started, run_kind, rows, partitions, duration, complete, error in retention_runs(url):
        extra = f" dropped {', '.join(partitions)}" if partitions else ""
        extra += "" if complete else " (batch limit: more is due)"
        extra += f" ERROR {error}" if error else ""
        print(f"  {str(started)[:19]}  {run_kind:26} {rows:>9} row(s) in {duration}{extra}")


def register(ns: Collection) -> None:
    gdpr = Collection("gdpr")
    gdpr.add_task(verify)
    gdpr.add_task(anchor_task)
    gdpr.add_task(export)
    gdpr.add_task(erase)
    ns.add_collection(gdpr)

    db = ns.collections["db"]
    db.add_task(backup)
    db.add_task(restore)
    db.add_task(retention)
