"""The pages in a real browser (issue 17): Debian's Chromium, headless, driven by Playwright
(PyPI, with executable_path: its own browser download is not used), against nginx and
PostgREST as the HTTP tests start them. A person fills the form, sees a field error and the
success state; the lead is in GET /api/leads; the dashboard opened with a reader key draws
every chart from the API; axe-core (npm, web/node_modules) finds no serious or critical
violation. Screenshots go to .run/screenshots/ (git-ignored).

Skipped, with the reason, only where Chromium, Playwright or npm is missing, and never under
CI=true, where a missing piece is a failure.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
from pathlib import Path

import pytest

from chorus_db import config

pytestmark = pytest.mark.http

SCREENSHOTS = config.RUN_DIR / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"
# What works on these machines (closed network, root): no sandbox, no background requests.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
BAD_KEY = "This API key is wrong or has been revoked: ask an operator for a valid key."
AXE = config.WEB_DIR / "node_modules" / "axe-core" / "axe.min.js"
# axe counts per page and state (nodes per impact), kept in .run/screenshots/axe.json for the closing note.
AXE_COUNTS: dict[str, dict[str, int]] = {}


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run; .ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(http):
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is missing: pip install -e '.[test]'")
    from chorus_db.web import WebError, build

    try:
        build(log=lambda _m: None)
    except WebError as exc:
        _unavailable(f"the pages could not be built: {exc}")
    # Where nginx serves a copy of web/public (a checkout its workers cannot read), refresh it
    # with what was just built.
    from chorus_db import stack

    stack.place_pages(http.cfg)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # launch() gives every run a fresh, empty profile (--user-data-dir in a temp dir).
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """One page in its own browser context, recording console errors and CSP violations."""

    def __init__(self, browser, http, **context_options):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.base = http.base_url
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.on(
            "console",
            lambda m: self.problems.append(f"console: {m.text}")
            if m.type == "error" and "Failed to load resource" not in m.text
            else None,
        )

    def goto(self, path: str):
        self.page.goto(self.base + path)
        # CSP violations are reported to the page as events; collect them from the start.
        self.page.evaluate(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI))"
        )

    def axe(self, name: str) -> list:
        """Run axe-core on the page as it is now; returns the serious and critical violations."""
        self.page.evaluate(AXE.read_text())
        violations = self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v =>"
            " ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})))"
        )
        counts = {impact: 0 for impact in ("minor", "moderate", "serious", "critical")}
        for v in violations:
            counts[v["impact"]] += len(v["nodes"])
        AXE_COUNTS[name] = counts
        (SCREENSHOTS / "axe.json").write_text(json.dumps(AXE_COUNTS, indent=2, sort_keys=True) + "\n")
        return [v for v in violations if v["impact"] in ("serious", "critical")]

    def shot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self):
        csp = self.page.evaluate("window.__csp || []")
        assert not csp, f"Content-Security-Policy violations: {csp}"
        assert not self.problems, self.problems

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, http):
    tabs = []

    def make(**options) -> Tab:
        t = Tab(browser, http, **options)
        tabs.append(t)
        return t

    yield make
    for t in tabs:
        t.close()


def _fresh_limits(http):
    # The browser always comes from 127.0.0.1, which other HTTP tests use too: start its
    # counters empty so the form's submissions are admitted.
    http.sql("truncate app.rate_limit_counters")


def _fill_form(page, email: str, phone: str):
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Phone, with its country code").fill(phone)
    page.get_by_label("Company").fill("Analytical Engines Ltd")
    page.get_by_label("How can we help?").fill("A technical deep dive, please.")
    page.get_by_label("Phone", exact=True).check()
    page.get_by_label("I agree that CHORUS stores").check()
    page.get_by_label("Send me occasional news").check()


@pytest.fixture(scope="module")
def submitted(browser, http):
    """One visitor's whole flow on /form/, as a person does it; returns what the test needs."""
    _fresh_limits(http)
    t = Tab(browser, http)
    page = t.page
    email = f"ada.{secrets.token_hex(4)}@example.com"
    try:
        t.goto("/form/")
        version = http.sql("select version from app.consent_texts where valid_from <= now() order by valid_from desc limit 1")[0][0]
        # Polled from Python: a string predicate would run as eval() in the page, which its CSP forbids
        # (the first check passes on a quiet machine, so only a slow load ever polled).
        from playwright.sync_api import expect

        expect(page.locator("#consent-version")).to_have_text(version, timeout=30_000)
        with page.expect_response(lambda r: r.url.endswith("/api/accessibility-preferences")) as saved:
            page.get_by_label("Colour theme").select_option("tritanopia")
        assert saved.value.status in (200, 201)
        axe_form = t.axe("form")
        _fill_form(page, email, "12345")
        with page.expect_response(lambda r: r.url.endswith("/api/leads")) as refused:
            page.get_by_role("button", name="Send").click()
        phone_error = page.locator("#phone-error")
        phone_error.wait_for(state="visible")
        error_state = {
            "status": refused.value.status,
            "server": refused.value.json(),
            "shown": phone_error.inner_text(),
            "invalid": page.get_by_label("Phone, with its country code").get_attribute("aria-invalid"),
            "described": page.get_by_label("Phone, with its country code").get_attribute("aria-describedby"),
            "screenshot": t.shot("form-phone-error"),
            "axe": t.axe("form-with-field-error"),
        }
        page.get_by_label("Phone, with its country code").fill("+44 20 7946 0958")
        page.mouse.wheel(0, 600)
        with page.expect_response(lambda r: r.url.endswith("/api/leads")) as accepted:
            page.get_by_role("button", name="Send").click()
        page.locator("#success").wait_for(state="visible")
        result = {
            "email": email,
            "version": version,
            "status": accepted.value.status,
            "request": json.loads(accepted.value.request.post_data),
            "session": page.evaluate("sessionStorage.getItem('chorus.sessionId')"),
            "form_visible": page.locator("#contact").is_visible(),
            "focused": page.evaluate("document.activeElement.id"),
            "error": error_state,
            "axe_form": axe_form,
            "screenshot": t.shot("form-success"),
            "axe_success": t.axe("form-success"),
            "tab": t,
        }
        t.assert_clean()
        yield result
    finally:
        t.close()


# -- the form ----------------------------------------------------------------------------------
def test_the_form_shows_the_servers_error_next_to_a_bad_phone(submitted):
    error = submitted["error"]
    assert error["status"] == 400
    server = {e["field"]: e["message"] for e in error["server"]["errors"]}
    assert set(server) == {"phone"}
    assert error["shown"] == server["phone"]
    assert error["invalid"] == "true"
    assert "phone-error" in error["described"].split()
    assert error["screenshot"].stat().st_size > 10_000


def test_the_form_submits_every_field_and_shows_the_success_state(submitted):
    assert submitted["status"] == 201
    assert not submitted["form_visible"]
    assert submitted["focused"] == "success"
    body = submitted["request"]
    assert {
        "firstName", "lastName", "email", "phone", "companyName", "inquiryDetails", "leadSource",
        "gdprConsent", "marketingConsent", "accessibilityTheme", "preferredCommunication",
        "deviceType", "coreWebVitals", "logoInteractions", "timeOnSite", "pagesViewed",
        "browserInfo", "sessionId",
    } == set(body)
    assert body["gdprConsent"] is True and body["marketingConsent"] is True
    assert body["preferredCommunication"] == "phone" and body["deviceType"] == "desktop"
    assert body["accessibilityTheme"] == "tritanopia"
    # Measured by web-vitals in the page, not made up: LCP and TTFB exist by submit time.
    assert body["coreWebVitals"]["lcp"] > 0 and "ttfb" in body["coreWebVitals"]


def test_the_submitted_lead_is_in_get_api_leads(submitted, http):
    reader = http.make_key("reader")
    response = http.get(f"/api/leads?email=eq.{submitted['email']}", headers={"X-API-Key": reader})
    assert response.status_code == 200
    (lead,) = response.json()
    assert lead["phone"] == "+442079460958"
    assert lead["accessibilityTheme"] == "tritanopia"
    assert lead["sessionId"] == submitted["session"]
    assert lead["pagesViewed"] == ["/form/"]
    assert lead["marketingConsent"] is False  # pending: the confirmation link grants it (double opt-in)
    assert lead["coreWebVitals"]["lcp"] == submitted["request"]["coreWebVitals"]["lcp"]


def test_the_form_wrote_preferences_engagement_page_view_and_consent_with_its_version(submitted, http):
    session = submitted["session"]
    (theme,) = http.sql("select accessibility_theme from app_logic.accessibility_preferences_opened where session_id = %s", (session,))[0]
    assert theme == "tritanopia"
    vitals = http.sql("select core_web_vitals from app.brand_engagement where session_id = %s", (session,))
    assert vitals and all("lcp" in v[0] for v in vitals)
    assert http.sql("select path from app.page_views where session_id = %s", (session,)) == [("/form/",)]
    versions = http.sql(
        "select distinct a.consent_text_version from app.consent_audit as a where a.event = 'consent'"
        " and a.subject = app_logic.pseudonym(lower(%s))",
        (submitted["email"],),
    )
    assert versions == [(submitted["version"],)]


def test_the_form_has_no_serious_or_critical_accessibility_violation(submitted):
    assert submitted["axe_form"] == []
    assert submitted["error"]["axe"] == []
    assert submitted["axe_success"] == []


def test_the_form_shows_a_429_with_its_wait_time(tab, http):
    _fresh_limits(http)
    t = tab()
    t.goto("/form/")
    rule = http.sql("select max_requests from app.rate_limit_rules where action = 'leads' and scope = 'ip'")[0][0]
    http.sql("update app.rate_limit_rules set max_requests = 1 where action = 'leads' and scope = 'ip'")
    try:
        for attempt in range(2):
            _fill_form(t.page, f"grace.{secrets.token_hex(4)}@example.com", "+1 (415) 555-2671")
            with t.page.expect_response(lambda r: r.url.endswith("/api/leads")) as answer:
                t.page.get_by_role("button", name="Send").click()
            if attempt == 0:
                assert answer.value.status == 201
                t.goto("/form/")
    finally:
        http.sql("update app.rate_limit_rules set max_requests = %s where action = 'leads' and scope = 'ip'", (rule,))
    assert answer.value.status == 429
    wait = int(answer.value.headers["retry-after"])
    summary = t.page.locator("#summary")
    summary.wait_for(state="visible")
    expected = f"{math.ceil(wait / 60)} minutes" if wait >= 90 else f"{wait} second"
    assert "try again in " + expected in summary.inner_text()
    t.shot("form-429")
    t.assert_clean()


# -- the dashboard ---------------------------------------------------------------------------
def _sign_in_by_keyboard(t: Tab, key: str):
    """Tab to the key field, type, press Enter: the dashboard is usable without a mouse."""
    page = t.page
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "api-key":
            break
    assert page.evaluate("document.activeElement.id") == "api-key", "the key field is not reachable by Tab"
    page.keyboard.type(key)
    page.keyboard.press("Enter")


def _chart(page, canvas_id: str) -> dict:
    return page.evaluate(
        """id => { const c = Chart.getChart(id); return c && {
            labels: c.data.labels, data: c.data.datasets.map(d => d.data),
            animation: c.options.animation, drawn: c.canvas.width > 0 && c.canvas.height > 0 }; }""",
        canvas_id,
    )


def test_the_dashboard_draws_every_chart_from_the_api_with_a_reader_key(submitted, tab, http):
    reader = http.make_key("reader")
    t = tab()
    t.goto("/dashboard/")
    _sign_in_by_keyboard(t, reader)
    t.page.locator("body[data-loaded=true]").wait_for(state="attached")

    def api(path):
        return http.get(path, headers={"X-API-Key": reader}).json()

    vitals = {r["metric"]: r for r in api("/api/brand-analytics/performance")}
    for metric, row in vitals.items():
        chart = _chart(t.page, f"vital-{metric}")
        assert chart and chart["drawn"], metric
        assert chart["data"] == [[row["p75"] or 0]], metric
    assert vitals["lcp"]["sampleCount"] >= 1  # the form's own measurement
    # the thresholds are drawn: three bands per metric
    bands = t.page.evaluate("Object.keys(Chart.getChart('vital-lcp').options.plugins.annotation.annotations)")
    assert bands == ["good", "ni", "poor"]

    themes = api("/api/brand-analytics/accessibility-usage")
    chart = _chart(t.page, "themes-chart")
    assert chart["labels"] == [r["accessibilityTheme"] for r in themes]
    assert chart["data"] == [[r["sessions"] for r in themes]]
    assert dict(zip(chart["labels"], chart["data"][0]))["tritanopia"] >= 1

    days = api("/api/brand-analytics/leads-per-day")
    chart = _chart(t.page, "leads-chart")
    assert chart["data"] == [[r["leads"] for r in days]] and len(days) == 30
    assert days[-1]["leads"] >= 1  # the lead submitted today
    sources = api("/api/brand-analytics/leads-per-source")
    chart = _chart(t.page, "sources-chart")
    assert dict(zip(chart["labels"], chart["data"][0])) == {r["leadSource"]: r["leads"] for r in sources}
    assert "contact_form" in chart["labels"]

    views = api("/api/brand-analytics/page-views-per-day")
    chart = _chart(t.page, "views-chart")
    assert chart["data"] == [[r["pageViews"] for r in views], [r["sessions"] for r in views]]
    assert views[-1]["pageViews"] >= 1

    design = api("/api/brand-analytics/design-effectiveness")[0]
    assert t.page.locator("#design dd").first.inner_text() == str(design["sessions"])

    # Text alternatives: every chart has its table, reachable by keyboard (summary elements).
    for table in ("vitals-table", "themes-table", "leads-table", "sources-table", "views-table"):
        assert t.page.locator(f"#{table} table tbody tr").count() >= 1, table
    assert "Ada Lovelace" in t.page.locator("#recent-table").inner_text()

    # A reader key is never shown an admin-only control, not even a disabled one.
    assert t.page.locator("#note-form").count() == 0
    assert "reader" in t.page.locator("#who").inner_text()

    # The brand-intelligence sections show exactly when their endpoint answers.
    for section, path in (
        ("ab", "/api/brand-analytics/ab-tests"),
        ("heatmap", "/api/brand-analytics/logo-heatmap.svg?days=30"),
    ):
        answers = http.get(path, headers={"X-API-Key": reader}).status_code == 200
        assert t.page.locator(f"[data-section={section}]").is_visible() == answers, section

    # The key lives in this tab's sessionStorage only.
    assert t.page.evaluate("sessionStorage.getItem('chorus.dashboard.apiKey')") == reader
    assert t.page.evaluate("localStorage.length") == 0
    assert t.context.cookies() == []

    t.shot("dashboard-reader")
    assert t.axe("dashboard") == []
    t.page.get_by_text("Leads per day as a table").focus()
    t.page.keyboard.press("Enter")
    assert t.page.locator("#leads-table").is_visible()
    t.assert_clean()


def test_the_dashboard_in_dark_mode_with_reduced_motion_passes_axe_and_does_not_animate(submitted, tab, http):
    reader = http.make_key("reader")
    t = tab(color_scheme="dark", reduced_motion="reduce")
    t.goto("/dashboard/")
    t.page.get_by_label("API key", exact=True).fill(reader)
    t.page.get_by_role("button", name="Open the dashboard").click()
    t.page.locator("body[data-loaded=true]").wait_for(state="attached")
    assert _chart(t.page, "leads-chart")["animation"] is False
    background = t.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 18, 18)"
    t.shot("dashboard-dark")
    assert t.axe("dashboard-dark") == []
    t.assert_clean()


def test_a_wrong_or_revoked_key_is_told_in_one_sentence(tab, http):
    t = tab()
    t.goto("/dashboard/")
    t.page.get_by_label("API key", exact=True).fill("chk_" + "0" * 48)
    t.page.get_by_role("button", name="Open the dashboard").click()
    error = t.page.locator("#key-error")
    error.wait_for(state="visible")
    assert error.inner_text() == BAD_KEY
    assert t.page.evaluate("sessionStorage.length") == 0
    assert t.page.locator("#board").is_hidden()
    assert t.axe("dashboard-bad-key") == []
    t.shot("dashboard-bad-key")

    # Revoked while the dashboard is open: the next refresh says so and forgets the key.
    name = f"revoked-{secrets.token_hex(3)}"
    key = http.sql("select app_logic.create_api_key(%s, 'reader')", (name,))[0][0]
    t.page.get_by_label("API key", exact=True).fill(key)
    t.page.get_by_role("button", name="Open the dashboard").click()
    t.page.locator("body[data-loaded=true]").wait_for(state="attached")
    http.sql("select app_logic.revoke_api_key(%s)", (name,))
    t.page.get_by_role("button", name="Refresh").click()
    error.wait_for(state="visible")
    assert error.inner_text() == BAD_KEY
    assert t.page.evaluate("sessionStorage.length") == 0
    t.assert_clean()


def test_an_admin_key_gets_the_crm_note_control_and_it_records_a_note(submitted, tab, http):
    admin = http.make_key("admin")
    t = tab()
    t.goto("/dashboard/")
    t.page.get_by_label("API key", exact=True).fill(admin)
    t.page.get_by_role("button", name="Open the dashboard").click()
    t.page.locator("body[data-loaded=true]").wait_for(state="attached")
    form = t.page.locator("#note-form")
    assert form.is_visible()
    lead_id = http.sql("select id::text from app.leads where email = %s", (submitted["email"],))[0][0]
    t.page.get_by_label("Lead", exact=True).select_option(lead_id)
    t.page.get_by_label("Note", exact=True).fill("Called back, wants a demo.")
    t.page.get_by_role("button", name="Add to the CRM history").click()
    t.page.get_by_text("Recorded.").wait_for()
    notes = http.sql("select kind, note from app.lead_interactions where lead_id = %s and kind = 'note'", (lead_id,))
    assert notes == [("note", "Called back, wants a demo.")]
    assert t.axe("dashboard-admin") == []
    t.shot("dashboard-admin")
    t.assert_clean()
