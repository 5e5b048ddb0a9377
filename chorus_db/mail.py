"""The mail worker (`invoke mail.worker`): delivers the database's outbox (app.outbox).

One message at a time, in one transaction: claim the oldest due message (the row stays
locked, FOR UPDATE SKIP LOCKED), hand it to the SMTP server (or the webhook), and record the
answer in the same transaction before COMMIT. A worker killed before that COMMIT leaves the
message unsent, and the next claim sends it; several workers never send the same row. What
SMTP itself cannot rule out is a crash between the server's final "250" and our COMMIT: the
message then goes out twice, with the same Message-ID, which receivers can drop.

SMTP_URL says where to send: smtp://[user:password@]host[:port] (STARTTLS when the server
offers it), smtps://... (TLS from the start), or smtp+plain://... (never TLS, for local test
servers). Without SMTP_URL, messages are written to .run/mail/ as RFC 5322 files, one per
message, which a person can open in a mail program.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import psycopg

from . import config

MAIL_DIR = config.RUN_DIR / "mail"
WORKER_ROLE = "mail_worker"


class PermanentFailure(Exception):
    """The server refused the message for good (SMTP 5xx, HTTP 4xx): no retry."""


class TransientFailure(Exception):
    """Worth another attempt later (SMTP 4xx, connection trouble, HTTP 5xx)."""


class ConfigError(Exception):
    """SMTP_URL cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: str  # "starttls" (when offered), "tls", "plain"
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> "SmtpTarget":
        parts = urlsplit(url)
        security = {"smtp": "starttls", "smtps": "tls", "smtp+plain": "plain"}.get(parts.scheme)
        if security is None or not parts.hostname:
            raise ConfigError(
                f"SMTP_URL must look like smtp://user:password@host:587, smtps://host:465 or smtp+plain://host:25, not {parts.scheme}://..."
            )
        try:
            port = parts.port or {"starttls": 587, "tls": 465, "plain": 25}[security]
        except ValueError as exc:
            raise ConfigError(f"SMTP_URL has an invalid port: {exc}") from None
        return cls(
            parts.hostname, port, security,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )


# Lines up to RFC 5322's 998 characters: a List-Unsubscribe URL stays one readable line instead
# of being cut into RFC 2047 encoded words, which mail programs do not undo for that header.
FILE_POLICY = policy.default.clone(max_line_length=998)
SMTP_POLICY = policy.SMTP.clone(max_line_length=998)


def build_email(row: dict) -> EmailMessage:
    """The RFC 5322 message of an outbox row (channel email)."""
    message = row["message"]
    msg = EmailMessage(policy=FILE_POLICY)
    msg["From"] = row["from_address"]
    msg["To"] = row["recipient"]
    msg["Subject"] = message.get("subject") or ""
    msg["Date"] = format_datetime(row.get("now") or _utcnow())
    domain = parseaddr(row["from_address"])[1].rpartition("@")[2] or "localhost"
    # Stable across retries: a duplicate after a crash carries the same id.
    msg["Message-ID"] = f"<outbox-{row['id']}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (message.get("headers") or {}).items():
        msg[name] = value
    text = message.get("text") or ""
    # 8bit keeps the links whole and the file readable; quoted-printable only for long lines.
    msg.set_content(text, cte="8bit" if all(len(line) < 900 for line in text.splitlines()) else "quoted-printable")
    for attachment in message.get("attachments") or []:
        content = attachment["content"]
        data = content if isinstance(content, str) else json.dumps(content, indent=2, ensure_ascii=False)
        maintype, _, subtype = attachment.get("contentType", "application/octet-stream").partition("/")
        msg.add_attachment(data.encode("utf-8"), maintype=maintype, subtype=subtype, filename=attachment["filename"])
    return msg


def _utcnow():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


class FileTransport:
    """Writes each message to mail_dir as <outbox id>-<kind>.eml (written whole, then renamed)."""

    def __init__(self, mail_dir: Path):
        self.mail_dir = mail_dir

    def describe(self) -> str:
        return f"files in {self.mail_dir}"

    def send(self, row: dict, msg: EmailMessage) -> str:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        path = self.mail_dir / f"{row['id']:06d}-{row['kind']}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msg.as_bytes())
        tmp.replace(path)
        return f"written to {path}"


class SmtpTransport:
    def __init__(self, target: SmtpTarget, timeout: float = 30.0):
        self.target = target
        self.timeout = timeout

    def describe(self) -> str:
        return f"SMTP {self.target.host}:{self.target.port} ({self.target.security})"

    def send(self, row: dict, msg: EmailMessage) -> str:
        t = self.target
        sender = parseaddr(row["from_address"])[1]
        try:
            if t.security == "tls":
                smtp = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
            with smtp:
                smtp.ehlo()
                if t.security == "starttls" and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if t.username:
                    smtp.login(t.username, t.password or "")
                code, answer = smtp.mail(sender)
                _check(code, answer, "MAIL FROM")
                code, answer = smtp.rcpt(row["recipient"])
                _check(code, answer, "RCPT TO")
                # data() returns the server's final answer: what we record as delivered.
                code, answer = smtp.data(msg.as_bytes(policy=SMTP_POLICY))
                _check(code, answer, "DATA")
                return f"{code} {answer.decode('utf-8', 'replace')}"
        except smtplib.SMTPResponseException as exc:
            _check(exc.smtp_code, exc.smtp_error, "SMTP")
            raise TransientFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from exc


def _check(code: int, answer: bytes, step: str) -> None:
    text = f"{step}: {code} {answer.decode('utf-8', 'replace') if isinstance(answer, bytes) else answer}"
    if 200 <= code < 400:
        return
    if 500 <= code < 600:
        raise PermanentFailure(text)
    raise TransientFailure(text)


def post_webhook(row: dict, timeout: float = 10.0) -> str:
    url = row["recipient"]
    if urlsplit(url).scheme not in ("http", "https"):
        raise PermanentFailure(f"the webhook URL must start with http:// or https://: {url[:80]}")
    body = json.dumps(row["message"].get("payload"), ensure_ascii=False).encode()
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "chorus-mail-worker", "Idempotency-Key": f"outbox-{row['id']}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise PermanentFailure(f"HTTP {exc.code}") from exc
        raise TransientFailure(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise TransientFailure(f"{type(exc).__name__}: {exc}") from exc


CLAIM = "select id, kind, channel, recipient, message, attempts, from_address from app_logic.claim_outbox_message()"


def deliver_one(conn: psycopg.Connection, transport) -> dict | None:
    """Claim, send and record one due message in one transaction. The row, or None when none was due."""
    with conn.transaction():
        cur = conn.execute(CLAIM)
        columns = [c.name for c in cur.description]
        found = cur.fetchone()
        if found is None:
            return None
        row = dict(zip(columns, found))
        try:
            if row["channel"] == "webhook":
                answer = post_webhook(row)
            else:
                answer = transport.send(row, build_email(row))
        except PermanentFailure as exc:
            conn.execute("select app_logic.outbox_attempt_failed(%s, %s, true)", (row["id"], str(exc)))
            row["outcome"] = f"failed for good: {exc}"
        except (TransientFailure, OSError) as exc:
            conn.execute("select app_logic.outbox_attempt_failed(%s, %s, false)", (row["id"], str(exc)))
            row["outcome"] = f"will retry: {exc}"
        else:
            conn.execute("select app_logic.outbox_delivered(%s, %s)", (row["id"], answer))
            row["outcome"] = answer
        return row


def transport_from_env(smtp_url: str | None, mail_dir: Path = MAIL_DIR):
    if smtp_url:
        return SmtpTransport(SmtpTarget.parse(smtp_url))
    return FileTransport(mail_dir)


def connect(database_url: str) -> psycopg.Connection:
    conn = psycopg.connect(database_url, application_name="chorus-mail-worker")
    # Least privilege: the worker's role may only claim and record (db/policies/300-outbox.sql).
    conn.execute(f"set role {WORKER_ROLE}")
    conn.commit()
    return conn


def run(
    database_url: str, transport, once: bool = False, poll_seconds: float = 2.0,
    log: Callable[[str], None] = print, should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Deliver until stopped (SIGTERM/SIGINT), or, with once, until nothing is due. The number handled."""
    stop = {"now": False}

    def _stop(*_):
        stop["now"] = True

    if not once:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    handled = 0
    conn = None
    while not stop["now"] and not should_stop():
        try:
            if conn is None or conn.closed:
                conn = connect(database_url)
            row = deliver_one(conn, transport)
        except psycopg.OperationalError as exc:
            if once:
                raise
            log(f"database unavailable ({str(exc).strip().splitlines()[0]}); retrying in {poll_seconds:.0f} s")
            conn = None
            time.sleep(poll_seconds)
            continue
        if row is None:
            if once:
                break
            time.sleep(poll_seconds)
            continue
        handled += 1
        # No address in the log: the outbox row says who it was for.
        log(f"outbox {row['id']} ({row['kind']}, {row['channel']}): {row['outcome']}")
    if conn is not None:
        conn.close()
    return handled
