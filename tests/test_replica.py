"""The read replica: a hot standby made by pg_basebackup, the lag check its PostgREST's
pre-request function runs, the replication health, then the failover drill (db.promote).

The tests of this module share one primary and one standby (made once, in file order): the
failover drill last, because it stops the primary for good.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chorus_db import gdpr, replica, stack
from tests.support import ops
from tests.support.postgrest import PostgrestSim

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair():
    primary = ops.built_cluster("chorus-primary-")
    standby = None
    try:
        standby = replica.create_standby(primary, primary.datadir.parent / "standby", first_port=stack.free_port())
        standby.start()
        replica.wait_caught_up(primary.url(ops.OPS_DB), standby.url(ops.OPS_DB))
        yield primary, standby
    finally:
        ops.remove(standby, primary)


def _set_lag_limit(primary, standby, seconds: int) -> None:
    with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
        conn.execute("update app.settings set value = %s where key = 'replica_max_lag_seconds'", (str(seconds),))
    replica.wait_caught_up(primary.url(ops.OPS_DB), standby.url(ops.OPS_DB))


def test_the_standby_streams_from_its_slot_and_reports_no_lag(pair):
    primary, standby = pair
    [(slot, state, _lag, _held)] = replica.replication_status(primary.url("postgres"))
    assert (slot, state) == (replica.SLOT, "streaming")
    assert replica.lag_seconds(standby.url(ops.OPS_DB)) == 0
    with psycopg.connect(standby.url(ops.OPS_DB), autocommit=True) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone()[0] is True
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("insert into app.settings values ('x', 'y', 'z')")


def _health(primary) -> dict:
    with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
        return conn.execute("select api.check_replication_health()").fetchone()[0]


def test_a_lagging_standby_refuses_reads_and_health_reports_it(pair):
    primary, standby = pair
    health = _health(primary)
    assert health["status"] == "ok" and health["replication"] == "ok" and health["role"] == "primary"
    [one] = health["standbys"]
    assert one["streaming"] is True and 0 <= one["lagSeconds"] < 30
    _set_lag_limit(primary, standby, 1)
    with psycopg.connect(standby.url(ops.OPS_DB), autocommit=True) as conn:
        conn.execute("select pg_wal_replay_pause()")
        try:
            with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as writer:
                writer.execute("insert into app.settings values ('lag_probe', 'x', 'a write the paused standby lacks')")
            deadline = time.monotonic() + 15
            while conn.execute("select app_logic.replica_lag_seconds()").fetchone()[0] <= 1:
                assert time.monotonic() < deadline, "the paused standby never reported lag"
                time.sleep(0.1)
            # The replica's pre-request function refuses, as PostgREST on the standby would run it.
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("select app_logic.pre_request_replica()")
            assert "CHU02" in str(refused.value)
        finally:
            conn.execute("select pg_wal_replay_resume()")
    _set_lag_limit(primary, standby, 30)
    with psycopg.connect(standby.url(ops.OPS_DB), autocommit=True) as conn:
        # Caught up: the lag check admits, and the request goes on to pre_request (whose own
        # checks want a real request's context here).
        try:
            conn.execute("select app_logic.pre_request_replica()")
        except psycopg.Error as exc:
            assert "CHU02" not in str(exc)
    standby.stop()
    try:
        deadline = time.monotonic() + 15
        while _health(primary)["replication"] != "degraded":
            assert time.monotonic() < deadline, "the stopped standby was never reported"
            time.sleep(0.1)
        assert _health(primary)["standbys"] == [{"streaming": False, "lagSeconds": None}]
    finally:
        standby.start()
    replica.wait_caught_up(primary.url(ops.OPS_DB), standby.url(ops.OPS_DB))


def test_failover_drill_promote_loses_nothing_acknowledged(pair):
    """Writes on the primary from several clients; the primary is stopped under them, the standby
    is promoted (db.promote's function), and writes go on against it: every submission that got
    201 before the stop is on the promoted server, and the consent chains verify."""
    primary, standby = pair
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop_writers = threading.Event()

    def writer(n: int, url: str, tag: str) -> None:
        sim = PostgrestSim(make_conninfo(url, user="authenticator", password=ops.AUTHENTICATOR_PASSWORD))
        i = 0
        while not stop_writers.is_set():
            email = f"{tag}-{n}-{i}@example.com"
            try:
                response = sim.post("/api/leads", ops.lead(email), client_ip=f"10.8.{n}.{i % 250 + 1}")
            except psycopg.OperationalError:
                return  # the server went away: a client stops and retries elsewhere
            if response.status == 201:
                with lock:
                    acknowledged.append(email)
            i += 1

    threads = [threading.Thread(target=writer, args=(n, primary.url(ops.OPS_DB), "before")) for n in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    replica.promote(standby, old_primary=primary)  # stops the primary under the writers first
    for thread in threads:
        thread.join(timeout=20)
    assert not primary.running()
    before = list(acknowledged)
    assert len(before) >= 40

    sim = PostgrestSim(make_conninfo(standby.url(ops.OPS_DB), user="authenticator", password=ops.AUTHENTICATOR_PASSWORD))
    for i in range(5):
        assert sim.post("/api/leads", ops.lead(f"after-{i}@example.com"), client_ip="10.7.0.1").status == 201

    with psycopg.connect(standby.url(ops.OPS_DB), autocommit=True) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone()[0] is False
        stored = {r[0] for r in conn.execute("select email from app.leads")}
    missing = [email for email in before if email not in stored]
    assert missing == [], f"{len(missing)} acknowledged submission(s) lost in the failover"
    assert all(f"after-{i}@example.com" in stored for i in range(5))
    report = gdpr.verify_chain(standby.url(ops.OPS_DB))
    print(f"\nfailover drill: {len(before)} submissions acknowledged by the primary before it stopped, "
          f"{len(before) - len(missing)} of them on the promoted server, 5 more written after; {report.describe()}")
    assert report.intact and report.rows >= 2 * len(before), report.describe()
