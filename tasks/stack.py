"""`invoke up` and `invoke down`: the local stack (embedded PostgreSQL, PostgREST, nginx, the mail worker)."""

from __future__ import annotations

import os
import sys

from invoke import Exit

from ._helpers import echo, start_embedded, task, where


@task(
    help={
        "replica": "also a hot standby with its own PostgREST; nginx sends GETs of views there",
        "pgbouncer": "also PgBouncer (transaction pooling) in front of the cluster, for other services",
        "monitoring": "also Prometheus with the PostgreSQL, nginx and node exporters and mtail",
    }
)
def up(c, replica=False, pgbouncer=False, monitoring=False):
    """Start the local stack: embedded PostgreSQL, build, PostgREST, nginx, the mail worker; print the API URL."""
    from chorus_db import config, stack
    from chorus_db.build import build

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
        echo("DATABASE_URL is ignored: `invoke up` serves the embedded cluster")

    cluster = start_embedded("already running:")
    url = cluster.url()
    echo(f"building {where(url)}")
    build(url, log=lambda message: print(f"  {message}", flush=True))

    # The pages under /dashboard/ and /form/; the API works without them, so a failure here is
    # a warning, not a stop.
    from chorus_db.web import WebError, build as build_pages

    try:
        build_pages(log=lambda message: print(f"  {message}", flush=True))
    except WebError as exc:
        echo(f"warning: the pages are not built, /dashboard/ and /form/ will not work: {exc}", err=True)

    run_dir = config.RUN_DIR
    password = stack.secret(run_dir, "authenticator_password")
    stack.set_authenticator_password(url, password)
    cfg = stack.StackConfig(
        run_dir=run_dir,
        database_url=cluster.url(user=config.AUTHENTICATOR, password=password),
        api_port=config.API_PORT,
        live_relay_port=config.LIVE_RELAY_PORT,
        jwt_secret=stack.secret(run_dir, "jwt_secret", 48),
        postgrest_bin=postgrest_bin,
        nginx_bin=nginx_bin,
    )
    from chorus_db import ops_stack

    try:
        # Issue 16's optional parts: the read pool must be known before nginx is rendered.
        ops_stack.up_before_nginx(cfg, cluster, password, replica=replica, pgbouncer=pgbouncer, monitoring=monitoring)
        service, started = stack.start_postgrest(cfg)
        echo(
            ("started" if started else "already running:")
            + f" PostgREST {version} on {cfg.postgrest_socket} (nginx's workers only)"
        )
        service, started = stack.start_live_relay(cfg)
        echo(("started" if started else "already running:") + f" the live-metrics relay on 127.0.0.1:{cfg.live_relay_port}")
        service, started = stack.start_nginx(cfg)
        echo(("started" if started else "reloaded") + f" nginx on 127.0.0.1:{cfg.api_port}")
        stack.wait_until_ready(cfg)
        ops_stack.up_after_nginx(cfg, cluster, monitoring=monitoring)
        service, started = stack.start_mail_worker(run_dir, url)
        echo(
            ("started" if started else "already running:") + " the mail worker ("
            + ("SMTP_URL" if os.environ.get("SMTP_URL") else f"no SMTP_URL: messages go to {run_dir / 'mail'}") + ")"
        )
    except stack.StackError as exc:
        raise Exit(f"{str(exc).rstrip('.')}; the stack is half up: `invoke down` stops what started", code=1)
    echo(f"ready: GET {cfg.api_url}/leads/health answers 200; logs in {run_dir}")
    print(f"API: {cfg.api_url}")
    print(f"Pages: http://127.0.0.1:{cfg.api_port}/dashboard/ (with a reader key) and http://127.0.0.1:{cfg.api_port}/form/")


@task
def down(c):
    """Stop everything this checkout started (nginx, PostgREST, the embedded cluster, test and
    benchmark servers a killed run left behind), keeping the data."""
    from chorus_db import stack

    stopped = stack.stop_everything()
    for name in stopped:
        echo(f"stopped {name}")
    if not any(name.startswith("the embedded PostgreSQL cluster") for name in stopped):
        echo("the embedded PostgreSQL cluster was not running")
