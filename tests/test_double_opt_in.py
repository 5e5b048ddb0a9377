"""Double opt-in (issue 14): the confirmation request queued in the outbox, the confirm and
withdraw links, the consent texts and receipts, and the mail worker delivering the outbox
(files, a real SMTP server, webhooks, retries, crashes)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import http.server
import json
import re
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from chorus_db import mail
from chorus_db.stack import free_port

LEAD = {"firstName": "Dana", "lastName": "Scully", "email": "Dana@Example.org", "gdprConsent": True}


def lead_id(db, email_address: str = "dana@example.org"):
    return db.execute("select id from app.leads where lower(email) = %s", (email_address,)).fetchone()[0]


def request_confirmation(api, db, body=None, **kwargs):
    """A submission that ticked marketing consent: it queues the confirmation request."""
    body = {**(body or LEAD), "marketingConsent": True}
    assert api.post("/api/leads", body, **kwargs).status == 201


def confirmation_rows(db) -> list[dict]:
    cur = db.execute("select * from app.outbox where kind = 'consent_confirmation' order by id")
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def link_token(text: str, link: str) -> str:
    match = re.search(rf"/api/consent/{link}\?token=([A-Za-z0-9_-]+)", text)
    assert match, f"no {link} link in the message"
    return match.group(1)


def marketing_audit(db, email_address: str = "dana@example.org") -> list[tuple]:
    return db.execute(
        "select seq, granted, source, ip_hash, consent_text_version from app.consent_audit"
        " where subject = app_logic.person_pseudonym(%s) and consent_type = 'marketing' order by seq",
        (email_address,),
    ).fetchall()


def delivered_files(tmp_path: Path, db_url: str) -> list[email.message.EmailMessage]:
    assert mail.run(db_url, mail.FileTransport(tmp_path), once=True, log=lambda _m: None) >= 1
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(tmp_path.glob("*.eml"))
    ]


# -- the request ------------------------------------------------------------------------------
def test_a_confirmation_request_queues_one_mail_with_both_links_and_stores_only_their_hashes(api, db):
    request_confirmation(api, db)
    (row,) = confirmation_rows(db)
    assert row["recipient"] == "Dana@Example.org" and row["channel"] == "email" and row["sent_at"] is None
    text = row["message"]["text"]
    confirm, withdraw = link_token(text, "confirm"), link_token(text, "withdraw")
    assert row["message"]["headers"]["List-Unsubscribe"].endswith(f"/api/consent/withdraw?token={withdraw}>")
    assert row["message"]["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    stored = db.execute("select purpose, token_hash, expires_at - created_at from app.consent_tokens order by purpose").fetchall()
    assert [(p, bytes(h)) for p, h, _ in stored] == [
        ("confirm", hashlib.sha256(confirm.encode()).digest()),
        ("withdraw", hashlib.sha256(withdraw.encode()).digest()),
    ]
    assert str(stored[0][2]) == "2 days, 0:00:00" and stored[1][2] is None
    dump = str(db.execute("select * from app.consent_tokens").fetchall())
    assert confirm not in dump and withdraw not in dump
    # Pending: nothing is granted until the link is opened.
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is False


def test_the_confirmation_expiry_is_a_setting(api, db):
    db.execute("update app.settings set value = '3 hours' where key = 'consent_confirmation_ttl'")
    request_confirmation(api, db)
    (ttl,) = db.execute("select expires_at - created_at from app.consent_tokens where purpose = 'confirm'").fetchone()
    assert str(ttl) == "3:00:00"


def test_the_mail_carries_a_consent_receipt_of_the_text_in_force(api, db):
    request_confirmation(api, db)
    (row,) = confirmation_rows(db)
    (attachment,) = row["message"]["attachments"]
    receipt = attachment["content"]
    assert attachment["filename"] == "consent-receipt.json"
    text = db.execute("select version, encode(sha256, 'hex'), body from app.consent_texts").fetchone()
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert (receipt["notice"]["version"], receipt["notice"]["sha256"], receipt["notice"]["text"]) == text
    assert receipt["notice"]["sha256"] == hashlib.sha256(text[2].encode()).hexdigest()
    assert receipt["piiPrincipalId"] == "dana@example.org"
    assert receipt["piiControllers"][0]["piiController"] == "CHORUS"
    assert receipt["jurisdiction"] == "EU (GDPR)" and "double opt-in" in receipt["collectionMethod"]
    assert receipt["services"][0]["purposes"][0]["purposeCategory"] == ["Marketing"]
    assert receipt["state"] == "pending confirmation"


def test_consent_texts_cannot_disagree_with_their_hash(db):
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "insert into app.consent_texts (version, body, sha256, valid_from) values ('x1', 'new', sha256('old'), now())"
        )


def test_the_text_in_force_is_the_newest_published_one_and_audit_rows_reference_it(api, db):
    db.execute(
        "insert into app.consent_texts (version, body, sha256, valid_from) values"
        " ('2026-06', 'June.', sha256('June.'), '2026-06-01'), ('2099-01', 'Future.', sha256('Future.'), '2099-01-01')"
    )
    assert api.post("/api/leads", LEAD, frozen_now="2026-07-01T00:00:00Z").status == 201
    assert {v for (v,) in db.execute("select consent_text_version from app.consent_audit")} == {"2026-06"}
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute(
            "insert into app.consent_audit (subject, seq, event, consent_type, granted, source, consent_text_version,"
            " row_hash) values ('x', 1, 'consent', 'gdpr', true, 't', 'never-published', '\\x00')"
        )


# -- the links --------------------------------------------------------------------------------
def test_the_confirm_link_grants_marketing_consent_and_records_time_and_confirmer_ip(api, db):
    db.execute("set app.frozen_now = '2030-01-01T09:00:00Z'")
    request_confirmation(api, db, client_ip="203.0.113.10", frozen_now="2030-01-01T09:00:00Z")
    token = link_token(confirmation_rows(db)[0]["message"]["text"], "confirm")
    # Opening the link (a person, or a mail scanner) shows its page and grants nothing.
    assert api.get(f"/api/consent/confirm?token={token}", client_ip="192.0.2.66").json()["status"] == "valid"
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is False
    answer = api.post(
        f"/api/consent/confirm?token={token}", client_ip="198.51.100.7", frozen_now="2030-01-01T10:00:00Z",
        headers={"Accept": "application/json"},
    )
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "status": "confirmed", "marketingConsent": True,
        "message": "Thank you: you will receive news about CHORUS. Every message has a link to stop them.",
    }
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is True
    ip_hash = db.execute("select app_logic.pseudonym('198.51.100.7')").fetchone()[0]
    last = db.execute(
        "select granted, source, ip_hash, recorded_at, consent_text_version from app.consent_audit"
        " order by id desc limit 1"
    ).fetchone()
    assert last[:3] == (True, "email_confirmation", ip_hash)
    assert last[3].isoformat() == "2030-01-01T10:00:00+00:00" and last[4] == "2026-01"
    assert db.execute("select count(*) from app_logic.verify_consent_chain()").fetchone()[0] == 0


def test_a_used_an_expired_and_an_unknown_link_get_the_same_404(api, db):
    request_confirmation(api, db)
    token = link_token(confirmation_rows(db)[0]["message"]["text"], "confirm")
    assert api.post(f"/api/consent/confirm?token={token}").status == 200
    used = api.post(f"/api/consent/confirm?token={token}")
    unknown = api.post("/api/consent/confirm?token=" + "A" * 43)
    request_confirmation(api, db, {**LEAD, "email": "fox@example.org"})
    late = link_token(confirmation_rows(db)[-1]["message"]["text"], "confirm")
    expired = api.post(f"/api/consent/confirm?token={late}", frozen_now="2099-01-01T00:00:00Z")
    pages = [api.get(f"/api/consent/confirm?token={t}", frozen_now=f)
             for t, f in ((token, None), ("A" * 43, None), (late, "2099-01-01T00:00:00Z"))]
    for answer in (used, unknown, expired, *pages):
        assert answer.status == 404 and answer.json()["code"] == "CHC01"
        assert answer.json() == used.json()
        assert "example.org" not in json.dumps(answer.json()).lower()
    assert db.execute("select marketing_consent from app.leads where email = 'fox@example.org'").fetchone()[0] is False


def test_the_link_answers_html_to_a_browser(api, db):
    request_confirmation(api, db)
    token = link_token(confirmation_rows(db)[0]["message"]["text"], "confirm")
    answer = api.post(f"/api/consent/confirm?token={token}", headers={"Accept": "text/html,application/xhtml+xml"})
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<h1>Subscription confirmed</h1>" in answer.body
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Referrer-Policy"] == "no-referrer"


def test_a_malformed_token_is_400_naming_the_token_and_counts_against_the_limit(api, db):
    answer = api.post("/api/consent/confirm?token=%3Cscript%3E")
    assert answer.status == 400 and answer.json()["errors"][0]["field"] == "token"
    (hits,) = db.execute("select cardinality(hits) from app.rate_limit_counters where action = 'consent_links'").fetchone()
    assert hits == 1


def test_links_are_rate_limited_per_ip(api, db):
    db.execute("update app.rate_limit_rules set max_requests = 2 where action = 'consent_links'")
    statuses = [api.post("/api/consent/withdraw?token=" + "B" * 43, client_ip="192.0.2.9").status for _ in range(3)]
    assert statuses == [404, 404, 429]


def test_the_withdraw_link_takes_effect_at_once_and_is_audited_once(api, db):
    request_confirmation(api, db)
    text = confirmation_rows(db)[0]["message"]["text"]
    assert api.post(f"/api/consent/confirm?token={link_token(text, 'confirm')}").status == 200
    withdraw = link_token(text, "withdraw")
    first = api.post(f"/api/consent/withdraw?token={withdraw}", raw_body="List-Unsubscribe=One-Click")
    again = api.post(f"/api/consent/withdraw?token={withdraw}")
    assert (first.status, again.status) == (200, 200)
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is False
    assert [(g, s) for _, g, s, _, _ in marketing_audit(db)] == [
        (True, "web_form"), (True, "email_confirmation"), (False, "unsubscribe_link"),
    ]


def test_withdrawing_before_confirming_cancels_the_pending_confirmation(api, db):
    request_confirmation(api, db)
    text = confirmation_rows(db)[0]["message"]["text"]
    assert api.post(f"/api/consent/withdraw?token={link_token(text, 'withdraw')}").status == 200
    assert api.post(f"/api/consent/confirm?token={link_token(text, 'confirm')}").status == 404
    assert api.get(f"/api/consent/confirm?token={link_token(text, 'confirm')}").status == 404
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is False


def test_erasing_the_person_removes_their_links_and_queued_mail(api, db):
    request_confirmation(api, db)
    db.execute("select app_logic.erase_personal_data('dana@example.org', 'test')")
    assert db.execute("select count(*) from app.consent_tokens").fetchone()[0] == 0
    assert db.execute("select count(*) from app.outbox").fetchone()[0] == 0


# -- team notification ------------------------------------------------------------------------
def test_a_new_lead_notifies_the_team_by_mail_and_webhook_when_set(api, db):
    assert api.post("/api/leads", LEAD).status == 201
    assert db.execute("select count(*) from app.outbox").fetchone()[0] == 0  # nothing configured
    db.execute("update app.settings set value = 'sales@chorus.example' where key = 'team_notify_email'")
    db.execute("update app.settings set value = 'http://127.0.0.1:9/hook' where key = 'team_notify_webhook'")
    assert api.post("/api/leads", {**LEAD, "email": "mulder@example.org", "companyName": "FBI"}).status == 201
    assert api.post("/api/leads", {**LEAD, "email": "MULDER@example.org"}).status == 201  # known: no second note
    rows = db.execute("select channel, recipient, message from app.outbox where kind = 'lead_notification' order by id").fetchall()
    assert [(c, r) for c, r, _ in rows] == [("email", "sales@chorus.example"), ("webhook", "http://127.0.0.1:9/hook")]
    assert rows[0][2]["subject"] == "New lead: Dana Scully (FBI)"
    assert rows[1][2]["payload"]["event"] == "lead.created" and rows[1][2]["payload"]["email"] == "mulder@example.org"


# -- the worker -------------------------------------------------------------------------------
def test_the_worker_writes_one_rfc_5322_file_per_message_and_forgets_the_links(api, db, db_url, tmp_path):
    request_confirmation(api, db)
    (message,) = delivered_files(tmp_path, db_url)
    assert message["To"] == "Dana@Example.org" and message["Subject"].startswith("Please confirm")
    assert message["Message-ID"].startswith("<outbox-")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = message.get_body(("plain",)).get_content()
    assert "/api/consent/confirm?token=" in body
    receipt = json.loads(next(message.iter_attachments()).get_content())
    assert receipt["notice"]["version"] == "2026-01"
    (row,) = confirmation_rows(db)
    assert row["sent_at"] is not None and row["message"] == {"subject": message["Subject"]}
    assert row["last_response"].startswith("written to ")
    assert mail.run(db_url, mail.FileTransport(tmp_path), once=True, log=lambda _m: None) == 0  # never twice


class Failing:
    def __init__(self, error: Exception):
        self.error = error

    def send(self, row, msg):
        raise self.error


def test_a_transient_failure_is_retried_with_backoff_and_a_permanent_one_gives_up(api, db, db_url):
    request_confirmation(api, db)
    mail.run(db_url, Failing(mail.TransientFailure("421 try later")), once=True, log=lambda _m: None)
    row = confirmation_rows(db)[0]
    assert (row["attempts"], row["sent_at"], row["failed_at"]) == (1, None, None)
    assert (row["next_attempt_at"] - row["created_at"]).total_seconds() >= 29
    assert row["last_response"] == "421 try later"
    # Not due yet: a second run sends nothing.
    assert mail.run(db_url, Failing(mail.TransientFailure("x")), once=True, log=lambda _m: None) == 0
    db.execute("update app.outbox set next_attempt_at = now() - interval '1 second'")
    mail.run(db_url, Failing(mail.TransientFailure("421 again")), once=True, log=lambda _m: None)
    row = confirmation_rows(db)[0]
    assert row["attempts"] == 2 and (row["next_attempt_at"] - row["created_at"]).total_seconds() >= 59
    db.execute("update app.outbox set next_attempt_at = now() - interval '1 second'")
    mail.run(db_url, Failing(mail.PermanentFailure("550 no such user")), once=True, log=lambda _m: None)
    row = confirmation_rows(db)[0]
    assert row["failed_at"] is not None and row["sent_at"] is None and row["last_response"] == "550 no such user"


def test_a_worker_that_dies_before_commit_leaves_the_message_for_the_next_one(api, db, db_url, tmp_path):
    request_confirmation(api, db)
    dying = mail.connect(db_url)
    dying.execute(mail.CLAIM).fetchone()  # claimed, locked, then the process "dies"
    # While it holds the row, another worker skips it rather than sending it too.
    other = mail.connect(db_url)
    assert other.execute(mail.CLAIM).fetchone() is None
    other.rollback()
    other.close()
    dying.close()  # the connection drops without COMMIT
    (message,) = delivered_files(tmp_path, db_url)
    assert message["Subject"].startswith("Please confirm")
    assert db.execute("select count(*) from app.outbox where sent_at is not null").fetchone()[0] == 1


def test_the_worker_role_can_only_claim_and_record(db_url):
    conn = mail.connect(db_url)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from app.outbox")
    conn.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from app.leads")
    conn.close()


def test_mail_goes_through_a_real_smtp_server_and_its_answer_is_recorded(api, db, db_url):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 2.0.0 queued as CHORUS1"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        request_confirmation(api, db)
        transport = mail.transport_from_env(f"smtp+plain://127.0.0.1:{port}")
        assert mail.run(db_url, transport, once=True, log=lambda _m: None) == 1
    finally:
        controller.stop()
    (envelope,) = received
    assert envelope.mail_from == "no-reply@chorus.invalid" and envelope.rcpt_tos == ["Dana@Example.org"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["List-Unsubscribe"].startswith("<http://") and "/api/consent/withdraw?token=" in message["List-Unsubscribe"]
    assert confirmation_rows(db)[0]["last_response"] == "250 2.0.0 queued as CHORUS1"


def test_an_smtp_refusal_is_recorded_as_permanent(api, db, db_url):
    from aiosmtpd.controller import Controller

    class Refusing:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 5.1.1 no such mailbox"

    port = free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        request_confirmation(api, db)
        mail.run(db_url, mail.SmtpTransport(mail.SmtpTarget("127.0.0.1", port, "plain")), once=True, log=lambda _m: None)
    finally:
        controller.stop()
    row = confirmation_rows(db)[0]
    assert row["failed_at"] is not None and "550" in row["last_response"]


def test_an_unreachable_smtp_server_is_retried(api, db, db_url):
    request_confirmation(api, db)
    mail.run(db_url, mail.SmtpTransport(mail.SmtpTarget("127.0.0.1", 9, "plain"), timeout=2), once=True, log=lambda _m: None)
    row = confirmation_rows(db)[0]
    assert row["failed_at"] is None and row["attempts"] == 1


def test_the_webhook_receives_the_new_lead_as_json(api, db, db_url):
    seen = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.headers["Content-Type"], json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        db.execute(
            "update app.settings set value = %s where key = 'team_notify_webhook'",
            (f"http://127.0.0.1:{server.server_address[1]}/leads",),
        )
        assert api.post("/api/leads", LEAD).status == 201
        assert mail.run(db_url, mail.FileTransport(Path("/nonexistent")), once=True, log=lambda _m: None) == 1
    finally:
        server.shutdown()
    ((content_type, payload),) = seen
    assert content_type == "application/json" and payload["lastName"] == "Scully"
    assert db.execute("select last_response from app.outbox").fetchone()[0] == "HTTP 204"


@pytest.mark.parametrize(
    "url", ["http://host", "smtp://", "smtp://host:notaport", "ftp://host"],
)
def test_a_bad_smtp_url_is_one_sentence(url):
    with pytest.raises(mail.ConfigError) as err:
        mail.transport_from_env(url)
    assert "SMTP_URL" in str(err.value)


def test_smtp_url_forms():
    assert mail.SmtpTarget.parse("smtp://u%40x:p%3Aw@mail.example:2525") == mail.SmtpTarget(
        "mail.example", 2525, "starttls", "u@x", "p:w"
    )
    assert mail.SmtpTarget.parse("smtps://mail.example").port == 465
    assert mail.SmtpTarget.parse("smtp+plain://127.0.0.1").security == "plain"


# -- through the form (the submission path) ----------------------------------------------------
def test_a_ticked_form_queues_the_confirmation_itself_and_grants_nothing(api, db):
    assert api.post("/api/leads", {**LEAD, "marketingConsent": True}).status == 201
    assert len(confirmation_rows(db)) == 1
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is False
    assert marketing_audit(db)[0][1:3] == (True, "web_form")
    assert db.execute(
        "select event from app.consent_audit where consent_type = 'marketing'"
    ).fetchall() == [("request",)]


def test_a_stranger_using_a_known_address_grants_nothing_and_an_unticked_form_cancels_the_link(api, db):
    assert api.post("/api/leads", LEAD).status == 201  # the owner, without marketing
    assert api.post("/api/leads", {**LEAD, "firstName": "Stranger", "marketingConsent": True}).status == 201
    assert db.execute("select marketing_consent, first_name from app.leads").fetchone() == (False, "Dana")
    token = link_token(confirmation_rows(db)[0]["message"]["text"], "confirm")
    assert api.post("/api/leads", LEAD).status == 201  # the owner again, still no tick
    assert api.post(f"/api/consent/confirm?token={token}").status == 404
    assert db.execute("select marketing_consent from app.leads").fetchone()[0] is False


def test_no_second_confirmation_is_sent_while_consent_is_given(api, db):
    assert api.post("/api/leads", {**LEAD, "marketingConsent": True}).status == 201
    token = link_token(confirmation_rows(db)[0]["message"]["text"], "confirm")
    assert api.post(f"/api/consent/confirm?token={token}").status == 200
    assert api.post("/api/leads", {**LEAD, "marketingConsent": True}).status == 201
    assert len(confirmation_rows(db)) == 1


def test_the_gdpr_export_holds_the_texts_receipts_links_and_messages(api, db, make_key):
    request_confirmation(api, db)
    token = link_token(confirmation_rows(db)[0]["message"]["text"], "confirm")
    assert api.post(f"/api/consent/confirm?token={token}").status == 200
    document = api.post("/api/gdpr/export", {"email": "dana@example.org"}, api_key=make_key("admin")).json()
    (text,) = document["consentTexts"]
    assert text["version"] == "2026-01" and text["sha256"] == hashlib.sha256(text["text"].encode()).hexdigest()
    receipts = document["consentReceipts"]
    assert [(r["services"][0]["purposes"][0]["purposeCategory"][0], r["state"]) for r in receipts] == [
        ("Core function", "granted"), ("Marketing", "granted"),
    ]
    assert receipts[1]["collectionMethod"] == "Link in the confirmation mail (double opt-in)"
    assert receipts[1]["notice"]["sha256"] == text["sha256"] and receipts[1]["piiPrincipalId"] == "dana@example.org"
    assert {link["purpose"] for link in document["consentLinks"]} == {"confirm", "withdraw"}
    assert "tokenHash" not in json.dumps(document["consentLinks"])
    assert [m["kind"] for m in document["messages"]] == ["consent_confirmation"]
