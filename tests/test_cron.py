"""pg_cron jobs: declared in db/policies, reconciled by db.build, really run by pg_cron.

pg_cron works only in the database named by cron.database_name (chorus_website, in the test
cluster too), so these tests build the source there. That database is reset in place rather
than dropped: DROP DATABASE stops pg_cron's scheduler for good (it exits and is not
restarted until the server restarts), which the fixture repairs by restarting the test
cluster only when it finds the scheduler gone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import psycopg
import pytest

from chorus_db import config
from chorus_db.build import Source, build, status

PROJECT_JOBS = {
    "chorus_website:retention": ("30 3 * * *", "call app_logic.run_retention()"),
    "chorus_website:rate-limit-counters": ("* * * * *", "call app_logic.run_retention('rate_limit_counters')"),
    "chorus_website:page-view-partitions": ("17 3 * * *", "select app_logic.ensure_page_view_partitions(3)"),
    "chorus_website:consent-chain-check": ("7 * * * *", "select app_logic.check_consent_chains()"),
    "chorus_website:analytics-rollups": ("41 * * * *", "call app_logic.refresh_analytics_rollups()"),
}
FOREIGN_JOB = "someone-else:nightly-vacuum"


def quiet(_msg: str) -> None:
    pass


def _scheduler_running(cluster) -> bool:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        return conn.execute(
            "select exists (select from pg_stat_activity where backend_type = 'pg_cron launcher')"
        ).fetchone()[0]


def _wait_for_scheduler(cluster, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _scheduler_running(cluster):
            return True
        time.sleep(0.2)
    return False


def _reset_cron_database(cluster) -> str:
    """An empty chorus_website with pg_cron's scheduler attached to it."""
    name = config.DB_NAME
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        assert conn.execute("select current_setting('cron.database_name')").fetchone()[0] == name
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'create database "{name}"')
    url = cluster.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select exists (select from pg_extension where extname = 'pg_cron')").fetchone()[0]:
            conn.execute("select cron.unschedule(jobid) from cron.job")
            conn.execute("delete from cron.job_run_details")
        conn.execute("drop schema if exists api, app_logic, app, extensions cascade")
        conn.execute("drop table if exists public.schema_migrations, public.schema_state")
        # The foundation's default privileges outlive its schemas: back to a new database's.
        conn.execute("alter default privileges grant execute on functions to public")
    if not _wait_for_scheduler(cluster, seconds=5):
        cluster.stop()
        cluster.start()
        assert _wait_for_scheduler(cluster), "pg_cron's scheduler did not start in the test cluster"
    return url


@pytest.fixture(scope="module")
def cron_url(pg_cluster):
    url = _reset_cron_database(pg_cluster)
    build(url, log=quiet)
    return url


def _jobs(url: str) -> dict[str, tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("select jobname, jobid, schedule, command, database from cron.job").fetchall()
    return {name: (jobid, schedule, command, database) for name, jobid, schedule, command, database in rows}


def test_the_build_schedules_every_declared_job_by_name(cron_url):
    result = build(cron_url, log=quiet, force=True)
    assert sorted(result.jobs_scheduled) == sorted(PROJECT_JOBS)
    jobs = _jobs(cron_url)
    for name, (schedule, command) in PROJECT_JOBS.items():
        assert jobs[name][1:] == (schedule, command, config.DB_NAME)


def test_a_second_build_updates_the_jobs_in_place_without_duplicates(cron_url):
    before = _jobs(cron_url)
    build(cron_url, log=quiet, force=True)
    build(cron_url, log=quiet, force=True)
    with psycopg.connect(cron_url, autocommit=True) as conn:
        counts = dict(conn.execute("select jobname, count(*) from cron.job group by jobname").fetchall())
    assert all(counts[name] == 1 for name in PROJECT_JOBS)
    after = _jobs(cron_url)
    assert {n: after[n][0] for n in PROJECT_JOBS} == {n: before[n][0] for n in PROJECT_JOBS}, "job ids changed"


def test_a_job_removed_from_the_source_is_unscheduled_and_comes_back_with_it(cron_url, tmp_path):
    root = tmp_path / "db"
    shutil.copytree(config.DB_DIR, root)
    policies = root / "policies" / "080-retention.sql"
    text = policies.read_text()
    start = text.index("select app_logic.declare_job(\n    'chorus_website:rate-limit-counters'")
    policies.write_text(text[:start] + "select 1 as counters_job_removed;\n")
    result = build(cron_url, source=Source(root), log=quiet)
    assert result.jobs_removed == ["chorus_website:rate-limit-counters"]
    jobs = _jobs(cron_url)
    assert "chorus_website:rate-limit-counters" not in jobs
    assert "chorus_website:retention" in jobs

    result = build(cron_url, log=quiet)
    assert result.jobs_removed == []
    assert set(PROJECT_JOBS) <= set(_jobs(cron_url))


def test_a_job_without_the_project_prefix_is_left_alone(cron_url, tmp_path):
    with psycopg.connect(cron_url, autocommit=True) as conn:
        conn.execute("select cron.schedule(%s, '0 4 * * *', 'vacuum')", (FOREIGN_JOB,))
    try:
        root = tmp_path / "db"
        shutil.copytree(config.DB_DIR, root)
        (root / "policies" / "080-retention.sql").write_text("-- every project job removed\nselect 1 as nothing;\n")
        result = build(cron_url, source=Source(root), log=quiet)
        # 060-page-views.sql still declares its job: only the two of 080-retention.sql go.
        assert sorted(result.jobs_removed) == ["chorus_website:rate-limit-counters", "chorus_website:retention"]
        jobs = _jobs(cron_url)
        assert FOREIGN_JOB in jobs and jobs[FOREIGN_JOB][2] == "vacuum"
        build(cron_url, log=quiet)
        assert FOREIGN_JOB in _jobs(cron_url)
    finally:
        with psycopg.connect(cron_url, autocommit=True) as conn:
            conn.execute("select cron.unschedule(%s)", (FOREIGN_JOB,))
        build(cron_url, log=quiet, force=True)


def test_db_status_lists_the_project_jobs(cron_url):
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "db.status"],
        cwd=config.ROOT,
        env={**os.environ, "DATABASE_URL": cron_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pg_cron jobs:" in proc.stdout
    for name, (schedule, _command) in PROJECT_JOBS.items():
        assert f"{name}  '{schedule}'  active=True" in proc.stdout
    assert FOREIGN_JOB not in proc.stdout


@pytest.mark.slow
def test_pg_cron_really_runs_the_rate_limit_counters_job(cron_url):
    """The declared command, run by pg_cron itself. Debian's pg_cron 1.4 has minute granularity:
    the job is switched to every minute and the test waits for the next minute to start."""
    with psycopg.connect(cron_url, autocommit=True) as conn:
        conn.execute(
            """
            insert into app.rate_limit_counters (action, scope, subject, hits, expires_at)
            values ('leads', 'ip', convert_to('cron-test-expired', 'UTF8'), array[now() - interval '2 hours'], now() - interval '110 minutes'),
                   ('leads', 'ip', convert_to('cron-test-running', 'UTF8'), array[now()], now() + interval '1 hour')
            """
        )
        (jobid,) = conn.execute(
            "select jobid from cron.job where jobname = 'chorus_website:rate-limit-counters'"
        ).fetchone()
        # Only a run that starts from now counts: the cluster keeps earlier sessions' runs.
        (since,) = conn.execute("select now()").fetchone()
        conn.execute("select cron.alter_job(%s, schedule => '* * * * *')", (jobid,))
        try:
            deadline = time.monotonic() + 75
            run = None
            while time.monotonic() < deadline:
                run = conn.execute(
                    """
                    select status, return_message from cron.job_run_details
                    where jobid = %s and status in ('succeeded', 'failed') and start_time >= %s
                    order by start_time desc limit 1
                    """,
                    (jobid, since),
                ).fetchone()
                if run:
                    break
                time.sleep(1)
        finally:
            conn.execute("select cron.alter_job(%s, schedule => %s)", (jobid, PROJECT_JOBS["chorus_website:rate-limit-counters"][0]))
        assert run is not None, "pg_cron did not run the job within 75 s"
        assert run == ("succeeded", "CALL")
        subjects = {r[0] for r in conn.execute("select convert_from(subject, 'UTF8') from app.rate_limit_counters")}
        assert "cron-test-expired" not in subjects
        assert "cron-test-running" in subjects
        logged = conn.execute(
            "select count(*) from app.retention_runs where kind = 'rate_limit_counters' and rows_removed >= 1"
        ).fetchone()[0]
        assert logged >= 1

    job = {j[0]: j for j in status(cron_url).jobs}["chorus_website:rate-limit-counters"]
    _name, _schedule, active, last_run, last_status = job
    assert active and last_run is not None and last_status == "succeeded"
