"""PgBouncer in transaction mode (`invoke up --pgbouncer`): the build, pg_cron's jobs, advisory
locks and PostgREST (prepared statements off, no LISTEN) all work through it, and the compose
profile's pgbouncer.ini has the same pool settings as the local one."""

from __future__ import annotations

import configparser
import threading
import time

import psycopg
import pytest
import requests

from chorus_db import config, ops_stack, stack
from chorus_db.build import build
from tests.support import ops

pytestmark = pytest.mark.slow


def _settings(text: str) -> dict[str, str]:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(text)
    return dict(parser["pgbouncer"])


def test_the_compose_pgbouncer_has_the_local_pool_settings():
    local = _settings(ops_stack.pgbouncer_ini(config.RUN_DIR, 5432, 6432))
    compose = _settings((config.DEPLOY_DIR / "pgbouncer" / "pgbouncer.ini").read_text())
    for key in ("pool_mode", "auth_type", "default_pool_size", "max_client_conn", "max_db_connections",
                "ignore_startup_parameters", "server_reset_query"):
        assert compose[key] == local[key], key
    assert local["pool_mode"] == "transaction" and local["listen_addr"] == "127.0.0.1"


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
        ops_stack.start_pgbouncer(run_dir, cluster, {"postgres": cluster.password,
                                                     config.AUTHENTICATOR: ops.AUTHENTICATOR_PASSWORD}, port)
        yield cluster, run_dir, port
    finally:
        stack.stop_all(run_dir)
        ops_stack.stop_extras(run_dir)
        ops.remove(cluster)


def test_the_build_and_its_pg_cron_jobs_go_through_pgbouncer(bouncer):
    cluster, _run_dir, port = bouncer
    url = ops_stack.pgbouncer_url(port, "postgres", cluster.password, ops.OPS_DB)
    result = build(url, log=lambda _m: None)
    assert result.applied_migrations and "chorus_website:retention" in result.jobs_scheduled
    assert build(url, log=lambda _m: None).applied_migrations == []  # nothing to do the second time
    with psycopg.connect(cluster.url(ops.OPS_DB), autocommit=True) as conn:
        jobs = {r[0] for r in conn.execute("select jobname from cron.job")}
    assert {"chorus_website:retention", "chorus_website:consent-chain-check"} <= jobs


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


def test_postgrest_works_through_pgbouncer_with_prepared_statements_off_and_no_listen(bouncer):
    cluster, run_dir, port = bouncer
    postgrest_bin = stack.find_postgrest()
    if postgrest_bin is None:
        pytest.fail("PostgREST not found: set POSTGREST_BIN (CI unpacks the vendored copy)")
    build(cluster.url(ops.OPS_DB), log=lambda _m: None)
    cfg = stack.StackConfig(
        run_dir=run_dir / "postgrest",
        database_url=ops_stack.pgbouncer_url(port, config.AUTHENTICATOR, ops.AUTHENTICATOR_PASSWORD, ops.OPS_DB),
        api_port=stack.free_port(), postgrest_port=stack.free_port(), postgrest_admin_port=stack.free_port(),
        jwt_secret="j" * 48, postgrest_bin=postgrest_bin,
        postgrest_extra_env={"PGRST_DB_PREPARED_STATEMENTS": "false", "PGRST_DB_CHANNEL_ENABLED": "false"},
    )
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        stack.start_postgrest(cfg)
        base = f"http://127.0.0.1:{cfg.postgrest_port}"
        deadline = time.monotonic() + 30
        while stack.http_status(f"http://127.0.0.1:{cfg.postgrest_admin_port}/ready") != 200:
            assert time.monotonic() < deadline, stack.postgrest_service(cfg.run_dir).log_tail()
            time.sleep(0.1)
        for n in range(30):  # more requests than pool connections: each transaction may land on another
            response = requests.post(f"{base}/rpc/submit_lead", json=ops.lead(f"pooled-{n}@example.com"),
                                     headers={"X-Real-IP": f"10.5.0.{n + 1}", "Prefer": "return=minimal"}, timeout=10)
            assert response.status_code == 201, response.text
        with psycopg.connect(cluster.url(ops.OPS_DB), autocommit=True) as conn:
            assert conn.execute("select count(*) from app.leads where email like 'pooled-%'").fetchone()[0] == 30
    finally:
        stack.stop_all(cfg.run_dir)
