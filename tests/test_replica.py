"""The read replica: a hot standby made by pg_basebackup, the lag check its PostgREST's
pre-request function runs, the replication health; then end to end, a PostgREST on each server
(each on its own unix socket) and nginx rendered from the one template with the read pool
(`invoke up --replica` runs the same functions): reads on the replica, writes and
X-Read-Consistency reads on the primary, fallback when the replica lags, its standby or its
PostgREST is down; then the failover drill (db.promote).

The tests of this module share one primary and one standby (made once, in file order): the
failover drill last, because it stops the primary for good.
"""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg
import pytest
import requests
from psycopg.conninfo import make_conninfo

from chorus_db import config, gdpr, ops_stack, replica, stack
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


@pytest.fixture(scope="module")
def routed(pair):
    """PostgREST on the primary and on the standby, nginx with the standby's as read pool."""
    primary, standby = pair
    postgrest_bin, nginx_bin = stack.find_postgrest(), stack.find_nginx()
    if postgrest_bin is None or nginx_bin is None:
        pytest.skip("PostgREST or nginx not found: set POSTGREST_BIN, apt-get install nginx")
    run_dir = primary.datadir.parent / "run"
    cfg = stack.StackConfig(
        run_dir=run_dir,
        database_url=primary.url(ops.OPS_DB, user=config.AUTHENTICATOR, password=ops.AUTHENTICATOR_PASSWORD),
        api_port=stack.free_port(), jwt_secret="j" * 48, postgrest_bin=postgrest_bin, nginx_bin=nginx_bin,
    )
    try:
        rcfg, _ = ops_stack.start_replica(cfg, primary, standby, ops.AUTHENTICATOR_PASSWORD, dbname=ops.OPS_DB)
        assert cfg.read_upstream == f"unix:{rcfg.postgrest_socket}" != cfg.postgrest_upstream
        stack.start_postgrest(cfg)
        stack.start_nginx(cfg)
        stack.wait_until_ready(cfg)
        with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
            key = conn.execute("select app_logic.create_api_key('replica-test', 'reader')").fetchone()[0]
        yield cfg, rcfg, key
    finally:
        stack.stop_all(run_dir)
        ops_stack.stop_extras(run_dir)


def _post_lead(cfg, email: str) -> None:
    response = requests.post(f"{cfg.api_url}/leads", json=ops.lead(email), timeout=10)
    assert response.status_code == 201, response.text


def _find(cfg, key: str, email: str, **headers) -> list:
    response = requests.get(
        f"{cfg.api_url}/leads", params={"email": f"eq.{email}", "select": "email"},
        headers={"X-API-Key": key, **headers}, timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


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


def test_a_vacuum_on_the_primary_cannot_cancel_a_read_on_the_standby(pair):
    """hot_standby_feedback: the primary keeps the row versions a standby read still sees. The
    standby is set to cancel a conflicting read at once (max_standby_streaming_delay 0), so
    without the feedback the second read fails ("conflict with recovery", 40001: a 500 from
    PostgREST that nginx does not retry)."""
    primary, standby = pair
    with psycopg.connect(standby.url("postgres"), autocommit=True) as conn:
        assert conn.execute("show hot_standby_feedback").fetchone()[0] == "on"
        conn.execute("alter system set max_standby_streaming_delay = 0")
        conn.execute("alter system set wal_receiver_status_interval = 1")
        conn.execute("select pg_reload_conf()")
    try:
        with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
            conn.execute("create table public.conflict_probe (id integer primary key, v integer)")
            conn.execute("insert into public.conflict_probe select g, g from generate_series(1, 2000) as g")
        replica.wait_caught_up(primary.url(ops.OPS_DB), standby.url(ops.OPS_DB))
        with psycopg.connect(standby.url(ops.OPS_DB)) as reader:
            reader.execute("set transaction isolation level repeatable read")
            assert reader.execute("select count(*) from public.conflict_probe").fetchone()[0] == 2000
            time.sleep(3)  # the standby's oldest snapshot reaches the primary (every second here)
            with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
                conn.execute("delete from public.conflict_probe where id % 2 = 0")
                conn.execute("vacuum public.conflict_probe")
            replica.wait_caught_up(primary.url(ops.OPS_DB), standby.url(ops.OPS_DB))
            # The same snapshot, still answered: nothing it sees was removed under it.
            assert reader.execute("select count(*) from public.conflict_probe").fetchone()[0] == 2000
    finally:
        with psycopg.connect(standby.url("postgres"), autocommit=True) as conn:
            conn.execute("alter system reset max_standby_streaming_delay")
            conn.execute("alter system reset wal_receiver_status_interval")
            conn.execute("select pg_reload_conf()")
        with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
            conn.execute("drop table if exists public.conflict_probe")


def _health(primary) -> dict:
    with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as conn:
        return conn.execute("select api.check_replication_health()").fetchone()[0]


@contextlib.contextmanager
def _paused(standby):
    """A connection to the standby with WAL replay paused, resumed on leaving."""
    with psycopg.connect(standby.url(ops.OPS_DB), autocommit=True) as conn:
        conn.execute("select pg_wal_replay_pause()")
        try:
            yield conn
        finally:
            conn.execute("select pg_wal_replay_resume()")


def _until_lagging(conn) -> None:
    """Wait (at most 15 s) until the paused standby reports more than a second of lag."""
    deadline = time.monotonic() + 15
    while conn.execute("select app_logic.replica_lag_seconds()").fetchone()[0] <= 1:
        assert time.monotonic() < deadline, "the paused standby never reported lag"
        time.sleep(0.1)


def test_a_lagging_standby_refuses_reads_and_health_reports_it(pair):
    primary, standby = pair
    health = _health(primary)
    assert health["status"] == "ok" and health["replication"] == "ok" and health["role"] == "primary"
    [one] = health["standbys"]
    assert one["streaming"] is True and 0 <= one["lagSeconds"] < 30
    _set_lag_limit(primary, standby, 1)
    with _paused(standby) as conn:
        with psycopg.connect(primary.url(ops.OPS_DB), autocommit=True) as writer:
            writer.execute("insert into app.settings values ('lag_probe', 'x', 'a write the paused standby lacks')")
        _until_lagging(conn)
        # The replica's pre-request function refuses, as PostgREST on the standby would run it.
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("select app_logic.pre_request_replica()")
        assert "CHU02" in str(refused.value)
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




def test_reads_go_to_the_replica_writes_to_the_primary_and_x_read_consistency_reads_the_primary(pair, routed):
    primary, standby = pair
    cfg, _rcfg, key = routed
    _set_lag_limit(primary, standby, 60)
    with _paused(standby):
        _post_lead(cfg, "paused@example.com")  # a write: the primary takes it although the standby is paused
        # The default read is served by the replica, which has not replayed the write yet ...
        assert _find(cfg, key, "paused@example.com") == []
        head = requests.head(f"{cfg.api_url}/leads", params={"email": "eq.paused@example.com"},
                             headers={"X-API-Key": key, "Prefer": "count=exact"}, timeout=10)
        assert head.status_code == 200 and head.headers["Content-Range"].endswith("/0")
        # ... a client that must see its own write asks for the primary.
        assert _find(cfg, key, "paused@example.com", **{"X-Read-Consistency": "primary"}) == [{"email": "paused@example.com"}]
        # Health, an RPC, is the primary's answer (it knows its standbys), not the replica's.
        health = requests.get(f"{cfg.api_url}/replication/health", timeout=10).json()
        assert health["role"] == "primary" and len(health["standbys"]) == 1
    replica.wait_caught_up(primary.url(ops.OPS_DB), standby.url(ops.OPS_DB))
    assert _find(cfg, key, "paused@example.com") == [{"email": "paused@example.com"}]


def test_the_read_consistency_header_takes_any_value_and_changes_nothing_else(pair, routed):
    _primary, _standby = pair
    cfg, _rcfg, key = routed
    for value in ("primary", "x" * 4000, "\u202eprimary", "0", "eventual"):
        response = requests.get(f"{cfg.api_url}/leads", params={"select": "email", "limit": "1"},
                                headers={"X-API-Key": key, "X-Read-Consistency": value.encode("utf-8")}, timeout=10)
        assert response.status_code == 200, (value[:20], response.text)
    # It never makes a read of a protected view public, nor a write possible on the replica.
    assert requests.get(f"{cfg.api_url}/leads", headers={"X-Read-Consistency": "primary"}, timeout=10).status_code == 401
    refused = requests.post(f"{cfg.api_url}/leads/health", headers={"X-Read-Consistency": ""}, json={}, timeout=10)
    assert refused.status_code == 405


def test_a_replica_lagging_beyond_the_stored_limit_hands_reads_to_the_primary(pair, routed):
    primary, standby = pair
    cfg, rcfg, key = routed
    _set_lag_limit(primary, standby, 1)
    with _paused(standby) as conn:
        _post_lead(cfg, "lagging@example.com")
        _until_lagging(conn)
        # The replica's own PostgREST refuses (on its socket; a client never sees this) ...
        status, body = ops_stack.unix_http(rcfg.postgrest_socket, "/leads?select=email", {"X-API-Key": key})
        assert status == 503 and b"CHU02" in body
        # ... and nginx serves the read from the primary, which has the row.
        assert _find(cfg, key, "lagging@example.com") == [{"email": "lagging@example.com"}]
    _set_lag_limit(primary, standby, 30)


def test_reads_fall_back_to_the_primary_when_the_standby_or_its_postgrest_is_down(pair, routed):
    primary, standby = pair
    cfg, rcfg, key = routed
    standby.stop()
    try:
        _post_lead(cfg, "standby-down@example.com")
        for _ in range(3):  # the first is retried on the backup, the next ones go there directly
            assert _find(cfg, key, "standby-down@example.com") == [{"email": "standby-down@example.com"}]
    finally:
        standby.start()
    replica.wait_caught_up(primary.url(ops.OPS_DB), standby.url(ops.OPS_DB))
    assert ops_stack.replica_postgrest_service(cfg.run_dir).stop()
    assert ops_stack.unix_http(rcfg.postgrest_socket, "/leads")[0] is None
    _post_lead(cfg, "postgrest-down@example.com")
    assert _find(cfg, key, "postgrest-down@example.com") == [{"email": "postgrest-down@example.com"}]


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
