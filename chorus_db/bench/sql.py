"""The SQL path of `invoke bench` (pgbench, 16 clients, prepared statements as PostgREST uses).

(a) a plain INSERT of a valid lead row; (a') the same INSERT inside the five statements
PostgREST sends for a request (BEGIN, request context, pre-request, main query, COMMIT): the
ceiling of (b); (b) a submission exactly as PostgREST runs it (bench/submit_lead.sql). The
limiter's cost: b with the rate-limit rules in place against b with none. Page views: the
endpoint against a plain INSERT into the same partitioned table.
"""

from __future__ import annotations

import psycopg

from ..cluster import Cluster
from .common import (
    BENCH_DB, BENCH_DIR, CLIENTS, COUNTERS_UNTOUCHED, COUNTERS_WRITTEN, GOALS, LEADS, LIMITS_OFF, LIMITS_ON,
    PAGE_VIEWS, Report, Subject, alternate,
)


def sql_path(report: Report, cluster: Cluster, seconds: int, rounds: int) -> None:
    print(f"SQL path (pgbench, {CLIENTS} clients, prepared statements)")
    m = alternate(
        report, cluster,
        [
            Subject("a plain insert", BENCH_DIR / "plain_insert.sql", checks=(LEADS,)),
            Subject("a' insert in PostgREST's transaction", BENCH_DIR / "framed_insert.sql", checks=(LEADS,)),
            Subject("b submission (limiter on)", BENCH_DIR / "submit_lead.sql", "authenticator", LIMITS_ON,
                    (LEADS, COUNTERS_WRITTEN)),
            Subject("b submission (limiter off)", BENCH_DIR / "submit_lead.sql", "authenticator", LIMITS_OFF,
                    (LEADS, COUNTERS_UNTOUCHED)),
        ],
        rounds, seconds,
    )
    with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
        conn.execute(LIMITS_ON)
    a, framed = m["a plain insert"]["tps"], m["a' insert in PostgREST's transaction"]["tps"]
    b_on, b_off = m["b submission (limiter on)"]["tps"], m["b submission (limiter off)"]["tps"]
    report.ratios["b/a submission vs plain insert"] = b_on / a
    report.ratios["a'/a PostgREST's transaction vs plain insert (ceiling of b/a)"] = framed / a
    report.ratios["b/a' submission vs the same transaction without logic"] = b_on / framed
    report.ratios["limiter on / off (b)"] = b_on / b_off
    if not GOALS["b/a'"].met(b_on / framed):
        report.notes.append(
            f"b/a cannot exceed a'/a = {framed / a:.2f}: the five statements PostgREST sends per request (BEGIN, "
            "request context, pre-request, call, COMMIT) hold a plain insert to that share of its one-statement rate "
            f"before any logic runs. Within that shape the submission reaches b/a' = {b_on / framed:.2f}: it runs the "
            "pre-request, the limiter, the validator and writes a lead, an interaction, two counter rows (inserted, then "
            "updated) and two hash-chained audit rows, against one row."
        )

    print(f"Page-view ingest (pgbench, {CLIENTS} clients)")
    m = alternate(
        report, cluster,
        [
            Subject("page view plain insert", BENCH_DIR / "page_view_plain.sql", checks=(PAGE_VIEWS,)),
            Subject("page view endpoint", BENCH_DIR / "page_view_api.sql", "authenticator", checks=(PAGE_VIEWS,)),
        ],
        rounds, seconds,
    )
    report.ratios["page view endpoint / plain insert"] = m["page view endpoint"]["tps"] / m["page view plain insert"]["tps"]

