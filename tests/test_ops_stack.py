"""`invoke up --replica --pgbouncer --monitoring` as an operator runs it, on a fresh embedded
cluster of its own: reads served by the replica's PostgREST (on its own socket), writes by the
primary's, PgBouncer taking logins in transaction mode, Prometheus scraping every job and the
product metrics arriving; a plain `invoke up` keeps all of it; then `invoke down`, which must
leave no process, port or socket directory of it behind. One stack for the module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest
import requests

from chorus_db import config, ops_stack, stack
from tests.test_stack import _processes_mentioning

pytestmark = pytest.mark.slow

PORTS = ("CHORUS_PG_PORT", "API_PORT", "LIVE_RELAY_PORT", "PGBOUNCER_PORT", "NGINX_STATUS_PORT", "PROMETHEUS_PORT",
         "POSTGRES_EXPORTER_PORT", "NGINX_EXPORTER_PORT", "NODE_EXPORTER_PORT", "MTAIL_PORT")


def _invoke(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=config.ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, input="")


def _prometheus(env: dict, expr: str, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while True:
        url = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


@pytest.fixture(scope="module")
def ops_up():
    if stack.find_postgrest() is None:
        pytest.fail("PostgREST not found: set POSTGREST_BIN (CI unpacks the vendored copy)")
    base = config.scratch_dir("ops-stack")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        CHORUS_PGDATA=str(base / "pgdata"),
        CHORUS_RUN_DIR=str(base / "run"),
        # Its own checkout id: `invoke down` stops what carries this id, never this session's
        # test cluster or HTTP stack.
        CHORUS_CHECKOUT_ID=f"ops-stack-{base.name[-8:]}",
        PROMETHEUS_SCRAPE_INTERVAL="1s",
        **{name: str(stack.free_port()) for name in PORTS},
    )
    try:
        up = _invoke(["up", "--replica", "--pgbouncer", "--monitoring"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        yield env, base, up
    finally:
        _invoke(["down"], env, timeout=90)
        shutil.rmtree(base, ignore_errors=True)


def _superuser(base: Path) -> str:
    return (base / "pgdata.chorus_superuser_password").read_text().strip()


def test_up_starts_every_piece_and_says_so(ops_up):
    env, base, up = ops_up
    for line in ("made a hot standby", "started the standby", "started the replica's PostgREST",
                 "nginx sends GETs of views to the replica's PostgREST", "started PgBouncer (transaction pooling)",
                 "started postgres_exporter", "started nginx_exporter", "started node_exporter", "started mtail",
                 "started prometheus"):
        assert line in up.stdout, line
    run_dir = Path(env["CHORUS_RUN_DIR"])
    replica_socket = stack.postgrest_socket_dir(ops_stack.replica_dir(run_dir)) / "postgrest.sock"
    assert f"server unix:{replica_socket} max_fails=1" in (run_dir / "nginx" / "api.conf").read_text()
    assert (run_dir / "monitor_password").stat().st_mode & 0o077 == 0


def test_reads_are_the_replicas_writes_the_primarys(ops_up):
    env, base, _up = ops_up
    api = f"http://127.0.0.1:{env['API_PORT']}/api"
    posted = requests.post(api + "/leads", json={"firstName": "A", "lastName": "B", "email": "ops@example.com",
                                                 "gdprConsent": True}, timeout=10)
    assert posted.status_code == 201, posted.text
    primary = f"postgresql://postgres:{_superuser(base)}@127.0.0.1:{env['CHORUS_PG_PORT']}/{config.DB_NAME}"
    with psycopg.connect(primary, autocommit=True) as conn:
        key = conn.execute("select app_logic.create_api_key('ops-stack', 'reader')").fetchone()[0]
    # The primary's PostgREST stops: writes fail, reads of views go on (the replica serves them).
    run_dir = Path(env["CHORUS_RUN_DIR"])
    assert stack.postgrest_service(run_dir).stop()
    deadline = time.monotonic() + 15
    while True:
        read = requests.get(api + "/leads", params={"select": "email"}, headers={"X-API-Key": key}, timeout=10)
        if read.status_code == 200 and read.json() == [{"email": "ops@example.com"}]:
            break
        assert time.monotonic() < deadline, read.text  # the standby replays the lead and the key
        time.sleep(0.2)
    assert requests.post(api + "/leads", json={"firstName": "A", "lastName": "B", "email": "x@example.com",
                                               "gdprConsent": True}, timeout=10).status_code == 503
    # A plain `up` starts the primary's PostgREST again and keeps every optional piece.
    again = _invoke(["up"], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "started PostgREST" in again.stdout and "already running: PgBouncer" not in again.stdout
    assert "started prometheus" not in again.stdout and "started the replica's PostgREST" not in again.stdout
    assert requests.get(api + "/leads/health", timeout=5).status_code == 200


def test_pgbouncer_takes_the_other_services_logins_in_transaction_mode(ops_up):
    env, base, _up = ops_up
    url = ops_stack.pgbouncer_url(int(env["PGBOUNCER_PORT"]), "postgres", _superuser(base))
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select count(*) from app.leads where email = 'ops@example.com'").fetchone()[0] == 1
        with conn.transaction():
            assert conn.execute("select pg_try_advisory_xact_lock(42)").fetchone()[0] is True
    password = (Path(env["CHORUS_RUN_DIR"]) / "authenticator_password").read_text().strip()
    with psycopg.connect(ops_stack.pgbouncer_url(int(env["PGBOUNCER_PORT"]), config.AUTHENTICATOR, password)) as conn:
        assert conn.execute("select current_user").fetchone()[0] == config.AUTHENTICATOR


def test_prometheus_scrapes_every_job_and_the_product_metrics(ops_up):
    env, _base, _up = ops_up
    # postgres, nginx, node, mtail, prometheus.
    assert _prometheus(env, "count(up == 1) == 5"), _prometheus(env, "up")
    assert _prometheus(env, 'chorus_rows_row_count{relation="leads"} >= 1')
    assert _prometheus(env, 'chorus_replication_lag_seconds{standby="chorus_replica"} < 30')
    assert _prometheus(env, 'chorus_http_responses_total{status="201",path="/api/leads"} >= 1')
    assert _prometheus(env, 'sum(chorus_connections_connections{application="postgrest"}) >= 1')


def test_down_stops_everything_it_started(ops_up):
    env, base, _up = ops_up
    run_dir = Path(env["CHORUS_RUN_DIR"])
    down = _invoke(["down"], env, timeout=90)
    assert down.returncode == 0, down.stdout + down.stderr
    for name in ("prometheus", "postgres_exporter", "mtail", "PgBouncer", "the replica's PostgREST",
                 "the standby PostgreSQL", "nginx", "PostgREST", "the embedded PostgreSQL cluster"):
        assert f"stopped {name}" in down.stdout, name
    assert _processes_mentioning(str(base)) == []
    for port in PORTS:
        assert stack.port_is_free(int(env[port])), f"{port} {env[port]} is still taken"
    for directory in (run_dir, ops_stack.replica_dir(run_dir)):
        assert not stack.outside_dir(directory).exists(), f"the socket directory of {directory} was left behind"
