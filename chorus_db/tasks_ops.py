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


def register(ns: Collection) -> None:
    db = ns.collections["db"]
    db.add_task(promote)
    db.add_task(replica_status)
