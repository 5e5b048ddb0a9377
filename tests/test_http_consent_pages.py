"""The mail links through nginx and PostgREST: a GET (or HEAD) only shows a page, its button's
POST acts. Mail scanners (Safe Links, Proofpoint, Mimecast) and link previews fetch every link of
a mail, so no GET, HEAD or OPTIONS may grant or withdraw consent, whatever its headers; a token
that would not work is refused with a 4xx and changes nothing; the page loads nothing and no
site may frame it or post anything a link could not."""

from __future__ import annotations

import html.parser
import re
import secrets
import urllib.parse

import pytest

from chorus_db import mail

pytestmark = pytest.mark.http

ACCEPTS = [
    "text/html", "application/json", "*/*", "", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "text/csv", "text/plain", "application/xml", "application/vnd.pgrst.object+json", "application/vnd.pgrst.plan+json",
    "application/geo+json", "application/openapi+json", "image/*", "text/*", "*/*;q=0", "garbage",
]
PREFERS = [
    "", "return=representation", "return=minimal", "tx=rollback", "tx=commit", "count=exact", "params=single-object",
    "handling=strict, max-affected=0", "missing=default", "resolution=merge-duplicates", "timezone=Asia/Tokyo", "x" * 3000,
]
CSP = "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"


class Form(html.parser.HTMLParser):
    """The forms and every attribute that could load something, of a page."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.tags: list[str] = []
        self.loading: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(attrs)
        for name in ("src", "href", "srcset", "background", "poster", "data", "style"):
            if name in attrs:
                self.loading.append((tag, name))


def lead_with_links(http, tmp_path) -> tuple[str, str, str]:
    """A submission with the marketing tick, its mail delivered: (address, confirm path, withdraw path)."""
    address = f"Page.{secrets.token_hex(4)}@Example.org"
    body = {"firstName": "Pia", "lastName": "Page", "email": address, "gdprConsent": True, "marketingConsent": True}
    assert http.fresh_client().post("/api/leads", json=body).status_code == 201
    mail.run(http.db_url, mail.FileTransport(tmp_path), once=True, log=lambda _m: None)
    for file in tmp_path.glob("*-consent_confirmation.eml"):
        text = file.read_text()
        if address in text:
            confirm = re.search(r"/api/consent/confirm\?token=[A-Za-z0-9_-]{43}", text).group(0)
            withdraw = re.search(r"/api/consent/withdraw\?token=[A-Za-z0-9_-]{43}", text).group(0)
            return address, confirm, withdraw
    raise AssertionError("no confirmation mail for " + address)


def state(http, address: str) -> tuple:
    """Everything a link could change for a person: consent, audit rows, CRM notes, token uses."""
    return http.sql(
        "select l.marketing_consent,"
        " (select count(*) from app.consent_audit as a where a.subject = app_logic.person_pseudonym(l.email)),"
        " (select count(*) from app.lead_interactions as i where i.lead_id = l.id),"
        " (select array_agg(t.used_at is not null order by t.purpose) from app.consent_tokens as t where t.lead_id = l.id)"
        " from app.leads as l where l.email = %s",
        (address,),
    )[0]


def test_no_get_head_or_options_with_any_header_changes_consent_and_the_button_then_works(http, tmp_path):
    address, confirm, withdraw = lead_with_links(http, tmp_path)
    before = state(http, address)
    keys = [None, http.make_key("reader"), http.make_key("admin")]
    sent = 0
    for path in (confirm, withdraw):
        for method in ("GET", "HEAD", "OPTIONS"):
            for accept in ACCEPTS:
                for prefer in PREFERS[:: 1 if accept in ("text/html", "application/json") else 6]:
                    headers = {"Accept": accept, "Prefer": prefer}
                    key = keys[sent % 3]
                    if key:
                        headers["X-API-Key"] = key
                    answer = http.fresh_client().request(method, path, headers=headers)
                    sent += 1
                    assert answer.status_code < 500, (method, accept, prefer, answer.status_code, answer.text[:200])
                    if method == "OPTIONS":
                        assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD, POST"
                    else:  # a link answers HTML or JSON whatever the Accept (no other code runs)
                        assert answer.status_code == 200, (method, accept, prefer, answer.text[:200])
                        expected = "text/html" if "text/html" in accept else "application/json"
                        assert answer.headers["Content-Type"].split(";")[0] == expected
    assert sent > 300
    assert state(http, address) == before, "a GET, HEAD or OPTIONS of a link changed something"

    # The person opens the link in a browser and presses the button, as the browser would send it.
    person = http.fresh_client()
    page = person.get(confirm, headers={"Accept": "text/html"})
    form = Form()
    form.feed(page.text)
    (attrs,) = form.forms
    assert attrs["method"] == "post"
    action = urllib.parse.urljoin(http.url(confirm), attrs["action"])
    assert action == http.url(confirm)
    pressed = person.session.post(action, data=b"", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html", "Origin": http.base_url,
    }, timeout=10)
    assert pressed.status_code == 200 and "Subscription confirmed" in pressed.text, pressed.text
    consent, audit_rows, notes, _uses = state(http, address)
    assert (consent, audit_rows, notes) == (True, before[1] + 1, before[2] + 1)
    ip_hash = http.sql("select app_logic.pseudonym(%s)", (person.source_ip,))[0][0]
    assert http.sql(
        "select event, granted, source, ip_hash from app.consent_audit where subject = app_logic.person_pseudonym(%s)"
        " order by seq desc limit 1", (address,),
    ) == [("consent", True, "email_confirmation", ip_hash)]  # the owner's button, from the owner's address

    # Opening the unsubscribe link withdraws nothing; its button does.
    assert person.get(withdraw, headers={"Accept": "text/html"}).status_code == 200
    assert state(http, address)[0] is True
    assert person.post(withdraw, headers={"Accept": "application/json"}).json()["status"] == "withdrawn"
    assert state(http, address)[0] is False


@pytest.mark.parametrize("kind", ["confirm", "withdraw"])
def test_the_page_loads_nothing_cannot_be_framed_and_head_answers_the_same(http, tmp_path, kind):
    address, confirm, withdraw = lead_with_links(http, tmp_path)
    path = confirm if kind == "confirm" else withdraw
    client = http.fresh_client()
    page = client.get(path, headers={"Accept": "text/html"})
    head = client.request("HEAD", path, headers={"Accept": "text/html"})
    assert page.status_code == head.status_code == 200 and head.content == b""
    for name in ("Content-Type", "Content-Security-Policy", "X-Frame-Options", "Cache-Control", "Referrer-Policy",
                 "X-Content-Type-Options"):
        assert page.headers[name] == head.headers[name], name
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CSP and page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    form = Form()
    form.feed(page.text)
    assert form.loading == [] and not {"script", "link", "img", "style", "iframe", "object", "embed"} & set(form.tags)
    assert "http://" not in page.text and "https://" not in page.text
    (attrs,) = form.forms
    assert attrs == {"method": "post", "action": "?" + path.split("?", 1)[1]}
    as_json = client.get(path, headers={"Accept": "application/json"})
    assert as_json.json() == {"status": "valid", "action": kind, "method": "POST", "message": as_json.json()["message"]}
    assert "changes nothing" in as_json.json()["message"]


def _tricks(token: str, other_purpose: str) -> dict[str, str]:
    return {
        "wrong purpose": other_purpose,
        "truncated": token[:42],
        "one character more": token + "A",
        "overlong": token * 3,
        "very long": "A" * 6000,
        "empty": "",
        "missing": None,
        "zero-width space": token + "%E2%80%8B",
        "right-to-left override": "%E2%80%AE" + token,
        "fullwidth letter": "%EF%BC%A1" + token[1:],
        "NBSP": token[:20] + "%C2%A0" + token[21:],
        "NUL": token[:42] + "%00",
        "not UTF-8": token[:42] + "%FF",
        "lower-cased": token.lower() if token.lower() != token else token.upper(),
        "another token first": "B" * 43 + "&token=" + token,
        "JSON breakout": '%22%7D%2C%22x%22%3A%22',
        "array": None,
    }


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_replayed_expired_wrong_purpose_odd_or_other_lead_s_token_is_a_4xx_and_changes_nothing(http, tmp_path, method):
    address, confirm, withdraw = lead_with_links(http, tmp_path)
    other, other_confirm, _ = lead_with_links(http, tmp_path)
    token = confirm.split("=", 1)[1]
    withdraw_token = withdraw.split("=", 1)[1]
    before, other_before = state(http, address), state(http, other)
    answers = []
    for name, value in _tricks(token, withdraw_token).items():
        if name == "missing":
            path = "/api/consent/confirm"
        elif name == "array":
            path = f"/api/consent/confirm?token[]={token}"
        else:
            path = f"/api/consent/confirm?token={value}"
        answer = http.fresh_client().request(method, path, headers={"Accept": "application/json"})
        answers.append((name, answer.status_code))
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text[:200])
        if answer.status_code in (400, 404):
            assert answer.json()["code"] in ("CHV01", "CHC01", "CHP09"), (name, answer.text[:200])
    # The confirm token on the withdraw link is the wrong purpose too.
    wrong = http.fresh_client().request(method, f"/api/consent/withdraw?token={token}")
    assert (wrong.status_code, wrong.json()["code"]) == (404, "CHC01")
    assert dict(answers)["truncated"] == 400 and "token" in http.fresh_client().request(
        method, f"/api/consent/confirm?token={token[:42]}").json()["message"]
    assert state(http, address) == before and state(http, other) == other_before

    # Another lead's link confirms that lead only.
    assert http.fresh_client().post(other_confirm).status_code == 200
    assert state(http, address) == before and state(http, other)[0] is True

    # Expired: the page and the button both say so, and nothing changes.
    http.sql("update app.consent_tokens set expires_at = now() - interval '1 second'"
             " where token_hash = app_logic.consent_token_hash(%s)", (token,))
    expired = http.fresh_client().request(method, confirm)
    assert (expired.status_code, expired.json()["code"]) == (404, "CHC01")
    assert state(http, address) == before
    # Replayed: the other lead's link a second time.
    replay = http.fresh_client().request(method, other_confirm)
    assert (replay.status_code, replay.json()["code"]) == (404, "CHC01")


def test_a_cross_site_post_without_the_token_does_nothing_and_the_body_is_never_read(http, tmp_path):
    address, confirm, _ = lead_with_links(http, tmp_path)
    token = confirm.split("=", 1)[1]
    before = state(http, address)
    evil = {"Origin": "https://evil.example", "Referer": "https://evil.example/x", "Cookie": "session=stolen",
            "Content-Type": "application/x-www-form-urlencoded"}
    for body in (f"token={token}", '{"token": "%s"}' % token, "", "List-Unsubscribe=One-Click"):
        answer = http.fresh_client().post("/api/consent/confirm", data=body, headers=evil)
        assert (answer.status_code, answer.json()["code"]) == (400, "CHV01"), answer.text[:200]
    json_body = http.fresh_client().post("/api/consent/confirm", json={"token": token})
    assert json_body.status_code == 400
    assert state(http, address) == before
    # With the token (what a cross-site form could only have by having the link), it is the link.
    assert http.fresh_client().post(confirm, headers=evil).status_code == 200


@pytest.mark.parametrize("accept", ACCEPTS)
def test_every_accept_on_the_button_gets_html_or_json_never_a_5xx(http, accept):
    answer = http.fresh_client().post("/api/consent/confirm?token=" + "J" * 43, headers={"Accept": accept})
    assert answer.status_code == 404, (accept, answer.text[:200])
    expected = "text/html" if "text/html" in accept else "application/json"
    assert answer.headers["Content-Type"].split(";")[0] == expected


@pytest.mark.parametrize("prefer", PREFERS)
def test_every_prefer_on_the_button_leaves_a_real_confirmation_counted_and_kept(http, tmp_path, prefer):
    address, confirm, _ = lead_with_links(http, tmp_path)
    answer = http.fresh_client().post(confirm, headers={"Prefer": prefer})
    assert answer.status_code == 200, answer.text[:200]
    assert state(http, address)[0] is True  # tx=rollback and max-affected=0 are dropped by nginx
