"""Spam protection beyond rate limits (issue 14): the honeypot and the minimum time to submit
are refused quietly (the same 201, nothing stored, the slot used); the ALTCHA proof of work is
solved by ALTCHA's own library (npm altcha-lib) as the widget would, admitted once, refused
when replayed, wrong or expired."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

LEAD = {"firstName": "Sam", "lastName": "Spade", "email": "sam@example.org", "gdprConsent": True}
SOLVER = Path(__file__).parent / "support" / "altcha_solve.cjs"


def node_modules() -> Path | None:
    """Where .ci/run installed altcha-lib (CHORUS_NODE_MODULES), if node and it are there."""
    path = Path(os.environ.get("CHORUS_NODE_MODULES", "/tmp/chorus-node/node_modules"))
    if shutil.which("node") and (path / "altcha-lib").is_dir():
        return path
    return None


def solve(challenge: dict) -> str:
    modules = node_modules()
    if modules is None:
        pytest.skip("node with altcha-lib not found: run .ci/run (npm install altcha-lib) or set CHORUS_NODE_MODULES")
    result = subprocess.run(
        ["node", str(SOLVER), str(modules), json.dumps(challenge)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def leads(db) -> int:
    return db.execute("select count(*) from app.leads").fetchone()[0]


def hits(db) -> int:
    row = db.execute("select coalesce(sum(cardinality(hits)), 0) from app.rate_limit_counters where action = 'leads' and scope = 'ip'").fetchone()
    return row[0]


def test_a_filled_in_honeypot_gets_the_same_201_stores_nothing_and_uses_the_slot(api, db):
    answer = api.post("/api/leads", {**LEAD, "website": "http://spam.example"})
    assert (answer.status, answer.json()) == (201, {"status": "received"})
    assert leads(db) == 0 and hits(db) == 1
    assert db.execute("select count(*) from app.consent_audit").fetchone()[0] == 0
    assert api.post("/api/leads", {**LEAD, "website": ""}).status == 201 and leads(db) == 1


def test_a_form_sent_too_soon_after_its_token_is_dropped_quietly(api, db):
    token = api.get("/api/form-token", frozen_now="2030-01-01T10:00:00Z").json()["formToken"]
    fast = api.post("/api/leads", {**LEAD, "formToken": token}, frozen_now="2030-01-01T10:00:01Z")
    assert fast.status == 201 and leads(db) == 0
    slow = api.post("/api/leads", {**LEAD, "formToken": token}, frozen_now="2030-01-01T10:00:05Z")
    assert slow.status == 201 and leads(db) == 1


def test_a_forged_or_expired_form_token_is_dropped_quietly(api, db):
    token = api.get("/api/form-token", frozen_now="2030-01-01T10:00:00Z").json()["formToken"]
    issued, nonce, signature = token.split(".")
    forged = f"{int(issued) - 100}.{nonce}.{signature}"
    assert api.post("/api/leads", {**LEAD, "formToken": forged}, frozen_now="2030-01-01T10:00:05Z").status == 201
    assert api.post("/api/leads", {**LEAD, "formToken": token}, frozen_now="2030-01-03T10:00:00Z").status == 201
    assert api.post("/api/leads", {**LEAD, "formToken": "x" * 199}, frozen_now="2030-01-01T10:00:05Z").status == 201
    assert leads(db) == 0


def test_a_required_form_token_drops_a_form_without_one(api, db):
    db.execute("update app.spam_rules set form_token_required = true where action = 'leads'")
    assert api.post("/api/leads", LEAD).status == 201 and leads(db) == 0


def test_proof_of_work_is_off_until_its_rule_says_so(api, db):
    assert api.post("/api/leads", LEAD).status == 201 and leads(db) == 1
    db.execute("update app.spam_rules set proof_of_work = true where action = 'leads'")
    answer = api.post("/api/leads", {**LEAD, "email": "b@example.org"})
    assert answer.status == 400 and answer.json()["errors"][0]["field"] == "altcha"
    assert leads(db) == 1


@pytest.mark.parametrize(
    "payload",
    ["not base64!", base64.b64encode(b"[1]").decode(), base64.b64encode(b'{"number": 1e400}').decode(),
     base64.b64encode(json.dumps({"algorithm": "SHA-256", "challenge": "a", "number": 1, "salt": "s", "signature": "x"}).encode()).decode(),
     base64.b64encode(b"\xff\xfe").decode(), "=" * 100],
)
def test_a_wrong_altcha_payload_is_a_400_naming_altcha_and_stores_nothing(api, db, payload):
    db.execute("update app.spam_rules set proof_of_work = true where action = 'leads'")
    answer = api.post("/api/leads", {**LEAD, "altcha": payload})
    assert answer.status == 400 and answer.json()["errors"][0]["field"] == "altcha", answer.body
    assert leads(db) == 0


def test_the_challenge_is_signed_and_expires(api, db):
    challenge = api.get("/api/challenge", frozen_now="2030-01-01T10:00:00Z").json()
    assert challenge["algorithm"] == "SHA-256" and challenge["maxnumber"] == 100000
    assert challenge["salt"].endswith(f"?expires={1893492000 + 600}&")
    (signature,) = db.execute("select app_logic.spam_hmac(%s)", (challenge["challenge"],)).fetchone()
    assert challenge["signature"] == signature


# -- as a real client: the challenge through nginx, solved by altcha-lib -----------------------
@pytest.mark.http
def test_a_solved_challenge_is_admitted_once_and_a_replay_is_refused(http):
    http.sql("update app.spam_rules set proof_of_work = true, pow_max_number = 20000 where action = 'leads'")
    try:
        client = http.fresh_client()
        challenge = client.get("/api/challenge")
        assert challenge.status_code == 200, challenge.text
        payload = solve(challenge.json())
        email = f"pow.{os.getpid()}@example.org"
        first = client.post("/api/leads", json={**LEAD, "email": email, "altcha": payload})
        assert first.status_code == 201, first.text
        replay = http.fresh_client().post("/api/leads", json={**LEAD, "email": "other." + email, "altcha": payload})
        assert replay.status_code == 400 and replay.json()["message"] == "altcha was used already: solve a new challenge."
        assert http.sql("select count(*) from app.leads where email in (%s, %s)", (email, "other." + email)) == [(1,)]
    finally:
        http.sql("update app.spam_rules set proof_of_work = false, pow_max_number = 100000 where action = 'leads'")


@pytest.mark.http
@pytest.mark.parametrize("path", ["/api/form-token", "/api/challenge"])
@pytest.mark.parametrize("header", [{}, {"Accept": "text/html"}, {"Prefer": "tx=rollback"}, {"X-API-Key": "chk_wrong"},
                                    {"Accept": "application/vnd.pgrst.object+json"}, {"Range": "0-99999999999"}])
def test_token_endpoints_answer_json_or_a_4xx_whatever_the_headers(http, path, header):
    answer = http.fresh_client().get(path + "?x=" + "9" * 100, headers=header)
    assert answer.status_code < 500, answer.text
    if "X-API-Key" in header:
        assert answer.status_code == 401


# -- the rate limits of GET /api/form-token and /api/challenge (rules form_token, challenge) --

TOKEN_PATHS = {"/api/form-token": "form_token", "/api/challenge": "challenge"}


def token_hits(db, action: str) -> int:
    row = db.execute(
        "select coalesce(sum(cardinality(hits)), 0) from app.rate_limit_counters where action = %s and scope = 'ip'", (action,)
    ).fetchone()
    return row[0]


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_token_endpoints_admit_the_rule_s_number_per_address_then_429_with_retry_after(api, db, path):
    action = TOKEN_PATHS[path]
    db.execute("update app.rate_limit_rules set max_requests = 3 where action = %s and scope = 'ip'", (action,))
    answers = [api.get(path, client_ip="198.51.100.7", frozen_now="2030-01-01T10:00:00Z") for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    refused = answers[3]
    assert refused.json()["code"] == "CHR01" and refused.json()["message"] == "Too many requests: try again in 60 seconds."
    assert refused.headers["Retry-After"] == "60"
    # Another address is another client; the refused request took no slot.
    assert api.get(path, client_ip="198.51.100.8", frozen_now="2030-01-01T10:00:00Z").status == 200
    assert token_hits(db, action) == 4
    # A minute later the window has moved on.
    assert api.get(path, client_ip="198.51.100.7", frozen_now="2030-01-01T10:01:00.001Z").status == 200


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_the_two_token_limits_are_separate(api, db, path):
    other = next(p for p in TOKEN_PATHS if p != path)
    db.execute("update app.rate_limit_rules set max_requests = 1 where action = %s and scope = 'ip'", (TOKEN_PATHS[path],))
    assert api.get(path).status == 200 and api.get(path).status == 429
    assert api.get(other).status == 200


@pytest.mark.parametrize("path", TOKEN_PATHS)
@pytest.mark.parametrize("query", ["x=1", "formToken=" + "9" * 5000, "a=1&a=2", "%ZZ=1", "=", "\u202e=1"])
def test_a_query_parameter_is_a_400_naming_it_and_still_counts(api, db, path, query):
    answer = api.get(path + "?" + query)
    assert answer.status == 400, answer.body
    assert answer.json()["code"] == "CHV01"
    assert token_hits(db, TOKEN_PATHS[path]) == 1


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_rate_limit_rules_of_the_token_endpoints_are_data(db, path):
    (row,) = db.execute(
        "select max_requests, window_seconds from app.rate_limit_rules where action = %s and scope = 'ip'", (TOKEN_PATHS[path],)
    ).fetchall()
    assert row == (30, 60)


@pytest.mark.http
@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_through_nginx_the_31st_token_of_a_minute_is_429_and_spoofed_addresses_do_not_help(http, path):
    client = http.fresh_client()
    statuses = [client.get(path, headers={"X-Forwarded-For": f"10.9.{i}.1", "X-Real-IP": f"10.8.{i}.1"}).status_code
                for i in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429, statuses
    refused = client.get(path)
    assert refused.status_code == 429 and refused.json()["code"] == "CHR01" and int(refused.headers["Retry-After"]) >= 1
    assert http.fresh_client().get(path).status_code == 200


@pytest.mark.http
@pytest.mark.parametrize("path", TOKEN_PATHS)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_token_endpoints_take_only_get_and_head(http, path, method):
    answer = http.fresh_client().request(method, path, json={"x": 1})
    assert answer.status_code == 405 and answer.json()["code"] == "CHM01"
    assert http.fresh_client().request("HEAD", path).status_code == 200
