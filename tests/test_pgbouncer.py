"""PgBouncer in transaction mode (`invoke up --pgbouncer` starts it with these functions): the
build and its pg_cron jobs, transaction advisory locks, and PostgREST (prepared statements off,
no LISTEN) all work through it, and a session-level lock visibly does not (why the README sends
such clients directly)."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from chorus_db import config, ops_stack, stack
from chorus_db.build import build
from tests.support import ops

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bouncer():
    cluster = ops.new_cluster("chorus-pgbouncer-")
    run_dir = cluster.datadir.parent / "run"
    try:
        cluster.start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f"create database {ops.OPS_DB}")
            conn.execute(f"create role authenticator login password '{ops.AUTHENTICATOR_PASSWORD}'")
        port = stack.free_port()
        _, started = ops_stack.start_pgbouncer(
            run_dir, cluster, {"postgres": cluster.password, config.AUTHENTICATOR: ops.AUTHENTICATOR_PASSWORD}, port)
        assert started
        yield cluster, run_dir, port
    finally:
        ops_stack.stop_extras(run_dir)
        ops.remove(cluster)


def test_pgbouncer_listens_on_loopback_in_transaction_mode_with_a_private_userlist(bouncer):
    _cluster, run_dir, port = bouncer
    directory = ops_stack.pgbouncer_dir(run_dir)
    assert (directory / "userlist.txt").stat().st_mode & 0o077 == 0
    ini = (directory / "pgbouncer.ini").read_text()
    assert "listen_addr = 127.0.0.1" in ini and "pool_mode = transaction" in ini
    assert not stack.port_is_free(port)
    # A wrong password is refused by PgBouncer's SCRAM exchange.
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(ops_stack.pgbouncer_url(port, config.AUTHENTICATOR, "wrong", ops.OPS_DB), connect_timeout=5)


def test_the_build_and_its_pg_cron_jobs_go_through_pgbouncer(bouncer):
    cluster, _run_dir, port = bouncer
    url = ops_stack.pgbouncer_url(port, "postgres", cluster.password, ops.OPS_DB)
    result = build(url, log=lambda _m: None)
    assert result.applied_migrations and "chorus_website:retention" in result.jobs_scheduled
    assert build(url, log=lambda _m: None).applied_migrations == []  # nothing to do the second time
    with psycopg.connect(cluster.url(ops.OPS_DB), autocommit=True) as conn:
        jobs = {r[0] for r in conn.execute("select jobname from cron.job")}
        # pg_cron runs its jobs in background workers inside the server: no client connection.
        (workers,) = conn.execute("show cron.use_background_workers").fetchone()
    assert {"chorus_website:retention", "chorus_website:consent-chain-check"} <= jobs
    assert workers == "on"


def test_a_transaction_advisory_lock_through_pgbouncer_holds_against_other_clients(bouncer):
    cluster, _run_dir, port = bouncer
    url = ops_stack.pgbouncer_url(port, "postgres", cluster.password, ops.OPS_DB)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with psycopg.connect(url) as conn:
            conn.execute("select pg_advisory_xact_lock(hashtext('chorus_db.build'))")
            held.set()
            release.wait(10)
            conn.rollback()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with psycopg.connect(url, autocommit=True) as other:
            assert other.execute("select pg_try_advisory_xact_lock(hashtext('chorus_db.build'))").fetchone()[0] is False
    finally:
        release.set()
        thread.join()
    with psycopg.connect(url, autocommit=True) as other:
        assert other.execute("select pg_try_advisory_xact_lock(hashtext('chorus_db.build'))").fetchone()[0] is True


def test_session_state_does_not_survive_a_transaction_through_pgbouncer(bouncer):
    """Why a client needing SET, LISTEN or session locks connects directly: with more clients than
    server connections, the next transaction of a client lands on another server connection."""
    cluster, _run_dir, port = bouncer
    url = ops_stack.pgbouncer_url(port, "postgres", cluster.password, ops.OPS_DB)
    clients = [psycopg.connect(url, autocommit=True) for _ in range(25)]  # more than default_pool_size
    try:
        pids = set()
        for _ in range(3):
            for conn in clients:
                pids.add(conn.execute("select pg_backend_pid()").fetchone()[0])
        assert len(pids) <= int(ops_stack.PGBOUNCER_POOL["default_pool_size"])
    finally:
        for conn in clients:
            conn.close()


def test_postgrest_works_through_pgbouncer_with_prepared_statements_off_and_no_listen(bouncer):
    cluster, run_dir, port = bouncer
    postgrest_bin = stack.find_postgrest()
    if postgrest_bin is None:
        pytest.fail("PostgREST not found: set POSTGREST_BIN (CI unpacks the vendored copy)")
    build(cluster.url(ops.OPS_DB), log=lambda _m: None)
    with psycopg.connect(cluster.url(ops.OPS_DB), autocommit=True) as conn:
        conn.execute("update app.rate_limit_rules set max_requests = 1000000")
    cfg = stack.StackConfig(
        run_dir=run_dir / "postgrest",
        database_url=ops_stack.pgbouncer_url(port, config.AUTHENTICATOR, ops.AUTHENTICATOR_PASSWORD, ops.OPS_DB),
        api_port=stack.free_port(), jwt_secret="j" * 48, postgrest_bin=postgrest_bin,
        postgrest_extra_env=dict(ops_stack.PGBOUNCER_POSTGREST_ENV),
    )
    try:
        stack.start_postgrest(cfg)
        deadline = time.monotonic() + 30
        while ops_stack.unix_http(cfg.postgrest_socket, "/rpc/check_leads_health")[0] != 200:
            assert time.monotonic() < deadline, stack.postgrest_service(cfg.run_dir).log_tail()
            time.sleep(0.1)
        for n in range(30):  # more requests than server connections: each may land on another
            status, body = ops_stack.unix_http(
                cfg.postgrest_socket, "/rpc/submit_lead", method="POST", body=json.dumps(ops.lead(f"pooled-{n}@example.com")).encode(),
                headers={"Content-Type": "application/json", "X-Real-IP": f"10.5.0.{n + 1}"},
            )
            assert status == 201, body
        with psycopg.connect(cluster.url(ops.OPS_DB), autocommit=True) as conn:
            assert conn.execute("select count(*) from app.leads where email like 'pooled-%'").fetchone()[0] == 30
    finally:
        stack.stop_all(cfg.run_dir)
