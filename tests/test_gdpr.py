"""Data protection endpoints (POST /api/gdpr/export, /erase, /consent) and `invoke gdpr.*`.

Rows are inserted directly as superuser (the other domains' endpoints are not needed to hold
data); requests go through the PostgREST-request simulator with real API keys.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.support.invoke_cli import run_invoke

# Columns that hold only pseudonyms by design: the consent audit keeps them after erasure.
PSEUDONYMOUS = {("consent_audit", "subject"), ("consent_audit", "ip_hash")}
# bytea: the rate-limit counters' keys (an HMAC of the email among them), searched as hex.
TEXTUAL_TYPES = ("text", "character varying", "character", "json", "jsonb", "inet", "cidr", "bytea")


@dataclass
class Person:
    email: str
    first_name: str
    last_name: str
    phone: str
    session: str
    other_session: str
    lead_id: str

    @property
    def markers(self) -> list[str]:
        return [self.email, self.first_name, self.last_name, self.phone, self.session, self.other_session]


def add_person(db, label: str) -> Person:
    """A lead with everything that can hang off it: interactions, a second session linked by
    lead_id, engagement found only through the session, page views, counters, consent rows."""
    tag = uuid.uuid4().hex[:10]
    p = Person(
        email=f"{label}.{tag}@Example.COM",
        first_name=f"First{tag}",
        last_name=f"Last{tag}",
        phone=f"+44{int(tag[:8], 16) % 10**10:010d}",
        session=f"sess-{tag}",
        other_session=f"sess2-{tag}",
        lead_id="",
    )
    p.lead_id = db.execute(
        """
        insert into app.leads (first_name, last_name, email, phone, company_name, inquiry_details, gdpr_consent,
                               preferred_communication, browser_info, session_id)
        values (%s, %s, %s, %s, 'ACME', %s, true, 'phone', %s, %s) returning id::text
        """,
        (
            p.first_name, p.last_name, p.email, p.phone, f"Please call {p.first_name} on {p.phone}",
            Jsonb({"userAgent": "test", "note": p.email}), p.session,
        ),
    ).fetchone()[0]
    db.execute(
        "insert into app.lead_interactions (lead_id, kind, note, details) values (%s, 'submission', null, %s),"
        " (%s, 'note', %s, null)",
        (p.lead_id, Jsonb({"email": p.email, "firstName": p.first_name}), p.lead_id, f"Spoke to {p.last_name}"),
    )
    # A resubmission from a second session claimed it (the lead's own session is claimed on insert).
    db.execute(
        "insert into app.lead_sessions (session_id, lead_id, claimed_at) values (%s, %s, now())",
        (p.other_session, p.lead_id),
    )
    db.execute(
        "insert into app.accessibility_preferences (session_id, lead_id, accessibility_theme) values"
        " (%s, %s, 'deuteranopia'), (%s, %s, 'default')",
        (p.session, p.lead_id, p.other_session, p.lead_id),
    )
    # Engagement never linked by lead_id: found only through the lead's session.
    db.execute(
        "insert into app.brand_engagement (session_id, cta_clicks) values (%s, %s)",
        (p.session, Jsonb([{"cta": "contact", "session": p.session}])),
    )
    db.execute(
        "insert into app.page_views (session_id, path, viewed_at) values (%s, '/', '2031-01-10'), (%s, '/about', '2031-01-11')",
        (p.session, p.other_session),
    )
    db.execute(
        "insert into app.rate_limit_counters (action, scope, subject, hits, expires_at)"
        " values ('leads', 'email', app_logic.rate_limit_subject('leads', 'email', lower(%s)), array[now()], now() + interval '1 hour')",
        (p.email,),
    )
    db.execute(
        "select app_logic.append_consent(app_logic.person_pseudonym(%s), 'consent', 'gdpr', true, 'web_form', 'iphash', 'UA')",
        (p.email,),
    )
    return p


@pytest.fixture
def people(db):
    db.execute(
        "create table app.page_views_t2031_01 partition of app.page_views"
        " for values from ('2031-01-01 00:00:00+00') to ('2031-02-01 00:00:00+00')"
    )
    db.execute("alter table app.page_views_t2031_01 enable row level security")
    return add_person(db, "dora"), add_person(db, "emil")


@pytest.fixture
def admin_key(make_key):
    return make_key("admin")


def personal_columns(db) -> list[tuple[str, str]]:
    """Every text, JSON or network column of every app table (partitions through their
    parent; a domain's column by its base type), except the consent audit's pseudonymous ones:
    where personal data can live."""
    rows = db.execute(
        """
        select c.relname, a.attname
        from pg_attribute as a
        join pg_class as c on c.oid = a.attrelid
        -- A column of a domain (app.consent_user_agent, ...) counts as its base type.
        join pg_type as ty on ty.oid = a.atttypid
        cross join lateral (select case when ty.typtype = 'd' then ty.typbasetype else ty.oid end as oid) as base
        where c.relnamespace = 'app'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
          and a.attnum > 0 and not a.attisdropped
          and (format_type(base.oid, null) = any(%s)
               or format_type(base.oid, null) = any(array(select t || '[]' from unnest(%s::text[]) as t)))
        order by 1, 2
        """,
        (list(TEXTUAL_TYPES), list(TEXTUAL_TYPES)),
    ).fetchall()
    return [(t, c) for t, c in rows if (t, c) not in PSEUDONYMOUS]


def traces(db, columns, needles: list[str]) -> list[str]:
    """table.column = needle for every column holding any needle (any letter case)."""
    found = []
    for table, column in columns:
        for needle in needles:
            query = sql.SQL("select exists (select from app.{} where {}::text ilike %s)").format(
                sql.Identifier(table), sql.Identifier(column)
            )
            if db.execute(query, (f"%{needle}%",)).fetchone()[0]:
                found.append(f"{table}.{column} = {needle}")
    return found


def test_export_returns_everything_held_about_a_person_in_any_letter_case(api, admin_key, people):
    dora, _emil = people
    response = api.post("/api/gdpr/export", {"email": dora.email.upper()}, api_key=admin_key)
    assert response.status == 200
    doc = response.body
    assert doc["lead"]["email"] == dora.email and doc["lead"]["firstName"] == dora.first_name
    assert len(doc["leadInteractions"]) == 2
    assert {p["sessionId"] for p in doc["accessibilityPreferences"]} == {dora.session, dora.other_session}
    assert [e["sessionId"] for e in doc["brandEngagement"]] == [dora.session]
    assert {v["sessionId"] for v in doc["pageViews"]} == {dora.session, dora.other_session}
    assert [(a["event"], a["source"]) for a in doc["consentAudit"]] == [("consent", "web_form")]
    assert [c["action"] for c in doc["rateLimitCounters"]] == ["leads"]
    assert dora.email.lower() == doc["email"]
    assert _emil.email not in json.dumps(doc)


def test_export_of_an_address_on_which_nothing_is_held_is_404(api, admin_key, people):
    response = api.post("/api/gdpr/export", {"email": "nobody@example.com"}, api_key=admin_key)
    assert response.status == 404
    assert response.body["code"] == "CHG01"
    assert response.body["message"] == "No personal data is held for that email address."


@pytest.mark.parametrize("path", ["/api/gdpr/export", "/api/gdpr/erase", "/api/gdpr/consent"])
def test_only_an_admin_key_may_use_the_data_protection_endpoints(api, make_key, db, people, path):
    dora, _ = people
    body = {"email": dora.email} | ({"marketingConsent": True} if path.endswith("consent") else {})
    assert api.post(path, body).status == 401
    assert api.post(path, body, api_key=make_key("reader")).status == 403
    assert db.execute("select marketing_consent from app.leads where id = %s", (dora.lead_id,)).fetchone() == (False,)
    assert db.execute("select count(*) from app.leads").fetchone()[0] == 2


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        ("/api/gdpr/erase", {}, "email", "email is required."),
        ("/api/gdpr/erase", {"email": "no-at-sign"}, "email", "email must be a valid email address."),
        ("/api/gdpr/erase", {"email": "a@example.com", "reason": "asked"}, "reason", "reason is not a known field."),
        ("/api/gdpr/export", {"email": 42}, "email", "email must be a string."),
        ("/api/gdpr/consent", {"email": "a@example.com"}, "marketingConsent", "marketingConsent is required."),
    ],
)
def test_bad_input_is_400_and_names_the_field(api, admin_key, db, people, path, body, field, message):
    audit_before = db.execute("select count(*) from app.consent_audit").fetchone()[0]
    response = api.post(path, body, api_key=admin_key)
    assert response.status == 400
    assert response.body["code"] == "CHV01"
    assert response.body["message"] == message
    assert [e["field"] for e in response.body["errors"]] == [field]
    assert db.execute("select count(*) from app.consent_audit").fetchone()[0] == audit_before
    assert db.execute("select count(*) from app.leads").fetchone()[0] == 2


def test_a_consent_change_updates_the_lead_and_is_appended_to_the_audit(api, admin_key, db, people):
    dora, _ = people
    response = api.post(
        "/api/gdpr/consent", {"email": dora.email.lower(), "marketingConsent": True}, api_key=admin_key,
        frozen_now="2030-01-02T03:04:05Z",
    )
    assert response.status == 201
    assert response.body == {"status": "recorded", "marketingConsent": True}
    assert db.execute(
        "select marketing_consent, updated_at = '2030-01-02T03:04:05Z' from app.leads where id = %s", (dora.lead_id,)
    ).fetchone() == (True, True)
    assert db.execute(
        "select event, consent_type, granted, source from app.consent_audit"
        " where subject = app_logic.person_pseudonym(%s) order by seq desc limit 1",
        (dora.email,),
    ).fetchone() == ("consent", "marketing", True, "gdpr_endpoint")
    assert db.execute(
        "select kind, note from app.lead_interactions where lead_id = %s order by id desc limit 1", (dora.lead_id,)
    ).fetchone() == ("status_change", "Marketing consent given.")


def test_a_consent_change_for_an_unknown_address_is_404_and_records_nothing(api, admin_key, db, people):
    before = db.execute("select count(*) from app.consent_audit").fetchone()[0]
    response = api.post("/api/gdpr/consent", {"email": "nobody@example.com", "marketingConsent": False}, api_key=admin_key)
    assert response.status == 404
    assert response.body["code"] == "CHG01"
    assert response.body["message"] == "No lead with that email address exists."
    assert db.execute("select count(*) from app.consent_audit").fetchone()[0] == before


def test_erasure_leaves_no_trace_of_the_person_in_any_column(api, admin_key, db, people):
    dora, emil = people
    columns = personal_columns(db)
    # The search covers the places personal data lives, so an empty result means something.
    for expected in [("leads", "email"), ("lead_interactions", "details"), ("page_views", "session_id"),
                     ("rate_limit_counters", "subject"), ("consent_audit", "user_agent")]:
        assert expected in columns
    (pseudonym, counter_key) = db.execute(
        "select app_logic.person_pseudonym(%s), encode(app_logic.rate_limit_subject('leads', 'email', lower(%s)), 'hex')", (dora.email, dora.email)
    ).fetchone()
    # The audit's pseudonym is meant to stay (the trail); the counter key is personal data.
    needles = dora.markers + [counter_key]
    assert {t.split(" = ")[1] for t in traces(db, columns, needles)} == set(needles), "every marker is findable first"

    response = api.post("/api/gdpr/erase", {"email": dora.email.swapcase()}, api_key=admin_key)
    assert response.status == 200
    assert response.body == {
        "status": "erased",
        "removed": {"leads": 1, "leadInteractions": 2, "accessibilityPreferences": 2, "brandEngagement": 1,
                    "pageViews": 2, "rateLimitCounters": 1,
                    "abTestExposures": 0, "abTestConversions": 0, "logoInteractionHeatmaps": 0},
    }
    assert traces(db, columns, needles) == []
    # The other person is untouched.
    assert len(traces(db, columns, emil.markers)) >= len(emil.markers)
    # The audit keeps the pseudonymous trail, erasure included, and still verifies.
    assert db.execute(
        "select array_agg(event::text order by seq) from app.consent_audit where subject = %s", (pseudonym,)
    ).fetchone()[0] == ["consent", "erasure"]
    assert db.execute("select count(*) from app_logic.verify_consent_chain()").fetchone()[0] == 0


def test_erasure_of_an_unknown_address_answers_like_a_known_one_and_is_recorded(api, admin_key, db, people):
    response = api.post("/api/gdpr/erase", {"email": "Nobody@Example.com"}, api_key=admin_key)
    assert response.status == 200
    assert response.body["status"] == "erased"
    assert set(response.body["removed"].values()) == {0}
    assert db.execute(
        "select event, source from app.consent_audit where subject = app_logic.person_pseudonym('nobody@example.com')"
    ).fetchall() == [("erasure", "gdpr_endpoint")]


def test_cli_export_prints_the_endpoints_document(db_url, people):
    dora, _ = people
    proc = run_invoke("gdpr.export", dora.email.upper(), database_url=db_url)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["lead"]["id"] == dora.lead_id
    missing = run_invoke("gdpr.export", "nobody@example.com", database_url=db_url)
    assert missing.returncode == 1
    assert "no personal data is held for nobody@example.com" in missing.stderr


def test_cli_erase_asks_first_and_erases_only_when_confirmed(db_url, db, people):
    dora, _ = people
    declined = run_invoke("gdpr.erase", dora.email, database_url=db_url, stdin="n\n")
    assert declined.returncode == 1
    assert "leads 1" in declined.stdout and "nothing was erased" in declined.stderr
    assert db.execute("select count(*) from app.leads where id = %s", (dora.lead_id,)).fetchone()[0] == 1

    confirmed = run_invoke("gdpr.erase", dora.email, database_url=db_url, stdin="y\n")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "erased: " in confirmed.stdout
    assert db.execute("select count(*) from app.leads where id = %s", (dora.lead_id,)).fetchone()[0] == 0
    assert db.execute(
        "select source from app.consent_audit where subject = app_logic.person_pseudonym(%s) and event = 'erasure'",
        (dora.email,),
    ).fetchall() == [("operator_cli",)]


def test_cli_erase_with_yes_does_not_ask_and_refuses_an_invalid_address(db_url, db, people):
    _, emil = people
    invalid = run_invoke("gdpr.erase", "not an address", "--yes", database_url=db_url)
    assert invalid.returncode == 1 and "email must be a valid email address." in invalid.stderr
    done = run_invoke("gdpr.erase", emil.email, "--yes", database_url=db_url)
    assert done.returncode == 0, done.stderr
    assert db.execute("select count(*) from app.leads where id = %s", (emil.lead_id,)).fetchone()[0] == 0
