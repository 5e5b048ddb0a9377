"""A/B tests of design elements (issue 15) through the PostgREST-request helper: an admin
defines and stops tests, assignment is deterministic and proportional to the weights and
records an exposure, conversions count once per session and kind, a lead converts the lead
goal by itself, and the results carry conversion rate, uplift and a two-proportion p-value,
also per accessibility theme."""

from __future__ import annotations

import math

import pytest

NOW = "2026-12-01T09:00:00Z"


def make_test(api, key, name="hero-logo", goal="lead", weights=(1, 1), **extra):
    body = {
        "name": name,
        "goal": goal,
        "variants": [{"name": f"v{i}", "design": {"logo": f"style-{i}"}, "weight": w} for i, w in enumerate(weights)],
        **extra,
    }
    return api.post("/api/ab-tests", body, api_key=key, frozen_now=NOW)


def assign(api, test, session, frozen_now=NOW, **kwargs):
    return api.get(f"/api/ab-tests/assignment?test={test}&sessionId={session}", frozen_now=frozen_now, **kwargs)


def results(api, key, where="true"):
    rows = api.get("/api/brand-analytics/ab-tests", api_key=key, where=where, frozen_now=NOW).body
    return {(r["test"], r["variant"], r["accessibilityTheme"]): r for r in rows}


def p_value(x1, n1, x2, n2):
    """The same test in Python: two-sided pooled two-proportion z-test."""
    pooled = (x1 + x2) / (n1 + n2)
    z = abs(x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(z / math.sqrt(2))


def test_an_admin_creates_a_test_and_may_replace_it_until_it_starts(api, db, admin):
    later = {"startsAt": "2026-12-02T00:00:00Z"}
    assert make_test(api, admin, **later).status == 201
    replaced = make_test(api, admin, weights=(1, 2, 3), **later)
    assert (replaced.status, replaced.body) == (200, {"status": "updated", "test": "hero-logo"})
    assert db.execute("select count(*) from app.ab_test_variants").fetchone()[0] == 3


def test_a_started_test_cannot_change_its_variants_but_can_be_stopped(api, db, admin):
    assert make_test(api, admin).status == 201
    again = make_test(api, admin, weights=(1, 9))
    assert again.status == 409 and again.body["code"] == "CHE02"
    assert db.execute("select array_agg(weight order by position) from app.ab_test_variants").fetchone()[0] == [1, 1]
    stopped = api.post("/api/ab-tests/stop", {"name": "hero-logo"}, api_key=admin, frozen_now=NOW)
    assert stopped.status == 200 and stopped.body["status"] == "stopped"
    assert assign(api, "hero-logo", "s1", frozen_now="2026-12-01T10:00:00Z").status == 404


@pytest.mark.parametrize("who", [None, "reader"])
def test_creating_and_stopping_need_an_admin_key(api, db, make_key, who):
    key = make_key(who) if who else None
    created = make_test(api, key)
    assert created.status == (403 if who else 401)
    assert api.post("/api/ab-tests/stop", {"name": "x"}, api_key=key).status == (403 if who else 401)
    assert db.execute("select count(*) from app.ab_tests").fetchone()[0] == 0


def test_every_bad_field_of_a_test_is_named_and_nothing_is_stored(api, db, admin):
    body = {
        "name": "Hero Logo!",
        "goal": "Lead",
        "variants": [{"name": "a", "design": [], "weight": 0}],
        "startsAt": "2026-13-01T00:00:00Z",
        "colour": "red",
    }
    response = api.post("/api/ab-tests", body, api_key=admin, frozen_now=NOW)
    assert response.status == 400
    fields = {e["field"] for e in response.body["errors"]}
    assert fields == {"name", "goal", "variants[0].design", "colour"}
    # Once the shapes are right, what the rule cannot say is named too.
    body = {"name": "t", "goal": "lead", "variants": [{"name": "a", "design": {}, "weight": 0}],
            "startsAt": "2026-13-01T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"}
    response = api.post("/api/ab-tests", body, api_key=admin, frozen_now=NOW)
    assert response.status == 400
    assert {e["field"] for e in response.body["errors"]} == {"variants", "variants[0].weight", "startsAt", "endsAt"}
    dup = {"name": "t", "goal": "lead", "variants": [{"name": "a", "design": {}, "weight": 1}] * 2}
    assert "different names" in api.post("/api/ab-tests", dup, api_key=admin, frozen_now=NOW).body["message"]
    eleven = {"name": "t", "goal": "lead", "variants": [{"name": f"v{i}", "design": {}, "weight": 1} for i in range(11)]}
    assert api.post("/api/ab-tests", eleven, api_key=admin, frozen_now=NOW).status == 400
    assert db.execute("select count(*) from app.ab_tests").fetchone()[0] == 0


def test_assignment_is_the_same_every_time_and_records_one_exposure(api, db, admin):
    make_test(api, admin, weights=(1, 1, 1))
    answers = {assign(api, "hero-logo", "sess-42").body["variant"] for _ in range(5)}
    assert len(answers) == 1
    first = assign(api, "hero-logo", "sess-42").body
    assert first["test"] == "hero-logo" and first["design"] == {"logo": "style-" + first["variant"][1:]}
    assert db.execute("select count(*) from app.ab_test_exposures").fetchone()[0] == 1


def test_assignment_is_proportional_to_the_weights(db, api, admin):
    make_test(api, admin, weights=(1, 3))
    # 20,000 sessions through the same functions the endpoint uses, counted in SQL.
    shares = dict(db.execute(
        """
        select app_logic.ab_test_pick(t.id, app_logic.ab_test_bucket(t.name, 'sess-' || g)) as position, count(*)
        from app.ab_tests as t cross join generate_series(1, 20000) as g
        group by 1
        """
    ).fetchall())
    assert shares[2] / 20000 == pytest.approx(0.75, abs=0.015)
    assert shares[1] + shares[2] == 20000


def test_assignment_of_unknown_scheduled_or_ended_tests_is_404(api, admin):
    make_test(api, admin, name="later", startsAt="2026-12-05T00:00:00Z")
    make_test(api, admin, name="short", endsAt="2026-12-01T09:30:00Z")
    assert assign(api, "nope", "s").body["code"] == "CHE01"
    assert assign(api, "later", "s").status == 404
    assert assign(api, "short", "s").status == 200
    assert assign(api, "short", "s", frozen_now="2026-12-01T10:00:00Z").status == 404


@pytest.mark.parametrize(
    "query, field",
    [
        ("test=hero-logo", "sessionId"),
        ("sessionId=s", "test"),
        ("test=hero-logo&sessionId=s&admin=1", "admin"),
        ("test=hero-logo&sessionId=s&sessionId=t", "sessionId"),
        ("test=HERO&sessionId=s", "test"),
        ("test=hero-logo&sessionId=" + "s" * 101, "sessionId"),
        ("test=hero-logo&sessionId=%00", "sessionId"),
        ("test=hero-logo&sessionId=%C3%28", "sessionId"),
    ],
)
def test_a_bad_assignment_query_names_the_parameter_and_records_nothing(api, db, admin, query, field):
    make_test(api, admin)
    response = api.get(f"/api/ab-tests/assignment?{query}", frozen_now=NOW)
    assert response.status == 400, response.body
    assert field in {e["field"] for e in response.body["errors"]}
    assert db.execute("select count(*) from app.ab_test_exposures").fetchone()[0] == 0


def test_a_conversion_counts_once_per_session_and_kind_and_only_when_exposed(api, db, admin):
    make_test(api, admin, goal="cta_click")
    body = {"test": "hero-logo", "sessionId": "s1", "kind": "cta_click"}
    never = api.post("/api/ab-tests/conversions", body, frozen_now=NOW)
    assert (never.status, never.body["code"]) == (409, "CHE03")
    assign(api, "hero-logo", "s1")
    assert api.post("/api/ab-tests/conversions", body, frozen_now=NOW).status == 201
    assert api.post("/api/ab-tests/conversions", body, frozen_now=NOW).body == {"status": "already recorded"}
    assert api.post("/api/ab-tests/conversions", {**body, "kind": "newsletter"}, frozen_now=NOW).status == 201
    lead_kind = api.post("/api/ab-tests/conversions", {**body, "kind": "lead"}, frozen_now=NOW)
    assert lead_kind.status == 400 and lead_kind.body["errors"][0]["field"] == "kind"
    assert db.execute("select count(*) from app.ab_test_conversions").fetchone()[0] == 2


def test_a_lead_with_an_exposed_session_converts_the_lead_goal_by_itself(api, db, admin):
    make_test(api, admin)
    assign(api, "hero-logo", "sess-lead")
    lead = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "gdprConsent": True,
            "sessionId": "sess-lead"}
    assert api.post("/api/leads", lead, frozen_now=NOW).status == 201
    assert db.execute("select session_id, kind from app.ab_test_conversions").fetchall() == [("sess-lead", "lead")]
    # A lead of a session never shown a test converts nothing.
    assert api.post("/api/leads", {**lead, "email": "b@example.org", "sessionId": "other"}, frozen_now=NOW).status == 201
    assert db.execute("select count(*) from app.ab_test_conversions").fetchone()[0] == 1


def test_results_give_rate_uplift_and_the_two_proportion_p_value(api, db, admin, reader):
    make_test(api, admin, goal="cta_click")
    (test_id,) = db.execute("select id from app.ab_tests").fetchone()
    # 200 sessions on each variant: 20 and 40 conversions; half of them chose deuteranopia.
    db.execute(
        "insert into app.ab_test_exposures (test_id, session_id, position, exposed_at)"
        " select %s, 'p' || v || '-' || g, v, '2026-12-01T08:00:00Z' from generate_series(1, 2) as v, generate_series(1, 200) as g",
        (test_id,),
    )
    db.execute(
        "insert into app.ab_test_conversions (test_id, session_id, kind, converted_at)"
        " select %s, 'p' || v || '-' || g, 'cta_click', '2026-12-01T08:30:00Z'"
        " from generate_series(1, 2) as v, generate_series(1, 200) as g where g <= 20 * v",
        (test_id,),
    )
    db.execute(
        "insert into app.accessibility_preferences (session_id, accessibility_theme)"
        " select 'p' || v || '-' || g, 'deuteranopia' from generate_series(1, 2) as v, generate_series(1, 200) as g"
        " where g % 2 = 0"
    )
    rows = results(api, reader)
    control, variant = rows[("hero-logo", "v0", "all")], rows[("hero-logo", "v1", "all")]
    assert (control["exposures"], control["conversions"], control["conversionRate"]) == (200, 20, 0.1)
    assert (variant["exposures"], variant["conversions"], variant["conversionRate"]) == (200, 40, 0.2)
    assert control["uplift"] is None and control["pValue"] is None
    assert variant["uplift"] == pytest.approx(1.0)
    assert variant["pValue"] == pytest.approx(p_value(20, 200, 40, 200), abs=1e-6)
    # Per theme: the even sessions are deuteranopia, the odd ones posted no preferences.
    deut = rows[("hero-logo", "v1", "deuteranopia")]
    assert (deut["exposures"], deut["conversions"]) == (100, 20)
    assert rows[("hero-logo", "v1", "unknown")]["exposures"] == 100
    assert rows[("hero-logo", "v1", "protanopia")]["exposures"] == 0
    assert deut["pValue"] == pytest.approx(p_value(10, 100, 20, 100), abs=1e-6)


def test_the_p_value_matches_the_exact_normal_tail_far_out(db):
    for x1, n1, x2, n2 in [(50, 1000, 55, 1000), (10, 100, 30, 100), (1, 10000, 400, 10000), (499, 1000, 501, 1000)]:
        (got,) = db.execute("select app_logic.two_proportion_p_value(%s, %s, %s, %s)", (x1, n1, x2, n2)).fetchone()
        assert got == pytest.approx(p_value(x1, n1, x2, n2), abs=2e-7)
    assert db.execute("select app_logic.two_proportion_p_value(0, 10, 0, 10)").fetchone()[0] is None
    assert db.execute("select app_logic.two_proportion_p_value(0, 0, 1, 10)").fetchone()[0] is None


def test_results_need_a_reader_key(api):
    assert api.get("/api/brand-analytics/ab-tests").status == 401


def test_a_rejected_assignment_still_takes_a_rate_limit_slot(api, db, admin):
    make_test(api, admin)
    db.execute("update app.rate_limit_rules set max_requests = 2 where action = 'ab_test_assignment'")
    assert assign(api, "hero-logo", "x" * 200).status == 400
    assert assign(api, "hero-logo", "ok").status == 200
    limited = assign(api, "hero-logo", "ok")
    assert limited.status == 429 and limited.body["code"] == "CHR01"
