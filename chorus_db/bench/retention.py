"""Retention at scale in `invoke bench`: 1M expired + 1M live engagement rows and a 10M-row
page-view month (100k each and 1M with --quick), the retention job run on them as pg_cron runs
it, and lead submissions' latency at a fixed rate while it runs against their latency without it.
"""

from __future__ import annotations

import threading
import time

import psycopg

from ..cluster import Cluster
from . import progress
from .common import BENCH_DB, BENCH_DIR, LIMITS_ON, Report, Run, loadavg, parse_pgbench, percentiles, pgbench_raw

RETENTION_RATE = 200  # lead submissions per second offered while measuring latency (well below capacity)
RETENTION_CLIENTS = 8
# At least this many submissions on each side (goal 4): 15 s at 200/s is 3,000.
MIN_SAMPLES = 2000
QUIET_SECONDS = 15
BUSY_STRETCH_SECONDS = 20


def _generate(url: str, label: str, statements: list[tuple[str, int]]) -> None:
    """Run generation statements (each with the rows it makes) two at a time in parallel sessions
    (2 cores: two is the useful most), showing the rows made so far."""
    errors: list[BaseException] = []
    total = sum(n for _, n in statements)

    def worker(sql: str) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                # Generation only: the measured part runs with the cluster's settings.
                conn.execute("set synchronous_commit = off")
                conn.execute(sql)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    with progress.step(label, total, "rows") as shown:
        for i in range(0, len(statements), 2):
            pair = statements[i:i + 2]
            threads = [threading.Thread(target=worker, args=(sql,)) for sql, _ in pair]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            shown.advance(sum(n for _, n in pair))


def chunks(total: int, size: int) -> list[tuple[int, int]]:
    """Ranges lo..hi (inclusive) of at most `size` covering 1..total."""
    return [(lo, min(total, lo + size - 1)) for lo in range(1, total + 1, size)]


# Rows per generation statement: small enough for the progress to move every few seconds.
CHUNK_ROWS = 250_000


def retention_at_scale(report: Report, cluster: Cluster, seconds: int = 10, quick: bool = False) -> None:
    rows = 100_000 if quick else 1_000_000
    views = 1_000_000 if quick else 10_000_000
    url = cluster.url(BENCH_DB)
    print(f"Retention at scale ({rows:,} expired + {rows:,} live engagement rows, a month of {views:,} page views)")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LIMITS_ON)
        # An old month, as ensure_page_view_partitions names and bounds a partition.
        _month, lower, upper, partition = conn.execute(
            "select m, to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00', "
            "to_char(m + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00', "
            "app_logic.page_view_partition_name(m at time zone 'UTC') "
            "from (select date_trunc('month', now() at time zone 'UTC' - interval '24 months') as m) as s"
        ).fetchone()
        (rule_keep,) = conn.execute("select keep_for::text from app.retention_rules where kind = 'brand_engagement'").fetchone()

    # Generation (not measured): unlinked engagement rows older and younger than the 2-year rule,
    # and an old month of page views in its own partition, made as ensure_page_view_partitions does.
    started = time.monotonic()
    engagement = []
    for label, age in (("exp", "(interval '2 years' + (1 + g % 365) * interval '1 day')"),
                       ("live", "(g % 700) * interval '1 day'")):
        for lo, hi in chunks(rows, CHUNK_ROWS):
            engagement.append((
                "insert into app.brand_engagement (session_id, scroll_depth_percentage, created_at) "
                f"select 'bench-{label}-' || g, g % 101, now() - {age} from generate_series({lo}, {hi}) as g",
                hi - lo + 1,
            ))
    _generate(url, "engagement rows", engagement)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create table app.{partition} partition of app.page_views for values from ('{lower}') to ('{upper}')")
        conn.execute(f"alter table app.{partition} enable row level security")
    _generate(url, "page views", [(
        "insert into app.page_views (session_id, path, referrer_host, device_type, duration_ms, viewed_at) "
        "select 's' || (g % 200000), (array['/', '/ecosystem', '/contact', '/blog', '/about'])[1 + g % 5], "
        "case when g % 3 = 0 then 'www.example.com' end, (array['mobile', 'tablet', 'desktop'])[1 + g % 3], g % 60000, "
        f"timestamptz '{lower}' + (g % 2592000) * interval '1 second' from generate_series({lo}, {hi}) as g",
        hi - lo + 1,
    ) for lo, hi in chunks(views, 4 * CHUNK_ROWS)])
    print("    vacuum (analyze) and checkpoint of the generated data", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        # Rows that waited years for retention have long been vacuumed; start from that state,
        # and with no checkpoint of the generated WAL pending.
        conn.execute("vacuum (analyze) app.brand_engagement")
        conn.execute(f"vacuum (analyze) app.{partition}")
        conn.execute("checkpoint")
    generation = time.monotonic() - started
    report.figures["retention: data generated"] = (
        f"{rows:,} expired + {rows:,} live brand_engagement rows (rule: {rule_keep}), "
        f"{views:,} page views in app.{partition}"
    )
    report.figures["retention: generation seconds (not measured)"] = round(generation, 1)
    print(f"  generated in {generation:.1f} s (not part of the measurement)")

    # Baseline: submissions at a fixed rate without retention, long enough for MIN_SAMPLES.
    script = BENCH_DIR / "submit_lead.sql"
    quiet_seconds = max(seconds, QUIET_SECONDS)
    stdout, stderr, base_rows = pgbench_raw(cluster, script, clients=RETENTION_CLIENTS, seconds=quiet_seconds,
                                            user="authenticator", rate=RETENTION_RATE,
                                            label=f"submissions at {RETENTION_RATE}/s, no retention")
    _, tx, failed = parse_pgbench(stdout, stderr)
    quiet = Run(f"submissions {RETENTION_RATE}/s, no retention", tx / quiet_seconds, tx, failed,
                *percentiles([lat for lat, _ in base_rows]), load=loadavg())
    report.add(quiet)
    report.median(quiet.name, [quiet])

    # The job as pg_cron runs it, with submissions at the same rate alongside: pgbench runs in
    # long stretches while it lasts, and only what completed between its start and end counts.
    done: dict[str, float | BaseException] = {}

    def job() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                done["start"] = time.time()
                conn.execute("call app_logic.run_retention()")
                done["end"] = time.time()
        except BaseException as exc:  # noqa: BLE001 - reported below
            done["error"] = exc
            done["end"] = time.time()

    thread = threading.Thread(target=job)
    busy_rows: list[tuple[float, float]] = []
    busy_failed = 0
    thread.start()
    while thread.is_alive():
        stdout, stderr, chunk = pgbench_raw(cluster, script, clients=RETENTION_CLIENTS, seconds=BUSY_STRETCH_SECONDS,
                                            user="authenticator", rate=RETENTION_RATE,
                                            label=f"submissions at {RETENTION_RATE}/s while retention runs")
        busy_failed += parse_pgbench(stdout, stderr)[2]
        busy_rows += chunk
    thread.join()
    if "error" in done:
        raise RuntimeError(f"the retention job failed: {done['error']}")
    job_seconds = done["end"] - done["start"]
    during = [lat for lat, at in busy_rows if done["start"] <= at <= done["end"]]
    busy = Run(f"submissions {RETENTION_RATE}/s, retention running", len(during) / job_seconds, len(during), busy_failed,
               *percentiles(during), load=loadavg())
    report.add(busy)
    for run in (quiet, busy):
        if run.transactions < MIN_SAMPLES:
            run.problems.append(f"only {run.transactions} samples (goal: at least {MIN_SAMPLES}): p99 is rough")
        if run.tps < 0.95 * RETENTION_RATE:
            run.problems.append(f"the fixed rate was not held: {run.tps:.0f}/s of {RETENTION_RATE}/s")
        for problem in run.problems:
            print(f"      ! {run.name}: {problem}", flush=True)
    report.figures["retention: samples without / while running"] = f"{quiet.transactions} / {busy.transactions}"
    report.figures[f"retention: submissions per second held (offered {RETENTION_RATE}/s), without / while running"] = (
        f"{quiet.tps:.1f} / {busy.tps:.1f}"
    )

    with psycopg.connect(url, autocommit=True) as conn:
        runs = {kind: (removed, secs, dropped) for kind, removed, secs, dropped in conn.execute(
            "select kind, sum(rows_removed), extract(epoch from sum(duration)), "
            "array_to_string(array_agg(array_to_string(partitions_dropped, ',')) filter "
            "(where cardinality(partitions_dropped) > 0), ',') "
            "from app.retention_runs where started_at >= to_timestamp(%s) - interval '1 second' and error is null "
            "group by kind", (done["start"],)
        ).fetchall()}
        errors = conn.execute("select kind, error from app.retention_runs where error is not null").fetchall()
        expired_left, live_left = conn.execute(
            "select count(*) filter (where session_id like 'bench-exp-%'), "
            "count(*) filter (where session_id like 'bench-live-%') "
            "from app.brand_engagement"
        ).fetchone()
        (partition_left,) = conn.execute("select to_regclass(%s) is not null", (f"app.{partition}",)).fetchone()
    removed, engagement_secs, _ = runs.get("brand_engagement", (0, 0.0, None))
    _, drop_secs, dropped = runs.get("page_views", (0, 0.0, None))
    report.figures["retention: run_retention() seconds (every rule, batches of 2,000, paused 4x each)"] = round(job_seconds, 2)
    report.figures["retention: brand_engagement rows removed"] = int(removed or 0)
    report.figures["retention: brand_engagement seconds (sum of batches)"] = round(float(engagement_secs or 0), 2)
    report.figures["retention: brand_engagement rows removed per second"] = (
        round(float(removed) / float(engagement_secs)) if removed and engagement_secs else 0
    )
    report.figures[f"retention: page-view month of {views:,} rows dropped in seconds"] = round(float(drop_secs or 0), 3)
    report.figures["retention: partitions dropped"] = dropped or "none"
    report.figures["retention: live rows kept / expired rows left"] = f"{live_left:,} / {expired_left:,}"
    if quiet.p99_ms and busy.p99_ms:
        report.ratios["retention-p99 submission p99 while retention runs / without"] = busy.p99_ms / quiet.p99_ms
    problems = []
    if errors:
        problems.append(f"retention rules failed: {errors}")
    if expired_left or live_left != rows:
        problems.append(f"expected 0 expired and {rows} live rows left, found {expired_left} and {live_left}")
    if partition_left:
        problems.append(f"app.{partition} was not dropped")
    if problems:
        busy.problems += problems
        busy.failed += 1
        for p in problems:
            print(f"      ! {p}")
    report.median(busy.name, [busy])

