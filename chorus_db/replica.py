"""The read replica: a hot standby of the embedded cluster, made with pg_basebackup and kept
current by streaming replication through a physical replication slot.

`invoke db.replica --create` makes it (once) in <pgdata>.replica next to the embedded cluster and
starts it; `invoke db.promote` turns it into a primary (failover). The same functions build the
standby of the failover drill test (tests/test_replica.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from . import config
from .errors import UserError
from .cluster import PASSWORD_FILE, Cluster, first_free_port

SLOT = "chorus_replica"
# A slot keeps WAL until the standby has it; a standby gone for good must not fill the disk.
MAX_SLOT_WAL_KEEP = "2GB"


class ReplicaError(UserError):
    """A replica step that failed; the message says what to do."""


def replica_datadir() -> Path:
    """CHORUS_REPLICA_PGDATA, else next to the embedded cluster's directory: <pgdata>.replica."""
    from .cluster import embedded_datadir

    explicit = os.environ.get("CHORUS_REPLICA_PGDATA")
    return Path(explicit) if explicit else Path(str(embedded_datadir()) + ".replica")


def replica_cluster(datadir: Path | None = None) -> Cluster:
    return Cluster(datadir or replica_datadir())


def _password_path(datadir: Path) -> Path:
    return datadir.parent / f"{datadir.name}.{PASSWORD_FILE}"


def is_standby(cluster: Cluster) -> bool:
    return (cluster.datadir / "standby.signal").exists()


def create_standby(primary: Cluster, datadir: Path, slot: str = SLOT, first_port: int | None = None) -> Cluster:
    """pg_basebackup of the running primary into datadir (which must not exist), configured as a
    hot standby streaming from it through `slot`. Returns the standby (not started)."""
    if (datadir / "PG_VERSION").exists():
        raise ReplicaError(f"{datadir} already holds a cluster: remove it to make a new standby")
    if not primary.running():
        raise ReplicaError("the primary is not running: `invoke db.up` first")
    with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
        conn.execute(f"alter system set max_slot_wal_keep_size = '{MAX_SLOT_WAL_KEEP}'")
        conn.execute("select pg_reload_conf()")
        row = conn.execute("select active from pg_replication_slots where slot_name = %s", (slot,)).fetchone()
        if row and row[0]:
            raise ReplicaError(f"replication slot {slot} is in use by a running standby: stop it first")
        if row:
            conn.execute("select pg_drop_replication_slot(%s)", (slot,))
    standby = Cluster(datadir, first_port=first_port or primary.port + 1)
    user = standby.os_user
    datadir.mkdir(parents=True)
    if user:
        shutil.chown(datadir, user=user)
    datadir.chmod(0o700)
    env = dict(os.environ, PGPASSWORD=primary.password)
    argv = [
        str(config.pg_bindir() / "pg_basebackup"),
        "--dbname", f"host=127.0.0.1 port={primary.port} user=postgres application_name={slot}",
        "--pgdata", str(datadir),
        "--wal-method=stream", "--write-recovery-conf", "--create-slot", f"--slot={slot}",
        "--checkpoint=fast", "--no-password",
    ]
    if user:
        argv = ["runuser", "-u", user, "--", *argv]  # runuser keeps the environment (PGPASSWORD)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(datadir, ignore_errors=True)
        raise ReplicaError(f"pg_basebackup failed: {proc.stderr.strip()}")
    shutil.copy(_password_path(primary.datadir), _password_path(datadir))
    _password_path(datadir).chmod(0o600)
    # The copy holds the primary's chorus.conf: give the standby a port of its own.
    standby._write_settings(first_free_port(first_port or primary.port + 1))
    for stale in ("postmaster.pid", "server.log"):
        (datadir / stale).unlink(missing_ok=True)
    return standby


def lag_seconds(url: str) -> float:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return float(conn.execute("select app_logic.replica_lag_seconds()").fetchone()[0])


def wait_caught_up(primary_url: str, standby_url: str, timeout: float = 30.0) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        (target,) = conn.execute("select pg_current_wal_lsn()").fetchone()
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby_url, autocommit=True) as conn:
        while True:
            (done,) = conn.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (str(target),)).fetchone()
            if done:
                return
            if time.monotonic() > deadline:
                raise ReplicaError(f"the standby did not replay up to {target} within {timeout:.0f} s")
            time.sleep(0.05)


def replication_status(primary_url: str) -> list[tuple]:
    """(standby, state, replay lag seconds, WAL held back by its slot) per slot, on the primary."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        return conn.execute(
            """
            select s.slot_name, coalesce(r.state, 'disconnected'),
                   extract(epoch from r.replay_lag), pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn))
            from pg_replication_slots as s left join pg_stat_replication as r on r.pid = s.active_pid
            order by 1
            """
        ).fetchall()


def promote(standby: Cluster, old_primary: Cluster | None = None, timeout: float = 60.0) -> None:
    """Fence the old primary (stop it if it still runs: two primaries must never take writes),
    then promote the standby and wait until it accepts writes."""
    if not standby.running():
        raise ReplicaError(f"the standby in {standby.datadir} is not running: start it (`invoke db.replica --create`) first")
    if not is_standby(standby):
        raise ReplicaError(f"{standby.datadir} is already a primary: nothing to promote")
    if old_primary is not None and old_primary.running():
        old_primary.stop("fast")
    proc = standby._as_owner(
        [standby._bin("pg_ctl"), "promote", "-w", "-t", str(int(timeout)), "-D", str(standby.datadir)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise ReplicaError(f"pg_ctl promote failed: {proc.stderr.strip() or proc.stdout.strip()}")
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby.url("postgres"), autocommit=True) as conn:
        while conn.execute("select pg_is_in_recovery()").fetchone()[0]:
            if time.monotonic() > deadline:
                raise ReplicaError("the standby did not leave recovery after pg_ctl promote")
            time.sleep(0.05)
