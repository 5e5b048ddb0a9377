"""`invoke bench` reads pgbench's and wrk's text: these pin the parsing on real samples (no
benchmark runs here), the bench scripts' pgbench variables, and that each script commits a
few transactions on a fresh build."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import threading

import pytest

from chorus_db import bench, config, stack, testing
from chorus_db.bench import brand, common, progress, retention
from chorus_db.errors import UserError

PGBENCH_OK = """\
pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: bench/submit_lead.sql
scaling factor: 1
query mode: prepared
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 13642
number of failed transactions: 0 (0.000%)
latency average = 11.712 ms
initial connection time = 42.870 ms
tps = 1366.157915 (without initial connection time)
"""

PGBENCH_ABORTED_ERR = """\
pgbench: error: client 3 script 0 aborted in command 6 query 0: ERROR:  duplicate key value violates unique constraint
pgbench: error: client 9 script 0 aborted in command 6 query 0: ERROR:  duplicate key value violates unique constraint
pgbench: error: Run was aborted; the above results are incomplete.
"""

WRK = """\
Running 10s test @ http://127.0.0.1:41234/rpc/submit_lead
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    18.02ms    9.11ms  98.50ms   74.12%
    Req/Sec   456.11     61.20   610.00     70.50%
  Latency Distribution
     50%  850.00us
     75%   22.10ms
     90%   29.87ms
     99%    1.02s
  9102 requests in 10.01s, 1.61MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    909.27
Transfer/sec:    164.71KB
"""


def test_pgbench_report_gives_rate_transactions_and_no_failure():
    assert bench.parse_pgbench(PGBENCH_OK) == (1366.157915, 13642, 0)


def test_a_client_aborted_by_an_error_counts_as_a_failed_transaction():
    tps, tx, failed = bench.parse_pgbench(PGBENCH_OK.replace("13642", "13600"), PGBENCH_ABORTED_ERR)
    assert (tx, failed) == (13600, 2)


def test_pgbench_without_a_result_is_an_error_not_a_zero():
    with pytest.raises(RuntimeError, match="no result"):
        bench.parse_pgbench("pgbench: error: connection to server failed\n")


def test_pgbench_log_lines_give_latency_and_completion_time_with_or_without_schedule_lag():
    log = "0 0 2380 0 1764020000 250000\n3 17 15012 0 1764020001 5 812\ngarbage line\n"
    assert bench.parse_pgbench_log(log) == [(2.38, 1764020000.25), (15.012, 1764020001.000005)]


def test_percentiles_are_the_median_and_the_99th():
    p50, p99 = bench.percentiles([float(i) for i in range(1, 101)])
    assert p50 == pytest.approx(50.5) and p99 == pytest.approx(99.01)
    assert bench.percentiles([3.0]) == (None, None)


def test_wrk_report_counts_non_2xx_and_socket_errors_and_converts_latency_units():
    w = bench.parse_wrk(WRK)
    assert w == {"rps": 909.27, "requests": 9102, "non_2xx": 7, "socket_errors": 5, "p50_ms": 0.85, "p99_ms": 1020.0,
                 "statuses": {}, "bodies": []}


def test_wrk_report_gives_the_statuses_and_bodies_the_script_counted():
    out = WRK + 'body 503 {"code":"CHU02","message":"The read replica is too far behind the primary."}\nstatus 200 9095\nstatus 503 7\n'
    w = bench.parse_wrk(out)
    assert w["statuses"] == {200: 9095, 503: 7}
    assert w["bodies"] == ['503 {"code":"CHU02","message":"The read replica is too far behind the primary."}']


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_the_wrk_script_counts_every_status_and_keeps_the_first_error_bodies(tmp_path):
    """A real wrk run against a server answering 200 and 500 in turn: the script's counts add up
    to wrk's own total, and the bodies of the 500s come back as they were sent."""
    served = {"n": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - the standard library's name
            served["n"] += 1
            status, body = (500, b'{"code":"40001","message":"canceling statement\n due to conflict"}') \
                if served["n"] % 2 else (200, b"[]")
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = dict(os.environ, BODY_STYLE="read", READ_KEY="k", COUNT_STATUS="1")
        proc = subprocess.run(
            ["wrk", "-t2", "-c2", "-d1s", "-s", str(bench.BENCH_DIR / "wrk_post.lua"), f"http://127.0.0.1:{server.server_port}/"],
            env=env, capture_output=True, text=True, timeout=30,
        )
    finally:
        server.shutdown()
    w = bench.parse_wrk(proc.stdout)
    assert sum(w["statuses"].values()) == w["requests"] > 10
    assert w["statuses"].get(500, 0) == w["non_2xx"] > 0
    # At most 3 bodies per status and thread, newlines folded so each stays one line.
    assert 1 <= len(w["bodies"]) <= 6
    assert all(b == '500 {"code":"40001","message":"canceling statement due to conflict"}' for b in w["bodies"])


def test_wrk_without_errors_reports_zero_of_each():
    clean = "\n".join(line for line in WRK.splitlines() if "Socket" not in line and "Non-2xx" not in line)
    w = bench.parse_wrk(clean)
    assert (w["non_2xx"], w["socket_errors"]) == (0, 0)


def test_only_the_ratios_with_a_goal_get_a_verdict():
    assert bench.goal_of("b/a' submission vs the same transaction without logic") == bench.Goal(">=", 0.5)
    assert bench.goal_of("d/c project PostgREST vs bare table") == bench.Goal(">=", 0.6)
    assert bench.goal_of("b/a submission vs plain insert") is None


def test_an_at_most_goal_is_met_below_its_value_and_an_at_least_goal_above():
    assert bench.Goal("<=", 1.5).met(1.2) and not bench.Goal("<=", 1.5).met(1.6)
    assert bench.Goal(">=", 0.5).met(0.5) and not bench.Goal(">=", 0.5).met(0.49)


def test_every_goal_is_listed_with_its_measure_or_none_when_that_part_did_not_run():
    report = bench.Report(machine={})
    report.ratios["d/c project PostgREST vs bare table"] = 0.7
    report.ratios["retention-p99 submission p99 during retention / without"] = 2.0
    found = bench.goals(report)
    assert set(found) == set(bench.GOALS)
    assert found["d/c"] == {"name": "d/c project PostgREST vs bare table", "goal": ">= 0.6", "measured": 0.7, "met": True}
    assert found["retention-p99"]["met"] is False
    assert found["b/a'"] == {"name": None, "goal": ">= 0.5", "measured": None, "met": None}


def test_without_a_terminal_progress_is_plain_lines_with_counts(capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)
    with progress.step("page views", 1_000_000, "rows") as shown:
        shown.advance(250_000)
        shown.advance(750_000)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "    page views: 0 of 1,000,000 rows"
    assert lines[1].startswith("    page views: 250,000 rows of 1,000,000 rows (25%), ")
    assert lines[-1].startswith("    page views: 1,000,000 rows of 1,000,000 rows (100%), ")


def test_retention_samples_count_for_the_side_they_ran_in_and_a_vacuum_of_what_it_emptied_counts_as_retention():
    windows = [("quiet", 100.0, 110.0), ("busy", 110.0, 120.0), ("quiet", 120.0, 130.0)]
    rows = [
        (10.0, 105.0),   # inside the first quiet window
        (10.0, 115.0),   # inside the retention window
        (200.0, 110.1),  # began in the quiet window, ended in the retention one: retention's
        (10.0, 109.7),   # quiet, but within the guard before the change of side: neither
        (10.0, 125.0),   # quiet window, but a vacuum of an emptied table ran then: retention's
        (10.0, 128.0),   # quiet again
    ]
    sides = retention._classify(rows, windows, vacuum_marks=[125.0])
    assert sorted(sides["quiet"]) == [10.0, 10.0]
    assert sorted(sides["busy"]) == [10.0, 10.0, 200.0]
    assert sides["vacuum"] == 1


def test_retention_variants_name_only_run_retentions_knobs_and_their_values_travel_as_parameters():
    variants = retention.parse_variants("default|batch_rows=500, wal_rate=4000000|pause_ratio=9")
    assert variants == [{}, {"batch_rows": 500.0, "wal_rate": 4000000.0}, {"pause_ratio": 9.0}]
    assert [retention.variant_name(v) for v in variants] == ["default", "batch_rows=500,wal_rate=4e+06", "pause_ratio=9"]
    assert retention._job_call(variants[1]) == (
        "call app_logic.run_retention(p_max_seconds => %s, p_batch_rows => %s::integer, p_wal_rate => %s::bigint)"
    )
    assert retention._job_call({"batch_wal": 1e6}) == "call app_logic.run_retention(p_max_seconds => %s, p_batch_wal => %s::bigint)"
    assert retention.parse_variants("") == [{}]
    with pytest.raises(UserError, match="not 'p_kind'"):
        retention.parse_variants("default|p_kind=1")
    with pytest.raises(UserError, match=re.escape("batch_rows must be a number, not '1); drop table x; --'")):
        retention.parse_variants("batch_rows=1); drop table x; --")


def test_a_retention_variant_sets_the_jobs_commit_mode_and_the_wal_writers_settings_apart_from_its_call():
    variants = retention.parse_variants("sync_commit=1|wal_writer_delay=10ms, wal_writer_flush_after=128kB, batch_rows=500"
                                        "|sync_commit=0")
    assert variants == [{"sync_commit": True},
                        {"wal_writer_delay": "10ms", "wal_writer_flush_after": "128kB", "batch_rows": 500.0},
                        {"sync_commit": False}]
    assert [retention.variant_name(v) for v in variants] == [
        "sync_commit=1", "wal_writer_delay=10ms,wal_writer_flush_after=128kB,batch_rows=500", "sync_commit=0"]
    assert retention._job_call(variants[0]) == "call app_logic.run_retention(p_max_seconds => %s, p_synchronous_commit => %s::boolean)"
    assert retention._job_values(variants[0]) == [True]
    # The server settings are not the call's: the CALL has only the knobs, with their values in order.
    assert retention._job_call(variants[1]) == "call app_logic.run_retention(p_max_seconds => %s, p_batch_rows => %s::integer)"
    assert retention._job_values(variants[1]) == [500.0]
    assert retention._server_settings(variants[1]) == {"wal_writer_delay": "10ms", "wal_writer_flush_after": "128kB"}
    assert retention._server_settings(variants[0]) == {}
    with pytest.raises(UserError, match="sync_commit is 1 .on. or 0 .off., not '2'"):
        retention.parse_variants("sync_commit=2")
    with pytest.raises(UserError, match=re.escape("wal_writer_delay must be a whole number with an optional unit (e.g. 10ms, 128kB), "
                                                  "not \"10ms'; select 1\"")):
        retention.parse_variants("wal_writer_delay=10ms'; select 1")
    # Only the WAL writer's reloadable settings: not a restart's, not a session's.
    with pytest.raises(UserError, match="not 'wal_buffers'"):
        retention.parse_variants("wal_buffers=64MB")
    with pytest.raises(UserError, match="not 'synchronous_commit'"):
        retention.parse_variants("synchronous_commit=off")


def _auto_conf_settings(conn) -> dict[str, str]:
    return {name: setting for name, setting in conn.execute(
        "select name, setting from pg_file_settings where sourcefile like '%%postgresql.auto.conf' and name = any(%s)",
        (list(retention.VARIANT_SETTINGS),))}


def test_a_retention_variants_wal_writer_settings_reach_the_server_on_a_reload_and_are_reset_after(db, db_url):
    import psycopg

    before = {n: db.execute("select current_setting(%s)", (n,)).fetchone()[0] for n in retention.VARIANT_SETTINGS}
    try:
        retention.apply_server_settings(db, {"wal_writer_delay": "10ms", "wal_writer_flush_after": "128kB"})
        # Every session (and the WAL writer, signalled with them) reads them, with no restart.
        with psycopg.connect(db_url, autocommit=True) as other:
            assert other.execute("select current_setting('wal_writer_delay'), current_setting('wal_writer_flush_after')"
                                 ).fetchone() == ("10ms", "128kB")
        assert _auto_conf_settings(db) == {"wal_writer_delay": "10ms", "wal_writer_flush_after": "128kB"}
        # One set, the other back to the cluster's own.
        retention.apply_server_settings(db, {"wal_writer_flush_after": "0"})
        with psycopg.connect(db_url, autocommit=True) as other:
            assert other.execute("select current_setting('wal_writer_delay'), current_setting('wal_writer_flush_after')"
                                 ).fetchone() == (before["wal_writer_delay"], "0")
        with pytest.raises(ValueError, match="not a variant setting: fsync"):
            retention.apply_server_settings(db, {"fsync": "off"})
        # PostgreSQL checks the value itself.
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            retention.apply_server_settings(db, {"wal_writer_delay": "0"})
    finally:
        retention.apply_server_settings(db, {})
    assert _auto_conf_settings(db) == {}
    assert {n: db.execute("select current_setting(%s)", (n,)).fetchone()[0] for n in retention.VARIANT_SETTINGS} == before


def test_a_wal_writer_setting_the_server_refuses_stops_the_bench_before_it_generates_anything(db, db_url):
    variants = retention.parse_variants("default|wal_writer_flush_after=128kB|wal_writer_delay=0")
    with pytest.raises(UserError, match="the retention variant wal_writer_delay=0: .*wal_writer_delay"):
        retention.check_server_settings(db_url, variants)
    # What the earlier variants set is reset.
    assert _auto_conf_settings(db) == {}
    retention.check_server_settings(db_url, variants[:2])
    assert _auto_conf_settings(db) == {}


def test_generation_chunks_cover_every_row_once():
    assert retention.chunks(10, 4) == [(1, 4), (5, 8), (9, 10)]
    assert sum(hi - lo + 1 for lo, hi in retention.chunks(1_000_001, 250_000)) == 1_000_001


@pytest.mark.parametrize("script", sorted(bench.BENCH_DIR.glob("*.sql")), ids=lambda p: p.name)
def test_bench_scripts_use_only_their_own_pgbench_variables(script):
    """With -M prepared pgbench turns every :name into a parameter, even inside a string literal
    (where the server then sees no parameter): only \\set variables may follow a single colon."""
    text = bench.framed(script)
    declared = set(re.findall(r"^\\set (\w+)", text, re.M))
    sql = "\n".join(line for line in text.splitlines() if not line.startswith(("\\", "--")))
    used = set(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", sql))
    assert used <= declared, f"{script.name}: {sorted(used - declared)} would become parameters"


def test_extra_nginx_directives_go_into_the_http_block_before_the_api(tmp_path):
    conf = stack.nginx_main_config(tmp_path, tmp_path / "api.conf", bench.NGINX_TRUST_WRK)
    http = conf[conf.index("http {"):]
    assert http.index("set_real_ip_from 127.0.0.1;") < http.index("real_ip_header X-Real-IP;") < http.index("include ")
    assert "set_real_ip_from" not in stack.nginx_main_config(tmp_path, tmp_path / "api.conf")


# The table each framed script stores one row in.
FRAMED = {
    "submit_lead.sql": "app.leads",
    "framed_insert.sql": "app.leads",
    "framed_rows.sql": "app.leads",
    "page_view_api.sql": "app.page_views",
    "brand_engagement_api.sql": "app.brand_engagement",
    "logo_heatmap_api.sql": "app.logo_interaction_heatmaps",
    "performance_benchmark_api.sql": "app.performance_benchmarks",
}


def test_every_framed_script_is_listed_here():
    framed = {p.name for p in bench.BENCH_DIR.glob("*.sql") if p.read_text().startswith("-- frame:")}
    assert framed == set(FRAMED)


def test_a_framed_script_holds_one_call_and_runs_in_postgrests_five_statements():
    text = bench.framed(bench.BENCH_DIR / "submit_lead.sql")
    sql = "\n".join(line for line in text.splitlines() if not line.startswith("\\"))
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    assert [s.split()[0] for s in statements] == ["begin", "select", "select", "with", "commit"]
    assert "set_config('request.path', '/rpc/submit_lead', true)" in text
    assert 'select "api"."submit_lead"(format(' in text and 'from "pgrst_source" as "submit_lead"' in text
    assert '"x-api-key":"chk_bench_admin"}' in bench.framed(bench.BENCH_DIR / "performance_benchmark_api.sql")
    framed_insert = bench.framed(bench.BENCH_DIR / "framed_insert.sql")
    assert (bench.BENCH_DIR / "plain_insert.sql").read_text().strip() in framed_insert
    assert """select "app_logic"."pre_request"(), set_config('role', 'postgres', true);""" in framed_insert


def _pgbench_framed(name: str, transactions: int, pg_cluster, db_url: str, tmp_path) -> subprocess.CompletedProcess:
    """Run a bench script as `invoke bench` frames it, with pgbench (one client, prepared)."""
    script = tmp_path / name
    script.write_text(bench.framed(bench.BENCH_DIR / name))
    proc = subprocess.run(
        [str(config.pg_bindir() / "pgbench"), "-n", "-M", "prepared", "-c", "1", "-t", str(transactions), "-f", str(script)],
        env=testing.psql_env(pg_cluster, db_url.rsplit("/", 1)[-1]), capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("name", sorted(FRAMED))
def test_a_framed_script_stores_its_row_when_pgbench_runs_it(name, pg_cluster, db, db_url, tmp_path):
    db.execute(
        "insert into app.api_keys (name, role, key_hash, key_prefix)"
        " values ('bench-admin', 'admin', app_logic.hash_api_key(%s), left(%s, 10))",
        (brand.BENCH_ADMIN_KEY, brand.BENCH_ADMIN_KEY),
    )
    table = FRAMED[name]
    before = db.execute(f"select count(*) from {table}").fetchone()[0]
    proc = _pgbench_framed(name, 3, pg_cluster, db_url, tmp_path)
    assert bench.parse_pgbench(proc.stdout, proc.stderr)[1:] == (3, 0)
    assert db.execute(f"select count(*) from {table}").fetchone()[0] == before + 3


# The tables a submission writes: the stored-rows baseline (a'') must write the same rows.
STORED = ("app.leads", "app.lead_interactions", "app.consent_audit", "app.rate_limit_counters")


def test_the_stored_rows_baseline_writes_what_a_submission_stores(pg_cluster, db, db_url, tmp_path):
    def written(name: str) -> dict[str, int]:
        before = {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in STORED}
        _pgbench_framed(name, 1, pg_cluster, db_url, tmp_path)
        return {t: db.execute(f"select count(*) from {t}").fetchone()[0] - before[t] for t in STORED}

    submission = written("submit_lead.sql")
    assert submission == {"app.leads": 1, "app.lead_interactions": 1, "app.consent_audit": 2, "app.rate_limit_counters": 2}
    assert written("framed_rows.sql") == submission


# The unframed scripts run as they are, as postgres (the framed ones are above).
PLAIN = {
    "plain_insert.sql": "app.leads",
    "page_view_plain.sql": "app.page_views",
    "logo_heatmap_plain.sql": "app.logo_interaction_heatmaps",
    "performance_benchmark_plain.sql": "app.performance_benchmarks",
}


def test_every_bench_script_is_framed_or_plain():
    assert {p.name for p in bench.BENCH_DIR.glob("*.sql")} >= set(FRAMED) | set(PLAIN)


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_a_plain_script_commits_its_transactions_on_a_fresh_build(name, db, db_url):
    table = PLAIN[name]
    before = db.execute(f"select count(*) from {table}").fetchone()[0]
    proc = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", "1", "-t", "3", "-f", str(bench.BENCH_DIR / name), db_url],
        capture_output=True, text=True,
    )
    assert "number of failed transactions: 0" in proc.stdout and proc.returncode == 0, proc.stderr[-500:]
    assert db.execute(f"select count(*) from {table}").fetchone()[0] == before + 3


def test_the_bare_table_of_c_has_the_columns_of_app_leads_and_none_of_their_rules(db):
    from chorus_db.bench.http import BARE_SCHEMA_SQL

    db.execute(BARE_SCHEMA_SQL)
    columns = "select attname::text from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
    bare = {name for (name,) in db.execute(columns, ("bench_bare.leads",))}
    assert bare == {name for (name,) in db.execute(columns, ("app.leads",))} - {"load_time_lcp", "load_time_fid"}
    # The lead rules are domains (db/schema/471): a bare column of a domain type would still check them.
    assert db.execute(
        "select count(*) from pg_attribute as a join pg_type as t on t.oid = a.atttypid"
        " where a.attrelid = 'bench_bare.leads'::regclass and a.attnum > 0 and t.typtype = 'd'"
    ).fetchone()[0] == 0
    assert db.execute(
        "select count(*) from pg_constraint where conrelid = 'bench_bare.leads'::regclass and contype = 'c'"
    ).fetchone()[0] == 0
    db.execute("insert into bench_bare.leads (first_name, last_name, email, gdpr_consent) values ('', '', '', false)")


@pytest.mark.skipif(bool(__import__("chorus_db.bench.peer", fromlist=["missing"]).missing()),
                    reason="the app-server peer needs pip install -e '.[bench]'")
def test_the_app_server_peer_stores_a_submission_with_the_databases_own_counter_keys(db, db_url):
    # The peer does a submission's work outside the database (bench/peer_app.py): when the schema
    # changes under it, d/peer would divide by the rate of its errors.
    import json
    import sys
    import time
    import urllib.request

    port = stack.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(bench.BENCH_DIR), "peer_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=dict(os.environ, PEER_DATABASE_URL=db_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while stack.http_status(f"http://127.0.0.1:{port}/") is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the peer did not start: {proc.stderr.read().decode()[-1500:] if proc.poll() else 'no answer'}")
            time.sleep(0.2)
        lead = {"firstName": "Peer", "lastName": "Check", "email": "peer@example.org", "gdprConsent": True}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/leads", data=json.dumps(lead).encode(), method="POST",
            headers={"Content-Type": "application/json", "X-Real-IP": "198.51.100.7"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)
    assert db.execute("select count(*) from app.leads where email = 'peer@example.org'").fetchone()[0] == 1
    keys = db.execute(
        "select count(*) from app.rate_limit_counters where subject in ("
        "app_logic.rate_limit_subject('leads', 'ip', '198.51.100.7'::inet::text),"
        " app_logic.rate_limit_subject('leads', 'email', 'peer@example.org'))"
    ).fetchone()[0]
    assert keys == 2


def test_a_pgbench_runs_cpu_counts_the_backends_that_ended_with_it(pg_cluster, db, db_url, tmp_path, monkeypatch):
    """A pgbench run's PostgreSQL CPU per transaction (growth's cost) includes its backends, which
    have exited when it is read: without the postmaster's children's times it would be about 0."""
    from chorus_db.bench import common

    heavy = "select count(*) from generate_series(1, 200000) as g where g % 7 = 3;\n"
    pid = db.execute("select pg_backend_pid()").fetchone()[0]
    start = common.proc_cpu(pid)
    for _ in range(20):
        db.execute(heavy)
    alone_ms = (common.proc_cpu(pid) - start) * 1000 / 20
    assert alone_ms > 1, "the statement is too cheap to measure with /proc's clock ticks"
    script = tmp_path / "heavy.sql"
    script.write_text(heavy)
    monkeypatch.setattr(common, "BENCH_DB", db_url.rsplit("/", 1)[-1])
    run = common.pgbench(pg_cluster, "heavy", script, seconds=2)
    assert run.transactions > 0 and run.failed == 0
    assert run.cpu_ms["PostgreSQL"] >= 0.6 * alone_ms, (run.cpu_ms, alone_ms)


def test_the_bench_runs_the_vendored_postgrest_the_tests_run(tmp_path, monkeypatch):
    """With no POSTGREST_BIN and no `postgrest` on PATH, the bench takes the vendored copy a test
    run unpacked (as the tests do) instead of skipping the HTTP path and its three goals."""
    from chorus_db import vendor
    from chorus_db.bench import common

    monkeypatch.setenv("POSTGREST_BIN", "unset-below")
    monkeypatch.delenv("POSTGREST_BIN")
    monkeypatch.delenv("CHORUS_VENDOR_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    monkeypatch.setenv("CHORUS_CACHE_DIR", str(tmp_path / "cache"))
    assert common.postgrest_binary() is None
    binary = vendor.unpacked_postgrest()
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\necho 'PostgREST 12.2.3'\n")
    binary.chmod(0o755)
    binary.with_name("postgrest.sha256").write_text("0" * 64 + "\n")
    assert common.postgrest_binary() == binary
    assert common.machine()["postgrest"] == "12.2.3"


# The frames with a browser's headers (`framed(..., headers=)`, issue 13 session 11): what nginx
# forwards of them (tests/test_http_headers.py holds it to the real stack) and the full set.
@pytest.mark.parametrize("headers", ["browser", "unfiltered"])
def test_a_submission_framed_with_a_browsers_headers_stores_its_lead_with_that_user_agent(
    headers, pg_cluster, db, db_url, tmp_path
):
    text = bench.framed(bench.BENCH_DIR / "submit_lead.sql", headers)
    sql = "\n".join(line for line in text.splitlines() if not line.startswith(("\\", "--")))
    assert set(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", sql)) <= {"o2", "o3", "o4"}
    script = tmp_path / "submit_lead.sql"
    script.write_text(text)
    before = db.execute("select count(*) from app.leads").fetchone()[0]
    proc = subprocess.run(
        [str(config.pg_bindir() / "pgbench"), "-n", "-M", "prepared", "-c", "1", "-t", "3", "-f", str(script)],
        env=testing.psql_env(pg_cluster, db_url.rsplit("/", 1)[-1]), capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert db.execute("select count(*) from app.leads").fetchone()[0] == before + 3
    agents = db.execute("select distinct user_agent from app.consent_audit").fetchall()
    assert agents == [(common.BROWSER_REQUEST["user-agent"],)]
    cookies = re.search(r"set_config\('request.cookies', '(.*)', true\)", text)[1]
    assert json.loads(cookies) == ({} if headers == "browser" else common._cookies(common.BROWSER_COOKIE))
    assert len(common._cookies(common.BROWSER_COOKIE)) == common.BROWSER_COOKIE.count("; ") + 1


def test_growth_compares_each_phase_with_a_fresh_1k_copy_measured_beside_it(monkeypatch):
    """Each growth phase is alternated with a fresh copy of the 1k database and its ratio is taken
    against that copy, not against the 1k phase minutes earlier: the machine alone moved a phase's
    CPU per submission by up to 40% (1k: 1.503 ms one run, 0.903 the next) for the same instructions."""
    from chorus_db.bench import sql as bench_sql

    calls: list[tuple[str, str | None]] = []
    copies: list[tuple[str, str | None]] = []
    # The machine drifts: the 1k phase ran slow (2.0 ms); later every baseline costs 1.0, the grown
    # database 1.2 (the data's own growth, which the ratio must show).
    def fake_pgbench(cluster, name, script, *, database=None, **_kw):
        calls.append((name, database))
        first_phase = database is None and name.startswith("b at 1,000 leads")
        ms = 2.0 if first_phase else (1.0 if database == bench_sql.GROWTH_BASE else 1.2)
        return common.Run(name, 100.0, 1000, 0, 1.0, 2.0, load=1.0, cpu_ms={"PostgreSQL": ms})

    monkeypatch.setattr(bench_sql, "pgbench", fake_pgbench)
    monkeypatch.setattr(bench_sql, "prepare", lambda cluster: "postgresql://unused")
    monkeypatch.setattr(bench_sql, "_grow", lambda *a, **k: None)
    monkeypatch.setattr(bench_sql.testing, "recreate_database",
                        lambda cluster, name, template=None: copies.append((name, template)))

    class FakeConn:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def execute(self, sql):
            calls.append(("sql", sql))

    monkeypatch.setattr(bench_sql.psycopg, "connect", lambda *a, **k: FakeConn())

    class FakeCluster:
        def url(self, name):
            return name

    report = common.Report(machine={})
    bench_sql.cost_growth(report, FakeCluster(), seconds=1, rounds=2)
    assert report.ratios["growth-1M/1k a submission's cost at 1M leads / at 1k"] == pytest.approx(1.2)
    assert report.ratios[
        "growth-10M-audit/1k a submission's cost at 1M leads and 10M audit rows / at 1k leads"
    ] == pytest.approx(1.2)
    # The 1k database is kept as the template once, then copied afresh before each later phase.
    assert copies[0] == (bench_sql.GROWTH_BASE_TEMPLATE, common.BENCH_DB)
    assert copies[1:] == [(bench_sql.GROWTH_BASE, bench_sql.GROWTH_BASE_TEMPLATE)] * 3
    runs = [c for c in calls if c[0] != "sql"]
    assert runs[:2] == [("b at 1,000 leads", None)] * 2
    assert runs[2:6] == [("b at 100,000 leads", None), ("b at 1,000 leads beside 100,000 leads", bench_sql.GROWTH_BASE)] * 2
    assert any("drop database if exists " + bench_sql.GROWTH_BASE in c[1] for c in calls if c[0] == "sql")
