"""A bounded hostile run through nginx and PostgREST (issue 10's "done when"): header, body,
method and path fuzzing against every endpoint, with and without keys, from many addresses.

Every request is sent as raw bytes (no client library tidies it up) and carries a marker of its
own in whatever it could store (an email, a session id, a note). The run passes when

* no answer is 500 or above,
* no marker of a refused request (any answer but 2xx) is stored anywhere,
* nginx's access log shows no 5xx from nginx or PostgREST, and PostgREST's log (log-level
  error: it logs every 5xx) gained no line during the run.

The counts are printed (pytest -s) and written to <run dir>/hostile-run.json.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import random
import re
import socket
import time

import pytest

pytestmark = pytest.mark.http

REQUESTS = 2400
DEADLINE_SECONDS = 150
SEED = 20261201

POST_BODIES = {
    "/api/leads": lambda m: {"firstName": "Ada", "lastName": "Lovelace", "email": f"{m}@fuzz.example",
                             "gdprConsent": True, "sessionId": m, "inquiryDetails": m},
    "/api/accessibility-preferences": lambda m: {"sessionId": m, "accessibilityTheme": "protanopia"},
    "/api/brand-engagement": lambda m: {"sessionId": m, "logoInteractions": 2},
    "/api/page-views": lambda m: {"sessionId": m, "path": f"/{m}"},
    "/api/lead-interactions": lambda m: {"leadId": "00000000-0000-0000-0000-000000000000", "kind": "note", "note": m},
    "/api/gdpr/export": lambda m: {"email": f"{m}@fuzz.example"},
    "/api/gdpr/erase": lambda m: {"email": f"{m}@fuzz.example"},
    "/api/gdpr/consent": lambda m: {"email": f"{m}@fuzz.example", "marketingConsent": True},
}
GET_PATHS = ["/api/", "/api/leads", "/api/lead-interactions", "/api/leads/health",
             "/api/accessibility-preferences/health", "/api/brand-engagement/health", "/api/page-views/health",
             "/api/brand-analytics/performance", "/api/brand-analytics/accessibility-usage",
             "/api/brand-analytics/design-effectiveness"]
ODD_PATHS = ["/rpc/submit_lead", "/leads", "/", "/api", "/api/leads/", "/api//leads", "/api/Leads", "/api/%6ceads",
             "/api/leads/../leads", "/api/leads;x=1", "/api/leads%00", "/api/leads%2Fhealth", "/api/rpc/submit_lead",
             "/api/leads/health/x", "/_chorus/bad_request", "/api/" + "a" * 3000, "/%ff", "/api/leads\xff"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "FOO", "get", "PROPFIND"]
ACCEPTS = [None, "application/json", "*/*", "text/csv", "application/geo+json", "application/vnd.pgrst.plan+json",
           "application/vnd.pgrst.object+json", "text/html,*/*;q=0.8", "image/png", "garbage", "", "application/json;q=0",
           "application/openapi+json", "text/plain", "application/octet-stream", b"\xff\xfe"]
CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8", "application/json ; x=1", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "APPLICATION/JSON", "",
                 "application/json; charset=latin-1", b"application/json\xff", "application/vnd.pgrst.object+json"]
PREFERS = [None, "return=representation", "handling=strict, max-affected=0", "tx=rollback", "count=exact",
           "params=single-object", "missing=default", "resolution=merge-duplicates", "timezone=Mars/Olympus",
           "max-affected=-1", "count=exact, count=planned", b"\xff", "x" * 500]
RANGES = [None, "0-9", "items=0-1", "-5", "9999999999-1", "a-b", "0-0,5-9", b"\xc0\xaf"]
USER_AGENTS = [None, "fuzz/1.0", "Mozilla/5.0 (X11) \u202eesrever", "\u0000nul", b"\xff\xfe\xfd", "x" * 7000,
               "caf\u00e9 \U0001F600", "\u200b", "a\tb"]
QUERIES = ["", "select=id", "select=*", "select=id,email&limit=1", "limit=-1", "offset=99999999999999999999",
           "order=nope.desc", "select=email::int", "firstName=imatch.a*a*a*c", "firstName=like.*a*a*a*",
           "or=(firstName.eq.a,lastName.match.b)", "select=leads(*)", "select=count()", "id=eq.not-a-uuid",
           "createdAt=gt.yesterday", "firstName=in.(a,b,c", "select=id&firstName=eq.%FF", "x=%", "x=%zz",
           "select=id&firstName=eq.%E2%80%AE", "and=(or(and(or(a.eq.1))))", "email=%69like.x", "limit=1e400",
           "select=" + ",".join(["id"] * 300), "browserInfo->>x=eq.1", "select=browserInfo->a->b->>c",
           "firstName=fts.ada", "leadId=eq." + "1" * 400, "select=id&order=id.desc.nullsfirst&limit=5"]


def _text(rng: random.Random) -> str:
    pieces = ["\u00a0", "\u200b", "\u202e", "\u3000", "\u0085", "\u009b", "\u001b", "\u0007", "\ud800", "\udfff",
              "\U0010ffff", "\ufeff", "e\u0301", "\u2028", "=HYPERLINK(\"x\")", "+cmd|' /C calc'!A0", "'; drop table x; --",
              "\\", "\"", "{}", "𝕬", "\u0000"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))


def _mutate(rng: random.Random, body: dict, marker: str) -> bytes | None:
    choice = rng.randrange(16)
    body = dict(body)
    key = rng.choice(list(body))
    if choice == 0:
        return None  # no body
    if choice == 1:
        return b"{" + b" " * 65536 + b"}"  # over 64 KiB
    if choice == 2:
        return b"[" * 20000 + b"]" * 20000  # deep nesting
    if choice == 3:
        return json.dumps(body).encode()[:-3]  # cut short: invalid JSON
    if choice == 4:
        return b'{"a":1e999999}'
    if choice == 5:
        body[key] = rng.choice([1e308, -0.0, 10 ** 40, -(10 ** 30), 2 ** 63, 0.1 ** 300])
    elif choice == 6:
        return b'{"sessionId": "' + marker.encode() + b'", "browserInfo": {"x": [' + b",".join([b"1e131071"] * 3000) + b"]}}"
    elif choice == 7:
        body[key] = _text(rng) + marker
    elif choice == 8:
        body[key] = rng.choice([None, [], {}, True, 7, "", " " * 300, "x" * 70000])
    elif choice == 9:
        body["unknownField"] = marker
    elif choice == 10:
        raw = json.dumps(body)
        return (raw[:-1] + ', "' + key + '": "dup"}').encode()  # duplicate key
    elif choice == 11:
        return json.dumps([body]).encode()  # an array of bodies
    elif choice == 12:
        return b"null"
    elif choice == 13:
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass").replace(b"Ada", b"A\xffda")
    elif choice == 14:
        body["timeOnSite"] = 10 ** 20
        body["logoInteractions"] = 123456789012345678901234567890
    # Unescaped, a lone surrogate becomes bytes that are not UTF-8.
    return json.dumps(body, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def _header(name: str, value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")) + b"\r\n"


def build_request(rng: random.Random, n: int, keys: list[str | None]) -> tuple[bytes, str, str]:
    marker = f"fz{SEED % 1000}n{n}"
    kind = rng.random()
    if kind < 0.45:
        path = rng.choice(list(POST_BODIES))
        method = "POST" if rng.random() < 0.85 else rng.choice(METHODS)
        body = _mutate(rng, POST_BODIES[path](marker), marker) if rng.random() < 0.8 else json.dumps(POST_BODIES[path](marker)).encode()
        content_type = "application/json" if rng.random() < 0.7 else rng.choice(CONTENT_TYPES)
        query = "" if rng.random() < 0.8 else rng.choice(QUERIES)
    elif kind < 0.85:
        path = rng.choice(GET_PATHS)
        method = rng.choice(["GET", "GET", "HEAD"]) if rng.random() < 0.85 else rng.choice(METHODS)
        body = None
        content_type = None if rng.random() < 0.9 else rng.choice(CONTENT_TYPES)
        query = rng.choice(QUERIES) if rng.random() < 0.7 else ""
    else:
        path = rng.choice(ODD_PATHS)
        method = rng.choice(METHODS)
        body = json.dumps({"sessionId": marker}).encode() if rng.random() < 0.5 else None
        content_type = rng.choice(CONTENT_TYPES)
        query = rng.choice(QUERIES)
    target = (path + ("?" + query if query else "")).encode("utf-8", "surrogatepass")
    if rng.random() < 0.02:
        target = target.replace(b"a", b"\xff", 1)
    key = rng.choice(keys)
    headers = b"Host: api\r\n" + _header("X-API-Key", key) + _header("Content-Type", content_type)
    headers += _header("Accept", rng.choice(ACCEPTS) if rng.random() < 0.4 else None)
    headers += _header("Prefer", rng.choice(PREFERS) if rng.random() < 0.3 else None)
    headers += _header("Range", rng.choice(RANGES) if rng.random() < 0.15 else None)
    headers += _header("User-Agent", rng.choice(USER_AGENTS) if rng.random() < 0.5 else "fuzz")
    if rng.random() < 0.1:
        headers += _header("Authorization", rng.choice(["Bearer x.y.z", "Basic YTpi", "Bearer " + "a" * 5000]))
    if rng.random() < 0.1:
        headers += _header("X-Real-IP", "198.51.100.1") + _header("X-Forwarded-For", "1.2.3.4, 5.6.7.8")
    if rng.random() < 0.05:
        headers += _header("X-Junk", b"\xff\x00\x01") if rng.random() < 0.5 else _header("Cookie", "a=" + "b" * 9000)
    if rng.random() < 0.05:
        headers += b"Transfer-Encoding: chunked\r\n"
    if body is not None:
        headers += b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    version = b"HTTP/1.1" if rng.random() < 0.97 else rng.choice([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9", b""])
    request = method.encode() + b" " + target + b" " + version + b"\r\n" + headers + b"Connection: close\r\n\r\n" + (body or b"")
    return request, marker, f"{method} {path}"


def send(port: int, source: str, data: bytes) -> int | None:
    """The status of the answer; None when nginx closed the connection without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0)) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            answer += chunk
            if len(answer) > 16:
                break
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    if match:
        return int(match.group(1))
    # An HTTP/0.9 request ("GET /path") is answered the HTTP/0.9 way: the body alone, ours.
    return 9 if answer.startswith(b"{") else None


def _stored_markers(http) -> set[str]:
    rows = http.sql(
        """
        select email from app.leads where email like 'fz%%@fuzz.example'
        union all select first_name || last_name || coalesce(inquiry_details, '') from app.leads where inquiry_details like '%%fz%%'
        union all select session_id from app.leads where session_id like '%%fz%%'
        union all select coalesce(note, '') || coalesce(details::text, '') from app.lead_interactions
            where note like '%%fz%%' or details::text like '%%fz%%'
        union all select session_id from app.accessibility_preferences where session_id like '%%fz%%'
        union all select session_id from app.brand_engagement where session_id like '%%fz%%'
        union all select session_id || path from app.page_views where session_id like '%%fz%%' or path like '%%fz%%'
        """
    )
    found = set()
    for (text,) in rows:
        found |= set(re.findall(r"fz\d+n\d+", text or ""))
    return found


def test_a_bounded_hostile_run_gets_no_5xx_and_stores_nothing_it_refused(http):
    rng = random.Random(SEED)
    keys = [None, None, http.make_key("reader"), http.make_key("admin"), "chk_" + "0" * 48, "x" * 300, "\u00e9"]
    access_log, postgrest_log = http.cfg.nginx_dir / "access.log", http.cfg.run_dir / "postgrest.log"
    access_before = len(access_log.read_bytes().splitlines())
    postgrest_before = len(postgrest_log.read_bytes().splitlines())
    plans = [build_request(rng, n, keys) for n in range(REQUESTS)]
    sources = [f"127.5.{i // 250}.{i % 250 + 1}" for i in range(400)]
    results: list[tuple[int | None, str, str]] = []
    deadline = time.monotonic() + DEADLINE_SECONDS

    def run(index: int) -> tuple[int | None, str, str]:
        data, marker, label = plans[index]
        if time.monotonic() > deadline:
            return (-1, marker, label)
        return (send(http.cfg.api_port, sources[index % len(sources)], data), marker, label)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, range(REQUESTS)))
    elapsed = time.monotonic() - started

    sent = [r for r in results if r[0] != -1]
    statuses = collections.Counter(r[0] for r in sent)
    server_errors = [(status, label) for status, _, label in sent if status is not None and status >= 500]
    accepted = {marker for status, marker, _ in sent if status is not None and 200 <= status < 300}
    # An HTTP/0.9 answer has no status: none of those requests may have stored anything either.
    refused = {marker for status, marker, _ in sent if not (status is not None and 200 <= status < 300)}
    stored = _stored_markers(http)
    stored_by_refused = stored & refused
    new_access = access_log.read_bytes().splitlines()[access_before:]
    nginx_5xx = [line for line in new_access if re.search(rb'" 5\d\d |upstream=[^ ]*5\d\d', line)]
    postgrest_lines = postgrest_log.read_bytes().splitlines()[postgrest_before:]
    # With log-level error PostgREST logs every request it answers with a 5xx (and nothing else
    # of requests).
    postgrest_5xx = [line for line in postgrest_lines if re.search(rb'" 5\d\d ', line)]

    summary = {
        "requests sent": len(sent),
        "seconds": round(elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "responses >= 500": len(server_errors),
        "accepted (2xx)": len(accepted),
        "refused markers stored": len(stored_by_refused),
        "accepted markers stored": len(stored & accepted),
        "nginx access-log lines": len(new_access),
        "nginx access-log 5xx (nginx or upstream)": len(nginx_5xx),
        "PostgREST log lines": len(postgrest_lines),
        "PostgREST log 5xx": len(postgrest_5xx),
    }
    (http.cfg.run_dir / "hostile-run.json").write_text(json.dumps(summary, indent=2))
    if server_errors:
        print("5xx:", collections.Counter(server_errors))
    print("\nhostile run: " + json.dumps(summary))

    assert len(sent) >= REQUESTS * 0.9, "the run ran out of time"
    assert server_errors == []
    assert stored_by_refused == set()
    assert nginx_5xx == []
    assert postgrest_5xx == [], postgrest_5xx[:5]
    assert statuses[None] < len(sent) * 0.01  # nginx answers (a socket closed without a word is rare)
