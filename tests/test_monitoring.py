"""Monitoring: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`, a firing case for every alert); the exporter's product queries run as
the monitoring role and read nothing else; the retention rules cover pg_cron's run log."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
import yaml

from chorus_db import config

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
