"""What every part of `invoke bench` shares: runs and the report, the bench database, pgbench.

The machine is shared and noisy, so absolute numbers mean little: every figure is reported
next to a baseline measured in the same process, and each pair is measured in alternation
(baseline, subject, baseline, subject) so that drift hits both alike; the medians are compared.
Every run is checked against the database: each transaction must have stored its rows.
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
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .. import config, testing
from ..build import build
from ..cluster import Cluster
from . import progress

BENCH_DIR = config.ROOT / "bench"
RESULTS_DIR = config.ROOT / "bench-results"
BENCH_DB = "chorus_bench"
AUTH_PASSWORD = "authenticator-bench-only"
CLIENTS = 16



@dataclass(frozen=True)
class Goal:
    """A figure's goal: at least (>=) or at most (<=) a value."""

    op: str
    value: float

    def met(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


# The goals of issue 13, by the first word of a ratio's name; a figure below its goal is
# reported as missed, with the reason in the notes.
GOALS = {
    "b/a'": Goal(">=", 0.5),
    "d/c": Goal(">=", 0.6),
    "d-db-cpu-ms": Goal("<=", 0.5),
    "d/peer": Goal(">=", 1.5),
    "batch-events/plain": Goal(">=", 0.5),
    "retention-p99": Goal("<=", 1.5),
    "growth-1M/1k": Goal("<=", 1.3),
    "growth-10M-audit/1k": Goal("<=", 1.3),
    # Field-level encryption (chorus_db/bench/encryption.py): encrypted against clear, same run.
    "encrypted-ingest/clear": Goal(">=", 0.8),
    "encrypted-analytics/clear": Goal(">=", 0.25),
}


@dataclass
class Run:
    name: str
    tps: float
    transactions: int
    failed: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    load: float | None = None
    problems: list[str] = field(default_factory=list)
    # CPU milliseconds per request (HTTP runs: by layer, PostgREST, PostgreSQL, nginx) or per
    # transaction (pgbench runs: PostgreSQL).
    cpu_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    machine: dict
    runs: list[Run] = field(default_factory=list)
    medians: dict[str, dict] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    figures: dict[str, float | str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, run: Run) -> Run:
        self.runs.append(run)
        print(f"  {run.name:34} {run.tps:9.1f} /s   p50 {fmt(run.p50_ms)} ms   p99 {fmt(run.p99_ms)} ms"
              f"   ({run.transactions} ok, {run.failed} failed, load {run.load:.2f})", flush=True)
        for problem in run.problems:
            print(f"      ! {problem}", flush=True)
        return run

    def median(self, name: str, runs: list[Run]) -> dict:
        entry = {
            "tps": statistics.median(r.tps for r in runs),
            "p50_ms": _median_or_none([r.p50_ms for r in runs]),
            "p99_ms": _median_or_none([r.p99_ms for r in runs]),
            "runs": len(runs),
            "failed": sum(r.failed for r in runs),
        }
        self.medians[name] = entry
        return entry


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.2f}"


# The bench is a developer's tool like the tests, so it runs the PostgREST they run: POSTGREST_BIN,
# `postgrest` on PATH, else the vendored copy (chorus_db.vendor: CHORUS_VENDOR_DIR, or the copy a
# test run unpacked). Before session 10 it looked only at the first two, so on a machine set up by
# `.ci/run` alone `invoke bench` skipped the HTTP path, and with it d/c, d-db-cpu and d/peer.
POSTGREST_MISSING = "PostgREST (set POSTGREST_BIN, or CHORUS_VENDOR_DIR to the folder of the vendored tarball)"


def postgrest_binary() -> Path | None:
    return testing.postgrest_for_tests()


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


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
    postgrest = None
    try:
        from .. import stack

        binary = postgrest_binary()
        postgrest = stack.postgrest_version(binary) if binary else None
    except Exception:  # noqa: BLE001 - the description is best effort
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
        "postgrest": postgrest,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_at_start": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None,
    }


SAVE_RULES = "create table public.bench_saved_rules as select * from app.rate_limit_rules"
LIMITS_ON = (
    "insert into app.rate_limit_rules select * from public.bench_saved_rules on conflict do nothing; "
    "update app.rate_limit_rules set max_requests = 1000000000"
)
# No rule for an action: enforce_rate_limits counts nothing and admits everything.
LIMITS_OFF = "delete from app.rate_limit_rules"


def drop(cluster: Cluster) -> None:
    """Remove the bench database (about 1 GB after a full run) from the test cluster."""
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f"drop database if exists {BENCH_DB} with (force)")


def prepare(cluster: Cluster) -> str:
    """A fresh bench database built from the source, limits raised so every request is admitted
    (the counters are still written: that is the limiter's cost being measured)."""
    url = testing.recreate_database(cluster, BENCH_DB)
    build(url, log=lambda _m: None)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"alter role authenticator password '{AUTH_PASSWORD}'")
        conn.execute(SAVE_RULES)
        conn.execute(LIMITS_ON)
    return url


# -- pgbench -----------------------------------------------------------------------------------
def parse_pgbench(stdout: str, stderr: str = "") -> tuple[float, int, int]:
    """(tps, transactions processed, failed) from pgbench's report. A client aborted by an error
    counts as one failed transaction (pgbench 15 counts only serialization and deadlock failures)."""
    tps_match = re.search(r"^tps = ([0-9.]+)", stdout, re.M)
    tx_match = re.search(r"number of transactions actually processed: (\d+)", stdout)
    if not tps_match or not tx_match:
        raise RuntimeError(f"pgbench gave no result:\n{stdout}\n{stderr}")
    failed_match = re.search(r"number of failed transactions: (\d+)", stdout)
    aborted = len(re.findall(r"client \d+ script \d+ aborted", stderr))
    return float(tps_match.group(1)), int(tx_match.group(1)), (int(failed_match.group(1)) if failed_match else 0) + aborted


def parse_pgbench_log(text: str) -> list[tuple[float, float]]:
    """(latency ms, completion time as epoch seconds) of each transaction of a pgbench --log file.
    With --rate the latency counts from the scheduled start, so it includes the schedule lag."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        # client_id transaction_no time script_no time_epoch time_us [schedule_lag]
        if len(parts) >= 6 and parts[2].isdigit():
            rows.append((int(parts[2]) / 1000.0, int(parts[4]) + int(parts[5]) / 1e6))
    return rows


def percentiles(latencies: list[float]) -> tuple[float | None, float | None]:
    if len(latencies) < 2:
        return None, None
    qs = statistics.quantiles(latencies, n=100, method="inclusive")
    return qs[49], qs[98]


def _count(cluster: Cluster, sql: str, database: str | None = None) -> int:
    with psycopg.connect(cluster.url(database or BENCH_DB), autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


# -- PostgREST's framing of a request ---------------------------------------------------------
# What PostgREST 12.2 sends for one POST /rpc/<function> (statements copied from its log with
# log_statement = all): BEGIN, one statement setting the search path, role and request context,
# the pre-request function, the call wrapped in PostgREST's query (which also reads the response
# status and headers), COMMIT. Distinct client addresses (X-Real-IP, as nginx sets it).
# Checked again in session 10 against the postmaster under callgrind (README, "The frame and the
# pool, session 10"): the same statements, PostgREST binding as parameters what this writes literally.
# A bench script that starts with a `-- frame:` line holds only its call; pgbench runs it framed.
# The request headers a frame sets in request.headers (names lower-cased; X-Real-IP's 10.0.0.1
# becomes the run's address), by `framed(..., headers=)`:
# * "bench": what the bench has always sent (wrk and pgbench send almost no headers);
# * "browser": what PostgREST receives when a browser posts the form through nginx, which
#   forwards only the headers PostgREST or the SQL reads (deploy/nginx/api.conf.template:
#   `proxy_pass_request_headers off`); tests/test_http_headers.py sends BROWSER_REQUEST through
#   the real stack and finds exactly these names in request.headers, and request.cookies `{}`;
# * "unfiltered": BROWSER_REQUEST as PostgREST would put it in request.headers (and its Cookie
#   in request.cookies) if nginx forwarded every header: what the filter spares the database.
# BROWSER_REQUEST is what Chrome 131 on Windows sends with the form's fetch() POST of a lead
# (web/public/form/form.js: same origin, so the site's cookies go along), headers in Chrome's
# order as its DevTools list them: the client hints (sec-ch-ua*) and fetch metadata (sec-fetch-*)
# Chrome adds to every request over HTTPS, a Referer with a campaign's query string, and about 2 kB (1,926 bytes) of
# cookies of the kind a marketing site sets (Google Analytics 4 and Ads, Meta's pixel, HubSpot,
# a OneTrust consent banner, Hotjar; values in those tools' formats, numbers made up).
BROWSER_COOKIE = "; ".join([
    "_ga=GA1.1.1184723985.1764493521",
    "_ga_7XKQ2M4B9R=GS1.1.1764671022.12.1.1764671388.0.0.1893425675",
    "_gcl_au=1.1.1618334721.1764493521",
    "_fbp=fb.1.1764493521847.729134856123984765",
    "hubspotutk=5d2c8f1a9b3e47c6a0f4d8e2b1c7a935",
    "__hstc=181257784.5d2c8f1a9b3e47c6a0f4d8e2b1c7a935.1764493522117.1764612875403.1764671023554.9",
    "__hssrc=1",
    "__hssc=181257784.3.1764671023554",
    "OptanonAlertBoxClosed=2026-11-30T09%3A05%3A44.213Z",
    "OptanonConsent=isGpcEnabled=0&datestamp=Tue+Dec+02+2026+10%3A29%3A48+GMT%2B0100+(Central+European+"
    "Standard+Time)&version=202409.1.0&browserGpcFlag=0&isIABGlobal=false&hosts=&consentId=3f9b2c71-5e"
    "8a-4d16-b0c4-9a7e2f1d6c38&interactionCount=2&isAnonUser=1&landingPath=NotLandingPage&groups=C0001"
    "%3A1%2CC0002%3A1%2CC0003%3A1%2CC0004%3A1%2CC0005%3A0&geolocation=DE%3BBE&AwaitingReconsent=false",
    "_hjSessionUser_3471265=eyJpZCI6IjJhYjRkOGM5LTFmM2UtNWE3Yi05YzBkLTRlNmY4YTJiMWMzZCIsImNyZWF0ZWQi"
    "OjE3NjQ0OTM1MjI0MDMsImV4aXN0aW5nIjp0cnVlfQ==",
    "_hjSession_3471265=eyJpZCI6IjdjMWU5ZjNhLTJiNGQtNDhlNi1hMGM1LWQzZjdiOGUyYTlmMSIsImMiOjE3NjQ2NzEw"
    "MjM2NzEsInMiOjAsInIiOjAsInNiIjowLCJzciI6MCwic2UiOjAsImZzIjowLCJzcCI6MX0=",
    "_clck=1w8k3pz%7C2%7Cfrt%7C0%7C1793",
    "_clsk=9x2mqa%7C1764671389102%7C4%7C1%7Cz.clarity.ms%2Fcollect",
    "li_sugr=8a6f3c21-4b7d-4e09-9c15-2d7e8f0a6b34",
    "_uetsid=0b4c6e10cf5611f0a3b1d79e2f8c4a65",
    "_uetvid=0b4c9a30cf5611f0b7e25f1c3d9a8e47",
    "ajs_anonymous_id=%22c7e4a1f2-9b3d-4c58-8e6a-1f0d2b7c9e43%22",
    "intercom-id-x7k2m9q4=6e1b9c3f-2a7d-4f08-b5c1-8d3e0a9f7b26",
    "intercom-device-id-x7k2m9q4=a4f8e2c6-1d9b-4a37-8c0e-5b7f3d1e9a62",
    "cf_clearance=Jx8mQ2vN7kL4pR1sT6wY9zA3bC5dE0fG.hI2jK4lM6-1764671023-1.2.1.1-aB3cD5eF7gH9iJ1kL3mN5oP7q"
    "R9sT1uV3wX5yZ7aB9cD1eF3gH5iJ7kL9mN1oP3qR5sT7uV9wX1yZ3aB5cD7eF9gH1iJ3kL5mN7oP9qR1sT3uV5wX7yZ9aB1cD3eF"
    "5gH7iJ9kL1mN3oP5qR7sT9uV1wX3yZ5aB7cD9eF1gH3iJ5kL7mN9oP1qR3sT5uV7wX9yZ1aB3cD5eF7gH9iJ1kL3mN5oP7qR9sT",
    "site_locale=en-GB",
    "recently_viewed=%5B%22%2Fecosystem%22%2C%22%2Fpricing%22%2C%22%2Fcontact%22%5D",
])
BROWSER_REQUEST = {
    "host": "www.chorus.example",
    "connection": "keep-alive",
    "content-length": "478",
    "sec-ch-ua-platform": '"Windows"',
    "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "sec-ch-ua": '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
    "content-type": "application/json",
    "sec-ch-ua-mobile": "?0",
    "accept": "*/*",
    "origin": "https://www.chorus.example",
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "cors",
    "sec-fetch-dest": "empty",
    "referer": "https://www.chorus.example/contact?utm_source=newsletter&utm_medium=email&utm_campaign=q4-launch",
    "accept-encoding": "gzip, deflate, br, zstd",
    "accept-language": "en-GB,en;q=0.9,de;q=0.8",
    "cookie": BROWSER_COOKIE,
    "priority": "u=1, i",
}
HEADER_SETS = {
    "bench": {
        "prefer": "return=minimal", "x-real-ip": "10.0.0.1", "user-agent": "pgbench", "content-type": "application/json",
        "host": "127.0.0.1", "accept": "*/*",
    },
    "browser": {
        "x-forwarded-for": "10.0.0.1", "user-agent": BROWSER_REQUEST["user-agent"], "content-length": "478",
        "x-real-ip": "10.0.0.1", "content-type": "application/json", "host": "localhost", "accept": "*/*",
    },
    "unfiltered": {**BROWSER_REQUEST, "x-real-ip": "10.0.0.1", "x-forwarded-for": "10.0.0.1"},
}
FRAME_LINE = re.compile(r"^-- frame:(?P<options>.*)$", re.M)
FRAME_HEAD = """\\set o2 random(0, 255)
\\set o3 random(0, 255)
\\set o4 random(1, 254)
begin isolation level read committed read write;
select
    set_config('search_path', '"api", "public"', true),
    set_config('role', '{role}', true),
    set_config('request.jwt.claims', '{{"role":"anon"}}', true),
    set_config('request.method', 'POST', true),
    set_config('request.path', '{path}', true),
    set_config(
        'request.headers',
        format(
            {headers},
            :o2::integer, :o3::integer, :o4::integer
        ),
        true
    ),
    set_config('request.cookies', {cookies}, true);
select "app_logic"."pre_request"(){switch_role};
"""
FRAME_CALL = """with pgrst_source as (
    select pgrst_call.pgrst_scalar
    from (
        {call} as pgrst_scalar
    ) as pgrst_call
)
select
    null::bigint as total_result_set,
    1 as page_total,
    coalesce(json_agg(_postgrest_t.pgrst_scalar) -> 0, 'null') as body,
    nullif(current_setting('response.headers', true), '') as response_headers,
    nullif(current_setting('response.status', true), '') as response_status,
    '' as response_inserted
from (select "{function}".* from "pgrst_source" as "{function}" limit 1000 offset 0) as _postgrest_t;
"""


def framed(script: Path, headers: str = "bench") -> str:
    """The text pgbench runs for a bench script. A script whose first line is `-- frame:` holds only
    its main statement and gets PostgREST's framing; options after it, `key=value`:
    `role` (default anon), `x-api-key` (a header), `path`, `statement` (a file of bench/ run as the
    main query instead of the script's call, unwrapped: a plain INSERT in PostgREST's transaction)
    and `main-role` (the role the main query runs as, switched to in the pre-request's statement
    after the pre-request ran as `role`: the pre-request refuses any role but anon without a key,
    and anon may not insert into a table). Without `statement` the script is one
    `select "api"."<function>"(...)`, called at /rpc/<function> inside PostgREST's query. Other
    scripts run as they are."""
    text = script.read_text()
    head = FRAME_LINE.match(text)
    if head is None:
        return text
    options = dict(word.split("=", 1) for word in head["options"].split())
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()
    if "statement" in options:
        main = (script.parent / options["statement"]).read_text().strip() + "\n"
        path = options["path"]
    else:
        function = re.match(r'select "api"\."(\w+)"\(', body)
        if function is None:
            raise ValueError(f"{script.name}: a framed script holds one select \"api\".\"<function>\"(...) call")
        main = FRAME_CALL.format(call=body.rstrip(";"), function=function[1])
        path = options.get("path", f"/rpc/{function[1]}")
    sent = {**HEADER_SETS[headers], **{name: value for name, value in options.items() if name.startswith("x-")}}
    header_text, cookies = _frame_literal(sent), _frame_literal(_cookies(sent.get("cookie", "")), formatted=False)
    switch = f", set_config('role', '{options['main-role']}', true)" if "main-role" in options else ""
    head = FRAME_HEAD.format(
        role=options.get("role", "anon"), path=path, headers=header_text, cookies=cookies, switch_role=switch
    )
    return head + main + "commit;\n"


def _cookies(header: str) -> dict[str, str]:
    """request.cookies as PostgREST sets it from a Cookie header: each name=value pair."""
    pairs = (part.strip().partition("=") for part in header.split(";") if part.strip())
    return {name: value for name, _eq, value in pairs}


def _frame_literal(value: dict[str, str], formatted: bool = True) -> str:
    """A JSON object as the SQL literal of the frame: for format() (% doubled) with X-Real-IP's
    octets as its %s, or as it is."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("'", "''")
    if formatted:
        text = text.replace("%", "%%").replace('"x-real-ip":"10.0.0.1"', '"x-real-ip":"10.%s.%s.%s"')
    return f"'{text}'"


def pgbench_raw(cluster: Cluster, script: Path, *, clients: int = CLIENTS, seconds: float = 10, user: str = "postgres",
                rate: float | None = None, label: str | None = None,
                database: str | None = None) -> tuple[str, str, list[tuple[float, float]]]:
    """Run one pgbench script (prepared statements, like PostgREST; framed as PostgREST frames a
    request when it asks, see `framed`); stdout, stderr, log rows.
    With a label, its progress is shown (seconds elapsed of the run's length)."""
    env = testing.psql_env(cluster, database or BENCH_DB)
    if user == "authenticator":
        env.update(PGUSER="authenticator", PGPASSWORD=AUTH_PASSWORD)
    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp:
        runnable = Path(tmp) / script.name
        runnable.write_text(framed(script))
        cmd = [
            str(config.pg_bindir() / "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(max(1, round(seconds))), "-f", str(runnable), "--log", f"--log-prefix={tmp}/tx",
        ]
        if rate:
            cmd += ["-R", str(rate)]
        proc = timed(cmd, env, seconds, label)
        rows = []
        for log in Path(tmp).glob("tx*"):
            rows += parse_pgbench_log(log.read_text())
    return proc.stdout, proc.stderr, rows


def timed(cmd: list[str], env: dict[str, str], seconds: float, label: str | None) -> subprocess.CompletedProcess:
    """Run a load generator for about `seconds`, showing its progress when labelled."""
    if label is None:
        return subprocess.run(cmd, env=env, capture_output=True, text=True)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            progress.step(label, round(seconds), "s") as shown:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        started = time.monotonic()
        while proc.poll() is None:
            time.sleep(0.25)
            shown.update(time.monotonic() - started)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a process; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def cluster_pids(cluster: Cluster) -> list[int]:
    """The postmaster and every process it started: backends, WAL writer, checkpointer..."""
    try:
        postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return [postmaster, *children(postmaster)]


def cluster_cpu(cluster: Cluster) -> float:
    """CPU seconds the cluster has spent so far: its live processes, and through the postmaster's
    children's times the backends that have exited (a pgbench run's connections end with it)."""
    pids = cluster_pids(cluster)
    if not pids:
        return 0.0
    try:
        fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
        reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        reaped = 0.0
    return reaped + sum(proc_cpu(pid) for pid in pids)


def _settled(cluster: Cluster, processes: int, timeout: float = 3.0) -> None:
    """Wait until the run's backends have exited and been reaped, so that their CPU is counted once."""
    deadline = time.monotonic() + timeout
    while len(cluster_pids(cluster)) > processes and time.monotonic() < deadline:
        time.sleep(0.05)


@dataclass
class Check:
    """A count that must grow by exactly `per_tx` rows per transaction (None: by at least one per
    transaction), to prove every counted transaction did its work."""

    label: str
    sql: str
    per_tx: int | None = 1


def pgbench(cluster: Cluster, name: str, script: Path, *, seconds: float = 10, user: str = "postgres",
            checks: tuple[Check, ...] = (), database: str | None = None) -> Run:
    """One measured pgbench run in `database` (default the bench database)."""
    before = [_count(cluster, c.sql, database) for c in checks]
    processes, cpu0 = len(cluster_pids(cluster)), cluster_cpu(cluster)
    stdout, stderr, rows = pgbench_raw(cluster, script, seconds=seconds, user=user, label=name, database=database)
    _settled(cluster, processes)
    cpu1 = cluster_cpu(cluster)
    tps, tx, failed = parse_pgbench(stdout, stderr)
    run = Run(name, tps, tx, failed, *percentiles([lat for lat, _ in rows]), load=loadavg())
    # The cluster's CPU per transaction moves much less with other load on the machine than tps.
    run.cpu_ms["PostgreSQL"] = (cpu1 - cpu0) * 1000 / max(1, tx)
    for check, start in zip(checks, before):
        grew = _count(cluster, check.sql, database) - start
        if check.per_tx is None:
            if grew < tx:
                run.problems.append(f"{check.label}: {grew} new rows for {tx} transactions (expected at least {tx})")
                run.failed += tx - grew
        elif grew != check.per_tx * tx:
            run.problems.append(f"{check.label}: {grew} new rows for {tx} transactions (expected {check.per_tx * tx})")
            run.failed += abs(check.per_tx * tx - grew)
    if failed and "aborted" in stderr:
        run.problems.append(stderr.strip().splitlines()[-1][:300])
    return run


@dataclass
class Subject:
    name: str
    script: Path
    user: str = "postgres"
    setup: str | None = None
    checks: tuple[Check, ...] = ()


def alternate(report: Report, cluster: Cluster, subjects: list[Subject], rounds: int, seconds: int) -> dict[str, dict]:
    """Measure several scripts in alternation; the median of each (tps, p50, p99)."""
    results: dict[str, list[Run]] = {s.name: [] for s in subjects}
    for _ in range(rounds):
        for s in subjects:
            if s.setup:
                with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
                    conn.execute(s.setup)
            results[s.name].append(report.add(pgbench(cluster, s.name, s.script, seconds=seconds, user=s.user,
                                                      checks=s.checks)))
    return {name: report.median(name, runs) for name, runs in results.items()}


LEADS = Check("app.leads", "select count(*) from app.leads")
COUNTERS_WRITTEN = Check("app.rate_limit_counters", "select count(*) from app.rate_limit_counters", per_tx=None)
COUNTERS_UNTOUCHED = Check("app.rate_limit_counters", "select count(*) from app.rate_limit_counters", per_tx=0)
PAGE_VIEWS = Check("app.page_views", "select count(*) from app.page_views")

