"""Tasks of the local stack: `invoke up` (tasks.py's `down` stops it through chorus_db.stack)
and `invoke db.authenticator-password`, which the compose build step runs."""

from __future__ import annotations

import os
import sys

from invoke import Exit, task

from . import config


def _echo(message: str) -> None:
    print(f"» {message}", flush=True)


@task(
    help={
        "replica": "also a hot standby with its own PostgREST; nginx sends read-only GETs there",
        "pgbouncer": "also PgBouncer (transaction pooling) in front of the cluster, for other services",
        "monitoring": "also Prometheus with the PostgreSQL, nginx, node exporters and mtail",
    }
)
def up(c, replica=False, pgbouncer=False, monitoring=False):
    """Start the local stack: embedded PostgreSQL, build, PostgREST, nginx; print the API URL."""
    from .build import BuildError, build
    from .cluster import embedded
    from . import stack

    postgrest_bin = stack.find_postgrest()
    if postgrest_bin is None:
        raise Exit(stack.postgrest_missing_message(), code=1)
    nginx_bin = stack.find_nginx()
    if nginx_bin is None:
        raise Exit(stack.NGINX_MISSING, code=1)
    version = stack.postgrest_version(postgrest_bin)
    if not version.startswith(stack.POSTGREST_MAJOR_MINOR + "."):
        print(
            f"warning: {postgrest_bin} is PostgREST {version}; the project is tested with "
            f"{stack.POSTGREST_MAJOR_MINOR}.x (the container image is v12.2.3)",
            file=sys.stderr,
        )
    if os.environ.get("DATABASE_URL"):
        _echo("DATABASE_URL is ignored: `invoke up` serves the embedded cluster")

    cluster = embedded()
    if cluster.init():
        _echo(f"initialised a new cluster in {cluster.datadir}")
    started = cluster.start()
    _echo(("started" if started else "already running:") + f" PostgreSQL on 127.0.0.1:{cluster.port}")
    url = cluster.url()
    _echo(f"building {url.rsplit('@', 1)[-1]}")
    try:
        build(url, log=lambda message: print(f"  {message}", flush=True))
    except BuildError as exc:
        raise Exit(f"build failed, nothing was changed: {exc}", code=1)

    run_dir = config.RUN_DIR
    password = stack.secret(run_dir, "authenticator_password")
    stack.set_authenticator_password(url, password)
    cfg = stack.StackConfig(
        run_dir=run_dir,
        database_url=cluster.url(user=config.AUTHENTICATOR, password=password),
        api_port=config.API_PORT,
        postgrest_port=config.POSTGREST_PORT,
        postgrest_admin_port=config.POSTGREST_ADMIN_PORT,
        jwt_secret=stack.secret(run_dir, "jwt_secret", 48),
        postgrest_bin=postgrest_bin,
        nginx_bin=nginx_bin,
    )
    from . import tasks_ops

    try:
        tasks_ops.up_extras_before_nginx(cfg, cluster, password, replica=replica, pgbouncer=pgbouncer, monitoring=monitoring)
        service, started = stack.start_postgrest(cfg)
        _echo(
            ("started" if started else "already running:")
            + f" PostgREST {version} on 127.0.0.1:{cfg.postgrest_port} (admin /live /ready on :{cfg.postgrest_admin_port})"
        )
        service, started = stack.start_nginx(cfg)
        _echo(("started" if started else "reloaded") + f" nginx on 127.0.0.1:{cfg.api_port}")
        stack.wait_until_ready(cfg)
        tasks_ops.up_extras_after_nginx(cfg, cluster, monitoring=monitoring)
    except stack.StackError as exc:
        raise Exit(f"{exc}\nThe stack is half up: `invoke down` stops what started.", code=1)
    _echo(f"ready: GET {cfg.api_url}/leads/health answers 200; logs in {run_dir}")
    print(f"API: {cfg.api_url}")


@task(name="authenticator-password")
def authenticator_password(c):
    """Set the password of PostgREST's login role (authenticator) to $AUTHENTICATOR_PASSWORD on DATABASE_URL."""
    from .cluster import database_url
    from .stack import set_authenticator_password

    password = os.environ.get("AUTHENTICATOR_PASSWORD", "")
    if not password:
        raise Exit("set AUTHENTICATOR_PASSWORD to the password PostgREST logs in with", code=1)
    url = database_url()
    set_authenticator_password(url, password)
    _echo(f"set the password of role {config.AUTHENTICATOR} on {url.rsplit('@', 1)[-1]}")


def register(ns) -> None:
    ns.add_task(up)
    ns.collections["db"].add_task(authenticator_password)
