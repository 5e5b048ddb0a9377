"""The test harness's own shortcuts, which must never hide a change or mix two runs: the template
database is built once per `invoke test` and reused by its later steps only while the source it
was built from is unchanged; parallel pytest workers each get a test cluster of their own, which
`invoke down` stops when a killed run left it; the pages' build never takes a served file away."""

from __future__ import annotations

import os

import psycopg
import pytest

from chorus_db import testing


def _template_oid(cluster) -> int:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        return conn.execute("select oid from pg_database where datname = %s", (testing.TEMPLATE_DB,)).fetchone()[0]


def test_the_template_is_reused_while_its_source_is_unchanged_and_rebuilt_when_it_changes(pg_cluster, template_url, monkeypatch):
    mark = f"built from {testing.source_fingerprint()} on port {pg_cluster.port}"
    assert os.environ[testing.TEMPLATE_BUILT_ENV] == mark
    built = _template_oid(pg_cluster)
    assert testing.build_template(pg_cluster) == template_url
    assert _template_oid(pg_cluster) == built, "an unchanged source must not be built again"

    # A changed source (here: its fingerprint) is built afresh, and so is a template whose own
    # mark does not match what the environment says was built.
    monkeypatch.setattr(testing, "source_fingerprint", lambda: "0" * 64)
    testing.build_template(pg_cluster)
    rebuilt = _template_oid(pg_cluster)
    assert rebuilt != built
    monkeypatch.undo()
    monkeypatch.setenv(testing.TEMPLATE_BUILT_ENV, mark)  # claims the real source; the mark disagrees
    testing.build_template(pg_cluster)
    assert _template_oid(pg_cluster) != rebuilt
    assert os.environ[testing.TEMPLATE_BUILT_ENV] == mark
    with psycopg.connect(template_url) as conn:
        assert conn.execute("select to_regclass('app.leads') is not null").fetchone()[0]


def test_the_fingerprint_follows_every_file_a_build_reads_and_not_the_pgtap_tests(tmp_path, monkeypatch):
    from chorus_db import config

    root = tmp_path / "checkout"
    for relative in ("db/schema/000-a.sql", "db/functions/000-a.sql", "db/routes.toml", "db/tests/000-a.sql", "chorus_db/build.py"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("-- one\n")
    monkeypatch.setattr(config, "ROOT", root)
    monkeypatch.setattr(config, "DB_DIR", root / "db")
    monkeypatch.setattr(config, "TESTS_SQL_DIR", root / "db" / "tests")
    first = testing.source_fingerprint()
    (root / "db/tests/000-a.sql").write_text("-- a pgTAP change builds nothing\n")
    assert testing.source_fingerprint() == first
    for relative in ("db/schema/000-a.sql", "db/functions/000-a.sql", "db/routes.toml", "chorus_db/build.py"):
        before = testing.source_fingerprint()
        (root / relative).write_text("-- changed\n")
        assert testing.source_fingerprint() != before, relative


# -- parallel workers ---------------------------------------------------------------------------
def _testing_in(env: dict[str, str]) -> list[str]:
    """TEST_PGDATA and the test cluster's first port as a process with this environment sees them."""
    import subprocess
    import sys

    from chorus_db import config

    code = ("from chorus_db import testing; c = testing.test_cluster_unstarted(); "
            "print(testing.TEST_PGDATA); print(c.first_port)")
    full = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "CHORUS_TEST_PGDATA")}
    full.update(CHORUS_TEST_PG_PORT="56000", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=config.ROOT, env=full, capture_output=True, text=True,
                          check=True).stdout.split()


def test_each_parallel_worker_but_the_first_gets_a_test_cluster_and_first_port_of_its_own():
    alone = _testing_in({})
    assert _testing_in({"PYTEST_XDIST_WORKER": "gw0"}) == alone
    data, port = _testing_in({"PYTEST_XDIST_WORKER": "gw3"})
    assert data == alone[0] + "-gw3" and port == "56003"
    assert _testing_in({"PYTEST_XDIST_WORKER": "gw1", "CHORUS_TEST_PGDATA": "/srv/t/pgdata"})[0] == "/srv/t/pgdata-gw1"


def test_down_stops_the_cluster_a_killed_parallel_worker_left(tmp_path):
    import shutil
    import subprocess
    import sys

    from chorus_db import config
    from chorus_db.cluster import Cluster

    base = config.scratch_dir("workers")
    try:
        leftover = Cluster(base / "pgdata-gw1", first_port=56690)
        leftover.start()
        assert leftover.running()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_XDIST_WORKER")}
        env.update(CHORUS_CHECKOUT_ID=f"workers-test-{os.getpid()}", CHORUS_TEST_PGDATA=str(base / "pgdata"),
                   CHORUS_PGDATA=str(base / "embedded"), CHORUS_RUN_DIR=str(base / "run"))
        result = subprocess.run([sys.executable, "-m", "invoke", "down"], cwd=config.ROOT, env=env, input="",
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert f"stopped the test cluster of a parallel pytest worker ({leftover.datadir})" in result.stdout
        assert not leftover.running()
    finally:
        Cluster(base / "pgdata-gw1").destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_the_number_of_workers_comes_from_chorus_test_workers_or_the_cpus(monkeypatch):
    from invoke import Exit

    from tasks import test as test_tasks

    monkeypatch.setenv("CHORUS_TEST_WORKERS", "3")
    assert test_tasks.default_workers() == 3
    monkeypatch.setenv("CHORUS_TEST_WORKERS", "0")
    assert test_tasks.default_workers() == 1
    monkeypatch.setenv("CHORUS_TEST_WORKERS", "many")
    with pytest.raises(Exit, match=r"^CHORUS_TEST_WORKERS='many' is not a number: set it to 1"):
        test_tasks.default_workers()
    monkeypatch.delenv("CHORUS_TEST_WORKERS")
    assert test_tasks.default_workers() == max(1, min(4, len(os.sched_getaffinity(0))))


# -- the pages' build while they are served ----------------------------------------------------
def test_the_vendored_files_never_go_missing_while_the_pages_are_built_again():
    import threading

    from chorus_db import web

    if web.npm() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(web.NPM_MISSING)
        pytest.skip(web.NPM_MISSING)
    web.build(log=lambda _m: None)
    names = sorted(p.name for p in web.VENDOR.iterdir())
    assert "chart.umd.min.js" in names
    missing: list[str] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            missing.extend(name for name in names if not (web.VENDOR / name).exists())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        builders = [threading.Thread(target=web.build, kwargs={"log": lambda _m: None}) for _ in range(3)]
        for builder in builders:
            builder.start()
        for builder in builders:
            builder.join()
    finally:
        done.set()
        watcher.join()
    assert missing == []
    assert sorted(p.name for p in web.VENDOR.iterdir()) == names, "no temporary file is left behind"
