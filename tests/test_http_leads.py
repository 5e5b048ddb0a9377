"""POST /api/leads, GET /api/leads and the lead interactions end to end: nginx, PostgREST,
PostgreSQL as deployed (the session's `http` stack, skipped with the reason where PostgREST is
absent).

The stack and its database are shared by every HTTP test: each test posts from a loopback
address of its own (`http.fresh_client()`), so the per-IP limit of 5 leads per 10 minutes
starts empty for it, and uses emails no other test uses.
"""

from __future__ import annotations

import json
import secrets

import pytest

from tests.support.bodies import SEED_BODY
from tests.support.invoke_cli import run_invoke

pytestmark = pytest.mark.http

JSON = {"Content-Type": "application/json"}
ERROR_KEYS = {"code", "message", "details", "hint"}
POST_FIELDS = {
    "firstName", "lastName", "email", "phone", "companyName", "inquiryDetails", "leadSource", "gdprConsent",
    "marketingConsent", "accessibilityTheme", "preferredCommunication", "deviceType", "coreWebVitals",
    "logoInteractions", "timeOnSite", "pagesViewed", "browserInfo", "sessionId",
}



def unique_email(label: str) -> str:
    return f"{label}.{secrets.token_hex(5)}@example.org"


def lead(**overrides) -> dict:
    body = {"firstName": "Ada", "lastName": "Lovelace", "email": unique_email("ada"), "gdprConsent": True}
    body.update(overrides)
    return body


def stored(http) -> tuple[int, int, int]:
    """Rows of the three tables a lead submission writes."""
    return http.sql(
        "select (select count(*) from app.leads), (select count(*) from app.lead_interactions),"
        " (select count(*) from app.consent_audit)"
    )[0]


def leads_with_email(http, email: str) -> int:
    return http.sql("select count(*) from app.leads where lower(email) = lower(%s)", (email,))[0][0]


@pytest.fixture
def reader(http) -> str:
    return http.make_key("reader")


@pytest.fixture
def admin(http) -> str:
    return http.make_key("admin")


# -- the seed's example and reading it back --------------------------------------------------------
def test_the_seed_curl_example_is_201_through_nginx_and_readable_with_a_reader_key_only(http, reader):
    if leads_with_email(http, "john.doe@example.com"):
        pytest.fail("the seed's email is already on file: only this test may post it")
    client = http.fresh_client()
    response = client.post("/api/leads", data=SEED_BODY.encode(), headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "received"}

    found = http.get("/api/leads?email=eq.john.doe@example.com", headers={"X-API-Key": reader})
    assert found.status_code == 200
    (row,) = found.json()
    assert set(row) == POST_FIELDS | {"id", "createdAt", "updatedAt"}
    sent = json.loads(SEED_BODY)
    assert {k: row[k] for k in sent} == sent
    assert row["marketingConsent"] is False and row["preferredCommunication"] == "email"

    anonymous = http.get("/api/leads?email=eq.john.doe@example.com")
    assert anonymous.status_code == 401
    assert set(anonymous.json()) >= ERROR_KEYS
    assert "john" not in anonymous.text.lower()


def test_get_leads_honours_select_filters_order_paging_and_exact_count(http, reader):
    company = f"Paging {secrets.token_hex(4)}"
    client = http.fresh_client()
    emails = sorted(unique_email(f"page{n}") for n in range(3))
    for email in emails:
        assert client.post("/api/leads", json=lead(email=email, companyName=company)).status_code == 201

    selected = http.get(
        f"/api/leads?companyName=eq.{company}&select=email,companyName&order=email.desc",
        headers={"X-API-Key": reader},
    )
    assert selected.status_code == 200
    assert selected.json() == [{"email": e, "companyName": company} for e in reversed(emails)]

    page = http.get(
        f"/api/leads?companyName=eq.{company}&select=email&order=email.asc&limit=2&offset=1",
        headers={"X-API-Key": reader, "Prefer": "count=exact"},
    )
    assert page.status_code in (200, 206)
    assert page.json() == [{"email": e} for e in emails[1:3]]
    assert page.headers["Content-Range"] == "1-2/3"

    head = http.request("HEAD", f"/api/leads?companyName=eq.{company}", headers={"X-API-Key": reader, "Prefer": "count=exact"})
    assert head.status_code == 200
    assert head.headers["Content-Range"] == "0-2/3"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": ""}, {"X-API-Key": "chk_wrong"}, {"X-API-Key": "chk_" + "0" * 48}],
    ids=["no-key", "empty-key", "wrong-key", "well-formed-unknown-key"],
)
@pytest.mark.parametrize("path", ["/api/leads", "/api/leads?select=email&limit=1", "/api/lead-interactions"])
def test_without_a_valid_key_lead_data_is_401_and_empty(http, headers, path):
    client = http.fresh_client()
    assert client.post("/api/leads", json=lead(companyName="Invisible Corp")).status_code == 201
    response = http.get(path, headers=headers)
    assert response.status_code == 401
    assert set(response.json()) >= ERROR_KEYS
    assert "invisible" not in response.text.lower() and "@example.org" not in response.text


def test_a_key_made_with_invoke_reads_leads_until_revoked_with_invoke(http):
    name = f"crm-{secrets.token_hex(4)}"
    created = run_invoke("api.key-create", name, "--role", "reader", database_url=http.db_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("chk_")
    email = unique_email("revoked")
    assert http.fresh_client().post("/api/leads", json=lead(email=email)).status_code == 201

    before = http.get(f"/api/leads?email=eq.{email}&select=email", headers={"X-API-Key": key})
    assert before.status_code == 200
    assert before.json() == [{"email": email}]

    revoked = run_invoke("api.key-revoke", name, database_url=http.db_url)
    assert revoked.returncode == 0, revoked.stderr
    after = http.get(f"/api/leads?email=eq.{email}&select=email", headers={"X-API-Key": key})
    assert after.status_code == 401
    assert after.json()["code"] == "CHK01"
    assert email not in after.text


# -- a known email -------------------------------------------------------------------------------
def test_a_known_email_in_another_letter_case_gets_the_same_answer_and_no_second_lead(http):
    email = unique_email("known")
    first = http.fresh_client().post("/api/leads", json=lead(email=email, companyName="First"))
    again = http.fresh_client().post("/api/leads", json=lead(email=email.upper(), firstName="Mallory", companyName="Second"))
    assert (again.status_code, again.content) == (first.status_code, first.content) == (201, b'{"status": "received"}')

    def comparable(response):
        return {k: v for k, v in response.headers.items() if k.lower() != "date"}

    assert comparable(again) == comparable(first)
    assert leads_with_email(http, email) == 1
    assert http.sql("select company_name from app.leads where lower(email) = %s", (email,)) == [("First",)]
    kinds = http.sql(
        "select i.kind from app.lead_interactions as i join app.leads as l on l.id = i.lead_id"
        " where lower(l.email) = %s order by i.id",
        (email,),
    )
    assert kinds == [("submission",), ("resubmission",)]


# -- bad input -------------------------------------------------------------------------------------
# One case per rule of the contract: (overrides of a valid lead, the field the 400 names).
BAD_FIELDS = [
    ({"firstName": ""}, "firstName"),
    ({"firstName": "   "}, "firstName"),
    ({"firstName": 42}, "firstName"),
    ({"lastName": "x" * 101}, "lastName"),
    ({"email": "not-an-address"}, "email"),
    ({"email": "a@" + "b" * 250 + ".com"}, "email"),
    ({"phone": "020 7946 0958"}, "phone"),
    ({"phone": "+999 1234 5678"}, "phone"),
    ({"phone": "call me"}, "phone"),
    ({"companyName": "c" * 201}, "companyName"),
    ({"inquiryDetails": "i" * 5001}, "inquiryDetails"),
    ({"leadSource": "Contact Form"}, "leadSource"),
    ({"gdprConsent": False}, "gdprConsent"),
    ({"gdprConsent": "true"}, "gdprConsent"),
    ({"marketingConsent": "yes"}, "marketingConsent"),
    ({"accessibilityTheme": "sepia"}, "accessibilityTheme"),
    ({"preferredCommunication": "fax"}, "preferredCommunication"),
    ({"preferredCommunication": "phone"}, "preferredCommunication"),
    ({"deviceType": "watch"}, "deviceType"),
    ({"coreWebVitals": [2300, 85, 0.08]}, "coreWebVitals"),
    ({"coreWebVitals": {"lcp": -1}}, "coreWebVitals.lcp"),
    ({"coreWebVitals": {"fcp": 1}}, "coreWebVitals.fcp"),
    ({"logoInteractions": -1}, "logoInteractions"),
    ({"logoInteractions": 1.5}, "logoInteractions"),
    ({"timeOnSite": "145000"}, "timeOnSite"),
    ({"pagesViewed": "/"}, "pagesViewed"),
    ({"pagesViewed": ["/"] * 101}, "pagesViewed"),
    ({"pagesViewed": ["/ok", "contact"]}, "pagesViewed[1]"),
    ({"pagesViewed": ["/" + "p" * 200]}, "pagesViewed[0]"),
    ({"browserInfo": "Firefox 130"}, "browserInfo"),
    ({"browserInfo": {"ua": "x" * 4100}}, "browserInfo"),
    ({"sessionId": "s" * 101}, "sessionId"),
    ({"referrer": "https://example.com/"}, "referrer"),
]


@pytest.mark.parametrize("overrides, field", BAD_FIELDS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_FIELDS)])
def test_each_contract_rule_rejects_with_a_400_naming_the_field_and_stores_nothing(http, overrides, field):
    body = lead(**overrides)
    before = stored(http)
    response = http.fresh_client().post("/api/leads", json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) >= ERROR_KEYS
    assert error["code"] == "CHV01"
    assert field in error["message"]
    assert field in [e["field"] for e in error["errors"]]
    assert stored(http) == before
    if isinstance(body.get("email"), str):
        assert leads_with_email(http, body["email"]) == 0


def test_several_bad_fields_are_named_in_one_400(http):
    response = http.fresh_client().post("/api/leads", json=lead(email="nope", deviceType="fridge", colour="red"))
    assert response.status_code == 400
    error = response.json()
    assert {e["field"] for e in error["errors"]} == {"email", "deviceType", "colour"}
    for field in ("email", "deviceType", "colour"):
        assert field in error["message"] and field in error["details"]


def _valid_json_with(extra: str) -> bytes:
    """A valid lead's JSON text with `extra` spliced in as the last member."""
    text = json.dumps(lead())
    return (text[:-1] + ", " + extra + "}").encode()


DEEP = 30_000  # levels of nesting; 2 bytes each, so the body stays within nginx's 64 KiB

# (name, body bytes, Content-Type or None, the field a 400 must name or None)
HOSTILE = [
    ("number-body", b"42", "application/json", None),
    ("string-body", b'"lead"', "application/json", None),
    ("boolean-body", b"true", "application/json", None),
    ("null-body", b"null", "application/json", None),
    ("empty-body", b"", "application/json", None),
    ("empty-array-body", b"[]", "application/json", None),
    ("array-of-a-valid-lead", json.dumps([lead()]).encode(), "application/json", None),
    ("invalid-json", b'{"firstName": "Ada", ', "application/json", None),
    ("nul-character", _valid_json_with('"companyName": "Acme\\u0000Corp"'), "application/json", None),
    ("nul-in-a-key", _valid_json_with('"\\u0000": 1'), "application/json", None),
    ("lone-surrogate", _valid_json_with('"companyName": "\\ud800"'), "application/json", None),
    ("number-1e400", _valid_json_with('"timeOnSite": 1e400'), "application/json", "timeOnSite"),
    ("number-minus-1e400-in-vitals", _valid_json_with('"coreWebVitals": {"lcp": -1e400}'), "application/json",
     "coreWebVitals.lcp"),
    ("over-long-string", json.dumps(lead(inquiryDetails="x" * 60_000)).encode(), "application/json", "inquiryDetails"),
    ("unknown-field", json.dumps(lead(isAdmin=True)).encode(), "application/json", "isAdmin"),
    ("deep-array-nesting", _valid_json_with('"browserInfo": ' + "[" * DEEP + "]" * DEEP), "application/json",
     "browserInfo"),
    ("deep-nesting-as-the-body", ("[" * DEEP + "]" * DEEP).encode(), "application/json", None),
    ("text-plain", json.dumps(lead()).encode(), "text/plain", None),
    ("form-urlencoded", json.dumps(lead()).encode(), "application/x-www-form-urlencoded", None),
    ("xml", b"<lead><firstName>Ada</firstName></lead>", "application/xml", None),
]


@pytest.mark.parametrize("body, content_type, field", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_a_hostile_body_gets_a_4xx_never_a_5xx_and_stores_nothing(http, body, content_type, field):
    assert len(body) <= 64 * 1024
    before = stored(http)
    response = http.fresh_client().post("/api/leads", data=body, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) >= ERROR_KEYS
    if field is not None:
        assert response.status_code == 400
        assert field in response.json()["message"]
    assert stored(http) == before


# -- lead interactions -----------------------------------------------------------------------------
def test_lead_interactions_are_read_with_a_reader_key_and_added_with_an_admin_key_only(http, reader, admin):
    email = unique_email("crm")
    assert http.fresh_client().post("/api/leads", json=lead(email=email)).status_code == 201
    (lead_id,) = http.get(f"/api/leads?email=eq.{email}&select=id", headers={"X-API-Key": reader}).json()[0].values()
    note = {"leadId": lead_id, "kind": "call", "note": "Called back about the deep dive."}

    added = http.post("/api/lead-interactions", json=note, headers={"X-API-Key": admin})
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "recorded"

    as_reader = http.post("/api/lead-interactions", json={**note, "note": "reader"}, headers={"X-API-Key": reader})
    assert as_reader.status_code == 403
    assert set(as_reader.json()) >= ERROR_KEYS
    assert as_reader.json()["code"] == "CHK02"
    anonymous = http.post("/api/lead-interactions", json={**note, "note": "anon"})
    assert anonymous.status_code == 401

    history = http.get(
        f"/api/lead-interactions?leadId=eq.{lead_id}&order=id.asc&select=kind,note", headers={"X-API-Key": reader}
    )
    assert history.status_code == 200
    assert history.json() == [
        {"kind": "submission", "note": None},
        {"kind": "call", "note": "Called back about the deep dive."},
    ]


def test_an_invalid_interaction_is_a_400_naming_the_field(http, admin):
    response = http.post(
        "/api/lead-interactions",
        json={"leadId": "00000000-0000-0000-0000-000000000000", "kind": "visit"},
        headers={"X-API-Key": admin},
    )
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} >= {"kind"}


@pytest.mark.http
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_post_that_is_not_json_is_415_from_nginx(http, content_type):
    response = http.fresh_client().post("/api/leads", data=json.dumps(lead()).encode(), headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json()["code"] == "CHT01"


@pytest.mark.http
def test_json_with_a_charset_parameter_is_accepted(http):
    body = json.dumps(lead(email=unique_email("charset"))).encode()
    response = http.fresh_client().post("/api/leads", data=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201, response.text
