"""Point-in-time recovery of the embedded cluster with pgBackRest (Debian's package).

`enable` turns on WAL archiving (archive_command = pgbackrest archive-push) and creates the
stanza; `backup` takes a full, differential or incremental base backup; `recover` restores
the backups plus the archived WAL up to a moment, into a new data directory or in place.

Everything pgBackRest keeps lives next to the data directory, in <datadir>.pgbackrest/
(git-ignored like .pgdata): its configuration, the repository, logs, locks, and the unix
socket it reaches the server by. pgBackRest connects through a socket only; the cluster's
socket directory is that private one (mode 0700), and pg_hba lets only the server's OS user in
there as postgres (peer authentication with an ident map), so no password is stored for it.

pg_dump backups (`invoke db.backup`, chorus_db/backup.py) stay the logical copies; these are
the physical ones, for recovery to any moment.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from .errors import UserError
from .cluster import PASSWORD_FILE, Cluster, first_free_port

STANZA = "chorus"
IDENT_MAP = "chorus_pitr"


class PitrError(UserError):
    """A PITR step that failed; the message says what to do."""


def pgbackrest_bin() -> str:
    found = shutil.which("pgbackrest") or ("/usr/bin/pgbackrest" if os.access("/usr/bin/pgbackrest", os.X_OK) else None)
    if found is None:
        raise PitrError("pgBackRest was not found: install Debian's package (`apt-get install pgbackrest`) and run the task again")
    return found


def home(cluster: Cluster) -> Path:
    return cluster.datadir.parent / f"{cluster.datadir.name}.pgbackrest"


def config_file(cluster: Cluster) -> Path:
    return home(cluster) / "pgbackrest.conf"


def socket_dir(cluster: Cluster) -> Path:
    return home(cluster) / "socket"


def enabled(cluster: Cluster) -> bool:
    return config_file(cluster).exists()


def render_config(cluster: Cluster, port: int | None = None) -> str:
    base = home(cluster)
    return "\n".join(
        [
            "# Written by chorus_db.pitr (`invoke db.pitr.enable`).",
            "[global]",
            f"repo1-path={base / 'repo'}",
            # Two full backups and the WAL to recover to any moment since the older one.
            "repo1-retention-full=2",
            f"log-path={base / 'log'}",
            f"lock-path={base / 'lock'}",
            f"spool-path={base / 'spool'}",
            "log-level-console=warn",
            "log-level-file=info",
            "start-fast=y",
            "",
            f"[{STANZA}]",
            f"pg1-path={cluster.datadir}",
            f"pg1-port={port or cluster.port}",
            f"pg1-socket-path={socket_dir(cluster)}",
            "pg1-user=postgres",
            "",
        ]
    )


def _run(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    argv = [pgbackrest_bin(), f"--config={config_file(cluster)}", f"--stanza={STANZA}", *args]
    proc = cluster._as_owner(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise PitrError(f"pgbackrest {args[-1]} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def _prepend(path: Path, line: str) -> None:
    text = path.read_text() if path.exists() else ""
    if line not in text.splitlines():
        path.write_text(line + "\n" + text)


def enable(cluster: Cluster) -> bool:
    """Archive WAL to pgBackRest and create the stanza (restarts the server once). True when
    it was enabled now, False when it already was."""
    pgbackrest_bin()
    if not cluster.running():
        cluster.start()
    if enabled(cluster):
        return False
    base = home(cluster)
    user = cluster.os_user
    for sub in ("", "repo", "log", "lock", "spool", "socket"):
        (base / sub).mkdir(parents=True, exist_ok=True)
        (base / sub).chmod(0o700)
        if user:
            shutil.chown(base / sub, user=user)
    config_file(cluster).write_text(render_config(cluster))
    if user:
        shutil.chown(config_file(cluster), user=user)
    os_user = user or getpass.getuser()
    _prepend(cluster.datadir / "pg_hba.conf", f"local all postgres peer map={IDENT_MAP}")
    with (cluster.datadir / "pg_ident.conf").open("a") as ident:
        ident.write(f"\n{IDENT_MAP} {os_user} postgres\n")
    archive_command = f"{pgbackrest_bin()} --config={config_file(cluster)} --stanza={STANZA} archive-push %p"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        for name, value in (
            ("archive_mode", "on"),
            ("archive_command", archive_command),
            # A quiet site still closes a WAL segment every minute: at most a minute to lose.
            ("archive_timeout", "60"),
            ("unix_socket_directories", str(socket_dir(cluster))),
            ("unix_socket_permissions", "0700"),
        ):
            conn.execute(f"alter system set {name} = '{value}'")
    cluster.stop()
    cluster.start()
    _run(cluster, "stanza-create")
    _run(cluster, "check")
    return True


def backup(cluster: Cluster, kind: str = "full") -> dict:
    """A base backup (full, diff or incr); returns its entry of `pgbackrest info`."""
    if kind not in ("full", "diff", "incr"):
        raise PitrError(f"the backup type is full, diff or incr, not {kind!r}")
    if not enabled(cluster):
        raise PitrError("WAL archiving is not set up: run `invoke db.pitr.enable` first")
    _run(cluster, f"--type={kind}", "backup")
    return info(cluster)["backup"][-1]


def info(cluster: Cluster) -> dict:
    """pgBackRest's view of the stanza: backups (label, type, start/stop time) and WAL range."""
    proc = _run(cluster, "--output=json", "info")
    [stanza] = json.loads(proc.stdout)
    return stanza


def archive_now(cluster: Cluster, url: str) -> None:
    """Close the current WAL segment and wait until pgBackRest has it (a test's recovery target
    must be covered by archived WAL, which archive_timeout would otherwise take a minute to do)."""
    with psycopg.connect(url, autocommit=True) as conn:
        (walfile,) = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()
        deadline = time.monotonic() + 30
        while True:
            (last,) = conn.execute("select last_archived_wal from pg_stat_archiver").fetchone()
            if last is not None and last >= walfile:
                return
            if time.monotonic() > deadline:
                raise PitrError(f"WAL segment {walfile} was not archived within 30 s: see {home(cluster) / 'log'}")
            time.sleep(0.05)


def recover(cluster: Cluster, to: datetime, target: Path | None = None, timeout: float = 120.0) -> Cluster:
    """Restore the newest backup taken before `to` and replay archived WAL up to it (inclusive
    of what committed before), then promote. With `target`, into that new directory (the
    cluster keeps running; the copy gets its own port and archives nothing); without, in place
    (the server is stopped, its directory kept aside as <datadir>.before-<time>)."""
    if not enabled(cluster):
        raise PitrError("WAL archiving is not set up for this cluster: there is nothing to recover from")
    if to.tzinfo is None:
        raise PitrError("give the recovery time with its time zone, e.g. 2026-12-01T10:00:00Z")
    stamp = to.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    if cluster.running():
        # The segment being written holds the latest commits: archive it, or a target just
        # before now would lie beyond the archive (recovery would stop short and fail).
        archive_now(cluster, cluster.url("postgres"))
    in_place = target is None
    if in_place:
        aside = cluster.datadir.parent / f"{cluster.datadir.name}.before-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
        cluster.stop()
        cluster.datadir.rename(aside)
        target = cluster.datadir
    elif target.exists() and any(target.iterdir()):
        raise PitrError(f"{target} is not empty: give a new directory with --target")
    user = cluster.os_user
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o700)
    if user:
        shutil.chown(target, user=user)
    args = [f"--pg1-path={target}", "--type=time", f"--target={stamp}", "--target-action=promote"]
    if not in_place:
        args.append("--archive-mode=off")  # the copy must not write into the original's archive
    _run(cluster, *args, "restore")
    restored = Cluster(target, cron_database=cluster.cron_database)
    if not in_place:
        shutil.copy(cluster.datadir.parent / f"{cluster.datadir.name}.{PASSWORD_FILE}",
                    target.parent / f"{target.name}.{PASSWORD_FILE}")
        restored._write_settings(first_free_port(cluster.port + 1))
        with (target / "postgresql.auto.conf").open("a") as auto:
            # The original's socket directory is private to it; the copy listens on TCP only.
            auto.write("unix_socket_directories = ''\n")
    restored.start()
    deadline = time.monotonic() + timeout
    with psycopg.connect(restored.url("postgres"), autocommit=True) as conn:
        while conn.execute("select pg_is_in_recovery()").fetchone()[0]:
            if time.monotonic() > deadline:
                raise PitrError(f"recovery did not finish within {timeout:.0f} s: see {restored.logfile}")
            time.sleep(0.1)
    return restored
