"""The application-server peer in `invoke bench`: bench/peer_app.py (FastAPI + asyncpg, 2 uvicorn
workers) doing a submission's work outside the database, measured with the same wrk load as (d)
on the same cluster. Skipped with a reason when FastAPI, uvicorn or asyncpg is not installed
(`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

from ..cluster import Cluster
from .common import BENCH_DB, BENCH_DIR, Report

DESCRIPTION = "FastAPI + asyncpg, 2 uvicorn workers"
WORKERS = 2


class Peer:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc, self.port = proc, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/leads"

    def pids(self) -> list[int]:
        from .common import children

        return [self.proc.pid, *children(self.proc.pid)] if self.proc.poll() is None else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def missing() -> list[str]:
    return [name for name in ("fastapi", "uvicorn", "asyncpg", "uvloop", "httptools") if importlib.util.find_spec(name) is None]


def start(report: Report, cluster: Cluster) -> Peer | None:
    """Start the peer on a free port; None (and a skip reason in the report) when it cannot run."""
    from .. import stack

    lacking = missing()
    if lacking:
        report.skipped["app-server peer"] = f"not installed: {', '.join(lacking)} (pip install -e '.[bench]')"
        print(f"  skipped the app-server peer: {report.skipped['app-server peer']}")
        return None
    port = stack.free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), "peer_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(WORKERS), "--loop", "uvloop", "--http", "httptools",
         "--no-access-log", "--log-level", "warning"],
        env=dict(os.environ, PEER_DATABASE_URL=cluster.url(BENCH_DB)),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    peer = Peer(proc, port)
    deadline = time.monotonic() + 30
    while stack.http_status(f"http://127.0.0.1:{port}/") is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            err = log.read().decode(errors="replace")[-1500:] if proc.poll() is not None else "no answer in 30 s"
            peer.stop()
            raise RuntimeError(f"the app-server peer did not start: {err}")
        time.sleep(0.2)
    return peer


def layers(peer: Peer, postgres: Callable[[], list[int]]) -> dict[str, Callable[[], list[int]]]:
    return {"peer": peer.pids, "PostgreSQL": postgres}
