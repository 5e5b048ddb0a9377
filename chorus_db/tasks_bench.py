"""The `bench` task: benchmarks as ratios against baselines measured in the same run."""

from __future__ import annotations

from invoke import Collection, Exit, task


@task(
    default=True,
    help={
        "seconds": "length of each pgbench/wrk run",
        "rounds": "alternations of baseline and subject",
        "quick": "small sizes for a smoke run (retention 100k+100k rows, 1M page views)",
    },
)
def run(c, seconds=10, rounds=2, quick=False):
    """Run every benchmark; print the table and write bench-results/bench-*.json with the machine."""
    from chorus_db import bench, testing

    cluster = testing.test_cluster()
    report = bench.Report(machine=bench.machine())
    print(f"» preparing {bench.BENCH_DB} in the test cluster (127.0.0.1:{cluster.port})")
    bench.prepare(cluster)
    try:
        bench.sql_path(report, cluster, seconds, rounds)
        for part in ("http_path", "retention_at_scale"):
            step = getattr(bench, part, None)
            if step is not None:
                step(report, cluster, seconds=seconds, quick=quick)
    finally:
        path = bench.write(report)
    bench.print_summary(report)
    print(f"» figures written to {path}")
    failed = [run for run in report.runs if run.failed]
    if failed:
        raise Exit("some benchmark transactions failed: " + ", ".join(r.name for r in failed), code=1)


def register(ns: Collection) -> None:
    bench = Collection("bench")
    bench.add_task(run, "run", default=True)
    ns.add_collection(bench)
