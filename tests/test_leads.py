"""POST /api/leads, GET /api/leads and the lead interactions, through the PostgREST-request helper."""

from __future__ import annotations

import json
import os

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

from chorus_db import testing
from chorus_db.routes import ROUTES
from tests.conftest import AUTHENTICATOR_PASSWORD
from tests.support.bodies import SEED_BODY
from tests.support.postgrest import PostgrestSim


MINIMAL = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "gdprConsent": True}

POST_FIELDS = {
    "firstName", "lastName", "email", "phone", "companyName", "inquiryDetails", "leadSource", "gdprConsent",
    "marketingConsent", "accessibilityTheme", "preferredCommunication", "deviceType", "coreWebVitals",
    "logoInteractions", "timeOnSite", "pagesViewed", "browserInfo", "sessionId",
}


def lead(**overrides):
    body = dict(MINIMAL)
    body.update(overrides)
    return body


def count(db, table: str) -> int:
    return db.execute(f"select count(*) from {table}").fetchone()[0]


def stored_rows(db) -> dict[str, int]:
    return {t: count(db, t) for t in ("app.leads", "app.lead_interactions", "app.consent_audit")}


@pytest.fixture(scope="module")
def shared_db_url(pg_cluster, template_url):
    """One database for the many rejection cases: a rejection stores nothing, so they cannot
    disturb each other (and each case checks that). Rate limits are off here; their own tests
    prove that rejections count."""
    name = f"chorus_leads_rejections_{os.getpid()}"
    janitor = DatabaseJanitor(
        user="postgres", host="127.0.0.1", port=pg_cluster.port, dbname=name,
        template_dbname=testing.TEMPLATE_DB, password=pg_cluster.password,
    )
    with janitor:
        url = pg_cluster.url(name)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("delete from app.rate_limit_rules where action = 'leads'")
        yield url


@pytest.fixture(scope="module")
def shared_db(shared_db_url):
    with psycopg.connect(shared_db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def shared_api(shared_db_url) -> PostgrestSim:
    return PostgrestSim(make_conninfo(shared_db_url, user="authenticator", password=AUTHENTICATOR_PASSWORD))


# -- accepted submissions ----------------------------------------------------------------------
def test_the_seed_example_request_is_accepted_and_stored(api, db):
    response = api.post("/api/leads", raw_body=SEED_BODY)
    assert response.status == 201
    assert response.body == {"status": "received"}
    row = db.execute(
        "select first_name, email, lead_source, accessibility_theme, device_type, core_web_vitals, logo_interactions,"
        " time_on_site, pages_viewed, load_time_lcp, gdpr_consent, marketing_consent, preferred_communication"
        " from app.leads"
    ).fetchone()
    assert row == (
        "John", "john.doe@example.com", "contact_form", "protanopia", "desktop",
        {"lcp": 2300, "fid": 85, "cls": 0.08}, 3, 145000, ["/", "/ecosystem", "/contact"], 2300, True, False, "email",
    )
    kinds = db.execute("select kind, details from app.lead_interactions").fetchall()
    assert kinds == [("submission", None)]


def test_every_contract_field_is_accepted_and_stored_normalised(api, db):
    body = lead(
        firstName="  Grace ", phone="+44 (0)20 7946-0958", companyName="Navy", inquiryDetails="Compilers",
        leadSource="conference_2026", marketingConsent=True, accessibilityTheme="achromatopsia",
        preferredCommunication="phone", deviceType="tablet",
        coreWebVitals={"lcp": 1200.5, "fid": 0, "cls": 0.01, "inp": 90, "ttfb": 30},
        logoInteractions=0, timeOnSite=145000.0, pagesViewed=["/a/b?c=d", "/"], browserInfo={"ua": "x", "w": 1280},
        sessionId="sess_abc123",
    )
    response = api.post("/api/leads", body)
    assert response.status == 201, response.body
    row = db.execute(
        "select first_name, phone, time_on_site, preferred_communication, marketing_consent, session_id, browser_info"
        " from app.leads"
    ).fetchone()
    # marketingConsent: true waits for the confirmation link (double opt-in).
    assert row == ("Grace", "+442079460958", 145000, "phone", False, "sess_abc123", {"ua": "x", "w": 1280})


PHONE_SPELLINGS = [
    ("+44 20 7946 0958", "+442079460958"),
    ("0044 20 7946 0958", "+442079460958"),
    ("+44 (0)20 7946 0958", "+442079460958"),
    ("+1 (415) 555-2671", "+14155552671"),
    ("+1.415.555.2671", "+14155552671"),
    ("+49 30/1234567", "+49301234567"),
    ("+33\u00a01\u201342 68 53 00", "+33142685300"),
    ("+683 4002", "+6834002"),
]


def test_common_international_phone_spellings_are_stored_as_e164(api, db):
    for n, (spelling, e164) in enumerate(PHONE_SPELLINGS):
        email = f"phone{n}@example.org"
        response = api.post("/api/leads", lead(email=email, phone=spelling), client_ip=f"198.51.100.{n}")
        assert response.status == 201, spelling
        stored = db.execute("select phone from app.leads where email = %s", (email,)).fetchone()[0]
        assert stored == e164, spelling


def test_a_blank_phone_counts_as_no_phone(api, db):
    assert api.post("/api/leads", lead(phone="  ")).status == 201
    assert db.execute("select phone from app.leads").fetchone()[0] is None


# -- known email ---------------------------------------------------------------------------------
def test_a_known_email_in_any_case_adds_a_resubmission_and_never_changes_the_lead(api, db):
    first = api.post("/api/leads", lead(companyName="Analytical Engines", marketingConsent=False))
    again = api.post(
        "/api/leads",
        lead(email="  ADA@Example.ORG ", firstName="Mallory", companyName="Evil", marketingConsent=True, phone="+44 20 7946 0958"),
        client_ip="198.51.100.77",
    )
    assert first.status == again.status == 201
    assert first.body == again.body == {"status": "received"}
    assert count(db, "app.leads") == 1
    row = db.execute("select first_name, company_name, email, phone, marketing_consent from app.leads").fetchone()
    # A known address never grants marketing consent: anyone may know it.
    assert row == ("Ada", "Analytical Engines", "ada@example.org", None, False)
    kind, details = db.execute(
        "select kind, details from app.lead_interactions order by id desc limit 1"
    ).fetchone()
    assert kind == "resubmission"
    assert details["firstName"] == "Mallory" and details["phone"] == "+442079460958"
    assert details["email"] == "ADA@Example.ORG" and details["marketingConsent"] is True


def test_a_resubmission_withdraws_marketing_consent_but_never_grants_it(api, db):
    api.post("/api/leads", lead(marketingConsent=True))
    api.post("/api/leads", lead(marketingConsent=False))
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is False
    api.post("/api/leads", lead(email="ADA@example.org", marketingConsent=True))
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is False
    audit = db.execute(
        """select a.event, a.granted, i.kind from app.consent_audit as a
           join app.lead_interactions as i on i.id = a.submission_id
           where a.consent_type = 'marketing' order by a.seq"""
    ).fetchall()
    assert audit == [("request", True, "submission"), ("consent", False, "resubmission"), ("request", True, "resubmission")]


def test_simultaneous_first_submissions_of_one_email_make_one_lead(api, db):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: api.post("/api/leads", lead(), client_ip=f"198.51.100.{i}"), range(3)))
    assert [r.status for r in results] == [201, 201, 201]
    assert count(db, "app.leads") == 1
    kinds = sorted(k for (k,) in db.execute("select kind from app.lead_interactions"))
    assert kinds == ["resubmission", "resubmission", "submission"]


# -- rejected submissions ------------------------------------------------------------------------
# The validation table (every rule, one bad field at a time, with its message) is pgTAP's:
# db/tests/020-leads-rule.sql. Here: what a refusal looks like through PostgREST's path.
def test_an_invalid_field_gets_400_naming_it_and_nothing_is_stored(api, db):
    response = api.post("/api/leads", lead(firstName="\u00a0\u200b"))
    message = "firstName must be between 1 and 100 characters."
    assert response.status == 400
    assert response.body["code"] == "CHV01"
    assert response.body["message"] == message
    assert response.body["errors"] == [{"field": "firstName", "message": message}]
    assert stored_rows(db) == {"app.leads": 0, "app.lead_interactions": 0, "app.consent_audit": 0}


def test_every_bad_field_is_named_in_one_400(api, db):
    response = api.post("/api/leads", {"email": "nope", "deviceType": "fridge", "colour": "red"})
    assert response.status == 400
    fields = {e["field"] for e in response.body["errors"]}
    assert fields == {"email", "deviceType", "colour", "firstName", "lastName", "gdprConsent"}
    assert response.body["message"].startswith("6 fields are invalid: ")
    for name in fields:
        assert name in response.body["details"]
    assert stored_rows(db)["app.leads"] == 0


DEEP = 32_000  # a 64 KiB body (nginx's limit) nests at most ~32,000 levels


@pytest.mark.parametrize(
    "raw",
    [
        "[]", "1", "null", '"lead"', "true", "{}",
        '{"firstName": "A\\u0000da", "lastName": "L", "email": "a@b.co", "gdprConsent": true}',
        '{"\\u0000": 1}',
        json.dumps(lead()).replace('"gdprConsent": true', '"gdprConsent": true, "timeOnSite": 1e400'),
        json.dumps(lead()).replace('"gdprConsent": true', '"gdprConsent": true, "logoInteractions": -1e400'),
        json.dumps(lead()).replace('"gdprConsent": true', '"gdprConsent": true, "timeOnSite": 1e200000'),
        json.dumps(lead()).replace('"gdprConsent": true', '"gdprConsent": true, "coreWebVitals": {"lcp": 1e400}'),
        "[" * DEEP + "]" * DEEP,
        '{"browserInfo": ' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "}",
        json.dumps(lead(browserInfo={})).replace("{}", "[" * DEEP + "]" * DEEP),
        json.dumps(lead(firstName="x" * 60_000)),
        json.dumps({("k" * 5000): 1}),
        json.dumps({f"f{i}": i for i in range(3000)}),
        "{not json",
        '{"firstName": "\\ud800", "lastName": "L", "email": "a@b.co", "gdprConsent": true}',
    ],
    ids=[
        "array", "number", "null", "string", "boolean", "empty-object", "nul-in-value", "nul-in-key", "1e400",
        "-1e400", "1e200000", "lcp-1e400", "deep-array", "deep-object-field", "deep-array-field", "huge-string",
        "huge-key", "many-keys", "not-json", "lone-surrogate",
    ],
)
def test_hostile_bodies_get_a_4xx_never_a_5xx_and_store_nothing(shared_api, shared_db, raw):
    response = shared_api.post("/api/leads", raw_body=raw)
    assert 400 <= response.status < 500, response.body
    assert stored_rows(shared_db) == {"app.leads": 0, "app.lead_interactions": 0, "app.consent_audit": 0}


def test_a_nul_character_is_a_400(shared_api):
    response = shared_api.post("/api/leads", raw_body='{"firstName": "A\\u0000", "lastName": "L", "email": "a@b.co", "gdprConsent": true}')
    assert response.status == 400
    assert response.body["code"] == "22P05"


# -- GET /api/leads -----------------------------------------------------------------------------
def test_leads_are_readable_with_a_reader_or_admin_key_under_the_post_field_names(api, make_key):
    api.post("/api/leads", raw_body=SEED_BODY)
    for role in ("reader", "admin"):
        response = api.get("/api/leads", api_key=make_key(role))
        assert response.status == 200
        (row,) = response.body
        assert set(row) == POST_FIELDS | {"id", "createdAt", "updatedAt"}
        assert row["firstName"] == "John" and row["coreWebVitals"] == {"lcp": 2300, "fid": 85, "cls": 0.08}
        assert row["pagesViewed"] == ["/", "/ecosystem", "/contact"]


def test_leads_filters_apply(api, make_key):
    api.post("/api/leads", raw_body=SEED_BODY)
    api.post("/api/leads", lead(accessibilityTheme="tritanopia"))
    response = api.get("/api/leads", api_key=make_key("reader"), where="\"accessibilityTheme\" = 'tritanopia'")
    assert [r["email"] for r in response.body] == ["ada@example.org"]


def test_anon_reaches_no_lead_data_through_any_api_object(db):
    # api.openapi is PostgREST's db-root-spec (GET /api/), api.csv_agg its text/csv handler (an
    # aggregate over what the caller may read anyway), api.explain_query_error nginx's error path
    # of the lists (it reads only the lists' field names, which GET /api/ documents, and answers
    # 401 to anon for a keyed list): public, and free of data.
    public = {r.sql_name for r in ROUTES if r.auth == "public"} | {"api.openapi", "api.csv_agg", "api.explain_query_error"}
    functions = {
        name for (name,) in db.execute(
            "select p.oid::regproc::text from pg_proc as p where p.pronamespace = 'api'::regnamespace"
            " and has_function_privilege('anon', p.oid, 'execute')"
        )
    }
    assert functions <= public
    assert "api.submit_lead" in functions
    readable = db.execute(
        "select c.relname from pg_class as c where c.relnamespace = 'api'::regnamespace"
        " and has_table_privilege('anon', c.oid, 'select, insert, update, delete')"
    ).fetchall()
    assert readable == []
    assert not db.execute("select has_schema_privilege('anon', 'app', 'usage')").fetchone()[0]


def test_the_health_endpoint_reveals_no_lead(api):
    api.post("/api/leads", raw_body=SEED_BODY)
    assert "john" not in json.dumps(api.get("/api/leads/health").body).lower()


# -- lead interactions --------------------------------------------------------------------------
def lead_id(db) -> str:
    return str(db.execute("select id from app.leads").fetchone()[0])


def test_the_history_lists_submissions_for_reader_and_admin(api, db, make_key):
    api.post("/api/leads", raw_body=SEED_BODY)
    api.post("/api/leads", json.loads(SEED_BODY))
    response = api.get("/api/lead-interactions", api_key=make_key("reader"), where=f"\"leadId\" = '{lead_id(db)}'")
    assert response.status == 200
    assert [r["kind"] for r in sorted(response.body, key=lambda r: r["id"])] == ["submission", "resubmission"]
    assert set(response.body[0]) == {"id", "leadId", "kind", "note", "details", "apiKeyId", "createdAt"}
    assert api.get("/api/lead-interactions").status == 401


def test_an_admin_adds_an_interaction_attributed_to_its_key(api, db, make_key):
    api.post("/api/leads", raw_body=SEED_BODY)
    key = make_key("admin", name="crm")
    response = api.post("/api/lead-interactions", {"leadId": lead_id(db), "kind": "call", "note": " Called back. "}, api_key=key)
    assert response.status == 201
    assert response.body["status"] == "recorded"
    row = db.execute(
        "select i.kind, i.note, k.name from app.lead_interactions as i join app.api_keys as k on k.id = i.api_key_id"
    ).fetchone()
    assert row == ("call", "Called back.", "crm")


def test_a_reader_key_cannot_add_an_interaction_and_anon_neither(api, db, make_key):
    api.post("/api/leads", raw_body=SEED_BODY)
    body = {"leadId": lead_id(db), "kind": "note", "note": "hi"}
    assert api.post("/api/lead-interactions", body, api_key=make_key("reader")).status == 403
    assert api.post("/api/lead-interactions", body).status == 401
    assert count(db, "app.lead_interactions") == 1


INVALID_INTERACTIONS = [
    ({"leadId": "00000000-0000-0000-0000-000000000000", "kind": "call"}, "leadId", "leadId does not name a known lead."),
    ({"leadId": "42", "kind": "call"}, "leadId", "leadId must be a lead id (UUID)."),
    ({"kind": "call"}, "leadId", "leadId is required."),
    ({"leadId": None, "kind": "visit"}, "kind", "kind must be one of: note, call, email, meeting, status_change."),
    ({"leadId": None, "kind": "submission"}, "kind", "kind must be one of: note, call, email, meeting, status_change."),
    ({"leadId": None, "kind": "note"}, "note", "note is required when kind is note."),
    ({"leadId": None, "kind": "call", "note": "n" * 5001}, "note", "note must be at most 5000 characters."),
    ({"leadId": None, "kind": "call", "by": "me"}, "by", "by is not a known field."),
    ([], "body", "The request body must be a JSON object."),
]


def test_an_invalid_interaction_gets_400_naming_the_field_and_stores_nothing(api, db, make_key):
    api.post("/api/leads", raw_body=SEED_BODY)
    key = make_key("admin")
    for body, field, message in INVALID_INTERACTIONS:
        if isinstance(body, dict) and "leadId" in body and body["leadId"] is None:
            body = {**body, "leadId": lead_id(db)}
        response = api.post("/api/lead-interactions", body, api_key=key)
        assert response.status == 400, body
        assert {"field": field, "message": message} in response.body["errors"], body
    assert count(db, "app.lead_interactions") == 1
