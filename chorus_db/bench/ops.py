"""`invoke bench --only ops` (issue 16): should PostgREST go through PgBouncer, what does a second
PostgREST behind nginx give, what does a read replica take off the primary, and how much WAL
does a submission write? Ratios against baselines of the same run, alternated, medians.

* pool: POST /rpc/submit_lead to PostgREST with its own pool (prepared statements, as
  deployed) against the same PostgREST without prepared statements, and against it through
  PgBouncer in transaction mode (which needs prepared statements off and no LISTEN channel).
* scale: POST /api/leads through nginx with one PostgREST against nginx balancing two.
* replica: GET /api/leads through nginx with the read pool on the primary against the read pool
  on a hot standby (`up --replica`'s routing): reads per second and the primary's CPU per read.
* WAL per accepted submission: what a replica must receive and an archive keep.

Each run's CPU per request is split by layer (nginx, PostgREST, PgBouncer, PostgreSQL), which
says what saturates first. PostgREST listens on 127.0.0.1 here (wrk reaches it directly), as in
the http part's direct line.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import psycopg

from .. import config, ops_stack, replica, stack
from . import common, http
from .common import BENCH_DIR, POSTGREST_MISSING, Report, Run, fmt, loadavg, postgrest_binary


def _log_lines(path: Path | None, offset: int, pattern: str, most: int = 5) -> list[str]:
    """The first lines matching pattern written to a log since offset (its size before a run)."""
    if path is None or not path.exists():
        return []
    with path.open("rb") as log:
        log.seek(offset)
        text = log.read(4_000_000).decode(errors="replace")
    return [line[:300] for line in text.splitlines() if re.search(pattern, line)][:most]


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def _reads(report: Report, name: str, url: str, key: str, seconds: int, layers: http.Layers, record: bool = True,
           logs: dict[str, tuple[Path | None, str]] | None = None) -> Run:
    """wrk GETs of a view with a reader key, 3 connections: nginx lets 4 reads with a key run at once
    (limit_conn chorus_reads), and with 4 a reconnect (nginx closes a connection after its
    keepalive_requests) could meet the old connection's slot not yet freed: 429 CHR02 for 3 of
    62,167 reads in one run. Each
    request from its own address (X-Real-IP, trusted from loopback here). Every status is counted
    (COUNT_STATUS): a response other than 2xx is reported with its status, its body and what the
    logs given (name: (file, pattern of the lines that matter)) wrote meanwhile."""
    env = dict(os.environ, BODY_STYLE="read", SET_REAL_IP="1", READ_KEY=key, COUNT_STATUS="1")
    logs = logs or {}
    offsets = {what: _size(path) for what, (path, _) in logs.items()}
    cpu0 = http._layers_cpu(layers)
    proc = common.timed(["wrk", "-t2", "-c3", f"-d{seconds}s", "--latency", "-s", str(BENCH_DIR / "wrk_post.lua"), url],
                        env, seconds, name)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed for {name}:\n{proc.stdout}\n{proc.stderr}")
    cpu1 = http._layers_cpu(layers)
    w = http.parse_wrk(proc.stdout)
    run = Run(name, w["rps"], w["requests"] - w["non_2xx"], w["non_2xx"] + w["socket_errors"], w["p50_ms"], w["p99_ms"],
              load=loadavg())
    for layer, end in cpu1.items():
        start = cpu0[layer]
        run.cpu_ms[layer] = sum(cpu - start.get(pid, 0.0) for pid, cpu in end.items()) * 1000 / max(1, w["requests"])
    if w["non_2xx"] or w["socket_errors"]:
        other = {code: n for code, n in sorted(w["statuses"].items()) if not 200 <= code < 300}
        run.problems.append(f"{w['non_2xx']} non-2xx responses (by status: {other}), {w['socket_errors']} socket errors")
        run.problems += [f"response {body}" for body in w["bodies"]]
        for what, (path, pattern) in logs.items():
            run.problems += [f"{what}: {line}" for line in _log_lines(path, offsets[what], pattern)]
        if not record:  # Report.add prints a recorded run's problems
            for problem in run.problems:
                print(f"      ! {name}: {problem}", flush=True)
    if record:
        report.add(run)
        print("      CPU per request: " + ", ".join(f"{k} {v:.2f} ms" for k, v in run.cpu_ms.items()), flush=True)
    return run


def _cpu_figures(report: Report, label: str, runs: list[Run]) -> None:
    layers = {layer: statistics.median(r.cpu_ms[layer] for r in runs) for layer in runs[0].cpu_ms}
    report.figures[f"{label}: CPU per request, ms (median)"] = ", ".join(f"{k} {v:.2f}" for k, v in layers.items())


def pool_and_scale(report: Report, cluster, seconds: int = 10, rounds: int = 2) -> None:
    print("Operations: pooling, scale, replica, WAL (wrk)")
    postgrest_bin = postgrest_binary()
    missing = [what for what, found in ((POSTGREST_MISSING, postgrest_bin), ("nginx", stack.find_nginx()),
                                        ("wrk", shutil.which("wrk")), ("pgbouncer", shutil.which("pgbouncer")))
               if not found]
    if missing:
        report.skipped["operations"] = "not found: " + ", ".join(missing)
        print("  skipped: " + report.skipped["operations"])
        return
    with psycopg.connect(cluster.url(common.BENCH_DB), autocommit=True) as conn:
        conn.execute(common.LIMITS_ON)
        # The reads' key, and rows for them to read (a CRM page of 25).
        key = conn.execute("select app_logic.create_api_key('bench-ops-' || gen_random_uuid(), 'reader')").fetchone()[0]
    base = config.scratch_dir("bench-ops")
    auth_url = cluster.url(common.BENCH_DB, user=config.AUTHENTICATOR, password=common.AUTH_PASSWORD)
    pgbouncer_port = stack.free_port()
    via_pgbouncer = ops_stack.pgbouncer_url(pgbouncer_port, config.AUTHENTICATOR, common.AUTH_PASSWORD, common.BENCH_DB)
    standby = None

    def instance(name: str, url: str, extra: dict[str, str] | None = None, http_extra: str = "") -> stack.StackConfig:
        run_dir = base / name
        run_dir.mkdir()
        return stack.StackConfig(
            run_dir=run_dir, database_url=url, api_port=stack.free_port(), postgrest_port=stack.free_port(),
            jwt_secret="j" * 48, postgrest_bin=postgrest_bin, nginx_bin=stack.find_nginx(), nginx_http_extra=http_extra,
            postgrest_extra_env=dict(extra or {}),
        )

    direct = instance("direct", auth_url, http_extra=http.NGINX_TRUST_WRK)
    second = instance("second", auth_url)
    plain = instance("unprepared", auth_url, ops_stack.PGBOUNCER_POSTGREST_ENV)
    pooled = instance("pgbouncer", via_pgbouncer, ops_stack.PGBOUNCER_POSTGREST_ENV)
    two = instance("two", auth_url, http_extra=http.NGINX_TRUST_WRK)  # nginx only: balances direct + second
    instances = [direct, second, plain, pooled]
    try:
        ops_stack.start_pgbouncer(base, cluster, {"postgres": cluster.password, config.AUTHENTICATOR: common.AUTH_PASSWORD},
                                  pgbouncer_port)
        standby = replica.create_standby(cluster, base / "standby", slot="chorus_bench", first_port=stack.free_port())
        standby.start()
        replica.wait_caught_up(cluster.url(common.BENCH_DB), standby.url(common.BENCH_DB))
        on_standby = instance("replica", standby.url(common.BENCH_DB, user=config.AUTHENTICATOR, password=common.AUTH_PASSWORD),
                              ops_stack.REPLICA_POSTGREST_ENV)
        reads_replica = instance("reads-replica", auth_url, http_extra=http.NGINX_TRUST_WRK)
        instances += [on_standby, reads_replica]
        for cfg in instances:
            stack.start_postgrest(cfg)
        stack.start_nginx(direct)
        stack.wait_until_ready(direct, timeout=30)
        # nginx with both PostgREST instances in the API upstream (round robin).
        two.postgrest_port = direct.postgrest_port
        stack.start_nginx(two)
        api_conf = two.nginx_dir / "api.conf"
        one_server = f"    server 127.0.0.1:{direct.postgrest_port};\n"
        assert one_server in api_conf.read_text()
        api_conf.write_text(api_conf.read_text().replace(
            one_server, f"{one_server}    server 127.0.0.1:{second.postgrest_port};\n", 1))
        subprocess.run(stack._nginx_argv(two, "-s", "reload"), check=True, capture_output=True)
        # nginx whose read pool is the standby's PostgREST (what `up --replica` renders).
        reads_replica.postgrest_port = direct.postgrest_port
        reads_replica.read_upstream = f"127.0.0.1:{on_standby.postgrest_port}"
        stack.start_nginx(reads_replica)
        for cfg in (second, plain, pooled, on_standby):
            deadline = time.monotonic() + 30
            while stack.http_status(f"http://127.0.0.1:{cfg.postgrest_port}/rpc/check_leads_health") != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgREST of {cfg.run_dir.name} not ready: {stack.postgrest_service(cfg.run_dir).log_tail(800)}")
                time.sleep(0.1)

        def pids(*cfgs: stack.StackConfig):
            def listed() -> list[int]:
                return [pid for cfg in cfgs if (pid := stack.postgrest_service(cfg.run_dir).pid())]
            return listed

        def nginx(cfg: stack.StackConfig):
            def listed() -> list[int]:
                master = stack.nginx_service(cfg.run_dir).pid()
                return [master, *common.children(master)] if master else []
            return listed

        def primary() -> list[int]:
            return common.cluster_pids(cluster)

        def on_replica() -> list[int]:
            return common.cluster_pids(standby)

        def pgbouncer() -> list[int]:
            pid = ops_stack.pgbouncer_service(base).pid()
            return [pid] if pid else []

        for cfg in instances:
            if not pids(cfg)():
                raise RuntimeError(f"PostgREST of {cfg.run_dir.name} runs but its pid is not known: its CPU would go uncounted")

        rpc = "/rpc/submit_lead"
        writes = {
            "direct": ("PostgREST own pool, prepared", f"http://127.0.0.1:{direct.postgrest_port}{rpc}",
                       {"PostgREST": pids(direct), "PostgreSQL": primary}),
            "unprepared": ("PostgREST own pool, unprepared", f"http://127.0.0.1:{plain.postgrest_port}{rpc}",
                           {"PostgREST": pids(plain), "PostgreSQL": primary}),
            "pgbouncer": ("PostgREST via PgBouncer (txn)", f"http://127.0.0.1:{pooled.postgrest_port}{rpc}",
                          {"PostgREST": pids(pooled), "PgBouncer": pgbouncer, "PostgreSQL": primary}),
            "one": ("nginx, 1 PostgREST", f"{direct.api_url}/leads",
                    {"nginx": nginx(direct), "PostgREST": pids(direct), "PostgreSQL": primary}),
            "two": ("nginx, 2 PostgREST", f"{two.api_url}/leads",
                    {"nginx": nginx(two), "PostgREST": pids(direct, second), "PostgreSQL": primary}),
        }
        page = "/leads?select=id,email,createdAt&order=createdAt.desc&limit=25"
        reads = {
            "reads-primary": ("GET /api/leads, reads on the primary", f"{direct.api_url}{page}",
                              {"nginx": nginx(direct), "PostgREST": pids(direct), "PostgreSQL": primary,
                               "standby": on_replica}),
            "reads-replica": ("GET /api/leads, reads on the replica", f"{reads_replica.api_url}{page}",
                              {"nginx": nginx(reads_replica), "PostgREST": pids(on_standby), "PostgreSQL": primary,
                               "standby": on_replica}),
        }
        for name, url, layers in writes.values():  # warm-up: pools fill, plans are cached
            http._wrk(report, cluster, name, url, 2, "api", None, layers)
        # What a failed read left in the logs: nginx's access log (status and upstream status of
        # each try), the PostgREST's log (5xx) and the servers' (errors, cancelled statements).
        not_2xx = r'" [013-9]\d\d |upstream=[^ ]*[013-9]\d\d'
        server_errors = r"ERROR|FATAL|PANIC|conflict|cancel"
        read_logs = {
            "reads-primary": {"nginx": (direct.nginx_dir / "access.log", not_2xx),
                              "nginx errors": (direct.nginx_dir / "error.log", "."),
                              "PostgREST": (stack.postgrest_service(direct.run_dir).logfile, "."),
                              "primary": (cluster.logfile, server_errors)},
            "reads-replica": {"nginx": (reads_replica.nginx_dir / "access.log", not_2xx),
                              "nginx errors": (reads_replica.nginx_dir / "error.log", "."),
                              "replica PostgREST": (stack.postgrest_service(on_standby.run_dir).logfile, "."),
                              "standby": (standby.logfile, server_errors),
                              "primary": (cluster.logfile, server_errors)},
        }
        for k, (name, url, layers) in reads.items():
            _reads(report, name, url, key, 2, layers, record=False, logs=read_logs[k])
        results: dict[str, list] = {k: [] for k in (*writes, *reads)}
        for _ in range(rounds):
            for k, (name, url, layers) in writes.items():
                results[k].append(http._wrk(report, cluster, name, url, seconds, "api", common.LEADS, layers))
            for k, (name, url, layers) in reads.items():
                results[k].append(_reads(report, name, url, key, seconds, layers, logs=read_logs[k]))
        # WAL per accepted submission.
        with psycopg.connect(cluster.url(common.BENCH_DB), autocommit=True) as conn:
            (lsn0,) = conn.execute("select pg_current_wal_lsn()").fetchone()
            (leads0,) = conn.execute("select count(*) from app.leads").fetchone()
            http._wrk(report, cluster, "WAL per submission", writes["one"][1], max(2, seconds // 2), "api", None, writes["one"][2])
            (wal, leads1) = conn.execute(
                "select pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn), (select count(*) from app.leads)", (str(lsn0),)
            ).fetchone()
        report.figures["WAL per lead submission, bytes"] = round(float(wal) / max(1, leads1 - leads0))
        # Page views, the fastest-growing table: events per second in batches through nginx, and
        # what a stored one takes with its indexes (the figure that says when they move off).
        size = ("select coalesce(sum(pg_total_relation_size(inhrelid)), 0), (select count(*) from app.page_views) "
                "from pg_inherits where inhparent = 'app.page_views'::regclass")
        with psycopg.connect(cluster.url(common.BENCH_DB), autocommit=True) as conn:
            bytes0, rows0 = conn.execute(size).fetchone()
        views = [http._wrk(report, cluster, "POST /api/page-views, batches of 100", f"{direct.api_url}/page-views", seconds,
                           "pageviews", common.PAGE_VIEWS, writes["one"][2], rows_per_request=100) for _ in range(rounds)]
        with psycopg.connect(cluster.url(common.BENCH_DB), autocommit=True) as conn:
            conn.execute("checkpoint")
            bytes1, rows1 = conn.execute(size).fetchone()
        report.figures["page views per second, batches of 100 through nginx (median)"] = round(
            100 * statistics.median(r.tps for r in views))
        report.figures["a stored page view with its indexes, bytes"] = round(float(bytes1 - bytes0) / max(1, rows1 - rows0))
        med = {k: report.median(runs[0].name, runs) for k, runs in results.items()}
        report.ratios["PostgREST via PgBouncer / own pool"] = med["pgbouncer"]["tps"] / med["direct"]["tps"]
        report.ratios["PostgREST unprepared / prepared (own pool)"] = med["unprepared"]["tps"] / med["direct"]["tps"]
        report.ratios["nginx with 2 PostgREST / 1"] = med["two"]["tps"] / med["one"]["tps"]
        report.ratios["reads on the replica / on the primary (reads/s)"] = med["reads-replica"]["tps"] / med["reads-primary"]["tps"]
        primary_cpu = {k: statistics.median(r.cpu_ms["PostgreSQL"] for r in results[k]) for k in reads}
        report.figures["primary's PostgreSQL CPU per read, ms: reads on the primary / on the replica"] = (
            f"{fmt(primary_cpu['reads-primary'])} / {fmt(primary_cpu['reads-replica'])}")
        report.figures["POST /api/leads through nginx, 1 PostgREST, /s (median)"] = round(med["one"]["tps"])
        for k, runs in results.items():
            _cpu_figures(report, (writes | reads)[k][0], runs)
        report.notes.append(
            "Pooling: PostgREST keeps its own pool while PostgREST via PgBouncer / own pool < 1 "
            f"(measured {report.ratios['PostgREST via PgBouncer / own pool']:.2f}); PgBouncer is for the other services."
        )
    finally:
        for cfg in (two, *instances):
            stack.stop_all(cfg.run_dir)
        ops_stack.pgbouncer_service(base).stop()
        if standby is not None:
            standby.destroy()
            with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
                conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = 'chorus_bench'")
        shutil.rmtree(base, ignore_errors=True)
