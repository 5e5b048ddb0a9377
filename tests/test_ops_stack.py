"""`invoke up --replica --pgbouncer --monitoring` as an operator runs it, then the operations
tasks on that stack (db.replica, db.pitr.backup, db.recover, db.promote) and `invoke down`,
which must leave no process and no port of it behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
import requests

from chorus_db import config, stack

pytestmark = pytest.mark.slow

PORTS = (
    "CHORUS_PG_PORT", "API_PORT", "POSTGREST_PORT", "POSTGREST_ADMIN_PORT", "REPLICA_POSTGREST_PORT",
    "REPLICA_POSTGREST_ADMIN_PORT", "PGBOUNCER_PORT", "NGINX_STATUS_PORT", "PROMETHEUS_PORT",
    "POSTGRES_EXPORTER_PORT", "NGINX_EXPORTER_PORT", "NODE_EXPORTER_PORT", "MTAIL_PORT",
)


def _invoke(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=config.ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, input="")


def _ours(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (text in cmdline or text in environ):
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.fixture
def ops_env():
    if stack.find_postgrest() is None:
        pytest.fail("PostgREST not found: set POSTGREST_BIN (CI unpacks the vendored copy)")
    base = config.scratch_dir("ops-stack")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        CHORUS_PGDATA=str(base / "pgdata"),
        CHORUS_RUN_DIR=str(base / "run"),
        CHORUS_CHECKOUT_ID=f"ops-stack-{base.name[-8:]}",
        PROMETHEUS_SCRAPE_INTERVAL="1s",
        **{name: str(stack.free_port()) for name in PORTS},
    )
    yield env, base
    _invoke(["down"], env, timeout=90)
    shutil.rmtree(base, ignore_errors=True)


def _prometheus(env: dict, expr: str, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while True:
        url = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def test_up_with_replica_pgbouncer_and_monitoring_then_the_operations_tasks_then_down(ops_env):
    env, base = ops_env
    up = _invoke(["up", "--replica", "--pgbouncer", "--monitoring"], env)
    assert up.returncode == 0, up.stdout + up.stderr
    for line in ("made a hot standby", "started the replica's PostgREST", "started PgBouncer (transaction pooling)",
                 "started postgres_exporter", "started nginx_exporter", "started mtail", "started prometheus"):
        assert line in up.stdout, line
    api = f"http://127.0.0.1:{env['API_PORT']}/api"
    assert requests.get(api + "/leads/health", timeout=5).status_code == 200
    assert requests.post(api + "/leads", json={"firstName": "A", "lastName": "B", "email": "ops@example.com",
                                               "gdprConsent": True}, timeout=10).status_code == 201

    # PgBouncer takes the other services' logins, in transaction mode.
    password = (base / "pgdata.chorus_superuser_password").read_text().strip()
    with psycopg.connect(f"postgresql://postgres:{password}@127.0.0.1:{env['PGBOUNCER_PORT']}/{config.DB_NAME}",
                         autocommit=True) as conn:
        assert conn.execute("select count(*) from app.leads").fetchone()[0] == 1
        # A transaction-scoped advisory lock works through a transaction pooler.
        with conn.transaction():
            assert conn.execute("select pg_try_advisory_xact_lock(42)").fetchone()[0] is True

    # Prometheus scrapes every job; the product metrics arrive.
    # postgrest (the primary's and the replica's), postgres, nginx, node, mtail, prometheus.
    assert _prometheus(env, "count(up == 1) == 7"), _prometheus(env, "up")
    assert _prometheus(env, 'chorus_rows_row_count{relation="leads"} == 1')
    assert _prometheus(env, 'chorus_replication_lag_seconds{standby="chorus_replica"} < 30')

    status = _invoke(["db.replica"], env)
    assert status.returncode == 0 and "slot chorus_replica: streaming" in status.stdout, status.stdout + status.stderr

    backup = _invoke(["db.pitr.backup"], env)
    assert backup.returncode == 0 and "full backup" in backup.stdout, backup.stdout + backup.stderr
    # pgBackRest keeps a backup's stop time in whole seconds: the target lies in a later second.
    time.sleep(1.05 - time.time() % 1)
    moment = datetime.now(timezone.utc).isoformat()
    assert requests.post(api + "/leads", json={"firstName": "A", "lastName": "B", "email": "later@example.com",
                                               "gdprConsent": True}, timeout=10).status_code == 201
    recovered = base / "recovered"
    recover = _invoke(["db.recover", "--to", moment, "--target", str(recovered)], env)
    assert recover.returncode == 0 and f"recovered to" in recover.stdout, recover.stdout + recover.stderr
    recovered_url = next(line.split("=", 1)[1] for line in recover.stdout.splitlines() if line.startswith("DATABASE_URL="))
    with psycopg.connect(recovered_url, autocommit=True) as conn:
        assert conn.execute("select email from app.leads").fetchall() == [("ops@example.com",)]
    subprocess.run(["runuser", "-u", "chorusdb", "--", str(config.pg_bindir() / "pg_ctl"), "stop", "-D", str(recovered)]
                   if os.geteuid() == 0 else [str(config.pg_bindir() / "pg_ctl"), "stop", "-D", str(recovered)],
                   capture_output=True)

    promote = _invoke(["db.promote"], env)
    assert promote.returncode == 0 and "the standby is the primary now" in promote.stdout, promote.stdout + promote.stderr
    assert f"CHORUS_PGDATA={base / 'pgdata.replica'}" in promote.stdout

    down = _invoke(["down"], env, timeout=90)
    assert down.returncode == 0, down.stdout + down.stderr
    for name in ("prometheus", "PgBouncer", "the replica's PostgREST", "the standby PostgreSQL"):
        assert f"stopped {name}" in down.stdout, name
    assert _ours(str(base)) == []
    for port in PORTS:
        assert stack.port_is_free(int(env[port])), f"{port} {env[port]} is still taken"
