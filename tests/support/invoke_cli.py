"""Run an invoke task as an operator would, against a chosen database."""

from __future__ import annotations

import os
import subprocess
import sys

from chorus_db import config


def run_invoke(*args: str, database_url: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`invoke ARGS` in the checkout with DATABASE_URL set; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=config.ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
