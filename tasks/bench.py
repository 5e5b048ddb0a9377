"""`invoke bench`: benchmarks as ratios against baselines measured in the same run."""

from __future__ import annotations

from invoke import Exit

from ._helpers import echo, task


@task(
    default=True,
    help={
        "seconds": "length of each pgbench/wrk run (default 10)",
        "rounds": "alternations of baseline and subject; medians are reported (default 2)",
        "quick": "small retention sizes for a smoke run (100k+100k rows, 1M page views instead of 1M+1M and 10M)",
        "only": "comma-separated parts to run: sql, http, knobs, retention, audit, encryption, ops, growth (default: all but growth)",
        "growth": "also measure cost growth (1k, 100k, 1M leads, 10M audit rows, each later phase beside a copy of the 1k database; about 7 more minutes)",
        "keep": "keep the chorus_bench database afterwards for inspection (it is dropped by default)",
        "retention_variants": "variants of the retention job its windows take in turn, \"|\"-separated, each "
                              "batch_rows=N,pause_ratio=N,wal_rate=BYTES_PER_S,batch_wal=BYTES,sync_commit=0|1,"
                              "wal_writer_delay=10ms,wal_writer_flush_after=128kB or default (each reported apart)",
    },
)
def run(c, seconds=10, rounds=2, quick=False, only="sql,http,knobs,retention,audit,encryption,ops", keep=False, growth=False,
        retention_variants=""):
    """Run every benchmark; print the table and write bench-results/bench-*.json with the machine."""
    from chorus_db import bench, testing

    parts = {p.strip() for p in only.split(",") if p.strip()}
    from chorus_db.bench import retention
    from chorus_db.errors import UserError

    try:
        variants = retention.parse_variants(retention_variants)
    except UserError as exc:
        raise Exit(str(exc), code=1) from None
    if growth:
        parts.add("growth")
    unknown = parts - {"sql", "http", "knobs", "retention", "growth", "audit", "encryption", "ops"}
    if unknown:
        raise Exit(f"--only takes sql, http, knobs, retention, audit, encryption, ops and growth, not {', '.join(sorted(unknown))}", code=1)
    # The test cluster is stopped afterwards unless it ran before: a benchmark leaves no server.
    with testing.running_test_cluster() as cluster:
        report = bench.Report(machine=bench.machine())
        echo(f"preparing {bench.BENCH_DB} in the test cluster (127.0.0.1:{cluster.port}); "
             f"load average {report.machine['load_at_start']}")
        bench.prepare(cluster)
        try:
            if "sql" in parts:
                bench.sql_path(report, cluster, seconds, rounds)
                from chorus_db.bench import brand

                brand.brand_ingest(report, cluster, seconds, rounds)
            if "http" in parts or "knobs" in parts:
                bench.http_path(report, cluster, seconds=seconds, rounds=rounds, quick=quick,
                                knobs="knobs" in parts, main="http" in parts)
            if "audit" in parts:
                bench.audit_cost(report, cluster, seconds, rounds)
            if "encryption" in parts:
                bench.encryption_cost(report, cluster, seconds, rounds)
            if "ops" in parts:
                from chorus_db.bench import ops

                ops.pool_and_scale(report, cluster, seconds, rounds)
            if "retention" in parts:
                bench.retention_at_scale(report, cluster, seconds=seconds, quick=quick, variants=variants)
            if "growth" in parts:
                # Last: it starts again from an empty database.
                bench.cost_growth(report, cluster, seconds=seconds, rounds=rounds)
        finally:
            path = bench.write(report)
            if not keep:
                bench.drop(cluster)
    bench.print_summary(report)
    echo(f"figures written to {path}")
    failed = [run for run in report.runs if run.failed]
    if failed:
        raise Exit("some benchmark transactions failed or stored nothing: " + ", ".join(r.name for r in failed), code=1)
