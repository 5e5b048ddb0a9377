"""Clusters of their own for the operations drills (replica, failover, PITR, PgBouncer,
monitoring): they restart, stop and promote servers, which the shared test cluster must never
suffer. Each is small (one built database) so making one takes a few seconds."""

from __future__ import annotations

import shutil

import psycopg

from chorus_db import config, stack
from chorus_db.build import build
from chorus_db.cluster import Cluster

OPS_DB = "chorus_ops"
AUTHENTICATOR_PASSWORD = "authenticator-ops-only"


def new_cluster(prefix: str) -> Cluster:
    # Not pytest's tmp_path: it is private to root, and the server runs as another OS user. A
    # scratch directory of the checkout, so `invoke down` finds what a killed drill left.
    base = config.scratch_dir(prefix.removeprefix("chorus-").rstrip("-"))
    return Cluster(base / "pgdata", cron_database=OPS_DB, first_port=stack.free_port())


def built_cluster(prefix: str) -> Cluster:
    """A started cluster with the schema built into OPS_DB (pg_cron's database)."""
    cluster = new_cluster(prefix)
    cluster.start()
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f"create database {OPS_DB}")
    url = cluster.url(OPS_DB)
    build(url, log=lambda _m: None)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"alter role authenticator password '{AUTHENTICATOR_PASSWORD}'")
        # Drills send many requests from few addresses: the limiter must not be what they test.
        conn.execute("update app.rate_limit_rules set max_requests = 1000000")
    return cluster


def remove(*clusters: Cluster) -> None:
    for cluster in clusters:
        if cluster is None:
            continue
        cluster.destroy()
        shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


def lead(email: str) -> dict:
    return {"firstName": "Ada", "lastName": "Lovelace", "email": email, "gdprConsent": True, "marketingConsent": True}
