"""`invoke bench --only ops` (issue 16): should PostgREST go through PgBouncer, and what does a
second PostgREST behind nginx give? Ratios against baselines of the same run, alternated.

* pool: POST /rpc/submit_lead to PostgREST with its own pool (prepared statements, as
  deployed) against the same PostgREST without prepared statements, and against it through
  PgBouncer in transaction mode (which needs prepared statements off and no LISTEN channel:
  Debian's PgBouncer 1.18 predates prepared-statement support).
* scale: POST /api/leads through nginx with one PostgREST against nginx balancing two.

Each run's CPU per request is split by layer (nginx, PostgREST, PgBouncer, PostgreSQL), which
says what saturates first. Its own module of the bench package; it uses common's and http's helpers.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import psycopg

from .. import config, ops_stack, stack
from . import common, http


def pool_and_scale(report, cluster, seconds: int = 10, rounds: int = 2) -> None:

    print("Pooling and scale (wrk, 16 connections)")
    postgrest_bin = stack.find_postgrest()
    missing = [what for what, found in (("PostgREST (set POSTGREST_BIN)", postgrest_bin), ("nginx", stack.find_nginx()),
                                        ("wrk", shutil.which("wrk")), ("pgbouncer", shutil.which("pgbouncer")))
               if not found]
    if missing:
        report.skipped["pooling and scale"] = "not found: " + ", ".join(missing)
        print("  skipped: " + report.skipped["pooling and scale"])
        return
    with psycopg.connect(cluster.url(common.BENCH_DB), autocommit=True) as conn:
        conn.execute(common.LIMITS_ON)
    base = config.scratch_dir("bench-ops")
    auth_url = cluster.url(common.BENCH_DB, user=config.AUTHENTICATOR, password=common.AUTH_PASSWORD)
    pgbouncer_port = stack.free_port()
    via_pgbouncer = ops_stack.pgbouncer_url(pgbouncer_port, config.AUTHENTICATOR, common.AUTH_PASSWORD, common.BENCH_DB)
    unprepared = {"PGRST_DB_PREPARED_STATEMENTS": "false", "PGRST_DB_CHANNEL_ENABLED": "false"}

    def instance(name: str, url: str, extra: dict[str, str], http_extra: str = "") -> stack.StackConfig:
        run_dir = base / name
        run_dir.mkdir()
        return stack.StackConfig(
            run_dir=run_dir, database_url=url, api_port=stack.free_port(), postgrest_port=stack.free_port(),
            postgrest_admin_port=stack.free_port(), jwt_secret="j" * 48, postgrest_bin=postgrest_bin,
            nginx_bin=stack.find_nginx(), nginx_http_extra=http_extra, postgrest_extra_env=extra,
        )

    direct = instance("direct", auth_url, {}, http.NGINX_TRUST_WRK)
    second = instance("second", auth_url, {})
    plain = instance("unprepared", auth_url, unprepared)
    pooled = instance("pgbouncer", via_pgbouncer, unprepared)
    two = instance("two", auth_url, {}, http.NGINX_TRUST_WRK)  # nginx only: balances direct + second
    try:
        ops_stack.start_pgbouncer(base, cluster, {"postgres": cluster.password, config.AUTHENTICATOR: common.AUTH_PASSWORD},
                                  pgbouncer_port)
        for cfg in (direct, second, plain, pooled):
            stack.start_postgrest(cfg)
        stack.start_nginx(direct)
        stack.wait_until_ready(direct, timeout=30)
        # nginx with both PostgREST instances in the API upstream (round robin).
        two.postgrest_port = direct.postgrest_port
        stack.start_nginx(two)
        api_conf = two.nginx_dir / "api.conf"
        one_server = f"server 127.0.0.1:{direct.postgrest_port};"
        api_conf.write_text(api_conf.read_text().replace(
            one_server, f"{one_server}\n    server 127.0.0.1:{second.postgrest_port};", 1))
        subprocess.run(stack._nginx_argv(two, "-s", "reload"), check=True, capture_output=True)
        for cfg in (second, plain, pooled):
            deadline = time.monotonic() + 30
            while stack.http_status(f"http://127.0.0.1:{cfg.postgrest_admin_port}/ready") != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgREST of {cfg.run_dir.name} not ready: {stack.postgrest_service(cfg.run_dir).log_tail(800)}")
                time.sleep(0.1)

        def pids(cfg: stack.StackConfig) -> list[int]:
            pid = stack.postgrest_service(cfg.run_dir).pid()
            return [pid] if pid else []

        def postgres() -> list[int]:
            return http._cluster_pids(cluster)

        def nginx(cfg: stack.StackConfig):
            def listed() -> list[int]:
                master = stack.nginx_service(cfg.run_dir).pid()
                return [master, *http._children(master)] if master else []
            return listed

        def pgbouncer() -> list[int]:
            pid = ops_stack.pgbouncer_service(base).pid()
            return [pid] if pid else []

        for cfg in (direct, second, plain, pooled):
            if not pids(cfg):
                raise RuntimeError(f"PostgREST of {cfg.run_dir.name} runs but its pid is not known: its CPU would go uncounted")

        rpc = "/rpc/submit_lead"
        targets = {
            "direct": ("PostgREST own pool, prepared", f"http://127.0.0.1:{direct.postgrest_port}{rpc}",
                       {"PostgREST": lambda: pids(direct), "PostgreSQL": postgres}),
            "unprepared": ("PostgREST own pool, unprepared", f"http://127.0.0.1:{plain.postgrest_port}{rpc}",
                           {"PostgREST": lambda: pids(plain), "PostgreSQL": postgres}),
            "pgbouncer": ("PostgREST via PgBouncer (txn)", f"http://127.0.0.1:{pooled.postgrest_port}{rpc}",
                          {"PostgREST": lambda: pids(pooled), "PgBouncer": pgbouncer, "PostgreSQL": postgres}),
            "one": ("nginx, 1 PostgREST", f"{direct.api_url}/leads",
                    {"nginx": nginx(direct), "PostgREST": lambda: pids(direct), "PostgreSQL": postgres}),
            "two": ("nginx, 2 PostgREST", f"{two.api_url}/leads",
                    {"nginx": nginx(two), "PostgREST": lambda: pids(direct) + pids(second), "PostgreSQL": postgres}),
        }
        for name, url, layers in targets.values():  # warm-up: pools fill, plans are cached
            http._wrk(report, cluster, name, url, 2, "api", None, layers)
        results: dict[str, list] = {key: [] for key in targets}
        for _ in range(rounds):
            for key, (name, url, layers) in targets.items():
                results[key].append(http._wrk(report, cluster, name, url, seconds, "api", common.LEADS, layers))
        # WAL per accepted submission: what a replica must receive and an archive must keep.
        with psycopg.connect(cluster.url(common.BENCH_DB), autocommit=True) as conn:
            (lsn0,) = conn.execute("select pg_current_wal_lsn()").fetchone()
            (leads0,) = conn.execute("select count(*) from app.leads").fetchone()
            http._wrk(report, cluster, "WAL per submission", targets["one"][1], max(2, seconds // 2), "api", None,
                       targets["one"][2])
            (wal, leads1) = conn.execute(
                "select pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn), (select count(*) from app.leads)", (str(lsn0),)
            ).fetchone()
        report.figures["WAL per lead submission, bytes"] = round(float(wal) / max(1, leads1 - leads0))
        med = {key: report.median(runs[0].name, runs) for key, runs in results.items()}
        report.ratios["PostgREST via PgBouncer / own pool"] = med["pgbouncer"]["tps"] / med["direct"]["tps"]
        report.ratios["PostgREST unprepared / prepared (own pool)"] = med["unprepared"]["tps"] / med["direct"]["tps"]
        report.ratios["nginx with 2 PostgREST / 1"] = med["two"]["tps"] / med["one"]["tps"]
        import statistics

        for key, runs in results.items():
            layers = {layer: statistics.median(r.cpu_ms[layer] for r in runs) for layer in runs[0].cpu_ms}
            report.figures[f"{targets[key][0]}: CPU per request, ms (median)"] = ", ".join(
                f"{k} {v:.2f}" for k, v in layers.items())
        report.notes.append(
            "Pooling: PostgREST keeps its own pool when PostgREST via PgBouncer / own pool < 1 "
            f"(measured {report.ratios['PostgREST via PgBouncer / own pool']:.2f}); PgBouncer is for the other services."
        )
    finally:
        for cfg in (two, direct, second, plain, pooled):
            stack.stop_all(cfg.run_dir)
        ops_stack.pgbouncer_service(base).stop()
        shutil.rmtree(base, ignore_errors=True)
