"""The test harness's own shortcuts, which must never hide a change: the template database is
built once per `invoke test` and reused by its later steps only while the source it was built
from is unchanged."""

from __future__ import annotations

import os

import psycopg

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
