"""Faults: a crash of the PostgreSQL server under load loses nothing that was acknowledged.

A dedicated cluster (never the shared test cluster) takes lead submissions from several
threads, exactly as PostgREST sends them; the postmaster is killed with SIGKILL mid-load,
restarted, and every submission that got a 201 must be there, with a consent audit whose
hash chains still verify.
"""

from __future__ import annotations

import shutil
import threading
import time

from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chorus_db import config
from chorus_db.build import build
from chorus_db.cluster import Cluster
from tests.support.postgrest import PostgrestSim

PASSWORD = "authenticator-faults-only"


def lead(email: str) -> dict:
    return {"firstName": "Grace", "lastName": "Hopper", "email": email, "gdprConsent": True, "marketingConsent": True}


@pytest.mark.slow
def test_every_acknowledged_submission_survives_a_kill_9():
    # Not pytest's tmp_path: it is private to root, and the server runs as another OS user.
    cluster = Cluster(config.scratch_dir("faults") / "pgdata", cron_database="chorus_faults",
                      first_port=56100)
    cluster.datadir.parent.chmod(0o755)
    try:
        cluster.start()
        url = cluster.url("chorus_faults")
        build(url, log=lambda _m: None)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"alter role authenticator password '{PASSWORD}'")
            conn.execute("update app.rate_limit_rules set max_requests = 1000000")
        sim = PostgrestSim(make_conninfo(url, user="authenticator", password=PASSWORD))

        acknowledged: list[str] = []
        lock = threading.Lock()
        crashed = threading.Event()

        def worker(n: int) -> None:
            i = 0
            while True:
                email = f"crash-{n}-{i}@example.com"
                try:
                    response = sim.post("/api/leads", lead(email), client_ip=f"10.9.{n}.{i % 250 + 1}")
                except psycopg.OperationalError:
                    return  # the server is gone: stop, as a client would
                if response.status == 201:
                    with lock:
                        acknowledged.append(email)
                elif crashed.is_set():
                    return
                i += 1

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        cluster.kill9()
        crashed.set()
        for thread in threads:
            thread.join(timeout=30)
        assert len(acknowledged) >= 60, "the load did not get going before the crash"

        cluster.start()  # crash recovery replays the WAL
        with psycopg.connect(url, autocommit=True) as conn:
            present = {row[0] for row in conn.execute("select lower(email) from app.leads")}
            broken = conn.execute("select * from app_logic.verify_consent_chain()").fetchall()
        missing = [email for email in acknowledged if email not in present]
        assert missing == [], f"{len(missing)} acknowledged submissions lost after kill -9"
        assert broken == [], f"consent audit chain broken after the crash: {broken[:3]}"
    finally:
        cluster.destroy()
        shutil.rmtree(cluster.datadir.parent, ignore_errors=True)
