"""Double opt-in and the brand audit log end to end through nginx and PostgREST (issue 14): the
confirmation mail delivered by the worker, its links opened over HTTP, and hostile requests to
the new endpoints (huge and odd tokens, every Prefer and Accept, keys and no keys)."""

from __future__ import annotations

import email
import email.policy
import re
import secrets

import pytest

from chorus_db import mail

pytestmark = pytest.mark.http

PREFERS = [
    "return=representation", "return=minimal", "tx=rollback", "tx=commit", "count=exact", "params=single-object",
    "handling=strict", "missing=default", "resolution=merge-duplicates", "max-affected=0", "timezone=Asia/Tokyo",
    "x" * 5000,
]
ACCEPTS = [
    "application/json", "text/html", "text/csv", "application/xml", "*/*", "application/vnd.pgrst.object+json",
    "application/openapi+json", "text/plain", "garbage/\u00e9", "application/vnd.pgrst.plan+json", "",
]


def submit_and_mail(http, tmp_path, marketing=True):
    """A submission through the API, its confirmation request, the worker's file; (email, message)."""
    address = f"Reader.{secrets.token_hex(4)}@Example.org"
    client = http.fresh_client()
    body = {"firstName": "Rita", "lastName": "Reader", "email": address, "gdprConsent": True, "marketingConsent": marketing}
    assert client.post("/api/leads", json=body).status_code == 201
    mail.run(http.db_url, mail.FileTransport(tmp_path), once=True, log=lambda _m: None)
    files = [p for p in tmp_path.glob("*-consent_confirmation.eml")]
    messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]
    (message,) = [m for m in messages if m["To"] == address]
    return address, message


def link(message, name: str) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(rf"/api/consent/{name}\?token=[A-Za-z0-9_-]+", text).group(0)


def audit_tail(http, address: str):
    return http.sql(
        "select granted, source, ip_hash from app.consent_audit where subject = app_logic.person_pseudonym(%s)"
        " and consent_type = 'marketing' order by seq",
        (address,),
    )


def test_a_submission_s_mail_link_confirms_and_its_unsubscribe_withdraws(http, tmp_path):
    address, message = submit_and_mail(http, tmp_path)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    confirmer = http.fresh_client()
    head = confirmer.request("HEAD", link(message, "confirm"))
    assert head.status_code == 200  # a link scanner's HEAD changes nothing
    page = confirmer.get(link(message, "confirm"), headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html") and "Confirm your subscription" in page.text
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert http.sql("select marketing_consent from app.leads where email = %s", (address,)) == [(False,)]
    pressed = confirmer.post(link(message, "confirm"), headers={"Accept": "text/html"})  # the page's button
    assert pressed.status_code == 200 and "Subscription confirmed" in pressed.text, pressed.text
    again = confirmer.post(link(message, "confirm"), headers={"Accept": "application/json"})
    assert again.status_code == 404 and again.json()["code"] == "CHC01"
    assert confirmer.get(link(message, "confirm")).json()["code"] == "CHC01"  # the page says so too
    ip_hash = http.sql("select app_logic.pseudonym(%s)", (confirmer.source_ip,))[0][0]
    assert audit_tail(http, address)[-1] == (True, "email_confirmation", ip_hash)

    unsubscribe = message["List-Unsubscribe"].strip("<>")
    path = unsubscribe[unsubscribe.index("/api/"):]
    one_click = http.fresh_client().post(
        path, data="List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert one_click.status_code == 200 and one_click.json() == {
        "status": "withdrawn", "marketingConsent": False, "message": "You will receive no more news from CHORUS."
    }
    assert http.sql("select marketing_consent from app.leads where email = %s", (address,)) == [(False,)]
    assert audit_tail(http, address)[-1][:2] == (False, "unsubscribe_link")


def test_an_unknown_link_says_nothing_about_any_address(http):
    answer = http.fresh_client().get("/api/consent/confirm?token=" + "Q" * 43)
    assert answer.status_code == 404
    assert answer.json()["message"] == "This link is not valid: it has expired, was already used, or was never issued."


@pytest.mark.parametrize(
    "query",
    [
        "", "?token=", "?token=" + "A" * 10000, "?token=%00", "?token=%E2%80%AE" * 3, "?token=\u00e9\u00e9",
        "?token=" + "A" * 43 + "&token=" + "B" * 43, "?token[]=1", "?token=99999999999999999999999999999",
        "?token=" + "%7B" * 200, "?select=*&token=" + "A" * 43,
    ],
)
@pytest.mark.parametrize("path", ["/api/consent/confirm", "/api/consent/withdraw"])
def test_hostile_tokens_get_a_4xx_never_a_5xx(http, path, query):
    answer = http.fresh_client().get(path + query)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:200])


@pytest.mark.parametrize("prefer", PREFERS)
def test_every_prefer_header_on_a_link_is_harmless(http, prefer):
    answer = http.fresh_client().get("/api/consent/withdraw?token=" + "C" * 43, headers={"Prefer": prefer})
    assert answer.status_code in (400, 404), answer.text[:200]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_every_accept_header_on_a_link_gets_html_or_json(http, accept):
    answer = http.fresh_client().get("/api/consent/confirm?token=" + "D" * 43, headers={"Accept": accept})
    if not accept.isascii():  # requests sends it as Latin-1: nginx refuses a header that is not UTF-8
        assert (answer.status_code, answer.json()["code"]) == (400, "CHP08")
        return
    assert answer.status_code == 404, (accept, answer.status_code, answer.text[:200])
    expected = "text/html" if "text/html" in accept else "application/json"
    assert answer.headers["Content-Type"].split(";")[0] == expected


def test_keys_change_nothing_on_a_link_but_a_wrong_key_is_refused(http):
    client = http.fresh_client()
    for key in (http.make_key("admin"), http.make_key("reader")):
        assert client.get("/api/consent/confirm?token=" + "E" * 43, headers={"X-API-Key": key}).status_code == 404
    assert client.get("/api/consent/confirm?token=" + "E" * 43, headers={"X-API-Key": "chk_wrong"}).status_code == 401


def test_a_huge_one_click_body_is_413_and_a_json_body_is_ignored(http):
    client = http.fresh_client()
    huge = client.post("/api/consent/withdraw?token=" + "F" * 43, data="x" * 70000,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413
    deep = client.post("/api/consent/withdraw?token=" + "F" * 43, data="[" * 30000 + "]" * 30000,
                       headers={"Content-Type": "application/json"})
    assert deep.status_code == 404


def test_other_methods_on_a_link_are_405(http):
    answer = http.fresh_client().request("DELETE", "/api/consent/confirm?token=" + "G" * 43)
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD, POST"


def test_link_posts_are_rate_limited_per_client(http):
    client = http.fresh_client()
    statuses = [client.post("/api/consent/confirm?token=" + "H" * 43).status_code for _ in range(21)]
    assert statuses[:20] == [404] * 20 and statuses[20] == 429


# -- the brand audit log ----------------------------------------------------------------------
def test_the_brand_audit_log_shows_an_edit_to_admin_keys_only(http):
    session = f"sess_audit_{secrets.token_hex(4)}"
    client = http.fresh_client()
    assert client.post("/api/accessibility-preferences", json={"sessionId": session, "accessibilityTheme": "protanopia"}).status_code == 201
    assert client.post("/api/accessibility-preferences", json={"sessionId": session, "accessibilityTheme": "protanopia", "highContrast": True}).status_code == 200
    admin = {"X-API-Key": http.make_key("admin")}
    answer = http.get(
        "/api/brand-audit?tableName=eq.accessibility_preferences&operation=eq.UPDATE&order=id.desc&limit=1",
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    (entry,) = answer.json()
    # high_contrast is encrypted: the entry names the sealed column as changed, never a value.
    assert entry["changes"]["sealed"] == {"old": "[secret]", "new": "[secret]"} and "high_contrast" not in entry["changes"]
    assert entry["actorRole"] == "anon" and entry["requestPath"] == "/rpc/save_accessibility_preferences"
    assert http.get("/api/brand-audit", headers={"X-API-Key": http.make_key("reader")}).status_code == 403
    assert http.get("/api/brand-audit").status_code == 401
    assert http.get("/api/brand-audit", headers={"X-API-Key": "chk_nope"}).status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        "?limit=99999999999999999999", "?id=eq.99999999999999999999999", "?recordedAt=gte.notadate",
        "?changes->>x=eq." + "y" * 2000, "?or=(" * 200 + ")" * 200, "?select=" + ",".join(["id"] * 500),
        "?tableName=eq.\u202e\u0000", "?order=nosuch.desc", "?offset=-1",
    ],
)
def test_hostile_filters_on_the_brand_audit_log_get_a_4xx_or_2xx_never_a_5xx(http, query):
    answer = http.get("/api/brand-audit" + query, headers={"X-API-Key": http.make_key("admin")})
    assert answer.status_code < 500, (query[:40], answer.status_code, answer.text[:200])


@pytest.mark.parametrize("prefer", PREFERS)
def test_every_prefer_header_on_the_brand_audit_log_is_harmless(http, prefer):
    answer = http.get("/api/brand-audit?limit=1", headers={"X-API-Key": http.make_key("admin"), "Prefer": prefer})
    assert answer.status_code < 500, (prefer[:40], answer.status_code, answer.text[:200])


@pytest.mark.parametrize("accept", ACCEPTS)
def test_every_accept_header_on_the_brand_audit_log_is_a_2xx_or_4xx(http, accept):
    answer = http.get("/api/brand-audit?limit=1", headers={"X-API-Key": http.make_key("admin"), "Accept": accept})
    assert answer.status_code < 500, (accept, answer.status_code, answer.text[:200])
