"""`invoke test` (every check CI runs) and its parts: pgTAP and pytest."""

from __future__ import annotations

import os
import sys
import time

from invoke import Exit

from . import lint
from ._helpers import echo, task


@task
def pgtap(c):
    """pgTAP tests in db/tests, run by pg_prove on a fresh build."""
    from chorus_db.testing import build_template, run_pgtap, running_test_cluster

    echo("pg_prove db/tests/*.sql")
    with running_test_cluster() as cluster:
        build_template(cluster)
        failed = run_pgtap(cluster) != 0
    if failed:
        raise Exit("pgTAP tests failed: see the failures above", code=1)


def default_workers() -> int:
    """Parallel pytest workers: CHORUS_TEST_WORKERS, else one per CPU this process may use, at
    most 4 (each starts a test cluster and an HTTP stack of its own)."""
    configured = os.environ.get("CHORUS_TEST_WORKERS", "").strip()
    if configured:
        if not configured.isdigit():
            raise Exit(f"CHORUS_TEST_WORKERS={configured!r} is not a number: set it to 1 (no parallel workers) or more", code=1)
        return max(1, int(configured))
    return max(1, min(4, len(os.sched_getaffinity(0))))


@task(help={
    "k": "only tests matching this expression",
    "x": "stop at the first failure",
    "workers": "parallel workers (pytest-xdist, a test file each at a time); default CHORUS_TEST_WORKERS or one per CPU (at most 4); 1: none",
})
def pytest(c, k="", x=False, workers=0):
    """pytest: build, tasks, SQL-level API, HTTP (PostgREST: POSTGREST_BIN, PATH or the vendored copy)."""
    workers = int(workers) or default_workers()
    args = ["-q"] + (["-k", repr(k)] if k else []) + (["-x"] if x else [])
    # Whole files per worker (--dist loadfile): a module's fixtures are made once, in one worker.
    args += ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []
    echo("pytest " + " ".join(args))
    if c.run(f"{sys.executable} -m pytest " + " ".join(args), pty=False, warn=True).failed:
        raise Exit("pytest failed: see the failures above", code=1)


@task(name="all", default=True)
def all_checks(c):
    """Every check CI runs: sqlfluff, migration lint, Squawk, pgspot, plpgsql_check, pgTAP, pytest."""
    from chorus_db.testing import running_test_cluster

    started = time.monotonic()
    # One test cluster for every step, stopped at the end (unless it ran before `invoke test`).
    with running_test_cluster():
        for step in (*lint.LINTERS, pgtap, pytest):
            step(c)
    echo(f"every check passed in {time.monotonic() - started:.0f} s")
