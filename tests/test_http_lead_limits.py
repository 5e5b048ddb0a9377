"""The red-team pass of session 5: every limit of a lead and of a CRM note, at the limit and one
past it, through nginx and PostgREST. The request's rule (app_logic's validator) and the table's
own rules (checks or domains of app.leads and app.lead_interactions) must draw each line at the
same place: a value the rule passes but the table refuses would reach the client as PostgreSQL's
own sentence (23514, naming a constraint or a domain), and a value the table would take but the
rule refuses is a rule too strict.

So: the value at the limit is stored as it was measured (padding of invisible characters trimmed
first), the value one past it is 400 CHV01 naming only that field, says nothing of the schema, and
stores nothing.
"""

from __future__ import annotations

import json
import secrets

import pytest

pytestmark = pytest.mark.http

# Words of PostgreSQL's own constraint messages and of the schema's names.
LEAKS = ("constraint", "violates", "domain", "relation", "app.", "app_logic", "leads_", "23514", "PGRST")

# (field, value at the limit, SQL measuring the stored column, what it measures, value one past it)
LIMITS = [
    ("firstName", "a" * 100, "char_length(first_name)", 100, "a" * 101),
    # Trimmed before it is measured: BOM, zero-width space, no-break and ideographic spaces.
    ("firstName", "\ufeff\u200b\u00a0" + "b" * 100 + "\u3000", "first_name", "b" * 100, "\u00a0" + "b" * 101),
    ("lastName", "\U0001F600" * 100, "char_length(last_name)", 100, "\U0001F600" * 101),
    ("companyName", "\U0001F600" * 200, "char_length(company_name)", 200, "x" * 200 + "\u0301"),
    ("inquiryDetails", "\u00e9" * 5000, "char_length(inquiry_details)", 5000, "e\u0301" * 2500 + "x"),
    ("leadSource", "a" * 50, "lead_source", "a" * 50, "a" * 51),
    # 4,096 bytes as PostgreSQL prints the object, {"x": "..."}: escapes count as they are printed.
    ("browserInfo", {"x": "a" * 4087}, "octet_length(browser_info::text)", 4096, {"x": "a" * 4088}),
    ("browserInfo", {"x": "\\" * 2043}, "octet_length(browser_info::text)", 4095, {"x": "\\" * 2044}),
    ("browserInfo", {"x": "\u2028" * 1362}, "octet_length(browser_info::text)", 4095, {"x": "\u2028" * 1363}),
    ("logoInteractions", 2**31 - 1, "logo_interactions", 2**31 - 1, 2**31),
    ("timeOnSite", 0, "time_on_site", 0, -1),
    ("phone", "\u00a0+44 20 7946 0958\u3000", "phone", "+442079460958", "+44 20 7946 09581234"),
]


def _lead(session: str, field: str, value) -> bytes:
    body = {"firstName": "Ada", "lastName": "Lovelace", "email": f"{session}@limits.example", "gdprConsent": True,
            "sessionId": session, field: value}
    return json.dumps(body, ensure_ascii=False).encode()


def _post(http, body: bytes):
    return http.fresh_client().post("/api/leads", data=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("field, at_limit, measure, expected, past_limit", LIMITS,
                         ids=[f"{f}-{i}" for i, (f, *_) in enumerate(LIMITS)])
def test_a_lead_at_its_limit_is_stored_and_one_past_it_is_refused_naming_the_field(
        http, field, at_limit, measure, expected, past_limit):
    session = f"rt5-lim-{secrets.token_hex(5)}"
    accepted = _post(http, _lead(session, field, at_limit))
    assert accepted.status_code == 201, accepted.text
    assert http.sql(f"select {measure} from app.leads where session_id = %s", (session,)) == [(expected,)]

    refused_session = f"rt5-lim-{secrets.token_hex(5)}"
    refused = _post(http, _lead(refused_session, field, past_limit))
    assert refused.status_code == 400, refused.text
    answer = refused.json()
    assert answer["code"] == "CHV01"
    assert [e["field"] for e in answer["errors"]] == [field]
    assert not [w for w in LEAKS if w in refused.text], refused.text
    assert http.sql("select count(*) from app.leads where session_id = %s", (refused_session,)) == [(0,)]


@pytest.mark.parametrize("at_limit, past_limit", [
    (" \u00a0" + "n" * 5000 + "\t\u3000", "n" * 5000 + "\u0301"),
    ("a\r\n" * 1666 + "ab", "a\u2028" * 2500 + "b"),
], ids=["padded", "line-breaks"])
def test_a_crm_note_at_its_limit_is_stored_and_one_past_it_is_refused_naming_the_field(http, at_limit, past_limit):
    admin = {"X-API-Key": http.make_key("admin")}
    session = f"rt5-note-{secrets.token_hex(5)}"
    assert _post(http, _lead(session, "companyName", "Notes Ltd")).status_code == 201
    (lead_id,) = http.sql("select id::text from app.leads where session_id = %s", (session,))[0]
    note = {"leadId": lead_id, "kind": "note"}
    accepted = http.post("/api/lead-interactions", headers=admin, json={**note, "note": at_limit})
    assert accepted.status_code == 201, accepted.text
    assert http.sql("select char_length(note) from app.lead_interactions where id = %s",
                    (accepted.json()["id"],)) == [(5000,)]
    refused = http.post("/api/lead-interactions", headers=admin, json={**note, "note": past_limit})
    assert refused.status_code == 400 and refused.json()["code"] == "CHV01", refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["note"]
    assert not [w for w in LEAKS if w in refused.text], refused.text
    assert http.sql("select count(*) from app.lead_interactions as i join app.leads as l on l.id = i.lead_id"
                    " where l.session_id = %s and i.kind = 'note'", (session,)) == [(1,)]
