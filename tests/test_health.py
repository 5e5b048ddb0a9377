"""Health endpoints through the PostgREST request path: ok when usable, 503 naming what is not."""

import pytest


def test_leads_health_is_ok_without_a_key(api):
    response = api.get("/api/leads/health")
    assert response.status == 200
    assert response.body["status"] == "ok"


def test_a_wrong_api_key_is_refused_with_401(api):
    response = api.get("/api/leads/health", api_key="chk_not-a-key")
    assert response.status == 401
    assert response.body["code"] == "CHK01"
    assert "X-API-Key" in response.body["message"]


def test_a_valid_key_switches_the_role(api, make_key, db):
    key = make_key("reader")
    response = api.get("/api/leads/health", api_key=key)
    assert response.status == 200


# -- the session endpoints' health (issue 5) -------------------------------------------------

HEALTH = {
    "/api/accessibility-preferences/health": "accessibility-preferences",
    "/api/brand-engagement/health": "brand-engagement",
    "/api/page-views/health": "page-views",
}


@pytest.mark.parametrize("path", sorted(HEALTH))
def test_each_endpoints_health_is_ok_without_a_key_and_says_nothing_else(api, make_key, path):
    response = api.get(path)
    assert response.status == 200, response.body
    assert response.body == {"status": "ok", "endpoint": HEALTH[path]}
    assert api.get(path, api_key=make_key("admin")).status == 200


def test_page_views_health_is_503_naming_a_missing_partition_of_the_current_month(api, db):
    name = db.execute("select app_logic.page_view_partition_name(now())").fetchone()[0]
    db.execute(f"drop table app.{name}")
    response = api.get("/api/page-views/health")
    assert response.status == 503
    assert response.body["code"] == "CHU01"
    assert response.body["status"] == "unavailable"
    assert f"app.{name}" in response.body["message"]
    assert api.get("/api/brand-engagement/health").status == 200


def test_health_is_503_naming_a_privilege_anon_lost(api, db):
    db.execute("revoke execute on function api.record_brand_engagement(jsonb) from anon")
    response = api.get("/api/brand-engagement/health")
    assert response.status == 503
    assert "may not execute api.record_brand_engagement(jsonb)" in response.body["message"]


def test_health_is_503_naming_a_missing_table(api, db):
    db.execute("drop table app.accessibility_preferences cascade")
    response = api.get("/api/accessibility-preferences/health")
    assert response.status == 503
    assert response.body["details"] == "Table app.accessibility_preferences is missing."


def test_health_is_503_when_the_rate_limit_table_is_gone(api, db):
    db.execute("drop table app.rate_limit_counters")
    for path in HEALTH:
        response = api.get(path)
        assert response.status == 503, path
        assert "app.rate_limit_counters is missing" in response.body["message"]
