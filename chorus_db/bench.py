"""`invoke bench`: what the in-database logic costs, as ratios against baselines of the same run.

The machine is shared and noisy, so absolute numbers mean little: every figure is reported
next to a baseline measured minutes apart in the same process, and each pair is measured in
alternation (baseline, subject, baseline, subject) so drift hits both alike.

SQL path (pgbench, 16 clients): (a) a plain INSERT of a valid lead row, (b) a submission as
PostgREST runs it (bench/submit_lead.sql); b/a, goal >= 0.5. The limiter's cost: b with the
rate-limit rules in place against b with none. Page views: the endpoint against a plain
INSERT into the same partitioned table. Retention at scale and the HTTP path are separate
functions below; the HTTP part needs PostgREST and is skipped with a reason without it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from . import config, testing
from .build import build
from .cluster import Cluster

BENCH_DIR = config.ROOT / "bench"
RESULTS_DIR = config.ROOT / "bench-results"
BENCH_DB = "chorus_bench"
AUTH_PASSWORD = "authenticator-bench-only"


@dataclass
class Run:
    name: str
    tps: float
    transactions: int
    failed: int
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass
class Report:
    machine: dict
    runs: list[Run] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    figures: dict[str, float | str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, run: Run) -> Run:
        self.runs.append(run)
        print(f"  {run.name:34} {run.tps:10.1f} tps   p50 {fmt(run.p50_ms)} ms   p99 {fmt(run.p99_ms)} ms"
              f"   ({run.transactions} tx, {run.failed} failed)", flush=True)
        return run


def fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.2f}"


def machine() -> dict:
    mem = ""
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": mem.split(":", 1)[-1].strip(),
        "postgres": subprocess.run(
            [str(config.pg_bindir() / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def prepare(cluster: Cluster) -> str:
    """A fresh bench database built from the source, limits raised so every request is admitted
    (the counters are still written: that is the limiter's cost being measured)."""
    url = testing.recreate_database(cluster, BENCH_DB)
    build(url, log=lambda _m: None)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"alter role authenticator password '{AUTH_PASSWORD}'")
        conn.execute("update app.rate_limit_rules set max_requests = 1000000000")
    return url


def pgbench(cluster: Cluster, name: str, script: Path, *, clients: int = 16, seconds: int = 10,
            user: str = "postgres") -> Run:
    """Run one pgbench script; latencies come from the per-transaction log."""
    env = testing.psql_env(cluster, BENCH_DB)
    if user == "authenticator":
        env.update(PGUSER="authenticator", PGPASSWORD=AUTH_PASSWORD)
    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
        cmd = [
            str(config.pg_bindir() / "pgbench"), "-n", "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(seconds), "-f", str(script), "--log", f"--log-prefix={tmp}/tx",
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench {script.name} failed:\n{proc.stdout}\n{proc.stderr}")
        latencies = []
        for log in Path(tmp).glob("tx*"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    latencies.append(int(parts[2]) / 1000.0)
    tps = float(re.search(r"tps = ([0-9.]+)", proc.stdout).group(1))
    tx = int(re.search(r"number of transactions actually processed: (\d+)", proc.stdout).group(1))
    failed_match = re.search(r"number of failed transactions: (\d+)", proc.stdout)
    return Run(name, tps, tx, int(failed_match.group(1)) if failed_match else 0, *percentiles(latencies))


def percentiles(latencies: list[float]) -> tuple[float | None, float | None]:
    if len(latencies) < 2:
        return None, None
    qs = statistics.quantiles(latencies, n=100, method="inclusive")
    return qs[49], qs[98]


def alternate(report: Report, cluster: Cluster, pairs: list[tuple[str, Path, str]], rounds: int, seconds: int,
              setup: dict[str, str] | None = None) -> dict[str, float]:
    """Measure several scripts in alternation; return the median tps of each."""
    results: dict[str, list[float]] = {name: [] for name, _, _ in pairs}
    for _ in range(rounds):
        for name, script, user in pairs:
            if setup and name in setup:
                with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
                    conn.execute(setup[name])
            results[name].append(report.add(pgbench(cluster, name, script, seconds=seconds, user=user)).tps)
    return {name: statistics.median(values) for name, values in results.items()}


def sql_path(report: Report, cluster: Cluster, seconds: int, rounds: int) -> None:
    print("SQL path (pgbench, 16 clients)")
    limits_on = "update app.rate_limit_rules set max_requests = 1000000000"
    # No rule for an action: enforce_rate_limits counts nothing and admits everything.
    limits_off = (
        "create table if not exists public.bench_saved_rules as select * from app.rate_limit_rules; "
        "delete from app.rate_limit_rules"
    )
    restore = (
        "insert into app.rate_limit_rules select * from public.bench_saved_rules "
        "on conflict do nothing; " + limits_on
    )
    medians = alternate(
        report, cluster,
        [
            ("a plain insert", BENCH_DIR / "plain_insert.sql", "postgres"),
            ("b submission (limiter on)", BENCH_DIR / "submit_lead.sql", "authenticator"),
            ("b submission (limiter off)", BENCH_DIR / "submit_lead.sql", "authenticator"),
        ],
        rounds, seconds,
        setup={"b submission (limiter on)": restore, "b submission (limiter off)": limits_off},
    )
    with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
        conn.execute(restore)
    report.ratios["b/a submission vs plain insert (goal >= 0.5)"] = medians["b submission (limiter on)"] / medians["a plain insert"]
    report.ratios["limiter on / off"] = medians["b submission (limiter on)"] / medians["b submission (limiter off)"]

    print("Page-view ingest (pgbench, 16 clients)")
    medians = alternate(
        report, cluster,
        [
            ("page view plain insert", BENCH_DIR / "page_view_plain.sql", "postgres"),
            ("page view endpoint", BENCH_DIR / "page_view_api.sql", "authenticator"),
        ],
        rounds, seconds,
    )
    report.ratios["page view endpoint / plain insert"] = medians["page view endpoint"] / medians["page view plain insert"]


def write(report: Report) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    return path


def print_summary(report: Report) -> None:
    print("\nRatios (same run):")
    for name, value in report.ratios.items():
        print(f"  {name:55} {value:6.3f}")
    if report.figures:
        print("Figures:")
        for name, value in report.figures.items():
            print(f"  {name:55} {value}")
    for name, why in report.skipped.items():
        print(f"  skipped {name}: {why}")


# -- HTTP path ---------------------------------------------------------------------------------
BARE_SCHEMA_SQL = """
drop schema if exists bench_bare cascade;
create schema bench_bare;
-- The same columns as app.leads, nothing else: no checks, no unique email, no logic.
create table bench_bare.leads (like app.leads including defaults);
alter table bench_bare.leads drop column load_time_lcp, drop column load_time_fid;
alter table bench_bare.leads add primary key (id);
grant usage on schema bench_bare to anon;
grant insert on bench_bare.leads to anon;
"""


def _wrk(name: str, url: str, seconds: int, style: str, spoof_ip: bool) -> Run:
    env = dict(os.environ, BODY_STYLE=style, SET_REAL_IP="1" if spoof_ip else "0")
    proc = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(BENCH_DIR / "wrk_post.lua"), url],
        capture_output=True, text=True, env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed for {name}:\n{proc.stdout}\n{proc.stderr}")
    out = proc.stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def latency(pct: str) -> float | None:
        m = re.search(rf"^\s+{pct}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return Run(name, rps, total, int(bad.group(1)) if bad else 0, latency("50"), latency("99"))


def http_path(report: Report, cluster: Cluster, seconds: int = 10, quick: bool = False) -> None:
    from . import stack

    print("HTTP path (wrk, 16 connections)")
    postgrest_bin = stack.find_postgrest()
    if postgrest_bin is None or stack.find_nginx() is None or not shutil_which("wrk"):
        report.skipped["HTTP path"] = "PostgREST, nginx or wrk not found (set POSTGREST_BIN)"
        print("  skipped: " + report.skipped["HTTP path"])
        return
    with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
        conn.execute(BARE_SCHEMA_SQL)
    run_dir = Path(tempfile.mkdtemp(prefix="chorus-bench-http-"))
    bare_dir = run_dir / "bare"
    bare_dir.mkdir()
    auth_url = cluster.url(BENCH_DB, user=config.AUTHENTICATOR, password=AUTH_PASSWORD)
    cfg = stack.StackConfig(
        run_dir=run_dir, database_url=auth_url, api_port=stack.free_port(),
        postgrest_port=stack.free_port(), postgrest_admin_port=stack.free_port(),
        jwt_secret=stack.secret(run_dir, "jwt_secret", 48), postgrest_bin=postgrest_bin,
        nginx_bin=stack.find_nginx(),
    )
    bare_port = stack.free_port()
    # (c) the same PostgREST binary and pool, exposing only the bare table, no pre-request.
    bare_conf = bare_dir / "postgrest.conf"
    bare_conf.write_text(
        f'db-uri = "{auth_url}"\ndb-schemas = "bench_bare"\ndb-anon-role = "anon"\ndb-pool = 10\n'
        f'server-host = "127.0.0.1"\nserver-port = {bare_port}\njwt-secret = "{"x" * 40}"\nlog-level = "error"\n'
    )
    bare = subprocess.Popen([str(postgrest_bin), str(bare_conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        stack.start_postgrest(cfg)
        stack.start_nginx(cfg)
        stack.wait_until_ready(cfg, timeout=30)
        deadline = time.monotonic() + 20
        while stack.http_status(f"http://127.0.0.1:{bare_port}/") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        results: dict[str, list[Run]] = {"c": [], "d": [], "e": []}
        for _ in range(2):
            results["c"].append(report.add(_wrk("c PostgREST, bare table", f"http://127.0.0.1:{bare_port}/leads",
                                                seconds, "table", False)))
            results["d"].append(report.add(_wrk("d PostgREST, /rpc/submit_lead",
                                                f"http://127.0.0.1:{cfg.postgrest_port}/rpc/submit_lead",
                                                seconds, "api", True)))
            results["e"].append(report.add(_wrk("e nginx, POST /api/leads", f"{cfg.api_url}/leads",
                                                seconds, "api", False)))
        med = {k: statistics.median(r.tps for r in v) for k, v in results.items()}
        report.ratios["d/c project PostgREST vs bare table (goal >= 0.85)"] = med["d"] / med["c"]
        report.ratios["e/d through nginx vs direct"] = med["e"] / med["d"]
        for key in ("c", "d", "e"):
            report.figures[f"{key} p50 / p99 latency (ms)"] = (
                f"{statistics.median(r.p50_ms for r in results[key]):.2f} / "
                f"{statistics.median(r.p99_ms for r in results[key]):.2f}"
            )
    finally:
        bare.terminate()
        bare.wait(timeout=10)
        stack.stop_all(run_dir)


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)
