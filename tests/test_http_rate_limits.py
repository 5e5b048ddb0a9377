"""Rate limits through nginx (issue 4), with the seeded defaults: leads 5 per client IP per
10 minutes and 3 per email per hour.

A client is the TCP peer nginx sees. Each test connects from loopback addresses of its own
(the whole of 127.0.0.0/8 reaches nginx on 127.0.0.1), so its counters start empty and no rule
has to change; tests/test_http.py proves that a spoofed forwarding header does not split one
client's limit.
"""

from __future__ import annotations

import secrets

import pytest

pytestmark = pytest.mark.http

LEADS_PER_IP = 5
LEADS_PER_EMAIL = 3
ERROR_KEYS = {"code", "message", "details", "hint"}
SPOOFING_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP")


def lead(email: str | None = None) -> dict:
    return {
        "firstName": "Ada", "lastName": "Lovelace", "gdprConsent": True,
        "email": email or f"limit.{secrets.token_hex(5)}@example.org",
    }


def spoofed(address: str) -> dict[str, str]:
    return {name: (f"for={address}" if name == "Forwarded" else address) for name in SPOOFING_HEADERS}


def leads_stored(http) -> int:
    return http.sql("select count(*) from app.leads")[0][0]


def assert_is_429(response, window_seconds: int) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after  # integer seconds, not an HTTP date
    assert 1 <= int(retry_after) <= window_seconds
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == "CHR01"
    assert retry_after in body["message"]


def exhaust_leads_limit(client) -> None:
    """Use up a client's per-IP lead budget with requests rejected for bad input."""
    for _ in range(LEADS_PER_IP):
        assert client.post("/api/leads", json={"firstName": "x"}).status_code == 400


def test_requests_rejected_for_bad_input_use_up_the_per_ip_limit(http):
    client = http.fresh_client()
    exhaust_leads_limit(client)
    before = leads_stored(http)
    response = client.post("/api/leads", json=lead())
    assert_is_429(response, 600)
    assert leads_stored(http) == before
    # Still blocked when asking again: a refused request takes no slot, but frees none either.
    assert_is_429(client.post("/api/leads", json=lead()), 600)


def test_the_sixth_valid_lead_from_one_client_is_429_with_retry_after_and_the_error_body(http):
    client = http.fresh_client()
    for _ in range(LEADS_PER_IP):
        assert client.post("/api/leads", json=lead()).status_code == 201
    before = leads_stored(http)
    assert_is_429(client.post("/api/leads", json=lead()), 600)
    assert leads_stored(http) == before


def test_spoofed_forwarding_headers_do_not_reset_an_exhausted_limit(http):
    client = http.fresh_client()
    exhaust_leads_limit(client)
    for n in range(3):
        fresh = f"198.51.100.{n + 10}"
        assert_is_429(client.post("/api/leads", json=lead(), headers=spoofed(fresh)), 600)
    # Not even an address nginx itself would count apart.
    assert_is_429(client.post("/api/leads", json=lead(), headers=spoofed(http.fresh_client().source_ip)), 600)


# What the pre-request keeps of the request for the rest of it (its one header read,
# db/functions/000-foundation.sql) lives in settings a client must not reach: headers, cookies
# and query parameters named like them, holding another client's address in the kept format.
KEPT_SETTINGS = ("app.request_client_ip", "app.request_client_network", "app.request_user_agent")


def forging_kept(address: str) -> dict:
    names = [*KEPT_SETTINGS, *(name.replace(".", "-").replace("_", "-") for name in KEPT_SETTINGS)]
    return {
        "headers": {**spoofed(address), **{name: f"={address}" for name in names}, "User-Agent": f"={address}"},
        "cookies": {name: f"={address}" for name in names},
        "params": {name: f"={address}" for name in names},
    }


def test_values_named_like_the_kept_request_settings_do_not_change_the_counted_address(http):
    client, other = http.fresh_client(), http.fresh_client()
    emails = [f"kept.{secrets.token_hex(5)}@example.org" for _ in range(LEADS_PER_IP)]
    for email in emails:
        response = client.post("/api/leads", json=lead(email), **forging_kept(other.source_ip))
        assert response.status_code == 201, response.text
    assert_is_429(client.post("/api/leads", json=lead(), **forging_kept(other.source_ip)), 600)
    counted = http.sql(
        "select subject = app_logic.rate_limit_subject('ip', %s), cardinality(hits) from app.rate_limit_counters"
        " where action = 'leads' and scope = 'ip' and subject in"
        " (app_logic.rate_limit_subject('ip', %s), app_logic.rate_limit_subject('ip', %s))",
        (f"{client.source_ip}/32", f"{client.source_ip}/32", f"{other.source_ip}/32"),
    )
    assert counted == [(True, LEADS_PER_IP)]
    # The consents were recorded with the client's own address, and the user agent it sent.
    recorded = http.sql(
        "select distinct ip_hash = app_logic.pseudonym(%s), user_agent from app.consent_audit"
        " where subject = any(array(select app_logic.pseudonym(e) from unnest(%s::text[]) as e))",
        (client.source_ip, emails),
    )
    assert recorded == [(True, f"={other.source_ip}")]
    assert other.post("/api/leads", json=lead()).status_code == 201


def test_spoofing_another_clients_address_does_not_use_up_its_limit(http):
    attacker, victim = http.fresh_client(), http.fresh_client()
    for _ in range(LEADS_PER_IP + 3):
        attacker.post("/api/leads", json={"firstName": "x"}, headers=spoofed(victim.source_ip))
    assert victim.post("/api/leads", json=lead()).status_code == 201


def test_prefer_tx_rollback_does_not_undo_a_counted_request(http):
    client = http.fresh_client()
    for _ in range(LEADS_PER_IP):
        assert client.post("/api/leads", json={"firstName": "x"}, headers={"Prefer": "tx=rollback"}).status_code == 400
    assert_is_429(client.post("/api/leads", json=lead()), 600)


def test_a_second_loopback_address_is_counted_apart(http):
    # Two addresses no other test uses (127.0.0.1, every test's default client, may have nginx's
    # per-address POST budget spent by the test file that ran just before in this process).
    first, second = http.fresh_client(), http.fresh_client()
    email = f"second.{secrets.token_hex(5)}@example.org"
    exhaust_leads_limit(first)
    assert_is_429(first.post("/api/leads", json=lead()), 600)
    response = second.post("/api/leads", json=lead(email))
    assert response.status_code == 201, response.text
    # nginx saw the second address: the consent audit holds the hash of that IP.
    hashes = http.sql(
        "select distinct ip_hash = app_logic.pseudonym(%s) from app.consent_audit"
        " where subject = app_logic.pseudonym(lower(%s))",
        (second.source_ip, email),
    )
    assert hashes == [(True,)]


def test_the_per_email_limit_holds_across_client_addresses(http):
    email = f"Per.Email.{secrets.token_hex(5)}@example.org"
    spellings = [email, email.lower(), email.upper()]
    for spelling in spellings[:LEADS_PER_EMAIL]:
        response = http.fresh_client().post("/api/leads", json=lead(spelling))
        assert response.status_code == 201, response.text
    before = http.sql("select count(*) from app.lead_interactions")[0][0]
    over = http.fresh_client().post("/api/leads", json=lead(email.swapcase()))
    assert_is_429(over, 3600)
    assert http.sql("select count(*) from app.lead_interactions")[0][0] == before
    # The address is what is limited, not the new client: another email from it passes.
    assert http.fresh_client().post("/api/leads", json=lead()).status_code == 201


def test_engagement_endpoints_are_limited_per_client_address_too(http):
    client, other = http.fresh_client(), http.fresh_client()
    statuses = [client.post("/api/page-views", json={"sessionId": "x"}).status_code for _ in range(121)]
    assert statuses[:120] == [400] * 120  # path missing: rejected, yet counted
    assert statuses[120] == 429
    assert other.post("/api/page-views", json={"sessionId": "s", "path": "/"}).status_code == 201
