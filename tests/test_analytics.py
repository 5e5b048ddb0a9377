"""GET /api/brand-analytics/*: the views against numbers computed here, independently, from
the rows the test inserted (means, and p75 interpolated as percentile_cont does), under a
frozen clock; and who may read them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from psycopg.types.json import Jsonb

PERFORMANCE = "/api/brand-analytics/performance"
USAGE = "/api/brand-analytics/accessibility-usage"
DESIGN = "/api/brand-analytics/design-effectiveness"
NOW = datetime(2030, 3, 20, 12, 0, tzinfo=timezone.utc)
FROZEN = NOW.isoformat()
METRICS = ["lcp", "fid", "cls", "inp", "ttfb"]
THEMES = ["default", "protanopia", "deuteranopia", "tritanopia", "achromatopsia"]


def p75(values: list[float]) -> float:
    """The 75th percentile with linear interpolation between closest ranks (percentile_cont)."""
    ordered = sorted(values)
    rank = 0.75 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values):
    return sum(values) / len(values) if values else None


def age(rng: random.Random, max_days: float) -> timedelta:
    return timedelta(seconds=rng.uniform(1, max_days * 86400 - 1))


@pytest.fixture
def engagement(db):
    """Random engagement rows, some outside the windows; returns them as inserted."""
    rng = random.Random(20300320)
    inserted = []
    for _ in range(300):
        session = f"sess-{rng.randrange(120)}"
        # Ages from 1 hour in the future to 40 days back, so every window has rows on both sides.
        created = NOW - timedelta(seconds=rng.uniform(-3600, 40 * 86400))
        vitals = {
            m: round(rng.uniform(0, 0.5), 4) if m == "cls" else rng.randrange(0, 6000)
            for m in METRICS
            if rng.random() < 0.8
        }
        scroll = rng.choice([None, rng.randrange(0, 101)])
        clicks = [f"cta-{i}" for i in range(rng.randrange(0, 6))]
        inserted.append({"session": session, "created": created, "vitals": vitals, "scroll": scroll, "clicks": clicks})
    db.cursor().executemany(
        """insert into app.brand_engagement (session_id, core_web_vitals, scroll_depth_percentage, cta_clicks, created_at)
           values (%s, %s, %s, %s, %s)""",
        [(e["session"], Jsonb(e["vitals"]), e["scroll"], Jsonb(e["clicks"]), e["created"]) for e in inserted],
    )
    for e in inserted:
        e["clicks"] = len(e["clicks"])
    return inserted


def in_window(created: datetime, days: int) -> bool:
    return NOW - timedelta(days=days) < created <= NOW


def test_performance_gives_mean_p75_and_count_per_metric_over_7_days(api, make_key, engagement):
    response = api.get(PERFORMANCE, api_key=make_key("reader"), frozen_now=FROZEN)
    assert response.status == 200, response.body
    assert [r["metric"] for r in response.body] == METRICS
    recent = [e for e in engagement if in_window(e["created"], 7)]
    assert 20 < len(recent) < len(engagement)
    for row in response.body:
        values = [e["vitals"][row["metric"]] for e in recent if row["metric"] in e["vitals"]]
        assert row["sampleCount"] == len(values)
        assert float(row["mean"]) == pytest.approx(mean(values), rel=1e-12)
        assert row["p75"] == pytest.approx(p75(values), rel=1e-12)


def test_design_effectiveness_counts_each_session_once_over_30_days(api, make_key, engagement):
    response = api.get(DESIGN, api_key=make_key("admin"), frozen_now=FROZEN)
    assert response.status == 200, response.body
    sessions: dict[str, dict] = {}
    for e in engagement:
        if in_window(e["created"], 30):
            s = sessions.setdefault(e["session"], {"scroll": [], "clicks": []})
            if e["scroll"] is not None:
                s["scroll"].append(e["scroll"])
            s["clicks"].append(e["clicks"])
    deepest = [max(s["scroll"]) for s in sessions.values() if s["scroll"]]
    most_clicks = [max(s["clicks"]) for s in sessions.values()]
    (row,) = response.body
    assert row["sessions"] == len(sessions)
    assert float(row["meanScrollDepthPercentage"]) == pytest.approx(mean(deepest), rel=1e-12)
    assert float(row["meanCtaClicksPerSession"]) == pytest.approx(mean(most_clicks), rel=1e-12)


def test_accessibility_usage_gives_sessions_and_mean_duration_per_theme_over_30_days(api, make_key, db):
    rng = random.Random(7)
    inserted = []
    for _ in range(200):
        theme = rng.choice(THEMES[1:])  # no session ever chooses "default" here
        duration = rng.choice([None, rng.randrange(1000, 900000)])
        created = NOW - timedelta(seconds=rng.uniform(-86400, 45 * 86400))
        inserted.append((theme, duration, created))
    db.cursor().executemany(
        """insert into app.accessibility_preferences (session_id, accessibility_theme, session_duration, created_at)
           values (%s, %s, %s, %s)""",
        [(f"s{n}", theme, duration, created) for n, (theme, duration, created) in enumerate(inserted)],
    )
    response = api.get(USAGE, api_key=make_key("reader"), frozen_now=FROZEN)
    assert response.status == 200, response.body
    assert [r["accessibilityTheme"] for r in response.body] == THEMES
    for row in response.body:
        chosen = [(d, c) for t, d, c in inserted if t == row["accessibilityTheme"] and in_window(c, 30)]
        assert row["sessions"] == len(chosen)
        durations = [d for d, _c in chosen if d is not None]
        if durations:
            assert float(row["meanSessionDuration"]) == pytest.approx(mean(durations), rel=1e-12)
        else:
            assert row["meanSessionDuration"] is None
    assert response.body[0] == {"accessibilityTheme": "default", "sessions": 0, "meanSessionDuration": None}


def test_data_posted_through_the_api_reaches_the_analytics(api, make_key):
    posts = [
        {"sessionId": "a", "scrollDepthPercentage": 40, "ctaClicks": ["x"], "coreWebVitals": {"lcp": 1200, "cls": 0.1}},
        {"sessionId": "a", "scrollDepthPercentage": 80, "ctaClicks": ["x", "y"], "coreWebVitals": {"lcp": 1800}},
        {"sessionId": "b", "scrollDepthPercentage": 20, "coreWebVitals": {"lcp": 3000, "fid": 40}},
    ]
    for body in posts:
        assert api.post("/api/brand-engagement", body, frozen_now=FROZEN).status == 201
    assert api.post(
        "/api/accessibility-preferences", {"sessionId": "a", "accessibilityTheme": "tritanopia", "sessionDuration": 9000},
        frozen_now=FROZEN,
    ).status == 201
    key = make_key("reader")
    lcp = api.get(PERFORMANCE, api_key=key, frozen_now=FROZEN).body[0]
    assert (lcp["metric"], lcp["sampleCount"], float(lcp["mean"]), lcp["p75"]) == ("lcp", 3, 2000, p75([1200, 1800, 3000]))
    design = api.get(DESIGN, api_key=key, frozen_now=FROZEN).body[0]
    assert design == {"sessions": 2, "meanScrollDepthPercentage": 50, "meanCtaClicksPerSession": 1}
    usage = {r["accessibilityTheme"]: r for r in api.get(USAGE, api_key=key, frozen_now=FROZEN).body}
    assert (usage["tritanopia"]["sessions"], usage["tritanopia"]["meanSessionDuration"]) == (1, 9000)


@pytest.mark.parametrize("path", [PERFORMANCE, USAGE, DESIGN])
def test_analytics_need_a_reader_or_admin_key(api, make_key, path):
    assert api.get(path).status == 401
    assert api.get(path, api_key="chk_wrong").status == 401
    assert api.get(path, api_key=make_key("reader")).status == 200
    assert api.get(path, api_key=make_key("admin")).status == 200


def test_a_revoked_key_reads_no_analytics(api, make_key, db):
    key = make_key("reader", name="to-revoke")
    assert api.get(PERFORMANCE, api_key=key).status == 200
    db.execute("select app_logic.revoke_api_key('to-revoke')")
    response = api.get(PERFORMANCE, api_key=key)
    assert response.status == 401 and response.body["code"] == "CHK01"
