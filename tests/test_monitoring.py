"""Monitoring: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`, a firing case for every alert); the exporter's product queries run as
the monitoring role and read nothing else; the retention rules cover pg_cron's run log. Then
live (the functions `invoke up --monitoring` runs): Prometheus scraping
prometheus-postgres-exporter, the nginx exporter, node-exporter and mtail sees every product
metric, PostgREST still listens on no TCP port, and alert expressions fire when the thing they
watch is broken (consent chain, page-view partitions, standby, 5xx)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest
import requests
import yaml

from chorus_db import config, ops_stack, replica, stack
from tests.support import ops

MONITORING = config.DEPLOY_DIR / "monitoring"


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=MONITORING)


def test_the_alert_rules_pass_promtool_check_and_their_unit_tests():
    check = _promtool("check", "rules", "alerts.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 11 rules found" in check.stdout
    unit = _promtool("test", "rules", "alerts.test.yml")
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_every_alert_has_a_firing_case_in_the_unit_tests():
    alerts = {r["alert"] for g in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    cases = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    firing = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert alerts - firing == set()


def test_each_exporter_query_runs_as_the_monitoring_role_and_names_its_columns(db):
    queries = yaml.safe_load((MONITORING / "queries.yaml").read_text())
    db.execute("alter role chorus_monitor password 'monitor-test-only'")
    with psycopg.connect(
        f"host=127.0.0.1 port={db.info.port} dbname={db.info.dbname} user=chorus_monitor password=monitor-test-only",
        autocommit=True,
    ) as conn:
        for name, spec in queries.items():
            cursor = conn.execute(spec["query"])
            columns = [c.name for c in cursor.description]
            assert columns == [next(iter(m)) for m in spec["metrics"]], name
            cursor.fetchall()
        # Nothing else: the monitoring role reads no table.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from app.leads")


def test_the_retention_rules_cover_the_pg_cron_run_log(db):
    (keep,) = db.execute("select keep_for from app.retention_rules where kind = 'cron_job_run_details'").fetchone()
    assert keep.days == 30
    kinds = {r[0] for r in db.execute("select kind from app_logic.apply_retention('cron_job_run_details')")}
    assert kinds == {"cron_job_run_details"}


def test_the_local_prometheus_config_has_the_compose_jobs_and_passes_promtool(tmp_path):
    compose = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    local_text = ops_stack.prometheus_config(ops_stack.monitoring_ports(), "1s")
    local = yaml.safe_load(local_text)
    assert [j["job_name"] for j in local["scrape_configs"]] == [j["job_name"] for j in compose["scrape_configs"]]
    assert all(t.startswith("127.0.0.1:") for j in local["scrape_configs"] for c in j["static_configs"] for t in c["targets"])
    path = tmp_path / "prometheus.yml"
    path.write_text(local_text)
    check = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# -- live ------------------------------------------------------------------------------------
PRODUCT_METRICS = [
    "chorus_submissions_per_minute",
    "chorus_rate_limit_clients_limited",
    "chorus_http_responses_total",
    "chorus_rows_row_count",
    "chorus_consent_chain_broken_rows",
    "chorus_retention_last_complete_age_seconds",
    "chorus_retention_rows_removed_24h",
    "chorus_page_view_partitions_months_ahead",
    "chorus_cron_failures_24h",
    "chorus_replication_lag_seconds",
    "chorus_connections_connections",
    "nginx_connections_active",
    "node_filesystem_avail_bytes",
]


def _query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _until(port: int, expr: str, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        result = _query(port, expr)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus never returned a result for {expr!r} within {timeout:.0f} s")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def monitored():
    postgrest_bin, nginx_bin = stack.find_postgrest(), stack.find_nginx()
    if postgrest_bin is None or nginx_bin is None:
        pytest.skip("PostgREST or nginx not found: set POSTGREST_BIN, apt-get install nginx")
    primary = ops.built_cluster("chorus-monitoring-")
    standby = None
    run_dir = primary.datadir.parent / "run"
    ports = {name: stack.free_port() for name in ops_stack.monitoring_ports()}
    cfg = stack.StackConfig(
        run_dir=run_dir,
        database_url=primary.url(ops.OPS_DB, user=config.AUTHENTICATOR, password=ops.AUTHENTICATOR_PASSWORD),
        api_port=stack.free_port(), jwt_secret="j" * 48, postgrest_bin=postgrest_bin, nginx_bin=nginx_bin,
        nginx_http_after=ops_stack.nginx_monitoring_directives(run_dir, ports["nginx_status"]),
    )
    try:
        standby = replica.create_standby(primary, primary.datadir.parent / "standby", first_port=stack.free_port())
        standby.start()
        ops_stack.monitoring_dir(run_dir).mkdir(parents=True)
        ops_stack.set_monitor_password(primary.url(ops.OPS_DB), "monitor-live-test")
        stack.start_postgrest(cfg)
        stack.start_nginx(cfg)
        stack.wait_until_ready(cfg)
        ops_stack.start_monitoring(run_dir, primary, "monitor-live-test", ports, scrape_interval="1s", dbname=ops.OPS_DB)
        yield primary, standby, cfg, ports
    finally:
        stack.stop_all(run_dir)
        ops_stack.stop_extras(run_dir)
        ops.remove(standby, primary)


def _listening_tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def test_monitoring_keeps_postgrest_on_its_socket_and_nginx_status_on_loopback(monitored):
    _primary, _standby, cfg, ports = monitored
    pid = stack.postgrest_service(cfg.run_dir).pid()
    assert pid is not None
    # PostgREST listens on no TCP port: no admin server, so no /config for anyone on the machine.
    assert _socket_inodes(pid) & _listening_tcp_inodes() == set()
    env = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    assert not any(e.startswith(("PGRST_ADMIN_SERVER_PORT=", "PGRST_SERVER_PORT=")) for e in env)
    # Through nginx, PostgREST's admin paths and stub_status are no endpoints.
    for path in ("/config", "/metrics", "/live", "/ready", "/schema_cache", "/stub_status", "/api/metrics", "/api/stub_status"):
        response = requests.get(f"http://127.0.0.1:{cfg.api_port}{path}", timeout=5)
        assert response.status_code == 404, path
    # stub_status answers on its own loopback-only server, nowhere else.
    status = requests.get(f"http://127.0.0.1:{ports['nginx_status']}/stub_status", timeout=5)
    assert status.status_code == 200 and "Active connections" in status.text
    rendered = (cfg.nginx_dir / "nginx.conf").read_text()
    assert f"listen 127.0.0.1:{ports['nginx_status']};" in rendered
    # The exporters, mtail and Prometheus listen on 127.0.0.1 only.
    tcp = Path("/proc/net/tcp").read_text()
    for name, port in ports.items():
        assert f"0100007F:{port:04X} 00000000:0000 0A" in tcp, name
        assert f"00000000:{port:04X} 00000000:0000 0A" not in tcp, name


def test_prometheus_sees_every_product_metric(monitored):
    primary, _standby, cfg, ports = monitored
    ok = requests.post(f"{cfg.api_url}/leads", json=ops.lead("metrics@example.com"), timeout=10)
    bad = requests.post(f"{cfg.api_url}/leads", json={**ops.lead("bad@example.com"), "email": "nope"}, timeout=10)
    assert (ok.status_code, bad.status_code) == (201, 400)
    with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
        # Both took a slot (bad input counts): with a limit of 2 the next one is refused.
        conn.execute("update app.rate_limit_rules set max_requests = 2 where action = 'leads' and scope = 'ip'")
    limited = requests.post(f"{cfg.api_url}/leads", json=ops.lead("third@example.com"), timeout=10)
    assert limited.status_code == 429
    with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
        conn.execute("select app_logic.check_consent_chains()")
        conn.execute("call app_logic.run_retention()")
    seen = {metric: _until(ports["prometheus"], metric) for metric in PRODUCT_METRICS}
    # What the requests and jobs above must show, each a PromQL query that returns a series.
    for query in (
        'chorus_submissions_per_minute{outcome="accepted"} >= 1',
        'chorus_submissions_per_minute{outcome="refused",code="CHV01"} >= 1',
        'chorus_http_responses_total{status="400",path="/api/leads"}',
        'chorus_http_responses_total{status="429",path="/api/leads"}',
        'chorus_rate_limit_clients_limited{action="leads",scope="ip"} == 1',
        'chorus_rows_row_count{relation="consent_audit"} == 2',
        'chorus_consent_chain_broken_rows == 0',
        'chorus_retention_last_complete_age_seconds{kind="leads"} < 60',
        'chorus_page_view_partitions_months_ahead >= 2',
        'chorus_replication_lag_seconds{standby="chorus_replica"} < 30',
        'sum(chorus_connections_connections{application="postgrest"}) >= 1',
        'count(up == 1) == 5',
    ):
        assert _until(ports["prometheus"], query), query
    for metric, result in seen.items():
        print(f"\n{metric}: " + "; ".join(
            "{" + ",".join(f"{k}={v}" for k, v in r["metric"].items() if k not in ("__name__", "instance", "server", "job")) + "} "
            + r["value"][1] for r in result[:4]))


def test_alerts_fire_when_the_watched_thing_breaks(monitored):
    primary, standby, cfg, ports = monitored
    p = ports["prometheus"]
    url = primary.url(ops.OPS_DB)
    assert _query(p, 'ALERTS{alertname="ConsentChainBroken"}') == []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter table app.consent_audit disable trigger user")
        conn.execute("update app.consent_audit set granted = not granted where id = (select min(id) from app.consent_audit)")
        conn.execute("alter table app.consent_audit enable trigger user")
        conn.execute("alter table app.consent_audit enable always trigger consent_audit_append_only")
        assert conn.execute("select (app_logic.check_consent_chains()).broken_rows").fetchone()[0] >= 1
        # The last partitions ahead go: fewer than two whole months remain.
        for (name,) in conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = 'app.page_views'::regclass order by c.relname desc limit 2"
        ).fetchall():
            conn.execute(f"drop table app.{name}")
    assert _until(p, 'ALERTS{alertname="ConsentChainBroken",alertstate="firing"}')
    assert _until(p, 'ALERTS{alertname="PageViewPartitionsLow",alertstate="firing"}')
    # The standby stops: its lag becomes infinite, beyond the stored limit (the alert waits 1 m).
    standby.stop()
    assert _until(p, "chorus_replication_lag_seconds > chorus_replication_max_lag_seconds")
    assert _until(p, 'ALERTS{alertname="ReplicaLagging",alertstate="pending"}')
    # PostgREST stops: nginx answers 503, mtail counts them, the 5xx ratio crosses 1%.
    expr = re.sub(r"\s+", " ", next(
        r["expr"] for g in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
        for r in g["rules"] if r["alert"] == "HighServerErrorRate"
    )).strip()
    assert _query(p, expr) == []
    stack.postgrest_service(cfg.run_dir).stop()
    deadline = time.monotonic() + 30
    while not _query(p, expr):  # a rate needs two scrapes of the counter
        assert time.monotonic() < deadline, (
            f"{expr} never fired: {_query(p, 'chorus_http_responses_total')}; the log ends with "
            + (ops_stack.monitoring_dir(cfg.run_dir) / "nginx-metrics.log").read_text()[-300:])
        assert requests.get(f"{cfg.api_url}/leads/health", timeout=10).status_code == 503
        time.sleep(0.2)
