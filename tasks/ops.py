"""Operations tasks (issue 16), added to the `db` collection: `db.replica` (the standby: create,
stop, state), `db.promote` (failover), `db.recover` (point-in-time recovery), `db.pitr.*`
(pgBackRest: enable, backup, info) and `db.monitor-password` (the exporter's login)."""

from __future__ import annotations

from invoke import Collection, Exit

from ._helpers import echo, task


# -- replica ---------------------------------------------------------------------------------
@task
def promote(c):
    """Failover: stop the primary if it still runs, promote the standby, print its CHORUS_PGDATA."""
    from chorus_db import replica
    from chorus_db.cluster import embedded

    standby = replica.replica_cluster()
    if not standby.initialized:
        raise Exit("there is no standby to promote: make one with `invoke db.replica --create`", code=1)
    primary = embedded()
    echo(f"promoting the standby in {standby.datadir} (127.0.0.1:{standby.port}); fencing the primary first")
    try:
        replica.promote(standby, old_primary=primary)
    except replica.ReplicaError as exc:
        raise Exit(str(exc), code=1)
    echo(f"the standby is the primary now: DATABASE_URL={standby.url()}")
    echo("point the stack at it: `CHORUS_PGDATA=<the directory below> invoke down` then `... invoke up`")
    print(f"CHORUS_PGDATA={standby.datadir}")


@task(name="replica", help={"create": "make the standby if there is none (pg_basebackup) and start it",
                             "stop": "stop the standby (`invoke down` does not)"})
def replica_status(c, create=False, stop=False):
    """The standby of the embedded cluster: create, stop, or show slot, streaming state and lag."""
    from chorus_db import replica
    from chorus_db.cluster import embedded

    standby = replica.replica_cluster()
    if stop:
        echo("stopped the standby" if standby.stop() else "the standby was not running")
        return
    primary = embedded()
    if create:
        primary.start()
        if not standby.initialized:
            replica.create_standby(primary, standby.datadir)
            echo(f"made a hot standby of 127.0.0.1:{primary.port} in {standby.datadir} (pg_basebackup, slot {replica.SLOT})")
        if standby.start():
            echo(f"started the standby on 127.0.0.1:{standby.port}")
    if not standby.running():
        raise Exit("no standby runs: make and start one with `invoke db.replica --create`", code=1)
    for slot, state, lag, held in replica.replication_status(primary.url("postgres")):
        print(f"slot {slot}: {state}, replay lag {lag if lag is not None else 0} s, WAL held back {held}")
    print(f"standby lag as the standby sees it: {replica.lag_seconds(standby.url()):.1f} s")


# -- point-in-time recovery (pgBackRest) ----------------------------------------------------
def _pitr_cluster():
    from chorus_db.cluster import embedded

    cluster = embedded()
    if not cluster.initialized:
        raise Exit("there is no embedded cluster yet: run `invoke db.up` (or `invoke up`) first", code=1)
    return cluster


@task(name="enable")
def pitr_enable(c):
    """Archive WAL with pgBackRest and create its stanza (restarts the embedded cluster once)."""
    from chorus_db import pitr

    cluster = _pitr_cluster()
    try:
        changed = pitr.enable(cluster)
    except pitr.PitrError as exc:
        raise Exit(str(exc), code=1)
    echo(("WAL archiving enabled" if changed else "WAL archiving was already enabled")
          + f"; pgBackRest config {pitr.config_file(cluster)}, stanza {pitr.STANZA}")


@task(name="backup", help={"type": "full (default), diff or incr"})
def pitr_backup(c, type="full"):
    """A pgBackRest base backup of the embedded cluster (enables archiving first if needed)."""
    from chorus_db import pitr

    cluster = _pitr_cluster()
    try:
        if pitr.enable(cluster):
            echo("enabled WAL archiving first (pgBackRest stanza created)")
        entry = pitr.backup(cluster, type)
    except pitr.PitrError as exc:
        raise Exit(str(exc), code=1)
    echo(f"{entry['type']} backup {entry['label']} done")


@task(name="info")
def pitr_info(c):
    """The pgBackRest backups and the archived WAL range: the moments recovery can reach."""
    from chorus_db import pitr

    cluster = _pitr_cluster()
    if not pitr.enabled(cluster):
        raise Exit("WAL archiving is not enabled: run `invoke db.pitr.enable`", code=1)
    try:
        stanza = pitr.info(cluster)
    except pitr.PitrError as exc:
        raise Exit(str(exc), code=1)
    from datetime import datetime, timezone

    for entry in stanza.get("backup", []):
        start = datetime.fromtimestamp(entry["timestamp"]["start"], timezone.utc)
        print(f"{entry['label']:40} {entry['type']:5} taken {start:%Y-%m-%d %H:%M:%S}Z")
    for archive in stanza.get("archive", []):
        print(f"WAL {archive.get('min')} .. {archive.get('max')}")


@task(
    name="recover",
    help={
        "to": "the moment to recover to, with its time zone (e.g. 2026-12-01T10:00:00Z)",
        "target": "a new data directory to recover into (the cluster keeps running); default: in place",
        "yes": "recover in place without asking (the current data directory is kept aside)",
    },
)
def recover(c, to, target="", yes=False):
    """Point-in-time recovery: the newest base backup before --to plus archived WAL up to it."""
    from datetime import datetime
    from pathlib import Path

    from chorus_db import pitr

    try:
        moment = datetime.fromisoformat(to.replace("Z", "+00:00"))
    except ValueError:
        raise Exit(f"--to must be an ISO 8601 time with its zone, e.g. 2026-12-01T10:00:00Z, not {to!r}", code=1)
    cluster = _pitr_cluster()
    if not target and not yes:
        answer = input(f"Stop the embedded cluster and recover {cluster.datadir} in place to {moment.isoformat()}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise Exit("nothing was changed", code=1)
    try:
        restored = pitr.recover(cluster, moment, target=Path(target).resolve() if target else None)
    except pitr.PitrError as exc:
        raise Exit(str(exc), code=1)
    echo(f"recovered to {moment.isoformat()} in {restored.datadir}, running on 127.0.0.1:{restored.port}")
    print(f"DATABASE_URL={restored.url()}")
    echo("next: `DATABASE_URL=… invoke gdpr.verify`, compare counts, re-apply erasures requested after that moment")


@task(name="monitor-password")
def monitor_password(c):
    """Set the password of the exporter's login (chorus_monitor) to $MONITOR_PASSWORD on DATABASE_URL."""
    from ._helpers import set_password_from_env

    set_password_from_env("chorus_monitor", "MONITOR_PASSWORD", "prometheus-postgres-exporter logs in with")


def register(ns: Collection) -> None:
    """Add these tasks to the db collection (db.promote, db.replica, db.recover, db.pitr.*)."""
    db = ns.collections["db"]
    db.add_task(promote)
    db.add_task(replica_status)
    db.add_task(recover)
    db.add_task(monitor_password)
    pitr_tasks = Collection("pitr")
    for t in (pitr_enable, pitr_backup, pitr_info):
        pitr_tasks.add_task(t)
    db.add_collection(pitr_tasks)
