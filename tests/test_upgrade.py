"""Upgrading: a database built from an earlier commit, upgraded to HEAD, equals a fresh build.

The earlier commit is the one named in db/UPGRADE_BASE: the last state that may exist in a
deployed database. Bump it when a release goes out; schema files applied by then are frozen.
"""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from chorus_db import config, testing
from chorus_db.build import Source, build
from chorus_db.drift import schema_dump


def _quiet(_msg: str) -> None:
    pass


def _source_at(commit: str, dest) -> Source:
    proc = subprocess.run(
        ["git", "-C", str(config.ROOT), "archive", "--format=tar", commit, "db"],
        capture_output=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"commit {commit} of db/UPGRADE_BASE is not in this clone: {proc.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        archive.extractall(dest, filter="data")
    return Source(dest / "db")


def test_upgrading_the_base_commit_to_head_equals_a_fresh_build(pg_cluster, tmp_path):
    base = (config.DB_DIR / "UPGRADE_BASE").read_text().split()[0]
    old = _source_at(base, tmp_path)
    upgraded = testing.recreate_database(pg_cluster, "chorus_upgrade_old")
    fresh = testing.recreate_database(pg_cluster, "chorus_upgrade_fresh")
    try:
        build(upgraded, source=old, log=_quiet)
        result = build(upgraded, log=_quiet)
        build(fresh, log=_quiet)
        assert schema_dump(upgraded) == schema_dump(fresh)
        # The upgrade applied only what the base lacked, never an applied file again.
        assert set(result.applied_migrations).isdisjoint(p.name for p in old.schema_files)
    finally:
        for name in ("chorus_upgrade_old", "chorus_upgrade_fresh"):
            testing.recreate_database(pg_cluster, name)
