"""Data protection endpoints end to end (issue 6, the contract part): POST /api/gdpr/export,
/erase and /consent through nginx and PostgREST, with a lead and session data that arrived
through the API as the website sends them."""

from __future__ import annotations

import secrets

import pytest

pytestmark = pytest.mark.http

GDPR_PATHS = ("/api/gdpr/export", "/api/gdpr/erase", "/api/gdpr/consent")
ERROR_KEYS = {"code", "message", "details", "hint"}


def submit_person(http) -> tuple[str, str]:
    """A lead with a session (preferences, engagement) posted through the API; (email, session)."""
    tag = secrets.token_hex(5)
    email, session = f"Person.{tag}@Example.org", f"sess_gdpr_{tag}"
    client = http.fresh_client()
    body = {
        "firstName": f"Erin{tag}", "lastName": "Example", "email": email, "gdprConsent": True,
        "phone": "+44 20 7946 0958", "companyName": "Forget Me Ltd", "sessionId": session,
    }
    assert client.post("/api/leads", json=body).status_code == 201
    prefs = {"sessionId": session, "accessibilityTheme": "protanopia", "sessionDuration": 60000}
    assert client.post("/api/accessibility-preferences", json=prefs).status_code == 201
    engagement = {"sessionId": session, "scrollDepthPercentage": 40}
    assert client.post("/api/brand-engagement", json=engagement).status_code == 201
    return email, session


@pytest.fixture
def admin(http) -> dict[str, str]:
    return {"X-API-Key": http.make_key("admin")}


@pytest.fixture
def reader(http) -> dict[str, str]:
    return {"X-API-Key": http.make_key("reader")}


def test_a_person_is_exported_consent_recorded_and_erased_through_the_api(http, admin, reader):
    email, session = submit_person(http)

    exported = http.post("/api/gdpr/export", json={"email": email.upper()}, headers=admin)
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["lead"]["email"] == email
    assert document["lead"]["companyName"] == "Forget Me Ltd"
    assert [p["sessionId"] for p in document["accessibilityPreferences"]] == [session]
    assert len(document["brandEngagement"]) == 1
    assert {(c["consentType"], c["granted"]) for c in document["consentAudit"]} >= {("gdpr", True), ("marketing", False)}

    consent = http.post("/api/gdpr/consent", json={"email": email, "marketingConsent": True}, headers=admin)
    assert consent.status_code == 201, consent.text
    assert consent.json()["marketingConsent"] is True
    read = http.get(f"/api/leads?email=eq.{email}&select=marketingConsent", headers=reader)
    assert read.json() == [{"marketingConsent": True}]

    erased = http.post("/api/gdpr/erase", json={"email": email}, headers=admin)
    assert erased.status_code == 200, erased.text
    assert erased.json()["status"] == "erased"
    assert erased.json()["removed"]["leads"] == 1

    assert http.get(f"/api/leads?email=eq.{email}", headers=reader).json() == []
    assert http.get(f"/api/leads?email=ilike.{email}", headers=reader).json() == []
    assert http.sql("select count(*) from app.accessibility_preferences where session_id = %s", (session,)) == [(0,)]
    # What is left is the pseudonymous consent trail, which records the erasure itself.
    after = http.post("/api/gdpr/export", json={"email": email}, headers=admin)
    assert after.status_code == 200
    left = after.json()
    assert left["lead"] is None
    assert left["leadInteractions"] == left["accessibilityPreferences"] == left["brandEngagement"] == []
    assert [c["event"] for c in left["consentAudit"]][-1] == "erasure"
    # The whole number, not a part of it: four digits also turn up in the audit's hex hashes.
    assert "Forget Me" not in after.text and "Erin" not in after.text and "2079460958" not in after.text


@pytest.mark.parametrize("path", GDPR_PATHS)
def test_a_reader_key_gets_403_and_no_key_gets_401_on_data_protection_endpoints(http, reader, path):
    email, _ = submit_person(http)
    body = {"email": email, "marketingConsent": False} if path.endswith("consent") else {"email": email}
    as_reader = http.post(path, json=body, headers=reader)
    assert as_reader.status_code == 403, as_reader.text
    assert set(as_reader.json()) >= ERROR_KEYS
    assert as_reader.json()["code"] == "CHK02"
    assert email.lower() not in as_reader.text.lower()
    anonymous = http.post(path, json=body)
    assert anonymous.status_code == 401
    assert email.lower() not in anonymous.text.lower()
    # Nothing happened to the person.
    assert http.sql("select marketing_consent from app.leads where lower(email) = lower(%s)", (email,)) == [(False,)]


@pytest.mark.parametrize("path", GDPR_PATHS)
def test_a_data_protection_request_with_a_bad_email_is_a_400_naming_it(http, admin, path):
    response = http.post(path, json={"email": "not-an-address", "marketingConsent": True}, headers=admin)
    assert response.status_code == 400
    errors = {e["field"] for e in response.json()["errors"]}
    assert "email" in errors
