"""Operations tasks (issue 16): the optional parts of `invoke up` (--replica, --pgbouncer,
--monitoring), `invoke db.promote`, `invoke db.replica`, and point-in-time recovery with
pgBackRest (`invoke db.pitr.*`)."""

from __future__ import annotations

from invoke import Collection, Exit, task

from . import config


def _echo(message: str) -> None:
    print(f"» {message}", flush=True)


# -- hooks of `invoke up`, `invoke db.build` ---------------------------------------------------
def up_extras_before_nginx(cfg, cluster, password: str, replica: bool, pgbouncer: bool, monitoring: bool) -> None:
    """Start the replica and PgBouncer, and prepare nginx for monitoring. What runs already
    stays in the stack, so a later plain `invoke up` keeps the read pool and the status page."""
    from . import ops_stack, stack
    from .replica import ReplicaError, replica_cluster

    ports = ops_stack.OpsPorts()
    if replica or ops_stack.replica_postgrest_service(cfg.run_dir).running():
        try:
            rcfg, done = ops_stack.start_replica(cfg, cluster, replica_cluster(), password, ports)
        except ReplicaError as exc:
            raise stack.StackError(str(exc))
        for line in done:
            _echo(line)
        ops_stack.reload_schema(cfg.run_dir, cluster.url(), replica_cluster().url())
        cfg.postgrest_read_port = rcfg.postgrest_port
        _echo(f"nginx sends read-only GETs to the replica's PostgREST (127.0.0.1:{rcfg.postgrest_port}), the primary as backup")
    if pgbouncer:
        _, started = ops_stack.start_pgbouncer(
            cfg.run_dir, cluster, {"postgres": cluster.password, config.AUTHENTICATOR: password}, ports.pgbouncer
        )
        _echo(("started" if started else "already running:") + f" PgBouncer (transaction pooling) on 127.0.0.1:{ports.pgbouncer}")
    if monitoring or any(s.running() for s in ops_stack.monitoring_services(cfg.run_dir)):
        ops_stack.set_monitor_password(cluster.url(), stack.secret(cfg.run_dir, "monitor_password"))
        (cfg.run_dir / "monitoring").mkdir(parents=True, exist_ok=True)
        cfg.nginx_http_extra += "\n" + ops_stack.nginx_monitoring_directives(cfg.run_dir, ports.nginx_status)


def up_extras_after_nginx(cfg, cluster, monitoring: bool) -> None:
    from . import ops_stack, stack

    if not (monitoring or any(s.running() for s in ops_stack.monitoring_services(cfg.run_dir))):
        return
    ports = ops_stack.OpsPorts()
    started = ops_stack.start_monitoring(
        cfg.run_dir, cluster, stack.secret(cfg.run_dir, "monitor_password"), cfg.postgrest_admin_port,
        ops_stack.OpsPorts().replica_postgrest_admin if cfg.postgrest_read_port else None, ports,
    )
    for line in started:
        _echo(f"started {line}")
    _echo(f"Prometheus: http://127.0.0.1:{ports.prometheus}/ (rules: deploy/monitoring/alerts.yml)")


def after_build(url: str) -> None:
    """A PostgREST that cannot LISTEN (the replica's) reloads its schema cache after a build."""
    from . import ops_stack
    from .replica import replica_cluster

    standby = replica_cluster()
    if standby.running() and ops_stack.reload_schema(config.RUN_DIR, url, standby.url()):
        _echo("reloaded the schema cache of the replica's PostgREST")


# -- replica ---------------------------------------------------------------------------------
@task
def promote(c):
    """Failover: stop the primary if it still runs, promote the standby, point PostgREST at it."""
    from . import ops_stack, replica, stack
    from .cluster import embedded

    standby = replica.replica_cluster()
    if not standby.initialized:
        raise Exit("there is no standby to promote: start one with `invoke up --replica`", code=1)
    primary = embedded()
    _echo(f"promoting the standby in {standby.datadir} (127.0.0.1:{standby.port}); fencing the primary first")
    try:
        replica.promote(standby, old_primary=primary)
    except replica.ReplicaError as exc:
        raise Exit(str(exc), code=1)
    _echo(f"the standby is the primary now: DATABASE_URL={standby.url()}")
    service = stack.postgrest_service(config.RUN_DIR)
    if service.running() or ops_stack.replica_postgrest_service(config.RUN_DIR).running():
        _echo("the replica's PostgREST keeps serving reads from the promoted server; writes need a restart of "
              "the primary's PostgREST against it: set CHORUS_PGDATA to its directory and run `invoke down && invoke up`")
    print(f"CHORUS_PGDATA={standby.datadir}")


@task(name="replica")
def replica_status(c):
    """The standby's state: replication slot, streaming state, replay lag, WAL held back."""
    from . import replica
    from .cluster import embedded

    standby = replica.replica_cluster()
    if not standby.running():
        raise Exit("no standby runs: start one with `invoke up --replica`", code=1)
    for slot, state, lag, held in replica.replication_status(embedded().url("postgres")):
        print(f"slot {slot}: {state}, replay lag {lag if lag is not None else 0} s, WAL held back {held}")
    print(f"standby lag as its PostgREST sees it: {replica.lag_seconds(standby.url()):.1f} s")


# -- point-in-time recovery (pgBackRest) ----------------------------------------------------
def _pitr_cluster():
    from .cluster import embedded

    cluster = embedded()
    if not cluster.initialized:
        raise Exit("there is no embedded cluster yet: run `invoke db.up` (or `invoke up`) first", code=1)
    return cluster


@task(name="enable")
def pitr_enable(c):
    """Archive WAL with pgBackRest and create its stanza (restarts the embedded cluster once)."""
    from . import pitr

    cluster = _pitr_cluster()
    try:
        changed = pitr.enable(cluster)
    except pitr.PitrError as exc:
        raise Exit(str(exc), code=1)
    _echo(("WAL archiving enabled" if changed else "WAL archiving was already enabled")
          + f"; pgBackRest config {pitr.config_file(cluster)}, stanza {pitr.STANZA}")


@task(name="backup", help={"type": "full (default), diff or incr"})
def pitr_backup(c, type="full"):
    """A pgBackRest base backup of the embedded cluster (enables archiving first if needed)."""
    from . import pitr

    cluster = _pitr_cluster()
    try:
        if pitr.enable(cluster):
            _echo("enabled WAL archiving first (pgBackRest stanza created)")
        entry = pitr.backup(cluster, type)
    except pitr.PitrError as exc:
        raise Exit(str(exc), code=1)
    _echo(f"{entry['type']} backup {entry['label']} done")


@task(name="info")
def pitr_info(c):
    """The pgBackRest backups and the archived WAL range: the moments recovery can reach."""
    from . import pitr

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

    from . import pitr

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
    _echo(f"recovered to {moment.isoformat()} in {restored.datadir}, running on 127.0.0.1:{restored.port}")
    print(f"DATABASE_URL={restored.url()}")
    _echo("next: `DATABASE_URL=… invoke gdpr.verify`, compare counts, re-apply erasures requested after that moment")


def register(ns: Collection) -> None:
    db = ns.collections["db"]
    db.add_task(promote)
    db.add_task(replica_status)
    db.add_task(recover)
    pitr_tasks = Collection("pitr")
    for t in (pitr_enable, pitr_backup, pitr_info):
        pitr_tasks.add_task(t)
    db.add_collection(pitr_tasks)
