"""Accessibility preferences, brand engagement, page views, health and brand analytics end to
end through nginx and PostgREST (issue 5). Every test posts from a loopback address of its own
and uses session ids no other test uses; the analytics are checked by how a post moves them,
since other tests share the database."""

from __future__ import annotations

import json
import secrets

import pytest

from chorus_db.routes import ROUTES
from tests.support.bodies import SEED_ENGAGEMENT, SEED_PREFERENCES

pytestmark = pytest.mark.http

ERROR_KEYS = {"code", "message", "details", "hint"}


def session_id() -> str:
    return f"sess_{secrets.token_hex(6)}"


# The seed's requests (tests/support/bodies.py) for a session of the test's own.
def accessibility_preferences_request(session: str) -> dict:
    return {**SEED_PREFERENCES, "sessionId": session}


def brand_engagement_request(session: str) -> dict:
    return {**SEED_ENGAGEMENT, "sessionId": session}


# -- accessibility preferences ---------------------------------------------------------------
def test_the_seed_accessibility_preferences_request_is_201_then_200_for_the_same_session(http):
    client, session = http.fresh_client(), session_id()
    body = accessibility_preferences_request(session)
    first = client.post("/api/accessibility-preferences", json=body)
    assert (first.status_code, first.json()) == (201, {"status": "created"})
    second = client.post("/api/accessibility-preferences", json={**body, "accessibilityTheme": "tritanopia", "sessionDuration": 240000})
    assert (second.status_code, second.json()) == (200, {"status": "updated"})
    rows = http.sql(
        "select accessibility_theme, dark_mode_preference, reduced_motion, logo_interaction_count, session_duration,"
        " font_size_preference from app_logic.accessibility_preferences_opened where session_id = %s",
        (session,),
    )
    assert rows == [("tritanopia", True, False, 5, 240000, "medium")]


# The validation tables (every rule, one bad field at a time) are pgTAP's:
# db/tests/050-engagement-rules.sql and db/tests/060-page-views.sql. Through nginx and
# PostgREST: what a refusal looks like, and that it stores nothing.
@pytest.mark.parametrize(
    "field, value",
    [("sessionId", "sess\u001b]0;x\u0007"), ("sessionDuration", 1e400)],
    ids=["escape-and-bell-in-session-id", "number-1e400"],
)
def test_a_bad_accessibility_preference_is_a_400_naming_the_field_and_stores_nothing(http, field, value):
    session = session_id()
    body = {**accessibility_preferences_request(session), field: value}
    text = _json_with_number(body, field) if value == 1e400 else None
    client = http.fresh_client()
    response = (
        client.post("/api/accessibility-preferences", data=text, headers={"Content-Type": "application/json"})
        if text
        else client.post("/api/accessibility-preferences", json=body)
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "CHV01"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert http.sql("select count(*) from app.accessibility_preferences where session_id = %s", (session,)) == [(0,)]


def _json_with_number(body: dict, field: str) -> str:
    """JSON text of body with field spelled 1e400 (Python's json would write Infinity)."""
    return json.dumps({**body, field: "__HUGE__"}).replace('"__HUGE__"', "1e400")


# -- brand engagement ------------------------------------------------------------------------
def test_the_seed_brand_engagement_request_is_201_and_stored(http):
    session = session_id()
    response = http.fresh_client().post("/api/brand-engagement", json=brand_engagement_request(session))
    assert (response.status_code, response.json()) == (201, {"status": "recorded"})
    rows = http.sql(
        "select scroll_depth_percentage, jsonb_array_length(logo_interactions), core_web_vitals, time_spent_per_section"
        " from app_logic.brand_engagement_opened where session_id = %s",
        (session,),
    )
    assert rows == [(85, 2, {"lcp": 2300, "fid": 85, "cls": 0.08}, {"hero": 12000, "ecosystem": 45210.5, "contact": 8000})]


def test_a_logo_interaction_timestamp_beyond_what_ms_can_mean_is_a_400_and_stores_nothing(http):
    session = session_id()
    text = json.dumps({**brand_engagement_request(session), "logoInteractions": "__HUGE__"}).replace(
        '"__HUGE__"', '[{"timestamp": 1e131071, "theme": "default", "duration": 1}]'
    )
    response = http.fresh_client().post("/api/brand-engagement", data=text, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "CHV01"
    assert [e["field"] for e in response.json()["errors"]] == ["logoInteractions[0].timestamp"]
    assert http.sql("select count(*) from app.brand_engagement where session_id = %s", (session,)) == [(0,)]


# -- page views ------------------------------------------------------------------------------
def test_a_page_view_is_201_and_keeps_only_the_referrers_host(http):
    session = session_id()
    body = {
        "sessionId": session, "path": "/ecosystem?utm_source=x", "referrer": "https://news.example.com/a/b?c=d",
        "deviceType": "mobile", "durationMs": 5400,
    }
    response = http.fresh_client().post("/api/page-views", json=body, headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert (response.status_code, response.json()) == (201, {"status": "recorded"})
    rows = http.sql("select to_jsonb(v) from app.page_views as v where session_id = %s", (session,))
    ((row,),) = rows
    assert row["path"] == "/ecosystem"
    assert row["referrer_host"] == "news.example.com"
    assert "Mozilla" not in str(row) and "127.1." not in str(row)


def test_a_page_view_path_keeps_no_session_token_email_or_token(http):
    session = session_id()
    body = {"sessionId": session, "path": "/account;jsessionid=A1B2C3D4/ada%40example.com/reset/9f86d081884c7d659a2feaa0c55ad015"}
    response = http.fresh_client().post("/api/page-views", json=body)
    assert (response.status_code, response.json()) == (201, {"status": "recorded"})
    assert http.sql("select path from app.page_views where session_id = %s", (session,)) == [("/account/:email/reset/:token",)]


def test_a_bad_page_view_is_a_400_naming_the_field(http):
    session = session_id()
    response = http.fresh_client().post("/api/page-views", json={"sessionId": session, "path": "/\u0085"})
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["path"]
    assert http.sql("select count(*) from app.page_views where session_id = %s", (session,)) == [(0,)]


# -- health ----------------------------------------------------------------------------------
HEALTH = [r.path for r in ROUTES if r.path.endswith("/health")]


@pytest.mark.parametrize("path", HEALTH)
def test_a_health_endpoint_needs_no_key_and_names_no_person(http, path):
    email = f"health.{secrets.token_hex(5)}@example.org"
    http.fresh_client().post(
        "/api/leads", json={"firstName": "Healthy", "lastName": "Person", "email": email, "gdprConsent": True}
    )
    response = http.get(path)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert email not in response.text and "Healthy" not in response.text
    # A reader key changes nothing; another method is 405 with the methods allowed.
    assert http.get(path, headers={"X-API-Key": http.make_key("reader")}).status_code == 200
    refused = http.post(path, json={})
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET, HEAD"


# -- analytics -------------------------------------------------------------------------------
ANALYTICS = {
    "/api/brand-analytics/performance": {"metric", "sampleCount", "mean", "p75"},
    "/api/brand-analytics/accessibility-usage": {"accessibilityTheme", "sessions", "meanSessionDuration"},
    "/api/brand-analytics/design-effectiveness": {"sessions", "meanScrollDepthPercentage", "meanCtaClicksPerSession"},
}


@pytest.mark.parametrize("path", ANALYTICS)
def test_analytics_need_a_reader_or_admin_key(http, path):
    assert http.get(path).status_code == 401
    assert http.get(path, headers={"X-API-Key": "chk_wrong"}).status_code == 401
    for role in ("reader", "admin"):
        response = http.get(path, headers={"X-API-Key": http.make_key(role)})
        assert response.status_code == 200
        rows = response.json()
        assert isinstance(rows, list) and rows
        assert all(set(row) == ANALYTICS[path] for row in rows)


def _by(rows: list[dict], key: str) -> dict:
    return {row[key]: row for row in rows}


def test_analytics_move_with_what_the_website_posts(http):
    key = {"X-API-Key": http.make_key("reader")}

    def read(path):
        return http.get(path, headers=key).json()

    performance = _by(read("/api/brand-analytics/performance"), "metric")
    assert set(performance) == {"lcp", "fid", "cls", "inp", "ttfb"}
    usage = _by(read("/api/brand-analytics/accessibility-usage"), "accessibilityTheme")
    assert set(usage) == {"default", "protanopia", "deuteranopia", "tritanopia", "achromatopsia"}
    (design,) = read("/api/brand-analytics/design-effectiveness")

    client, session = http.fresh_client(), session_id()
    assert client.post("/api/brand-engagement", json={**brand_engagement_request(session), "ctaClicks": ["contact"]}).status_code == 201
    prefs = {**accessibility_preferences_request(session), "accessibilityTheme": "achromatopsia"}
    assert client.post("/api/accessibility-preferences", json=prefs).status_code == 201

    after = _by(read("/api/brand-analytics/performance"), "metric")
    for metric in ("lcp", "fid", "cls"):
        assert after[metric]["sampleCount"] == performance[metric]["sampleCount"] + 1
    assert after["inp"]["sampleCount"] == performance["inp"]["sampleCount"]
    assert _by(read("/api/brand-analytics/accessibility-usage"), "accessibilityTheme")["achromatopsia"]["sessions"] == (
        usage["achromatopsia"]["sessions"] + 1
    )
    (design_after,) = read("/api/brand-analytics/design-effectiveness")
    assert design_after["sessions"] == design["sessions"] + 1
