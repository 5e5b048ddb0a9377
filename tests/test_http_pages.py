"""The pages' HTTP side (issue 17), through nginx and PostgREST: the static block under
/dashboard/ and /form/ (security headers, nothing else of web/ served, GET and HEAD only), and
the endpoints the pages added (GET /api/api-key, GET /api/consent-text, the daily counts),
with hostile requests: keys and no keys, huge numbers, junk filters, every Accept and Prefer."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from html.parser import HTMLParser

import pytest

from chorus_db import config

COUNT_VIEWS = {
    "/api/brand-analytics/leads-per-day": {"day", "leads"},
    "/api/brand-analytics/leads-per-source": {"leadSource", "leads"},
    "/api/brand-analytics/page-views-per-day": {"day", "pageViews", "sessions"},
}
PAGES = ["/dashboard/", "/form/"]


# -- the static files themselves (no server needed) ------------------------------------------
class _Inline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("an inline <script>")
        if tag == "style":
            self.found.append("a <style> element")
        self.found += [f"{tag}[{name}]" for name in names if name == "style" or name.startswith("on")]


@pytest.mark.parametrize("page", ["dashboard/index.html", "form/index.html"])
def test_the_pages_have_no_inline_script_or_style_so_the_csp_needs_no_unsafe_inline(page):
    parser = _Inline()
    parser.feed((config.WEB_ROOT / page).read_text())
    assert parser.found == []


def test_the_pages_load_nothing_from_another_origin():
    for path in config.WEB_ROOT.glob("[!v]*/*.*"):  # the sources, not the vendored libraries
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert not re.search(r"""(fetch|import)\s*\(?\s*["'`](https?:)?//""", text), path


def test_the_dashboard_keeps_the_key_in_session_storage_only():
    script = (config.WEB_ROOT / "dashboard" / "dashboard.js").read_text()
    assert "sessionStorage.setItem(KEY_SLOT" in script
    assert "localStorage" not in script and "document.cookie" not in script


# -- the static block through nginx --------------------------------------------------------
@pytest.mark.http
@pytest.mark.parametrize("page", PAGES)
def test_the_pages_are_served_with_security_headers(http, page):
    response = http.get(page)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Server" not in response.headers or "/" not in response.headers["Server"]


@pytest.mark.http
def test_the_vendored_libraries_are_served_from_this_origin(http):
    from chorus_db.web import WebError, build

    try:
        build(log=lambda _m: None)
    except WebError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    for path in ("/vendor/chart.umd.min.js", "/vendor/chartjs-plugin-annotation.min.js", "/vendor/web-vitals.js"):
        response = http.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"] == "text/javascript; charset=utf-8", path
        assert "Content-Security-Policy" in response.headers


@pytest.mark.http
@pytest.mark.parametrize("page", ["/dashboard", "/form"])
def test_a_page_without_its_slash_is_redirected_on_the_same_origin(http, page):
    response = http.get(page, allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == page + "/"


@pytest.mark.http
@pytest.mark.parametrize(
    "path",
    [
        "/package.json", "/web/package.json", "/build.mjs", "/node_modules/chart.js/package.json",
        "/dashboard/../package.json", "/vendor/../../package.json", "/dashboard/%2e%2e/%2e%2e/package.json",
        "/dashboard/..%2f..%2fpackage.json", "/client/client.ts", "/dashboard/nothing-here.js", "/vendor/",
        "/form/.git", "/dashboard/index.html%00.js",
    ],
)
def test_nothing_but_the_pages_is_served_from_web(http, path):
    response = http.session.get(http.url(path), timeout=10)
    assert response.status_code in (400, 403, 404), path
    assert '"dependencies"' not in response.text and "createClient" not in response.text


@pytest.mark.http
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_pages_answer_only_get_and_head(http, method):
    assert http.request(method, "/form/", data=b"x").status_code == 405
    assert http.request("HEAD", "/form/").status_code == 200


# -- GET /api/api-key ------------------------------------------------------------------------
@pytest.mark.http
@pytest.mark.parametrize("role", ["reader", "admin"])
def test_api_key_names_the_key_and_its_role_never_the_secret(http, role):
    key = http.make_key(role)
    response = http.get("/api/api-key", headers={"X-API-Key": key})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"name", "role", "keyPrefix"}
    assert body["role"] == role and body["keyPrefix"] == key[:10] and key not in response.text
    # Query strings never reach the function (nginx drops them for RPCs).
    again = http.get("/api/api-key?name=eq.other&select=role", headers={"X-API-Key": key})
    assert again.status_code == 200 and again.json() == body


@pytest.mark.http
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": ""}, {"X-API-Key": "chk_" + "0" * 48}, {"X-API-Key": "x" * 5000},
     {"X-API-Key": ("chk_\u202e" + "0" * 47).encode()}, {"Authorization": "Bearer abc.def.ghi"}],
    ids=["none", "empty", "wrong", "huge", "unicode", "bearer"],
)
def test_api_key_without_a_valid_key_is_401(http, headers):
    response = http.session.get(http.url("/api/api-key"), headers=headers, timeout=10)
    assert response.status_code in (400, 401), response.text  # a non-Latin-1 header may be refused by nginx
    assert "keyPrefix" not in response.text


@pytest.mark.http
def test_a_revoked_key_is_refused_on_the_next_request(http):
    name = f"pages-{secrets.token_hex(3)}"
    key = http.sql("select app_logic.create_api_key(%s, 'reader')", (name,))[0][0]
    assert http.get("/api/api-key", headers={"X-API-Key": key}).status_code == 200
    http.sql("select app_logic.revoke_api_key(%s)", (name,))
    response = http.get("/api/api-key", headers={"X-API-Key": key})
    assert response.status_code == 401 and response.json()["code"] == "CHK01"


# -- GET /api/consent-text -------------------------------------------------------------------
@pytest.mark.http
def test_consent_text_is_public_and_is_the_version_the_audit_records(http):
    version = http.sql("select value from app.settings where key = 'consent_text_version'")[0][0]
    response = http.get("/api/consent-text")
    assert response.status_code == 200 and response.json() == {"version": version}
    assert http.get("/api/consent-text", headers={"X-API-Key": http.make_key()}).json() == {"version": version}
    assert http.get("/api/consent-text", headers={"X-API-Key": "chk_wrong"}).status_code == 401
    assert http.post("/api/consent-text", json={}).status_code == 405


# -- the daily counts --------------------------------------------------------------------------
@pytest.mark.http
@pytest.mark.parametrize("path", sorted(COUNT_VIEWS))
def test_the_counts_need_a_reader_or_admin_key(http, path):
    assert http.get(path).status_code == 401
    assert http.get(path, headers={"X-API-Key": "chk_" + "1" * 48}).status_code == 401
    for role in ("reader", "admin"):
        response = http.get(path, headers={"X-API-Key": http.make_key(role)})
        assert response.status_code == 200
        rows = response.json()
        assert all(set(r) == COUNT_VIEWS[path] for r in rows)
        if path.endswith("-per-day"):
            assert len(rows) == 30


@pytest.mark.http
def test_leads_per_day_moves_by_one_when_a_lead_arrives_today(http):
    reader = http.make_key("reader")
    before = http.get("/api/brand-analytics/leads-per-day", headers={"X-API-Key": reader}).json()
    assert len(before) == 30 and [r["day"] for r in before] == sorted(r["day"] for r in before)
    client = http.fresh_client()
    lead = {"firstName": "Count", "lastName": "Me", "email": f"count.{secrets.token_hex(4)}@example.com",
            "gdprConsent": True, "leadSource": "pages_test"}
    assert client.post("/api/leads", json=lead).status_code == 201
    after = http.get("/api/brand-analytics/leads-per-day", headers={"X-API-Key": reader}).json()
    assert after[-1]["leads"] == before[-1]["leads"] + 1 and after[:-1] == before[:-1]
    sources = http.get("/api/brand-analytics/leads-per-source", headers={"X-API-Key": reader}).json()
    assert {"leadSource": "pages_test", "leads": 1} in sources
    # A resubmission of a known email is no new lead.
    assert client.post("/api/leads", json=lead).status_code == 201
    again = http.get("/api/brand-analytics/leads-per-day", headers={"X-API-Key": reader}).json()
    assert again[-1]["leads"] == after[-1]["leads"]


@pytest.mark.http
def test_page_views_per_day_counts_views_and_distinct_sessions(http):
    reader = http.make_key("reader")
    before = http.get("/api/brand-analytics/page-views-per-day", headers={"X-API-Key": reader}).json()[-1]
    client = http.fresh_client()
    session = f"sess_{secrets.token_hex(6)}"
    for path in ("/", "/contact", "/"):
        assert client.post("/api/page-views", json={"sessionId": session, "path": path}).status_code == 201
    after = http.get("/api/brand-analytics/page-views-per-day", headers={"X-API-Key": reader}).json()[-1]
    assert after["pageViews"] == before["pageViews"] + 3
    assert after["sessions"] == before["sessions"] + 1


HOSTILE_QUERIES = [
    "limit=99999999999999999999999", "offset=-1", "limit=-5", "select=nope",
    "select=" + "day," * 2000 + "day",
    "day=eq.not-a-date", "day=gt.99999-01-01", "leads=eq.1e400", "order=nope.desc", "order=day.sideways",
    "leadSource=eq.%E2%80%AEcontact_form", "leadSource=eq.%00", "or=(leads.gt.0,day.is.null)",
    "select=leads::text", "and=" + "(" * 200 + "leads.gt.0" + ")" * 200,
    "day=in.(" + ",".join(["2030-01-01"] * 500) + ")",
]


@pytest.mark.http
@pytest.mark.parametrize("path", sorted(COUNT_VIEWS))
@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: q[:40].replace("%", "pct"))
def test_hostile_queries_on_the_counts_never_give_a_5xx(http, path, query):
    reader = http.make_key("reader")
    response = http.get(f"{path}?{query}", headers={"X-API-Key": reader})
    assert response.status_code < 500, (response.status_code, response.text[:300])


@pytest.mark.http
@pytest.mark.parametrize("path", sorted(COUNT_VIEWS) + ["/api/api-key", "/api/consent-text"])
@pytest.mark.parametrize(
    "headers",
    [{"Accept": "text/csv"}, {"Accept": "application/vnd.pgrst.object+json"}, {"Accept": "application/xml"},
     {"Accept": "*/*;q=0"}, {"Prefer": "count=exact"}, {"Prefer": "return=representation"}, {"Prefer": "tx=rollback"},
     {"Prefer": "handling=strict, nonsense=1"}, {"Range": "0-4"}, {"Range": "999999999999-"}, {"Range-Unit": "items"}],
    ids=lambda h: "-".join(f"{k}:{v}" for k, v in h.items())[:40],
)
def test_every_accept_and_prefer_header_gives_a_clean_answer(http, path, headers):
    response = http.get(path, headers={"X-API-Key": http.make_key("reader"), **headers})
    assert response.status_code < 500, (response.status_code, response.text[:300])


@pytest.mark.http
def test_count_exact_gives_the_total_of_the_30_days(http):
    response = http.get(
        "/api/brand-analytics/leads-per-day?limit=5",
        headers={"X-API-Key": http.make_key("reader"), "Prefer": "count=exact"},
    )
    assert response.status_code in (200, 206)
    assert response.headers["Content-Range"] == "0-4/30"


@pytest.mark.skipif(os.geteuid() != 0, reason="nginx's workers run as another user only under root")
def test_where_the_workers_cannot_reach_the_checkout_they_get_a_copy_of_the_pages(monkeypatch):
    """As root in a checkout under a mode-700 directory (as /root is), nginx's workers (www-data)
    could not read web/public: the stack serves a copy from a directory they can read."""
    import requests

    from chorus_db import stack
    from tests.support.http_stack import CaptureUpstream

    nginx_bin = stack.find_nginx()
    if nginx_bin is None:
        pytest.skip("nginx not found: apt-get install nginx")
    reach = stack._workers_can_reach
    # The run directory really is private; the checkout is pretended to be.
    monkeypatch.setattr(stack, "_workers_can_reach", lambda p: False if p == config.WEB_ROOT else reach(p))
    upstream = CaptureUpstream()
    run_dir = config.scratch_dir("private")
    run_dir.chmod(0o700)
    cfg = stack.StackConfig(run_dir=run_dir, database_url="", api_port=stack.free_port(),
                            postgrest_port=upstream.port, nginx_bin=nginx_bin)
    prefix = stack.pages_prefix(cfg)
    try:
        assert prefix != cfg.nginx_dir and reach(prefix.parent)
        stack.start_nginx(cfg)
        response = requests.get(f"http://127.0.0.1:{cfg.api_port}/form/form.js", timeout=10)
        assert response.status_code == 200
        assert response.text == (config.WEB_ROOT / "form" / "form.js").read_text()
        assert (prefix / "web").is_dir() and not (prefix / "web").is_symlink()
    finally:
        stack.stop_all(run_dir)
        upstream.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(prefix, ignore_errors=True)
