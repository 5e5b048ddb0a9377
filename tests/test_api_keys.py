"""API keys end to end: `invoke api.*` against a per-test database, then requests with the keys."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from chorus_db import config

SEED_LEAD = {"firstName": "John", "lastName": "Doe", "email": "john.doe@example.com", "gdprConsent": True}


def invoke(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_created_key_is_printed_once_and_only_its_hash_is_stored(db_url, db):
    result = invoke(db_url, "api.key-create", "crm", "--role", "reader")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("chk_") and len(key) == 52
    assert "cannot be shown again" in result.stderr
    name, role, key_hash, prefix = db.execute("select name, role, key_hash, key_prefix from app.api_keys").fetchone()
    assert (name, role) == ("crm", "reader")
    assert bytes(key_hash) == hashlib.sha256(key.encode()).digest()
    stored = str(db.execute("select * from app.api_keys").fetchall())
    assert key not in stored and key[10:] not in stored
    assert key.startswith(prefix)


def test_the_key_list_shows_names_and_roles_but_no_secret(db_url):
    key = invoke(db_url, "api.key-create", "crm", "--role", "admin").stdout.strip()
    listing = invoke(db_url, "api.keys")
    assert listing.returncode == 0
    assert "crm" in listing.stdout and "admin" in listing.stdout
    assert key not in listing.stdout and key[10:20] not in listing.stdout


def test_a_key_works_until_revoked_and_is_refused_on_the_next_request(db_url, api):
    api.post("/api/leads", SEED_LEAD)
    key = invoke(db_url, "api.key-create", "crm", "--role", "reader").stdout.strip()
    before = api.get("/api/leads", api_key=key)
    assert before.status == 200 and len(before.body) == 1
    revoked = invoke(db_url, "api.key-revoke", "crm")
    assert revoked.returncode == 0, revoked.stderr
    after = api.get("/api/leads", api_key=key)
    assert after.status == 401
    assert after.body["code"] == "CHK01"
    assert "john" not in str(after.body).lower()


def test_revoking_an_unknown_name_fails_with_a_clear_message(db_url):
    result = invoke(db_url, "api.key-revoke", "nobody")
    assert result.returncode != 0
    assert "no active key named 'nobody'" in result.stderr


def test_a_name_is_reusable_after_revocation_but_not_while_active(db_url):
    assert invoke(db_url, "api.key-create", "crm").returncode == 0
    duplicate = invoke(db_url, "api.key-create", "crm")
    assert duplicate.returncode != 0 and "revoke it first" in duplicate.stderr
    invoke(db_url, "api.key-revoke", "crm")
    assert invoke(db_url, "api.key-create", "crm", "--role", "admin").returncode == 0


def test_an_unknown_role_is_refused(db_url, db):
    result = invoke(db_url, "api.key-create", "crm", "--role", "owner")
    assert result.returncode != 0
    assert db.execute("select count(*) from app.api_keys").fetchone()[0] == 0


@pytest.mark.parametrize("key", [None, "chk_" + "0" * 48, "not a key at all", "k" * 5000])
def test_no_key_or_a_wrong_key_on_get_leads_is_401_without_data(api, key):
    api.post("/api/leads", SEED_LEAD)
    response = api.get("/api/leads", api_key=key)
    assert response.status == 401
    assert "john" not in str(response.body).lower()


def test_no_api_role_can_read_or_write_the_key_table(db, make_key):
    make_key("admin")
    rows = db.execute(
        "select r from unnest(array['anon', 'reader', 'admin']) as r"
        " where has_table_privilege(r, 'app.api_keys', 'select, insert, update, delete')"
    ).fetchall()
    assert rows == []
