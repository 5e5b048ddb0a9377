"""The point-in-time recovery drill with pgBackRest: commits before and after a recorded moment,
recovery to that moment into a new data directory, every commit before it there and none
after it, and the consent chains verify. On a cluster of its own (archiving needs a restart)."""

from __future__ import annotations

import shutil

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chorus_db import gdpr, pitr
from tests.support import ops
from tests.support.postgrest import PostgrestSim

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archived():
    if shutil.which("pgbackrest") is None:
        pytest.fail("pgBackRest is missing: apt-get install pgbackrest (.ci/run installs it)")
    cluster = ops.built_cluster("chorus-pitr-")
    try:
        assert pitr.enable(cluster) is True
        assert pitr.enable(cluster) is False  # a second run changes nothing
        yield cluster
    finally:
        ops.remove(cluster)
        shutil.rmtree(pitr.home(cluster), ignore_errors=True)


def _submit(sim: PostgrestSim, emails: list[str]) -> None:
    for n, email in enumerate(emails):
        assert sim.post("/api/leads", ops.lead(email), client_ip=f"10.6.0.{n % 250 + 1}").status == 201


def test_recovery_to_a_moment_keeps_every_commit_before_it_and_none_after(archived):
    cluster = archived
    url = cluster.url(ops.OPS_DB)
    sim = PostgrestSim(make_conninfo(url, user="authenticator", password=ops.AUTHENTICATOR_PASSWORD))
    full = pitr.backup(cluster, "full")
    assert full["type"] == "full"
    first = [f"before-full-{i}@example.com" for i in range(10)]
    _submit(sim, first)
    incr = pitr.backup(cluster, "incr")
    assert incr["type"] == "incr" and incr["reference"]
    second = [f"before-incr-{i}@example.com" for i in range(10)]
    _submit(sim, second)
    with psycopg.connect(url, autocommit=True) as conn:
        (moment,) = conn.execute("select clock_timestamp()").fetchone()
    after = [f"after-{i}@example.com" for i in range(10)]
    _submit(sim, after)
    pitr.archive_now(cluster, url)

    target = cluster.datadir.parent / "recovered"
    restored = pitr.recover(cluster, moment, target=target)
    try:
        assert cluster.running(), "recovering into a new directory leaves the original running"
        with psycopg.connect(restored.url(ops.OPS_DB), autocommit=True) as conn:
            stored = {r[0] for r in conn.execute("select email from app.leads")}
            (archive_mode,) = conn.execute("show archive_mode").fetchone()
        assert set(first + second) <= stored, "a commit before the moment is missing"
        assert not stored & set(after), "a commit after the moment was recovered"
        assert archive_mode == "off"
        report = gdpr.verify_chain(restored.url(ops.OPS_DB))
        assert report.intact and report.rows == 2 * len(first + second), report.describe()
        print(f"\nPITR drill: recovered to {moment.isoformat()} from {incr['label']} (incr on {full['label']}): "
              f"{len(first + second)} commits before it present, 0 of {len(after)} after it; {report.describe()}")
    finally:
        restored.destroy()
        shutil.rmtree(target, ignore_errors=True)


def test_recovery_refuses_a_non_empty_target_and_a_time_without_zone(archived, tmp_path):
    from datetime import datetime

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "file").write_text("x")
    with pytest.raises(pitr.PitrError, match="not empty"):
        pitr.recover(archived, datetime.now().astimezone(), target=occupied)
    with pytest.raises(pitr.PitrError, match="time zone"):
        pitr.recover(archived, datetime(2026, 1, 1), target=tmp_path / "new")
