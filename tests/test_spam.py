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
