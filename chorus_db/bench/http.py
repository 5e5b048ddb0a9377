"""The HTTP path of `invoke bench` (wrk, 16 connections; skipped with a reason without
PostgREST, nginx or wrk): (c) a bare table through PostgREST, (d) POST /rpc/submit_lead through
the project's PostgREST, (e) POST /api/leads through nginx; d/c and e/d, with the CPU each
layer spent per request.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psycopg

from .. import config
from ..cluster import Cluster
from . import peer
from .common import (
    children,
    cluster_pids,
    proc_cpu,
    AUTH_PASSWORD, BENCH_DB, BENCH_DIR, CLIENTS, GOALS, LEADS, LIMITS_ON, PAGE_VIEWS, POSTGREST_MISSING, Check, Report,
    Run, _count, loadavg, postgrest_binary,
    pgbench, timed,
)

BARE_SCHEMA_SQL = """
drop schema if exists bench_bare cascade;
create schema bench_bare;
-- The same columns as app.leads, nothing else: no checks, no unique email, no logic.
create table bench_bare.leads (like app.leads including defaults);
alter table bench_bare.leads drop column load_time_lcp, drop column load_time_fid;
-- app.leads' rules are domains (db/schema/471): the bare columns get their base types.
do $$
declare
    v_column record;
begin
    for v_column in
        select a.attname, format_type(t.typbasetype, t.typtypmod) as base
        from pg_attribute as a join pg_type as t on t.oid = a.atttypid
        where a.attrelid = 'bench_bare.leads'::regclass and a.attnum > 0 and not a.attisdropped and t.typtype = 'd'
    loop
        execute format('alter table bench_bare.leads alter column %I type %s', v_column.attname, v_column.base);
    end loop;
end
$$;
alter table bench_bare.leads add primary key (id);
grant usage on schema bench_bare to anon;
grant insert on bench_bare.leads to anon;
"""

# The benchmark's nginx trusts X-Real-IP from wrk (on loopback) as the client address, so each
# request is a different client as on the internet; nginx still overwrites the header it passes
# on. Without it every request would come from 127.0.0.1: one client, whose single counter row
# all 16 connections would queue on (and whose log of hits, with the limits raised, would grow).
NGINX_TRUST_WRK = "set_real_ip_from 127.0.0.1;\nreal_ip_header X-Real-IP;"


def parse_wrk(out: str) -> dict:
    """Requests/s, completed requests, non-2xx/3xx responses, socket errors, p50 and p99 in ms
    (and the statuses and error bodies the script counted, when it did)."""
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def latency(pct: str) -> float | None:
        m = re.search(rf"^\s+{pct}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return {
        # With COUNT_STATUS=1 (bench/wrk_post.lua): responses by status, and the first bodies of
        # each status from 300 up, as "<status> <body>".
        "statuses": {int(code): int(n) for code, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)},
        "bodies": re.findall(r"^body (\d+ .*)$", out, re.M),
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(g) for g in sock.groups()) if sock else 0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
    }


# A layer of the HTTP stack and how to list its processes now.
Layers = dict[str, Callable[[], list[int]]]


def _layers_cpu(layers: Layers) -> dict[str, dict[int, float]]:
    return {name: {pid: proc_cpu(pid) for pid in pids()} for name, pids in layers.items()}


def _wrk(report: Report, cluster: Cluster, name: str, url: str, seconds: int, style: str, check: Check | None,
         layers: Layers, rows_per_request: int = 1) -> Run:
    """One wrk run; rows stored are checked against the 2xx count (times rows_per_request), CPU per
    request by layer (processes are listed at the start and at the end: PostgREST opens
    connections on demand). Its rate is requests per second."""
    # Every request from its own client address (X-Real-IP), as on the internet: to PostgREST
    # directly as nginx would set it, through nginx as the address it trusts (NGINX_TRUST_WRK).
    env = dict(os.environ, BODY_STYLE=style, SET_REAL_IP="1", BATCH=str(rows_per_request))
    before = _count(cluster, check.sql) if check else 0
    cpu0 = _layers_cpu(layers)
    proc = timed(["wrk", "-t2", f"-c{CLIENTS}", f"-d{seconds}s", "--latency", "-s", str(BENCH_DIR / "wrk_post.lua"), url],
                 env, seconds, name)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed for {name}:\n{proc.stdout}\n{proc.stderr}")
    cpu1 = _layers_cpu(layers)
    w = parse_wrk(proc.stdout)
    ok = w["requests"] - w["non_2xx"]
    run = Run(name, w["rps"], ok, w["non_2xx"] + w["socket_errors"], w["p50_ms"], w["p99_ms"], load=loadavg())
    for layer, end in cpu1.items():
        start = cpu0[layer]
        spent = sum(cpu - start.get(pid, 0.0) for pid, cpu in end.items())
        run.cpu_ms[layer] = spent * 1000 / max(1, w["requests"])
    if check is None:
        return run  # a warm-up
    grew = _count(cluster, check.sql) - before
    # Requests still in flight when wrk stops are committed but not counted: at most one per connection.
    if not ok * rows_per_request <= grew <= (ok + CLIENTS) * rows_per_request:
        run.problems.append(f"{check.label}: {grew} new rows for {ok} 2xx responses of {rows_per_request}")
        run.failed += abs(grew - ok * rows_per_request)
    if w["non_2xx"] or w["socket_errors"]:
        run.problems.append(f"{w['non_2xx']} non-2xx responses, {w['socket_errors']} socket errors")
    report.add(run)
    print("      CPU per request: " + ", ".join(f"{k} {v:.2f} ms" for k, v in run.cpu_ms.items()), flush=True)
    return run


@dataclass
class Target:
    """Something measured in the alternation: measure(seconds, warm=False) gives its Run."""

    name: str
    measure: Callable[..., Run]


PAGE_VIEW_BATCH = 100


def http_path(report: Report, cluster: Cluster, seconds: int = 10, rounds: int = 2, quick: bool = False,
              knobs: bool = True, main: bool = True) -> None:
    from .. import stack

    print(f"HTTP path (wrk, {CLIENTS} connections)")
    postgrest_bin = postgrest_binary()
    missing = [what for what, found in ((POSTGREST_MISSING, postgrest_bin), ("nginx", stack.find_nginx()),
                                        ("wrk", shutil.which("wrk"))) if not found]
    if missing:
        report.skipped["HTTP path"] = "not found: " + ", ".join(missing)
        print("  skipped: " + report.skipped["HTTP path"])
        return
    with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
        conn.execute(BARE_SCHEMA_SQL)
        conn.execute(LIMITS_ON)
    run_dir = config.scratch_dir("bench-http")
    bare_dir = run_dir / "bare"
    bare_dir.mkdir()
    auth_url = cluster.url(BENCH_DB, user=config.AUTHENTICATOR, password=AUTH_PASSWORD)
    cfg = stack.StackConfig(
        run_dir=run_dir, database_url=auth_url, api_port=stack.free_port(),
        # On TCP, not its socket: line d posts to PostgREST directly, around nginx.
        postgrest_port=stack.free_port(),
        jwt_secret=stack.secret(run_dir, "jwt_secret", 48), postgrest_bin=postgrest_bin,
        nginx_bin=stack.find_nginx(), nginx_http_extra=NGINX_TRUST_WRK,
    )
    bare_port = stack.free_port()
    # (c) the same PostgREST binary and pool size, exposing only the bare table, no pre-request.
    bare_conf = bare_dir / "postgrest.conf"
    bare_conf.write_text(
        f'db-uri = "{auth_url}"\ndb-schemas = "bench_bare"\ndb-anon-role = "anon"\n'
        f'db-pool = {stack.read_postgrest_conf()["db-pool"]}\n'
        f'server-host = "127.0.0.1"\nserver-port = {bare_port}\njwt-secret = "{"x" * 40}"\nlog-level = "error"\n'
    )
    bare = subprocess.Popen([str(postgrest_bin), str(bare_conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    peer_server = None
    try:
        peer_server = peer.start(report, cluster) if main else None
        stack.start_postgrest(cfg)
        stack.start_nginx(cfg)
        stack.wait_until_ready(cfg, timeout=30)
        deadline = time.monotonic() + 20
        while stack.http_status(f"http://127.0.0.1:{bare_port}/") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        project_pid = stack.postgrest_service(run_dir).pid()
        nginx_master = stack.nginx_service(run_dir).pid()

        def postgres() -> list[int]:
            return cluster_pids(cluster)

        def nginx() -> list[int]:
            return [nginx_master, *children(nginx_master)] if nginx_master else []

        if main:
            def wrk(name: str, url: str, style: str, check: Check, layers: Layers, rows: int = 1) -> Target:
                return Target(name, lambda s, warm=False: _wrk(report, cluster, name, url, s, style, None if warm else check,
                                                                layers, rows))

            project = {"PostgREST": lambda: [project_pid], "PostgreSQL": postgres}
            targets = {
                "c": wrk("c PostgREST, bare table", f"http://127.0.0.1:{bare_port}/leads", "table",
                         Check("bench_bare.leads", "select count(*) from bench_bare.leads"),
                         {"PostgREST": lambda: [bare.pid], "PostgreSQL": postgres}),
                "d": wrk("d PostgREST, /rpc/submit_lead", f"http://127.0.0.1:{cfg.postgrest_port}/rpc/submit_lead", "api",
                         LEADS, project),
                "e": wrk("e nginx, POST /api/leads", f"{cfg.api_url}/leads", "api", LEADS, {"nginx": nginx, **project}),
                "pv": wrk(f"page-view batches of {PAGE_VIEW_BATCH} through nginx", f"{cfg.api_url}/page-views",
                          "pageviews", PAGE_VIEWS, {"nginx": nginx, **project}, PAGE_VIEW_BATCH),
                "pv-plain": Target("page view plain insert (pgbench)", lambda s, warm=False: pgbench(
                    cluster, "page view plain insert (pgbench)", BENCH_DIR / "page_view_plain.sql", seconds=s,
                    checks=(PAGE_VIEWS,))),
            }
            if peer_server is not None:
                targets["peer"] = wrk(f"peer app server ({peer.DESCRIPTION})", peer_server.url, "api", LEADS,
                                      peer.layers(peer_server, postgres))
            # Warm-up, not recorded: PostgREST fills its pool, the backends cache their plans.
            for target in targets.values():
                target.measure(2, warm=True)
            results: dict[str, list[Run]] = {key: [] for key in targets}
            for _ in range(rounds):
                for key, target in targets.items():
                    run = target.measure(seconds)
                    if key == "pv-plain":
                        report.add(run)
                    results[key].append(run)
            med = {key: report.median(runs[0].name, runs) for key, runs in results.items()}
            d_over_c = med["d"]["tps"] / med["c"]["tps"]
            report.ratios["d/c project PostgREST vs bare table"] = d_over_c
            report.ratios["e/d through nginx vs direct"] = med["e"]["tps"] / med["d"]["tps"]
            cpu = {key: {layer: statistics.median(r.cpu_ms[layer] for r in runs) for layer in runs[0].cpu_ms}
                   for key, runs in results.items() if runs[0].cpu_ms}
            for key, layers in cpu.items():
                report.figures[f"{key} CPU per request, ms (median)"] = ", ".join(f"{k} {v:.2f}" for k, v in layers.items())
            report.ratios["d-db-cpu-ms PostgreSQL CPU per submission through PostgREST (d), ms"] = cpu["d"]["PostgreSQL"]
            events = med["pv"]["tps"] * PAGE_VIEW_BATCH
            report.figures["page-view events per second through nginx in batches of 100"] = round(events)
            report.ratios["batch-events/plain page-view events/s through nginx (batches of 100) vs plain INSERT/s"] = (
                events / med["pv-plain"]["tps"]
            )
            if "peer" in med and med["peer"]["failed"]:
                # A rate of errors is no throughput: the peer no longer matches the schema.
                report.skipped["d/peer"] = (
                    f"the app-server peer failed {med['peer']['failed']} requests (bench/peer_app.py must follow "
                    "the schema; tests/test_bench.py runs it): no ratio"
                )
                print(f"  ! d/peer not reported: {report.skipped['d/peer']}", flush=True)
            elif "peer" in med:
                report.ratios[f"d/peer project PostgREST vs the app server ({peer.DESCRIPTION})"] = (
                    med["d"]["tps"] / med["peer"]["tps"]
                )
            if not GOALS["d/c"].met(d_over_c):
                c_total, d_total = sum(cpu["c"].values()), sum(cpu["d"].values())
                report.notes.append(
                    f"d/c: per request the database spent {cpu['d']['PostgreSQL']:.2f} ms of CPU for d against "
                    f"{cpu['c']['PostgreSQL']:.2f} ms for c, PostgREST {cpu['d']['PostgREST']:.2f} against "
                    f"{cpu['c']['PostgREST']:.2f} ms; on a CPU-bound machine d/c {GOALS['d/c']} would need d's "
                    f"{d_total:.2f} ms within {c_total / GOALS['d/c'].value:.2f} ms."
                )
        if knobs:
            postgrest_knobs(report, cluster, cfg, seconds, rounds, postgres)
    finally:
        if peer_server is not None:
            peer_server.stop()
        bare.terminate()
        try:
            bare.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bare.kill()
            bare.wait()
        stack.stop_all(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)



# PostgREST's knobs, each measured as (d) against the configuration as shipped (db-pool 20,
# chosen with these runs), in alternation.
# GHCRTS passes GHC runtime options (the binary is built with -N -I0 -qg; -A sets the allocation
# area of the young generation, which PostgREST's own small-machine benchmarks found +14% with).
KNOBS = {
    "db-pool 10": {"PGRST_DB_POOL": "10"},
    "db-pool 40": {"PGRST_DB_POOL": "40"},
    "+RTS -A16m": {"GHCRTS": "-A16m"},
    # One capability instead of one per core: on 2 cores PostgREST's threads compete with the
    # database's backends; and a smaller allocation area than -A16m.
    "+RTS -N1": {"GHCRTS": "-N1"},
    "+RTS -A4m": {"GHCRTS": "-A4m"},
    "db-prepared-statements false": {"PGRST_DB_PREPARED_STATEMENTS": "false"},
    "no pre-request": {"PGRST_DB_PRE_REQUEST": ""},
}


def postgrest_knobs(report: Report, cluster: Cluster, cfg, seconds: int, rounds: int,
                    postgres: Callable[[], list[int]]) -> None:
    """d with each knob against d as shipped (deploy/postgrest/postgrest.conf), alternated."""
    from .. import stack

    print("PostgREST knobs (d, each against the shipped configuration)")
    url = f"http://127.0.0.1:{cfg.postgrest_port}/rpc/submit_lead"

    def restarted(env: dict[str, str]) -> int:
        cfg.postgrest_extra_env = env
        # One more try: under load a restart was once seen to die while starting (session 7's
        # db-prepared-statements run, which starts fine alone); a knob is skipped only if it fails twice.
        for attempt in (1, 2):
            stack.postgrest_service(cfg.run_dir).stop()
            try:
                stack.start_postgrest(cfg)
                stack.wait_until_ready(cfg, timeout=30)
                break
            except stack.StackError:
                if attempt == 2:
                    raise
                time.sleep(1)
        pid = stack.postgrest_service(cfg.run_dir).pid()
        _wrk(report, cluster, "warm-up", url, 2, "api", None, {"PostgREST": lambda: [pid]})
        return pid

    shipped: list[Run] = []
    results: dict[str, list[Run]] = {name: [] for name in KNOBS}
    pair_base: dict[str, list[Run]] = {name: [] for name in KNOBS}
    try:
        for _ in range(rounds):
            for name, env in KNOBS.items():
                if name in report.skipped:
                    continue
                for label, variant, runs in (("shipped", {}, shipped), (name, env, results[name])):
                    try:
                        pid = restarted(variant)
                    except stack.StackError as exc:
                        # The end of the message is the end of PostgREST's log: the reason it stopped.
                        report.skipped[name] = f"PostgREST did not start with it, twice: ...{str(exc)[-400:]}"
                        print(f"  skipped {name}: {report.skipped[name]}")
                        break
                    runs.append(_wrk(report, cluster, f"d, {label}", url, seconds, "api", LEADS,
                                     {"PostgREST": lambda pid=pid: [pid], "PostgreSQL": postgres}))
                    if label == "shipped":
                        pair_base[name].append(runs[-1])
    finally:
        restarted({})
    report.median("d, shipped configuration", shipped)
    for name, runs in results.items():
        if not runs:
            continue
        report.median(f"d, {name}", runs)
        # Each run against the shipped one measured just before it: drift hits both alike.
        pairs = [run.tps / before.tps for run, before in zip(runs, pair_base[name])]
        report.ratios[f"knob {name}: d with it / as shipped (median of adjacent pairs)"] = statistics.median(pairs)
        # CPU per request of each layer, the same pairs: on a shared machine a knob's throughput
        # moves with the other clients' load, its CPU per request much less.
        for layer in ("PostgREST", "PostgreSQL"):
            cpu = [run.cpu_ms[layer] / before.cpu_ms[layer] for run, before in zip(runs, pair_base[name])
                   if run.cpu_ms.get(layer) and before.cpu_ms.get(layer)]
            if cpu:
                report.figures[f"knob {name}: {layer} CPU per request with it / as shipped (median of pairs)"] = round(
                    statistics.median(cpu), 3)
