"""`invoke bench`'s brand-intelligence part: ingest of POST /api/logo-heatmaps (50 points per
post) and POST /api/performance-benchmarks (one Lighthouse run, with an admin key), each as
PostgREST 12.2 runs it (bench/*_api.sql), against a plain INSERT of the same row into its table
(bench/*_plain.sql), measured in alternation like the page views (chorus_db.bench.sql)."""

from __future__ import annotations

import psycopg

from ..cluster import Cluster
from . import common as bench

HEATMAPS = bench.Check("app.logo_interaction_heatmaps", "select count(*) from app.logo_interaction_heatmaps")
BENCHMARKS = bench.Check("app.performance_benchmarks", "select count(*) from app.performance_benchmarks")
# The admin key bench/performance_benchmark_api.sql sends: stored in the benchmark database only.
BENCH_ADMIN_KEY = "chk_bench_admin"
ADMIN_KEY_SETUP = (
    "insert into app.api_keys (name, role, key_hash, key_prefix)"
    f" select 'bench-admin', 'admin', app_logic.hash_api_key('{BENCH_ADMIN_KEY}'), left('{BENCH_ADMIN_KEY}', 10)"
    " where not exists (select from app.api_keys where name = 'bench-admin')"
)


def brand_ingest(report: bench.Report, cluster: Cluster, seconds: int, rounds: int) -> None:
    with psycopg.connect(cluster.url(bench.BENCH_DB), autocommit=True) as conn:
        conn.execute(ADMIN_KEY_SETUP)
    print(f"Brand ingest (pgbench, {bench.CLIENTS} clients): logo heatmaps (50 points a post), performance benchmarks")
    m = bench.alternate(
        report, cluster,
        [
            bench.Subject("heatmap plain insert", bench.BENCH_DIR / "logo_heatmap_plain.sql", checks=(HEATMAPS,)),
            bench.Subject("heatmap endpoint", bench.BENCH_DIR / "logo_heatmap_api.sql", "authenticator", checks=(HEATMAPS,)),
            bench.Subject("benchmark plain insert", bench.BENCH_DIR / "performance_benchmark_plain.sql", checks=(BENCHMARKS,)),
            bench.Subject("benchmark endpoint", bench.BENCH_DIR / "performance_benchmark_api.sql", "authenticator",
                          checks=(BENCHMARKS,)),
        ],
        rounds, seconds,
    )
    report.ratios["heatmap endpoint / plain insert"] = m["heatmap endpoint"]["tps"] / m["heatmap plain insert"]["tps"]
    report.ratios["benchmark endpoint / plain insert"] = m["benchmark endpoint"]["tps"] / m["benchmark plain insert"]["tps"]
