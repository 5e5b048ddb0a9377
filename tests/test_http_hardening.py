"""The edge as an attacker meets it (issue 10): nginx in front of PostgREST in front of
PostgreSQL, the session's `http` stack. Each test pins one promise:

* a slow read is stopped by its role's statement_timeout and answered 503 CHQ02, reads hold at
  most 4 of PostgREST's connections, and submissions keep being served meanwhile;
* idle and slow sockets do not lock anyone out; one address is limited (429 CHR02);
* a header or query string that is not UTF-8 is a 400, stores nothing, leaves the pool sound;
* HEAD never makes another client's request fail;
* GET /api/ is cached (ETag, 304) and limited;
* no Prefer value changes whether a submission counts;
* PostgREST is reachable through nginx only (a unix socket only nginx's workers may open, no
  admin server) and ignores a JWT's role;
* errors name no database object, echo no stored value, and every answer is JSON.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.http

JSON = {"Content-Type": "application/json"}
ERROR_KEYS = {"code", "message", "details", "hint"}


def raw(http, data: bytes, timeout: float = 5.0, source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library normalises them); the status, headers, body."""
    with socket.create_connection(("127.0.0.1", http.cfg.api_port), timeout=timeout, source_address=(source, 0)) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return status, headers, body


def _unchunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def get_request(path: bytes, *headers: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: api\r\n" + b"".join(h + b"\r\n" for h in headers) + b"Connection: close\r\n\r\n"


def is_error_json(body: bytes, code: str | None = None) -> bool:
    document = json.loads(body)
    return ERROR_KEYS <= set(document) and (code is None or document["code"] == code)


def lead(email: str | None = None) -> dict:
    return {"firstName": "Ada", "lastName": "Lovelace", "email": email or f"h.{secrets.token_hex(6)}@example.org",
            "gdprConsent": True}


@pytest.fixture(scope="module")
def reader(http) -> str:
    return http.make_key("reader")


@pytest.fixture(scope="module")
def admin(http) -> str:
    return http.make_key("admin")


def _idle_in_transaction(http) -> int:
    return http.sql(
        "select count(*) from pg_stat_activity where usename = 'authenticator' and state like 'idle in transaction%%'"
    )[0][0]


# -- 1. slow reads -----------------------------------------------------------------------------
@pytest.fixture
def slow_view(http):
    """api.accessibility_usage made slow (6 s per read), as a pathological query would be."""
    (definition,) = http.sql("select pg_get_viewdef('api.accessibility_usage'::regclass)")[0]
    http.sql(
        "create or replace view api.accessibility_usage with (security_invoker = true) as "
        f"select * from ({definition.rstrip().rstrip(';')}) as v where (select pg_sleep(6)) is not null"
    )
    http.sql("notify pgrst, 'reload schema'")
    time.sleep(1)
    try:
        yield "/api/brand-analytics/accessibility-usage"
    finally:
        http.sql(
            f"create or replace view api.accessibility_usage with (security_invoker = true) as {definition}"
        )
        http.sql("notify pgrst, 'reload schema'")
        time.sleep(1)


def test_a_slow_read_is_stopped_by_the_reader_timeout_while_submissions_are_served(http, reader, slow_view):
    readers = [http.fresh_client() for _ in range(10)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        started = time.monotonic()
        reads = [pool.submit(c.get, slow_view, headers={"X-API-Key": reader}, timeout=30) for c in readers]
        time.sleep(0.5)  # the reads hold their connections now
        submitter = http.fresh_client()
        posted = [submitter.post("/api/page-views", json={"sessionId": f"slow-{i}", "path": "/"}, timeout=5) for i in range(5)]
        submitted_after = time.monotonic() - started
        answers = [r.result() for r in reads]
    assert [p.status_code for p in posted] == [201] * 5
    assert submitted_after < 4, "submissions waited for the slow reads"
    statuses = sorted(a.status_code for a in answers)
    # At most 4 reads hold one of PostgREST's connections; the others are turned away at once.
    assert statuses == [429] * 6 + [503] * 4, statuses
    for answer in answers:
        assert is_error_json(answer.content, "CHR02" if answer.status_code == 429 else "CHQ02")
        assert answer.elapsed.total_seconds() < 10  # reader's statement_timeout: 5 s
    # The database stopped the statements: nothing of theirs still runs.
    assert http.sql("select count(*) from pg_stat_activity where query like '%%pg_sleep(6)%%' and state = 'active'"
                    " and pid <> pg_backend_pid()")[0][0] == 0


def test_regular_expression_and_full_text_operators_and_casts_are_refused(http, reader):
    pattern = "a*" * 700 + "c"
    for query in (f"firstName=imatch.{pattern}", "firstName=match.^A", "lastName=not.imatch.x",
                  "or=(firstName.imatch.x,lastName.eq.y)", "firstName=imatch(any).{a,b}", "inquiryDetails=fts.ada",
                  "inquiryDetails=wfts(english).ada", "select=email::int", "select=id,e:email::text",
                  "firstName=%69match.x", "select=email%3A%3Aint"):
        response = http.get(f"/api/leads?select=id&{query}", headers={"X-API-Key": reader})
        assert response.status_code == 400, query
        assert response.json()["code"] == "CHQ01"
        assert response.elapsed.total_seconds() < 1
    # Everything else works on every column.
    ok = http.get("/api/leads?select=id,email&firstName=ilike.*ad*&lastName=neq.x&limit=2&order=createdAt.desc",
                  headers={"X-API-Key": reader})
    assert ok.status_code == 200


def test_a_select_of_many_items_and_a_long_request_line_get_a_4xx_not_a_5xx(http, reader):
    # "*" expands to every column: 900 of them would pass PostgreSQL's 1,664-column limit (500).
    for query in ("select=" + ",".join(["*"] * 900), "select=" + ",".join(["id"] * 2000)):
        response = http.get(f"/api/leads?{query}", headers={"X-API-Key": reader})
        assert response.status_code == 400, (query[:30], response.status_code)
        assert response.json()["code"] == "CHQ01"
    # 40 items are still a select (the widest real one names a dozen columns).
    response = http.get("/api/leads?select=" + ",".join(["id"] * 40), headers={"X-API-Key": reader})
    assert response.status_code == 200
    # PostgREST echoes a long request line in a response header: nginx has room for it.
    long_in = "id=in.(" + ",".join(["00000000-0000-0000-0000-000000000000"] * 180) + ")"
    response = http.get(f"/api/leads?select=id&{long_in}", headers={"X-API-Key": reader})
    assert response.status_code == 200 and response.json() == []


# -- 3. sockets and rates ------------------------------------------------------------------------
def test_hundreds_of_idle_and_half_sent_connections_lock_no_one_out(http):
    sockets = []
    try:
        for i in range(600):
            sock = socket.create_connection(("127.0.0.1", http.cfg.api_port), timeout=5,
                                            source_address=(f"127.3.{i // 200}.{i % 200 + 1}", 0))
            sock.sendall(b"GET /api/leads/health HTTP/1.1\r\nHost: api\r\n")  # headers never finished
            sockets.append(sock)
        assert http.fresh_client().get("/api/leads/health", timeout=5).status_code == 200
        # nginx gives a client 10 s for its headers, then closes the connection.
        time.sleep(11.5)
        still_open = 0
        for sock in sockets:
            sock.settimeout(0.2)
            try:
                sock.recv(1024)  # b"" or an answer: closed by nginx
            except ConnectionResetError:
                pass  # reset by nginx (reset_timedout_connection)
            except socket.timeout:
                still_open += 1
    finally:
        for sock in sockets:
            sock.close()
    assert still_open == 0
    assert "worker_connections are not enough" not in (http.cfg.nginx_dir / "error.log").read_text()


def test_one_address_is_limited_by_nginx_before_the_database(http):
    # nginx admits 200 at once and 50 a second after that (chorus_req), so how many requests it
    # takes to be refused depends on how fast they come: 400 at once were all admitted on a
    # machine at load 6, where they took over 4 s. So they are sent in rounds of 100 until one
    # is refused, at most 3,000 (refused at any rate above 54 a second).
    client, other = http.fresh_client(), http.fresh_client()
    statuses: list = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        while len(statuses) < 3000 and not any(r.status_code == 429 for r in statuses):
            statuses += pool.map(lambda _: client.get("/api/leads/health", timeout=5), range(100))
    codes = {r.status_code for r in statuses}
    assert sum(r.status_code == 200 for r in statuses) >= 200, "the burst of 200 is admitted"
    assert codes == {200, 429}, codes
    refused = next(r for r in statuses if r.status_code == 429)
    assert is_error_json(refused.content, "CHR02") and refused.headers["Retry-After"] == "1"
    assert other.get("/api/leads/health").status_code == 200


# -- 4. bytes that are not UTF-8 -----------------------------------------------------------------
@pytest.mark.parametrize("header", [b"User-Agent", b"X-API-Key", b"Accept", b"Content-Type", b"Prefer", b"Range"])
def test_a_forwarded_header_that_is_not_utf8_is_400_and_stores_nothing(http, header):
    email = f"bad.{secrets.token_hex(5)}@example.org".encode()
    body = json.dumps(lead(email.decode())).encode()
    extra = b"" if header == b"Content-Type" else b"Content-Type: application/json\r\n"
    request = (b"POST /api/leads HTTP/1.1\r\nHost: api\r\n" + extra + header + b": a\xff\xfeb\r\n"
               + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    status, _, answer = raw(http, request, source=http.fresh_client().source_ip)
    assert status == 400 and is_error_json(answer, "CHP08")
    assert http.sql("select count(*) from app.leads where email = %s", (email.decode(),))[0][0] == 0


@pytest.mark.parametrize("query", [b"firstName=eq.%FF", b"firstName=eq.\xff", b"sel%C0%AFect=id", b"x=%ED%A0%80",
                                   b"x=%", b"x=%zz", b"x=%00"])
def test_a_query_string_that_is_not_utf8_is_400(http, reader, query):
    status, _, answer = raw(http, get_request(b"/api/leads?" + query, b"X-API-Key: " + reader.encode()))
    assert status == 400 and is_error_json(answer, "CHP09")


def test_utf8_in_headers_and_queries_passes_and_the_pool_stays_sound(http, reader):
    for _ in range(20):
        raw(http, get_request(b"/api/leads/health", b"User-Agent: \xff"))
        raw(http, get_request(b"/api/leads?select=id&firstName=eq.%FF", b"X-API-Key: " + reader.encode()))
    status, _, _ = raw(http, get_request(b"/api/leads?select=id&firstName=eq.%C3%A9%E2%82%AC", b"X-API-Key: " + reader.encode()))
    assert status == 200
    # A header PostgREST never receives cannot hurt it: the request goes on.
    status, _, _ = raw(http, get_request(b"/api/leads/health", b"X-Anything: \xff\xfe", b"User-Agent: caf\xc3\xa9"))
    assert status == 200
    answers = [http.get("/api/leads/health").status_code for _ in range(15)]
    assert answers == [200] * 15
    assert _idle_in_transaction(http) == 0


# -- 5. HEAD ---------------------------------------------------------------------------------------
def test_head_never_makes_another_clients_post_fail(http):
    failures: list[str] = []
    sessions = [f"head-mix-{secrets.token_hex(4)}-{i}" for i in range(3)]

    def heads():
        # 100 requests per address, within nginx's burst of 200 per address however fast the
        # machine answers: the per-address limit is not what this test is about.
        for i in range(150):
            if i % 50 == 0:
                client = http.fresh_client()
            for path in ("/api/leads/health", "/api/leads"):
                status = client.session.head(client.url(path), timeout=10).status_code
                if status not in (200, 401):
                    failures.append(f"HEAD {path} {status}")

    def posts(session_id):
        client = http.fresh_client()
        for i in range(100):  # page views: 120 per minute per address
            response = client.post("/api/page-views", json={"sessionId": session_id, "path": f"/p{i}"}, timeout=10)
            if response.status_code != 201:
                failures.append(f"POST {response.status_code} {response.text[:80]}")

    threads = [threading.Thread(target=heads) for _ in range(3)] + [threading.Thread(target=posts, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    stored = http.sql("select count(*) from app.page_views where session_id = any(%s)", (sessions,))[0][0]
    assert stored == 300
    log = (http.cfg.nginx_dir / "error.log").read_text()
    assert "prematurely closed" not in log and "Connection reset by peer" not in log


def test_head_answers_the_headers_of_get_without_a_body(http):
    get, head = http.get("/api/leads/health"), http.request("HEAD", "/api/leads/health")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Type"] == get.headers["Content-Type"]


# -- 6. the OpenAPI document -----------------------------------------------------------------------
def test_the_openapi_document_is_cached_with_an_etag_and_answers_304(http):
    log = http.cfg.nginx_dir / "access.log"
    client = http.fresh_client()
    first = client.get("/api/")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"') and first.json()["openapi"] == "3.0.3"
    assert first.headers["Cache-Control"] == "public, max-age=60"
    not_modified = client.get("/api/", headers={"If-None-Match": etag})
    assert (not_modified.status_code, not_modified.content) == (304, b"")

    # nginx writes a request's log line after its answer has gone out, so a line can reach the
    # file a moment after the client has the answer: wait for the lines, never count early.
    def served(count: int) -> list[str]:
        deadline = time.monotonic() + 5
        while True:
            lines = [line for line in log.read_text().splitlines() if '"GET /api/" 200 ' in line]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    before = len(served(1))
    for _ in range(15):
        assert client.get("/api/").headers["ETag"] == etag
    lines = served(before + 15)[before:]
    # Served from nginx's cache: PostgREST (and the ~30 ms the database spends on the document)
    # is asked at most once a minute.
    assert len(lines) == 15 and sum("upstream=-" not in line for line in lines) <= 1


def test_the_openapi_document_is_limited_per_address(http):
    client = http.fresh_client()
    statuses = [client.get("/api/").status_code for _ in range(40)]
    assert set(statuses) == {200, 429} and statuses[:20] == [200] * 20


# -- 7. Prefer ---------------------------------------------------------------------------------------
PREFER_VALUES = [
    "return=minimal", "return=headers-only", "return=representation",
    "count=exact", "count=planned", "count=estimated",
    "resolution=merge-duplicates", "resolution=ignore-duplicates",
    "missing=default", "missing=null",
    "handling=strict", "handling=lenient", "handling=strict, max-affected=0", "max-affected=0",
    "tx=rollback", "tx=commit", "timezone=America/New_York",
    "params=single-object", "params=multiple-objects",
    "return=representation, count=exact, handling=strict, max-affected=0, tx=rollback, missing=null",
]


@pytest.mark.parametrize("prefer", PREFER_VALUES)
def test_no_prefer_value_changes_whether_a_submission_counts(http, prefer):
    client = http.fresh_client()
    emails = [f"prefer.{secrets.token_hex(5)}@example.org" for _ in range(6)]
    statuses = [client.post("/api/leads", json=lead(e), headers={"Prefer": prefer}).status_code for e in emails]
    assert statuses == [201] * 5 + [429]  # 5 per address per 10 minutes, whatever Prefer says
    assert http.sql("select count(*) from app.leads where email = any(%s)", (emails,))[0][0] == 5


def test_a_read_keeps_its_count_preference_only(http, reader):
    counted = http.get("/api/leads?select=id&limit=1", headers={"X-API-Key": reader, "Prefer": "count=exact"})
    assert counted.status_code in (200, 206) and not counted.headers["Content-Range"].endswith("/*")
    other = http.get("/api/leads?select=id&limit=1", headers={"X-API-Key": reader, "Prefer": "handling=strict, timezone=UTC"})
    assert other.status_code == 200 and other.headers["Content-Range"].endswith("/*")


# -- 8. nginx is the only way in ---------------------------------------------------------------------
def _postgrest_pid(http) -> int:
    from chorus_db import stack

    pid = stack.postgrest_service(http.cfg.run_dir).pid()
    assert pid
    return pid


def test_postgrest_listens_on_no_tcp_port(http):
    from tests.support.http_stack import listens_on_tcp

    pid = _postgrest_pid(http)
    assert not listens_on_tcp(pid), "PostgREST listens on a TCP port"
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not any(e.startswith((b"PGRST_ADMIN_SERVER_PORT=", b"PGRST_SERVER_PORT=")) for e in environ)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another local user")
def test_another_local_user_cannot_open_postgrest_s_socket(http):
    socket_path = str(http.cfg.postgrest_socket)
    mode = os.stat(socket_path).st_mode & 0o777
    assert mode == 0o660
    from tests.support.http_stack import connects_as

    assert connects_as("nobody", socket_path) == "refused"


def test_a_signed_jwt_naming_a_role_is_ignored(http):
    """Straight to PostgREST's socket (as its owner may), with a token signed by the stack's own
    secret: the role claim is not the one PostgREST reads, and a request without an API key stays
    anon, so the leads stay closed."""
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"role": "admin", "exp": int(time.time()) + 300}).encode())
    signature = b64(hmac.new(http.cfg.jwt_secret.encode(), header + b"." + payload, hashlib.sha256).digest())
    token = (header + b"." + payload + b"." + signature).decode()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(http.cfg.postgrest_socket))
        sock.sendall(f"GET /leads?select=id HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401")
    assert b'"CHK01"' in answer and b"needs an API key" in answer


def test_the_client_address_headers_cannot_be_spoofed(http):
    client = http.fresh_client()
    for i in range(5):
        assert client.post("/api/leads", json=lead(), headers={"X-Real-IP": f"198.51.100.{i}",
                                                                "X-Forwarded-For": f"198.51.100.{i}"}).status_code == 201
    assert client.post("/api/leads", json=lead(), headers={"X-Real-IP": "198.51.100.99"}).status_code == 429


# -- 15. what errors give away -------------------------------------------------------------------------
@pytest.mark.parametrize("method, path", [("GET", "/api/leads"), ("GET", "/api/lead-interactions"),
                                          ("GET", "/api/brand-analytics/performance"), ("POST", "/api/gdpr/export"),
                                          ("POST", "/api/lead-interactions")])
def test_protected_endpoints_without_a_key_are_401_naming_no_database_object(http, method, path):
    response = http.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "CHK01" and body["message"] == "This endpoint needs an API key (X-API-Key)."
    text = response.text.lower()
    assert not any(word in text for word in ("permission", "view", "function", "table", "leads", "export_personal_data"))


@pytest.mark.parametrize("accept", ["application/geo+json", "application/vnd.pgrst.plan+json", "application/vnd.pgrst.plan"])
def test_media_types_that_run_other_code_are_406_in_json(http, reader, accept):
    for path, headers in (("/api/leads/health", {}), ("/api/leads?select=id", {"X-API-Key": reader})):
        response = http.get(path, headers={"Accept": accept, **headers})
        assert response.status_code == 406 and response.json()["code"] == "CHT02"
        assert "st_asgeojson" not in response.text


@pytest.mark.parametrize("accept", ["text/html", "image/png", "foo/bar", "garbage"])
def test_other_odd_media_types_are_a_clean_406(http, accept):
    response = http.get("/api/leads/health", headers={"Accept": accept})
    assert response.status_code == 406 and set(response.json()) >= ERROR_KEYS


def test_a_cast_error_echoes_no_stored_value_and_no_internal_path_is_shown(http, reader):
    email = f"secret.{secrets.token_hex(5)}@example.org"
    assert http.fresh_client().post("/api/leads", json=lead(email)).status_code == 201
    cast = http.get("/api/leads?select=email::int&limit=1000", headers={"X-API-Key": reader})
    assert cast.status_code == 400 and "@" not in cast.text
    listing = http.get("/api/leads?select=id&limit=1", headers={"X-API-Key": reader, "Prefer": "count=exact"})
    assert "Content-Location" not in listing.headers
    posted = http.fresh_client().post("/api/page-views", json={"sessionId": "cl", "path": "/"})
    assert "Content-Location" not in posted.headers


# -- 16. every answer is JSON --------------------------------------------------------------------------
PROTOCOL_ERRORS = [
    (b"GARBAGE\r\n\r\n", 400, "CHP01"),
    (b"get /api/leads/health HTTP/1.1\r\nHost: api\r\n\r\n", 400, "CHP01"),
    (b"GET /api/leads/health HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "CHP01"),
    (b"GET /api/leads/health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n", 400, "CHP01"),
    (b"POST /api/leads HTTP/1.1\r\nHost: api\r\nContent-Length: x\r\nConnection: close\r\n\r\n", 400, "CHP01"),
    (b"GET /api/leads/health HTTP/2.5\r\nHost: api\r\n\r\n", 400, "CHP04"),
    (b"GET /api/leads/health?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n", 414, "CHP02"),
    (b"GET /api/leads/health HTTP/1.1\r\nHost: api\r\nX-Big: " + b"a" * 9000 + b"\r\nConnection: close\r\n\r\n", 431, "CHP03"),
    (b"TRACE /api/leads HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n", 405, "CHM01"),
    (b"DELETE /api/leads HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n", 405, "CHM01"),
    (b"GET /api/leads/health HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n", 400, "CHP06"),
    (b"POST /api/page-views HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
     b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411, "CHP05"),
    (b"POST /api/leads HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n"
     b"Connection: close\r\n\r\n{" + b" " * 69998 + b"}", 413, "CHB01"),
    (b"GET /_chorus/bad_request HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n", 404, "CHN01"),
    (b"GET /nope HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n", 404, "CHN01"),
]


@pytest.mark.parametrize("request_bytes, status, code", PROTOCOL_ERRORS, ids=[f"{s}-{c}-{i}" for i, (_, s, c) in enumerate(PROTOCOL_ERRORS)])
def test_protocol_errors_are_json_in_the_error_shape(http, request_bytes, status, code):
    got, headers, body = raw(http, request_bytes, source=http.fresh_client().source_ip)
    assert got == status
    assert headers["content-type"].startswith("application/json")
    assert is_error_json(body, code)


@pytest.mark.parametrize("content_type, status", [
    ("application/json ; x=1", 415), ("application/json;x=1", 415), ("application/json; charset=latin-1", 415),
    ("text/plain", 415), ("application/json; charset=utf-8", 400), ("application/json ; charset=UTF-8", 400),
    ("Application/JSON", 400),
])
def test_content_type_parameters_are_handled_the_same_whatever_the_spacing(http, content_type, status):
    response = http.fresh_client().post("/api/page-views", data=b"{}", headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.json()["code"] == ("CHT01" if status == 415 else "CHV01")
