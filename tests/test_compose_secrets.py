"""The compose stack's secrets (chorus_db.compose_secrets): nothing starts on a missing,
placeholder or weak secret, and PostgREST gets its secrets as files only it may read."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from chorus_db import compose_secrets, config


@pytest.fixture
def good(tmp_path):
    directory = tmp_path / "secrets"
    directory.mkdir()
    for name in compose_secrets.NAMES:
        (directory / name).write_text(secrets.token_urlsafe(32) + "\n")
    return directory


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chorus_db.compose_secrets", *args], capture_output=True, text=True, cwd=config.ROOT
    )


def test_good_secrets_pass_the_check(good):
    proc = _run("check", str(good))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


@pytest.mark.parametrize(
    "value, says",
    [
        (None, "secrets/jwt_secret is missing"),
        ("", "secrets/jwt_secret is empty"),
        ("change-me-to-a-random-string-of-at-least-32-characters", "secrets/jwt_secret holds a placeholder"),
        ("Zx81kq", "secrets/jwt_secret is 6 characters, fewer than 32"),
        ("a" * 31 + "/" + "b" * 8, "secrets/jwt_secret may hold only letters, digits, - and _"),
    ],
)
def test_a_bad_secret_stops_the_stack_with_one_line_saying_what_to_write(good, value, says):
    path = good / "jwt_secret"
    if value is None:
        path.unlink()
    else:
        path.write_text(value)
    proc = _run("check", str(good))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line, no traceback
    assert proc.stderr.startswith("refusing to start: " + says)
    assert "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > secrets/jwt_secret" in proc.stderr


def test_one_value_used_twice_is_refused(good):
    (good / "authenticator_password").write_text((good / "jwt_secret").read_text())
    proc = _run("check", str(good))
    assert proc.returncode == 1 and "the same value twice" in proc.stderr


def test_postgrest_gets_its_uri_and_jwt_secret_as_files_of_its_own(good, tmp_path):
    out, socket_dir = tmp_path / "postgrest-secrets", tmp_path / "postgrest-socket"
    proc = _run("postgrest", str(good), str(out), str(socket_dir), "postgres", "5432")
    assert proc.returncode == 0, proc.stderr
    password = (good / "authenticator_password").read_text().strip()
    assert (out / "db_uri").read_text() == f"postgres://authenticator:{password}@postgres:5432/chorus_website"
    assert (out / "jwt_secret").read_text() == (good / "jwt_secret").read_text().strip()
    for path in (out / "db_uri", out / "jwt_secret"):
        assert oct(path.stat().st_mode & 0o777) == "0o400"
    assert oct(socket_dir.stat().st_mode & 0o777) == "0o750"
    if os.geteuid() == 0:  # the official images' users: PostgREST 1000, nginx's group 101
        assert {(out / n).stat().st_uid for n in ("db_uri", "jwt_secret")} == {1000}
        assert (socket_dir.stat().st_uid, socket_dir.stat().st_gid) == (1000, 101)


def test_postgrest_files_are_not_written_from_bad_secrets(good, tmp_path):
    (good / "postgres_password").write_text("changeme")
    proc = _run("postgrest", str(good), str(tmp_path / "out"), str(tmp_path / "sock"), "postgres", "5432")
    assert proc.returncode == 1 and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "secrets/field_keys holds no key: write one: python3 -c 'import secrets; print(1, secrets.token_hex(32))' > secrets/field_keys"),
        ("1 " + "ab" * 32 + "\nkey-looking-text\n", 'line 2 of secrets/field_keys is not "<version> <64 hex digits>": correct it'),
    ],
)
def test_a_malformed_field_key_file_stops_everything_with_one_line_that_never_quotes_it(good, content, message):
    (good / "field_keys").write_text(content)
    result = _run("check", str(good))
    assert result.returncode == 1 and result.stderr.strip() == f"refusing to start: {message}"


def test_a_well_formed_field_key_file_passes(good):
    (good / "field_keys").write_text("# keys\n1 " + secrets.token_hex(32) + "\n2 " + secrets.token_hex(32) + "\n")
    assert _run("check", str(good)).returncode == 0
