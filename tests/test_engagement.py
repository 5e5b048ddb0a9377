"""POST /api/accessibility-preferences and POST /api/brand-engagement through the
PostgREST-request helper: the seed's requests, every kind of bad input, the rate limit and
the link to a lead submitted in the same session."""

from __future__ import annotations

import json

import pytest

from tests.support import direct
from tests.support.bodies import SEED_ENGAGEMENT, SEED_PREFERENCES

PREFERENCES = "/api/accessibility-preferences"
ENGAGEMENT = "/api/brand-engagement"
FROZEN = "2030-03-20T12:00:00Z"

def count(db, table: str, session_id: str | None = None) -> int:
    if session_id is None:
        return db.execute(f"select count(*) from app.{table}").fetchone()[0]
    return db.execute(f"select count(*) from app.{table} where session_id = %s", (session_id,)).fetchone()[0]


def insert_lead(db, session_id: str | None, email: str = "ada@example.com") -> str:
    return str(
        db.execute(
            """insert into app.leads (first_name, last_name, email, gdpr_consent, session_id)
               values ('Ada', 'Lovelace', %s, true, %s) returning id""",
            (email, session_id),
        ).fetchone()[0]
    )


# -- the seed's requests ---------------------------------------------------------------------


def test_the_seeds_accessibility_preferences_request_is_accepted_with_201(api, db):
    response = api.post(PREFERENCES, SEED_PREFERENCES)
    assert (response.status, response.body) == (201, {"status": "created"})
    row = db.execute(
        """select accessibility_theme, dark_mode_preference, reduced_motion, high_contrast, font_size_preference,
                  logo_interaction_count, theme_switch_count, session_duration, lead_id
           from app_logic.accessibility_preferences_opened where session_id = 'sess_abc123'"""
    ).fetchone()
    assert row == ("deuteranopia", True, False, False, "medium", 5, 0, 180000, None)


def test_every_preferences_field_is_stored(api, db):
    body = {
        **SEED_PREFERENCES,
        "highContrast": True,
        "fontSizePreference": "x-large",
        "themeSwitchCount": 2,
        "darkModePreference": False,
    }
    assert api.post(PREFERENCES, body).status == 201
    row = db.execute(
        """select dark_mode_preference, high_contrast, font_size_preference, theme_switch_count
           from app_logic.accessibility_preferences_opened"""
    ).fetchone()
    assert row == (False, True, "x-large", 2)


def test_a_later_post_for_the_same_session_updates_its_row_and_answers_200(api, db):
    assert api.post(PREFERENCES, SEED_PREFERENCES, frozen_now="2030-03-20T12:00:00Z").status == 201
    later = {"sessionId": "sess_abc123", "accessibilityTheme": "protanopia", "sessionDuration": 240000}
    response = api.post(PREFERENCES, later, frozen_now="2030-03-20T12:05:00Z")
    assert response.status == 200, response.body
    assert response.body == {"status": "updated"}
    rows = db.execute(
        """select accessibility_theme, session_duration, logo_interaction_count, created_at, last_updated
           from app_logic.accessibility_preferences_opened"""
    ).fetchall()
    assert len(rows) == 1
    theme, duration, logo, created, updated = rows[0]
    # Fields left out keep what the first post stored.
    assert (theme, duration, logo) == ("protanopia", 240000, 5)
    assert (updated - created).total_seconds() == 300


def test_the_seeds_brand_engagement_request_is_accepted_with_201(api, db):
    response = api.post(ENGAGEMENT, SEED_ENGAGEMENT)
    assert (response.status, response.body) == (201, {"status": "recorded"})
    row = db.execute(
        """select logo_interactions, scroll_depth_percentage, time_spent_per_section, core_web_vitals,
                  accessibility_features_used, cta_clicks, keyboard_navigation_used, logo_accessibility_theme_changes
           from app_logic.brand_engagement_opened"""
    ).fetchone()
    assert row[0] == SEED_ENGAGEMENT["logoInteractions"]
    assert row[1] == 85
    assert row[2] == SEED_ENGAGEMENT["timeSpentPerSection"]
    assert row[3] == SEED_ENGAGEMENT["coreWebVitals"]
    assert row[4] == SEED_ENGAGEMENT["accessibilityFeaturesUsed"]
    assert row[5:] == ([], False, 0)


def test_every_brand_engagement_field_is_stored(api, db):
    body = {
        **SEED_ENGAGEMENT,
        "ctaClicks": [{"id": "contact", "at": 1767225700000}, "demo"],
        "coreWebVitals": {"lcp": 2300, "fid": 85, "cls": 0.08, "inp": 140, "ttfb": 320},
        "keyboardNavigationUsed": True,
        "logoAccessibilityThemeChanges": 3,
    }
    assert api.post(ENGAGEMENT, body).status == 201
    row = db.execute(
        "select cta_clicks, core_web_vitals, keyboard_navigation_used, logo_accessibility_theme_changes from app_logic.brand_engagement_opened"
    ).fetchone()
    assert row == (body["ctaClicks"], body["coreWebVitals"], True, 3)


def test_a_whole_number_written_as_1_0_is_accepted_as_an_integer(api, db):
    raw = json.dumps({"sessionId": "s", "accessibilityTheme": "default"})[:-1] + ', "sessionDuration": 1.0e3}'
    assert api.post(PREFERENCES, raw_body=raw).status == 201
    assert db.execute("select session_duration from app.accessibility_preferences").fetchone()[0] == 1000


# -- bad input ----------------------------------------------------------------------------------

# The validation tables (every rule, one bad field at a time) are pgTAP's:
# db/tests/050-engagement-rules.sql. Here: what a refusal looks like through PostgREST's path.
@pytest.mark.parametrize(
    ("path", "body", "change", "field", "table"),
    [
        (PREFERENCES, SEED_PREFERENCES, {"sessionId": "sess\u001b\u0007"}, "sessionId", "accessibility_preferences"),
        (ENGAGEMENT, SEED_ENGAGEMENT, {"scrollDepthPercentage": 101}, "scrollDepthPercentage", "brand_engagement"),
    ],
    ids=["preferences", "engagement"],
)
def test_an_invalid_field_is_a_400_naming_it_and_stores_nothing(api, db, path, body, change, field, table):
    response = api.post(path, {**body, **change}, client_ip=None)
    assert response.status == 400
    assert response.body["code"] == "CHV01"
    assert [e["field"] for e in response.body["errors"]] == [field]
    assert field in response.message
    assert count(db, table) == 0


def test_a_body_that_is_no_object_or_is_empty_is_a_400_and_stores_nothing(api, db):
    for path in (PREFERENCES, ENGAGEMENT):
        for raw in ("[]", '"sess"', "42", "null", "true", "{}"):
            response = api.post(path, raw_body=raw, client_ip=None)
            assert response.status == 400, (path, raw, response.body)
            assert response.body["code"] == "CHV01"
    assert count(db, "accessibility_preferences") + count(db, "brand_engagement") == 0


def test_several_bad_fields_are_all_named(api, db):
    response = api.post(PREFERENCES, {"sessionId": "s", "accessibilityTheme": "pink", "reducedMotion": "no", "x": 1})
    assert response.status == 400
    assert {e["field"] for e in response.body["errors"]} == {"accessibilityTheme", "reducedMotion", "x"}
    for field in ("accessibilityTheme", "reducedMotion", "x"):
        assert field in response.message and field in response.body["details"]


# Values of every JSON type, and the edges of numbers, for every field: never a 5xx.
ODD_VALUES = ['""', '" "', "-1", "0", "1.5", "1e400", "-1e400", "2147483648", "true", "{}", "[]", "[{}]", '{"a": {"b": 1}}']


@pytest.mark.parametrize(
    ("function", "base"),
    [("api.save_accessibility_preferences", SEED_PREFERENCES), ("api.record_brand_engagement", SEED_ENGAGEMENT)],
    ids=["preferences", "engagement"],
)
def test_no_value_of_any_field_causes_an_error(db, function, base):
    rule = db.execute(f"select app_logic.{function.split('.')[1]}_rule()").fetchone()[0]
    fields = sorted(rule["properties"])
    assert len(fields) == 9
    for n, (field, value) in enumerate((f, v) for f in fields for v in ODD_VALUES):
        body = {k: v for k, v in base.items() if k != field}
        raw = json.dumps(body)[:-1] + f', "{field}": {value}}}'
        # direct.call raises on any SQL error, which PostgREST would answer with a 4xx/5xx.
        status, answer = direct.call(db, function, raw, client_ip=f"198.51.{n // 250}.{n % 250 + 1}")
        assert status in (200, 201, 400), (field, value, answer)
        if status == 400:
            assert field in answer["details"], (field, value, answer)


# -- rate limit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "body"),
    [("api.save_accessibility_preferences", SEED_PREFERENCES), ("api.record_brand_engagement", SEED_ENGAGEMENT)],
    ids=["preferences", "engagement"],
)
def test_the_121st_request_of_a_client_within_a_minute_is_a_429(db, function, body):
    raw = json.dumps(body)
    for n in range(120):
        status, answer = direct.call(db, function, raw, frozen_now=FROZEN)
        # Preferences: the first post of the session creates its row, later ones update it.
        expected = 201 if function == "api.record_brand_engagement" or n == 0 else 200
        assert status == expected, (n, answer)
    status, answer = direct.call(db, function, raw, frozen_now=FROZEN)
    assert status == 429
    assert answer["code"] == "CHR01"


@pytest.mark.parametrize(
    ("path", "action", "body", "table"),
    [
        (PREFERENCES, "accessibility_preferences", SEED_PREFERENCES, "accessibility_preferences"),
        (ENGAGEMENT, "brand_engagement", SEED_ENGAGEMENT, "brand_engagement"),
    ],
    ids=["preferences", "engagement"],
)
def test_bad_requests_count_and_the_limit_is_per_client_and_per_window(api, db, path, action, body, table):
    # A lower limit than the default 120 keeps the test short; the logic is the same.
    db.execute("update app.rate_limit_rules set max_requests = 3 where action = %s", (action,))
    assert api.post(path, {"sessionId": "s", "nope": 1}, frozen_now="2030-03-20T12:00:10Z").status == 400
    # Preferences: the session's first post is 201 created, every later one 200 updated.
    again = 201 if table == "brand_engagement" else 200
    assert api.post(path, body, frozen_now="2030-03-20T12:00:20Z").status == 201
    assert api.post(path, body, frozen_now="2030-03-20T12:00:30Z").status == again
    stored = count(db, table)
    limited = api.post(path, body, frozen_now="2030-03-20T12:00:45Z")
    assert limited.status == 429
    # Sliding window: the oldest counted request (12:00:10, the bad one) leaves at 12:01:10.
    assert limited.headers["Retry-After"] == "25"
    assert "Too many requests" in limited.message
    assert count(db, table) == stored, "a limited request stores nothing"
    assert api.post(path, body, frozen_now="2030-03-20T12:00:50Z", client_ip="192.0.2.77").status == again
    assert api.post(path, body, frozen_now="2030-03-20T12:01:09Z").status == 429
    assert api.post(path, body, frozen_now="2030-03-20T12:01:10Z").status == again


# -- the link to a lead -----------------------------------------------------------------------


def test_a_lead_submitted_after_the_session_data_links_it(api, db):
    assert api.post(PREFERENCES, SEED_PREFERENCES).status == 201
    assert api.post(ENGAGEMENT, SEED_ENGAGEMENT).status == 201
    assert api.post(ENGAGEMENT, {**SEED_ENGAGEMENT, "sessionId": "another"}).status == 201
    lead_id = insert_lead(db, "sess_abc123")
    assert db.execute("select lead_id::text from app.accessibility_preferences").fetchone()[0] == lead_id
    linked = db.execute("select session_id, lead_id::text from app.brand_engagement order by session_id").fetchall()
    assert linked == [("another", None), ("sess_abc123", lead_id)]


def test_session_data_posted_after_the_lead_links_to_it(api, db):
    lead_id = insert_lead(db, "sess_abc123")
    assert api.post(PREFERENCES, SEED_PREFERENCES).status == 201
    assert api.post(ENGAGEMENT, SEED_ENGAGEMENT).status == 201
    assert api.post(PREFERENCES, {**SEED_PREFERENCES, "sessionId": "another"}).status == 201
    assert db.execute(
        "select lead_id::text from app_logic.accessibility_preferences_opened where session_id = 'sess_abc123'"
    ).fetchone()[0] == lead_id
    assert db.execute("select lead_id::text from app.brand_engagement").fetchone()[0] == lead_id
    assert db.execute(
        "select lead_id from app.accessibility_preferences where session_id = 'another'"
    ).fetchone()[0] is None


def test_an_update_of_preferences_keeps_the_link_to_the_lead(api, db):
    lead_id = insert_lead(db, "sess_abc123")
    assert api.post(PREFERENCES, SEED_PREFERENCES).status == 201
    assert api.post(PREFERENCES, {**SEED_PREFERENCES, "accessibilityTheme": "tritanopia"}).status == 200
    assert db.execute("select lead_id::text from app.accessibility_preferences").fetchone()[0] == lead_id


def test_a_lead_without_a_session_links_nothing(api, db):
    assert api.post(PREFERENCES, SEED_PREFERENCES).status == 201
    insert_lead(db, None)
    assert db.execute("select lead_id from app.accessibility_preferences").fetchone()[0] is None
