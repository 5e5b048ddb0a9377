"""What of a browser's request headers reaches PostgreSQL (issue 13, session 11), through the
session's `http` stack (nginx in front of PostgREST in front of PostgreSQL).

nginx forwards only the headers PostgREST or the SQL reads (deploy/nginx/api.conf.template:
`proxy_pass_request_headers off` and its list of `proxy_set_header`), so the cookies, the
referrer, the client hints and the fetch metadata a browser sends never reach the database
(what they would cost: README, "The request headers, session 11"). The test records what
PostgreSQL itself sees: a statement trigger, created for the test only, copies request.headers
and request.cookies of the request that inserts a lead into a table of its own; no endpoint
shows them.
"""

from __future__ import annotations

import json
import secrets

import pytest

from chorus_db.bench.common import BROWSER_COOKIE, BROWSER_REQUEST, HEADER_SETS
from tests.support.http_stack import recording

pytestmark = pytest.mark.http

RECORDER = """
create table public.test_seen_request (headers text, cookies text);
create function public.test_record_request() returns trigger
language plpgsql security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
    insert into public.test_seen_request
    values (current_setting('request.headers', true), current_setting('request.cookies', true));
    return null;
end
$$;
create trigger test_record_request after insert on app.leads
for each statement execute function public.test_record_request();
"""
RECORDER_DROP = """
drop trigger if exists test_record_request on app.leads;
drop function if exists public.test_record_request();
drop table if exists public.test_seen_request;
"""


@pytest.fixture
def seen(http):
    """The request.headers and request.cookies texts of each request that stored a lead."""
    with recording(http, RECORDER, RECORDER_DROP, "select headers, cookies from public.test_seen_request") as read:
        yield read


def lead() -> dict:
    return {"firstName": "Ada", "lastName": "Browser", "email": f"browser.{secrets.token_hex(5)}@example.org",
            "leadSource": "contact_form", "gdprConsent": True}


# requests sets Host, Content-Length and Connection itself.
SENT = {name: value for name, value in BROWSER_REQUEST.items() if name not in ("host", "content-length", "connection")}


def test_a_browsers_cookies_referrer_and_client_hints_never_reach_postgresql(http, seen):
    client = http.fresh_client()
    body = json.dumps(lead()).encode()
    response = client.post("/api/leads", data=body, headers=SENT)
    assert response.status_code == 201, response.text
    ((headers_text, cookies_text),) = seen()
    # Exactly the text of the frame's "browser" set (chorus_db.bench.common.HEADER_SETS), which
    # the callgrind figures of a realistic request are measured with, and which the pre-request
    # reads without a JSON parse (app_logic.header_text_value: no spaces, no escapes).
    address = {"x-real-ip": client.source_ip, "x-forwarded-for": client.source_ip, "content-length": str(len(body))}
    assert headers_text == json.dumps({**HEADER_SETS["browser"], **address}, separators=(",", ":"))
    assert json.loads(headers_text)["user-agent"] == BROWSER_REQUEST["user-agent"]
    assert cookies_text == "{}"
    for name in ("cookie", "referer", "origin", "sec-ch-ua", "sec-fetch-site", "accept-language"):
        assert BROWSER_REQUEST[name] not in headers_text, name
    assert BROWSER_COOKIE.split("=", 1)[1][:20] not in headers_text + cookies_text


def test_the_consent_audit_still_keeps_the_browsers_user_agent(http, seen):
    client = http.fresh_client()
    email = lead()["email"]
    response = client.post("/api/leads", json={**lead(), "email": email}, headers=SENT)
    assert response.status_code == 201, response.text
    stored = http.sql(
        "select distinct user_agent, ip_hash = app_logic.pseudonym(%s) from app.consent_audit"
        " where subject = app_logic.pseudonym(lower(%s))",
        (client.source_ip, email),
    )
    assert stored == [(BROWSER_REQUEST["user-agent"], True)]
