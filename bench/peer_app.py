"""The application-server peer of `invoke bench`: POST /api/leads as a strong engineer would build
it outside the database (FastAPI + asyncpg, a pool per worker, prepared statements, uvicorn with
uvloop and httptools, 2 workers), doing the same work as api.submit_lead:

* every field validated with the project's own rule (read from app_logic.submit_lead_rule() at
  start) and the same messages; a phone number is normalised by the database's function (the
  benchmark's body has none);
* the per-IP and per-email sliding-window limits, exact under concurrency (one upsert per rule
  that takes a slot only when the locked row has room, slots given back when a later rule refuses);
* the lead (or, for a known email, a resubmission interaction), its submission interaction and
  the two hash-chained consent rows with an HMAC of the IP and the consent text in force (a
  marketing ask is a request, as the form's is), in one transaction.

Run by chorus_db/bench/peer.py: PEER_DATABASE_URL names the database; the client's address is
X-Real-IP, as nginx sets it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import re

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
state: dict = {}

# Every rule of the request in one statement, rows locked in the given order (IP first).
RATE_LIMIT = """
insert into app.rate_limit_counters as c (action, scope, subject, hits, expires_at)
select 'leads', r.scope, r.subject, array[$3::timestamptz], $3 + make_interval(secs => r.win)
from unnest($1::text[], $2::bytea[], $4::integer[], $5::integer[]) with ordinality as r (scope, subject, win, max, n)
order by r.n
on conflict (subject) do update
set hits = array(
        select h from unnest(c.hits || $3::timestamptz) as h
        where h > $3 - (excluded.expires_at - $3) order by h
    ),
    expires_at = greatest(c.expires_at, excluded.expires_at)
where (select count(*) from unnest(c.hits) as h where h > $3 - (excluded.expires_at - $3))
    < (select m.max from unnest($1::text[], $5::integer[]) as m (scope, max) where m.scope = c.scope)
returning c.scope, c.subject
"""
GIVE_BACK = """
update app.rate_limit_counters as c set hits = c.hits[1:cardinality(c.hits) - 1]
where c.subject = $2 and c.scope = $1
"""
OLDEST_LIVE = """
select (array(select h from unnest(c.hits) as h where h > $3 - make_interval(secs => $4) order by h))
from app.rate_limit_counters as c where c.subject = $2 and c.scope = $1 for update
"""
INSERT_LEAD = """
with l as (
    insert into app.leads as l (
        first_name, last_name, email, phone, company_name, inquiry_details, lead_source, gdpr_consent,
        marketing_consent, accessibility_theme, preferred_communication, device_type, core_web_vitals,
        logo_interactions, time_on_site, pages_viewed, browser_info, session_id, created_at, updated_at
    ) values ($1, $2, $3, $4, $5, $6, $7, true, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)
    on conflict ((lower(email))) do nothing
    returning l.id
)
insert into app.lead_interactions (lead_id, kind, created_at) select l.id, 'submission', $18 from l returning id
"""
KNOWN_LEAD = "select id, marketing_consent from app.leads where lower(email) = lower($1) for update"
UPDATE_MARKETING = "update app.leads set marketing_consent = $2, updated_at = $3 where id = $1"
RESUBMISSION = (
    "insert into app.lead_interactions (lead_id, kind, details, created_at) values ($1, 'resubmission', $2, $3) returning id"
)
CHAIN_LOCK = "select pg_advisory_xact_lock(hashtextextended('consent_audit:' || $1, 0))"
# The chain's end and the consent text in force (app.consent_texts), read in one round trip as
# app_logic.append_consent_rows reads them in its INSERT.
CHAIN_END = """
select e.seq, e.row_hash, (
    select t.version from app.consent_texts as t where t.valid_from <= now() order by t.valid_from desc limit 1
) as text_version
from (select) as one
left join lateral (
    select a.seq, a.row_hash from app.consent_audit as a where a.subject = $1 order by a.seq desc limit 1
) as e on true
"""
INSERT_CONSENTS = """
insert into app.consent_audit (
    subject, seq, event, consent_type, granted, source, ip_hash, user_agent, consent_text_version, recorded_at,
    prev_hash, row_hash, submission_id
)
select $1, s, e, t, g, 'web_form', $2, $3, $4, $5, p, r, $11
from unnest($6::integer[], $7::text[], $8::boolean[], $9::bytea[], $10::bytea[], $12::text[]) as u (s, t, g, p, r, e)
order by s
"""


@app.on_event("startup")
async def startup() -> None:
    pool = await asyncpg.create_pool(os.environ["PEER_DATABASE_URL"], min_size=8, max_size=8)
    async with pool.acquire() as conn:
        state["rule"] = json.loads(await conn.fetchval("select app_logic.submit_lead_rule()::text"))
        settings = dict(await conn.fetch("select key, value from app.settings"))
    state["pool"] = pool
    state["pepper"] = settings["hash_pepper"].encode()
    state["patterns"] = {}


async def limit_rules(conn) -> list[tuple]:
    """The rules of leads, IP first, read again at most once a second (operators change them live)."""
    cached = state.get("rules")
    if cached is None or cached[0] < dt.datetime.now().timestamp() - 1:
        rows = await conn.fetch("select scope, max_requests, window_seconds from app.rate_limit_rules "
                                "where action = 'leads' order by scope desc")
        cached = state["rules"] = (dt.datetime.now().timestamp(), [tuple(r) for r in rows])
    return cached[1]


def counter_key(scope: str, value: str) -> bytes:
    """A rate-limit counter's key, as app_logic.rate_limit_subject makes it: the whole HMAC of action,
    scope and client network or email, 32 bytes."""
    return hmac.new(state["pepper"], f"leads:{scope}:{value}".encode(), hashlib.sha256).digest()


def pseudonym(value: str) -> str:
    return hmac.new(state["pepper"], value.encode(), hashlib.sha256).hexdigest()


# -- validation: app_logic.validate / check_value, same words and messages -----------------------
TRIM = " \t\r\n"
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def pattern(text: str) -> re.Pattern:
    found = state["patterns"].get(text)
    if found is None:
        found = state["patterns"][text] = re.compile(text)
    return found


def valid_email(email: str) -> bool:
    at = email.find("@")
    return (bool(EMAIL.match(email)) and at + 1 <= 65 and not re.search(r"[A-Za-z0-9-]{64}", email[at + 1:])
            and not re.search(r"^\.|\.\.|\.@", email) and len(email) <= 254)


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_value(field: str, value, rule: dict) -> list[dict]:
    def problem(message: str) -> list[dict]:
        return [{"field": field, "message": message}]

    kind = rule.get("type")
    if kind in ("string", "email", "phone"):
        if not isinstance(value, str):
            return problem(f"{field} must be a string.")
        text = value.strip(TRIM) if rule.get("trim") else value
        low, high = rule.get("minLength"), rule.get("maxLength")
        if low is not None and high is not None and not low <= len(text) <= high:
            return problem(f"{field} must be between {low} and {high} characters.")
        if high is not None and len(text) > high:
            return problem(f"{field} must be at most {high} characters.")
        if low is not None and len(text) < low:
            return problem(f"{field} must be at least {low} characters.")
        if "enum" in rule and text not in rule["enum"]:
            return problem(f"{field} must be one of: {', '.join(rule['enum'])}.")
        if "pattern" in rule and not pattern(rule["pattern"]).search(text):
            return problem(f"{field} must be {rule.get('patternText', 'in the expected format')}.")
        if kind == "email" and not valid_email(text):
            return problem(f"{field} must be a valid email address.")
        return []
    if kind == "boolean":
        if not isinstance(value, bool):
            return problem(f"{field} must be true or false.")
        if "const" in rule and value != rule["const"]:
            return problem(f"{field} must be {json.dumps(rule['const'])}.")
        return []
    if kind in ("integer", "number"):
        if not number(value):
            return problem(f"{field} must be a number.")
        if kind == "integer" and value != int(value):
            return problem(f"{field} must be a whole number.")
        low, high = rule.get("minimum"), rule.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                return problem(f"{field} must be between {low} and {high}.")
            return problem(f"{field} must be at least {low}." if low is not None else f"{field} must be at most {high}.")
        return []
    if kind == "object":
        if not isinstance(value, dict):
            return problem(f"{field} must be an object.")
        if "maxBytes" in rule and len(json.dumps(value, ensure_ascii=False).encode()) > rule["maxBytes"]:
            return problem(f"{field} must be at most {rule['maxBytes']} bytes of JSON.")
        if "properties" in rule or "additionalProperties" in rule:
            return validate(value, rule, field + ".")
        return []
    if kind == "array":
        if not isinstance(value, list):
            return problem(f"{field} must be an array.")
        if "maxItems" in rule and len(value) > rule["maxItems"]:
            return problem(f"{field} must have at most {rule['maxItems']} items.")
        found: list[dict] = []
        if "items" in rule:
            for i, item in enumerate(value):
                found += check_value(f"{field}[{i}]", item, rule["items"])
                if len(found) >= 5:
                    break
        return found
    return []


def validate(body, rule: dict, prefix: str = "") -> list[dict]:
    if not isinstance(body, dict):
        name = prefix.rstrip(".")
        return [{"field": name or "body", "message": f"{name or 'The request body'} must be a JSON object."}]
    properties = rule.get("properties", {})
    found: list[dict] = []
    for key, value in body.items():
        if key in properties:
            if value is not None:
                found += check_value(prefix + key, value, properties[key])
        else:
            found.append({"field": prefix + key[:100], "message": f"{prefix + key[:100]} is not a known field."})
        if len(found) >= 20:
            break
    for key in rule.get("required", []):
        if body.get(key) is None:
            found.append({"field": prefix + key, "message": f"{prefix + key} is required."})
    return found


def rejected(problems: list[dict]) -> JSONResponse:
    fields = sorted({p["field"] for p in problems})
    message = problems[0]["message"] if len(problems) == 1 else f"{len(fields)} fields are invalid: {', '.join(fields)}."
    return JSONResponse(status_code=400, content={
        "code": "CHV01", "message": message, "details": " ".join(p["message"] for p in problems),
        "hint": "Correct the fields named in details and send the request again.", "errors": problems,
    })


def client_network(header: str | None) -> str:
    try:
        ip = ipaddress.ip_address(header or "")
    except ValueError:
        return "unknown"
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return f"{ip}/32"


def text_field(body: dict, key: str) -> str | None:
    value = body.get(key)
    return (value.strip(TRIM) or None) if isinstance(value, str) else None


def row_hash(subject, seq, event, consent_type, granted, ip_hash, agent, version, at: str, prev: bytes | None,
             submission: int) -> bytes:
    # The text of app_logic.consent_row_hash's json_build_array(...)::text.
    text = json.dumps([subject, seq, event, consent_type, granted, "web_form", ip_hash, agent, version, at,
                       prev.hex() if prev is not None else None, submission], ensure_ascii=False)
    return hashlib.sha256(text.encode()).digest()


@app.post("/api/leads")
async def submit_lead(request: Request) -> Response:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse(status_code=400, content={"code": "PGRST102", "message": "Empty or invalid json"})
    now = dt.datetime.now(dt.timezone.utc)
    email = body.get("email") if isinstance(body, dict) and isinstance(body.get("email"), str) else None
    email_key = email.strip(TRIM).lower() if email else None
    if email_key is not None and not 1 <= len(email_key) <= 254:
        email_key = None
    async with state["pool"].acquire() as conn, conn.transaction():
        rules = [r for r in await limit_rules(conn) if r[0] == "ip" or email_key is not None]
        network = client_network(request.headers.get("x-real-ip"))
        subjects = [counter_key(scope, network if scope == "ip" else email_key) for scope, _, _ in rules]
        admitted = await conn.fetch(RATE_LIMIT, [r[0] for r in rules], subjects, now, [r[2] for r in rules],
                                    [r[1] for r in rules])
        if len(admitted) < len(rules):
            taken = {(a["scope"], a["subject"]) for a in admitted}
            wait = 1
            for (scope, max_requests, window), subject in zip(rules, subjects):
                if (scope, subject) in taken:
                    await conn.execute(GIVE_BACK, scope, subject)
                    continue
                live = await conn.fetchval(OLDEST_LIVE, scope, subject, now, window)
                left = live[len(live) - max_requests] + dt.timedelta(seconds=window) - now
                wait = max(wait, int(-(-left.total_seconds() // 1)))
            return JSONResponse(status_code=429, headers={"Retry-After": str(wait)}, content={
                "code": "CHR01", "message": f"Too many requests: try again in {wait} seconds.",
                "details": "The rate limit for leads was reached for this client.",
                "hint": "Wait for the number of seconds in the Retry-After header.",
            })
        problems = validate(body, state["rule"])
        if not problems and body.get("preferredCommunication") == "phone" and not text_field(body, "phone"):
            problems = [{"field": "preferredCommunication",
                         "message": "preferredCommunication can be phone only when a phone number is given."}]
        phone = None
        if not problems and text_field(body, "phone"):
            phone, phone_problem = await conn.fetchrow("select * from app_logic.phone_to_e164($1)", text_field(body, "phone"))
            if phone_problem:
                problems = [{"field": "phone", "message": f"phone {phone_problem}"}]
        if problems:
            return rejected(problems)  # the counters commit with the transaction
        marketing = bool(body.get("marketingConsent", False))
        email = text_field(body, "email")
        vitals = body.get("coreWebVitals")
        browser = body.get("browserInfo")
        submission = await conn.fetchval(
            INSERT_LEAD, text_field(body, "firstName"), text_field(body, "lastName"), email, phone,
            text_field(body, "companyName"), text_field(body, "inquiryDetails"), body.get("leadSource") or "contact_form",
            marketing, body.get("accessibilityTheme") or "default", body.get("preferredCommunication") or "email",
            body.get("deviceType"), json.dumps(vitals) if vitals is not None else None, int(body.get("logoInteractions") or 0),
            int(body["timeOnSite"]) if body.get("timeOnSite") is not None else None,
            json.dumps(body.get("pagesViewed") or []), json.dumps(browser) if browser is not None else None,
            text_field(body, "sessionId"), now,
        )
        known = submission is None
        if known:
            # A known address changes nothing but may withdraw marketing consent, never grant it.
            lead = await conn.fetchrow(KNOWN_LEAD, email)
            if lead["marketing_consent"] and not marketing:
                await conn.execute(UPDATE_MARKETING, lead["id"], False, now)
            submission = await conn.fetchval(RESUBMISSION, lead["id"], json.dumps(body), now)
        subject = pseudonym(email.lower())
        ip = request.headers.get("x-real-ip")
        ip_hash = pseudonym(str(ipaddress.ip_address(ip))) if ip else None
        agent = (request.headers.get("user-agent") or None)
        agent = agent[:512] if agent else None
        at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await conn.execute(CHAIN_LOCK, subject)
        last = await conn.fetchrow(CHAIN_END, subject)
        seq, prev, version = last["seq"] or 0, last["row_hash"], last["text_version"]
        seqs, prevs, hashes, events = [], [], [], []
        for consent_type, granted in (("gdpr", True), ("marketing", marketing)):
            # A form's marketing ask is always a request (double opt-in): the link makes it a consent.
            event = "request" if consent_type == "marketing" and marketing else "consent"
            seq += 1
            seqs.append(seq)
            prevs.append(prev)
            events.append(event)
            prev = row_hash(subject, seq, event, consent_type, granted, ip_hash, agent, version, at, prev, submission)
            hashes.append(prev)
        await conn.execute(INSERT_CONSENTS, subject, ip_hash, agent, version, now, seqs,
                           ["gdpr", "marketing"], [True, marketing], prevs, hashes, submission, events)
    return JSONResponse(status_code=201, content={"status": "received"})
