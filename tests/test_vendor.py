"""The vendored PostgREST (chorus_db.vendor) and the CI rule that a test which cannot run fails.

The tarballs here are made by the test (a tiny `postgrest` script), so the checks run on every
machine; the real tarball is what .ci/run hands to the same code."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from chorus_db import config, testing, vendor


def _tarball(folder: Path, content: bytes = b"#!/bin/sh\necho 'PostgREST 12.2.3'\n", digest: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / vendor.POSTGREST_TARBALL
    with tarfile.open(path, "w:xz") as archive:
        info = tarfile.TarInfo("postgrest")
        info.size = len(content)
        info.mode = 0o755
        archive.addfile(info, io.BytesIO(content))
    digest = digest or hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / f"{vendor.POSTGREST_TARBALL}.sha256").write_text(f"{digest}  {vendor.POSTGREST_TARBALL}\n")
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHORUS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_checked_tarball_is_unpacked_once_outside_the_checkout_and_runs(tmp_path, cache):
    _tarball(tmp_path / "vendor")
    binary = vendor.unpack_postgrest(tmp_path / "vendor")
    assert binary == cache / f"postgrest-v{vendor.POSTGREST_VERSION}" / "postgrest"
    assert config.ROOT not in binary.parents
    assert subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip() == "PostgREST 12.2.3"
    before = binary.stat().st_mtime_ns
    assert vendor.unpack_postgrest(tmp_path / "vendor") == binary
    assert binary.stat().st_mtime_ns == before, "a second run reuses the checked copy"


def test_a_tarball_that_does_not_match_its_sha256_is_refused_and_nothing_is_unpacked(tmp_path, cache):
    _tarball(tmp_path / "vendor", digest="0" * 64)
    with pytest.raises(vendor.VendorError, match="does not match its SHA-256"):
        vendor.unpack_postgrest(tmp_path / "vendor")
    assert not vendor.unpacked_postgrest().exists()


def test_a_tarball_without_its_sha256_file_is_refused(tmp_path, cache):
    _tarball(tmp_path / "vendor")
    (tmp_path / "vendor" / f"{vendor.POSTGREST_TARBALL}.sha256").unlink()
    with pytest.raises(vendor.VendorError, match="cannot be checked"):
        vendor.unpack_postgrest(tmp_path / "vendor")


def test_a_changed_tarball_replaces_the_cached_binary(tmp_path, cache):
    _tarball(tmp_path / "vendor")
    vendor.unpack_postgrest(tmp_path / "vendor")
    _tarball(tmp_path / "vendor", content=b"#!/bin/sh\necho 'PostgREST 12.2.4'\n")
    binary = vendor.unpack_postgrest(tmp_path / "vendor")
    assert b"12.2.4" in binary.read_bytes()


def test_the_cache_may_not_be_inside_the_checkout(monkeypatch):
    monkeypatch.setenv("CHORUS_CACHE_DIR", str(config.ROOT / ".run" / "cache"))
    with pytest.raises(vendor.VendorError, match="inside the checkout"):
        vendor.cache_dir()


def test_without_configured_postgrest_the_tests_use_the_vendored_copy_as_postgrest_bin(tmp_path, cache, monkeypatch):
    _tarball(tmp_path / "vendor")
    monkeypatch.delenv("POSTGREST_BIN", raising=False)
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    monkeypatch.setenv("CHORUS_VENDOR_DIR", str(tmp_path / "vendor"))
    binary = testing.postgrest_for_tests()
    assert binary == vendor.unpacked_postgrest()
    assert os.environ["POSTGREST_BIN"] == str(binary)


def test_a_configured_postgrest_bin_wins_over_the_vendored_copy(tmp_path, cache, monkeypatch):
    _tarball(tmp_path / "vendor")
    own = tmp_path / "own" / "postgrest"
    own.parent.mkdir()
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    monkeypatch.setenv("POSTGREST_BIN", str(own))
    monkeypatch.setenv("CHORUS_VENDOR_DIR", str(tmp_path / "vendor"))
    assert testing.postgrest_for_tests() == own
    assert not vendor.unpacked_postgrest().exists()


# -- CI=true: a skip is a failure -------------------------------------------------------------
PROBE = textwrap.dedent(
    """
    import pytest

    def test_runs():
        assert True

    def test_cannot_run():
        pytest.skip("PostgREST not found")

    @pytest.fixture
    def needs_nginx():
        pytest.skip("nginx not found")

    def test_fixture_cannot_run(needs_nginx):
        pass
    """
)


def _run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(config.ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.ci_plugin", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )


def test_under_ci_a_test_that_cannot_run_fails_with_its_reason(tmp_path):
    result = _run_probe(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    # A test that skips fails; a fixture that skips is an error in its setup: neither is a skip.
    assert result.stdout.strip().splitlines()[-1].startswith("1 failed, 1 passed, 1 error in ")
    assert "a test that cannot run is a failure, not a skip: PostgREST not found" in result.stdout
    assert "a test that cannot run is a failure, not a skip: nginx not found" in result.stdout


def test_outside_ci_a_test_that_cannot_run_is_skipped(tmp_path):
    result = _run_probe(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped" in result.stdout
