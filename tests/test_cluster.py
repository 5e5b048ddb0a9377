"""The embedded cluster's lifecycle as two checkouts on one machine meet it: a remembered port
that another program holds is replaced by a free one, and whoever starts the test cluster
stops it (`testing.running_test_cluster`)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import psycopg
import pytest

from chorus_db import config, testing
from chorus_db.cluster import Cluster


@pytest.fixture(scope="module")
def scratch_cluster():
    # Not pytest's tmp_path: it is private to root, and the server runs as another OS user.
    base = config.scratch_dir("cluster")
    cluster = Cluster(base / "pgdata", first_port=56640)
    cluster.init()
    yield cluster
    cluster.destroy()
    shutil.rmtree(base, ignore_errors=True)


def test_a_remembered_port_held_by_another_program_is_replaced_by_a_free_one(scratch_cluster):
    cluster = scratch_cluster
    remembered = cluster.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", remembered))
        holder.listen(1)
        assert cluster.start() is True
        try:
            assert cluster.moved_from == remembered
            assert cluster.port != remembered
            with psycopg.connect(cluster.url("postgres"), connect_timeout=5) as conn:
                assert conn.execute("select current_setting('port')::int").fetchone()[0] == cluster.port
        finally:
            cluster.stop()


def test_the_test_cluster_is_stopped_by_the_block_that_started_it_and_only_by_it(scratch_cluster, monkeypatch):
    monkeypatch.setattr(testing, "TEST_PGDATA", scratch_cluster.datadir)
    monkeypatch.setenv("CHORUS_TEST_PG_PORT", str(scratch_cluster.first_port))
    assert not scratch_cluster.running()
    with testing.running_test_cluster() as cluster:
        assert cluster.running()
        with testing.running_test_cluster():
            pass
        assert cluster.running(), "an inner block that found it running leaves it running"
    assert not scratch_cluster.running()
