"""External mode on a shared server whose cron.database_name is not chorus_website: the build
schedules the project's jobs from pg_cron's database with cron.schedule_in_database, and where
it cannot, db.status and every health answer say that no job runs.

A dedicated cluster plays the shared server: pg_cron is preloaded with cron.database_name =
postgres, and the project's database chorus_website is built on it."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from chorus_db import config
from chorus_db.build import build, status
from chorus_db.cluster import Cluster
from tests.support.invoke_cli import run_invoke

PROJECT_JOBS = {
    "chorus_website:page-view-partitions", "chorus_website:rate-limit-counters", "chorus_website:retention",
    "chorus_website:consent-chain-check", "chorus_website:analytics-rollups",
}


@pytest.fixture(scope="module")
def shared_server():
    base = config.scratch_dir("shared-cron")
    cluster = Cluster(base / "pgdata", cron_database="postgres", first_port=56660)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


def _remote_jobs(cluster: Cluster) -> dict[str, tuple]:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        rows = conn.execute("select jobname, database, schedule from cron.job order by 1").fetchall()
    return {name: (database, schedule) for name, database, schedule in rows}


def _health(url: str) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("select api.check_leads_health()").fetchone()[0]


def test_without_pg_cron_in_its_database_no_job_runs_and_status_and_health_say_so(shared_server):
    url = shared_server.url(config.DB_NAME)
    result = build(url, log=lambda _m: None)
    assert result.jobs_placement == "none"
    assert result.jobs_detail.startswith("pg_cron runs in database postgres of this server and could not schedule jobs for chorus_website there:")
    health = _health(url)
    assert health["status"] == "ok"
    assert health["jobs"].startswith("pg_cron runs no job for this database (pg_cron runs in database postgres")
    st = status(url)
    assert (st.jobs_placement, st.jobs_cron_database) == ("none", "postgres")
    proc = run_invoke("db.status", database_url=url)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "pg_cron: NO JOB RUNS for this database" in proc.stdout
    assert proc.stderr.strip().startswith("no pg_cron job runs for this database: install pg_cron")


def test_with_pg_cron_in_the_servers_cron_database_the_jobs_are_scheduled_there_for_ours(shared_server):
    with psycopg.connect(shared_server.url("postgres"), autocommit=True) as conn:
        conn.execute("create extension if not exists pg_cron")
    url = shared_server.url(config.DB_NAME)
    result = build(url, force=True, log=lambda _m: None)
    assert result.jobs_placement == "remote"
    assert set(result.jobs_scheduled) == PROJECT_JOBS
    jobs = _remote_jobs(shared_server)
    assert set(jobs) == PROJECT_JOBS
    assert {database for database, _ in jobs.values()} == {config.DB_NAME}
    assert "jobs" not in _health(url), "no warning while the jobs are scheduled"
    # A second build updates them in place; a job that left the source is unscheduled.
    with psycopg.connect(shared_server.url("postgres"), autocommit=True) as conn:
        conn.execute("select cron.schedule_in_database('chorus_website:gone', '0 4 * * *', 'select 1', 'chorus_website')")
    again = build(url, force=True, log=lambda _m: None)
    assert again.jobs_removed == ["chorus_website:gone"]
    assert set(_remote_jobs(shared_server)) == PROJECT_JOBS
    st = status(url)
    assert (st.jobs_placement, st.jobs_cron_database) == ("remote", "postgres")
    assert {name for name, *_ in st.jobs} == PROJECT_JOBS
