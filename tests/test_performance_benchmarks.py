"""Performance benchmarks (issue 15) through the PostgREST-request helper: admin posts of one
run or a batch, the p75/mean summary per page x device x theme over a window ending at
app_logic.now(), and regressions against the previous window judged by thresholds stored as
data."""

from __future__ import annotations

import statistics

import pytest

POST = "/api/performance-benchmarks"
SUMMARY = "/api/brand-analytics/performance-benchmarks"
REGRESSIONS = "/api/brand-analytics/performance-benchmarks/regressions"


def run(lcp=2400.0, page="/", device="mobile", theme="default", perf=90, **extra):
    return {
        "pagePath": page, "deviceType": device, "accessibilityTheme": theme,
        "coreWebVitals": {"lcp": lcp, "cls": 0.05, "inp": 120},
        "lighthouseScores": {"performance": perf, "accessibility": 100, "bestPractices": 95, "seo": 98},
        "threeJsRenderTimeMs": 150, **extra,
    }


def post(api, key, body, at="2026-12-01T09:00:00Z"):
    return api.post(POST, body, api_key=key, frozen_now=at)


def p75(values):
    """percentile_cont(0.75): linear interpolation between the closest ranks."""
    return statistics.quantiles(values, n=4, method="inclusive")[2]


def test_one_run_and_a_batch_are_stored_with_the_key_that_sent_them(api, db, admin):
    assert post(api, admin, run()).body == {"status": "recorded", "count": 1}
    batch = post(api, admin, {"runs": [run(page="/a"), run(page="/b", device="desktop")]})
    assert (batch.status, batch.body) == (201, {"status": "recorded", "count": 2})
    rows = db.execute("select page_path, device_type, lcp, score_performance, api_key_id is not null"
                      " from app.performance_benchmarks order by id").fetchall()
    assert rows == [("/", "mobile", 2400, 90, True), ("/a", "mobile", 2400, 90, True), ("/b", "desktop", 2400, 90, True)]


def test_a_batch_with_one_bad_run_stores_none_and_names_the_field(api, db, admin):
    response = post(api, admin, {"runs": [run(), run(perf=101), {**run(), "lighthouseScores": {"seo": 1}}]})
    assert response.status == 400
    fields = {e["field"] for e in response.body["errors"]}
    assert fields == {"runs[1].lighthouseScores.performance", "runs[2].lighthouseScores.performance",
                      "runs[2].lighthouseScores.accessibility", "runs[2].lighthouseScores.bestPractices"}
    assert db.execute("select count(*) from app.performance_benchmarks").fetchone()[0] == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"pagePath": "/x?utm=1"}, "pagePath"), ({"deviceType": "watch"}, "deviceType"),
        ({"accessibilityTheme": "sepia"}, "accessibilityTheme"), ({"coreWebVitals": {"lcp": -1}}, "coreWebVitals.lcp"),
        ({"coreWebVitals": {"lcp": 1e300}}, "coreWebVitals.lcp"), ({"threeJsRenderTimeMs": "fast"}, "threeJsRenderTimeMs"),
        ({"score": 1}, "score"),
    ],
)
def test_a_bad_run_is_refused_naming_the_field(api, db, admin, change, field):
    response = post(api, admin, {**run(), **change})
    assert response.status == 400 and field in {e["field"] for e in response.body["errors"]}
    assert db.execute("select count(*) from app.performance_benchmarks").fetchone()[0] == 0


def test_a_bare_array_and_an_empty_batch_are_refused(api, admin):
    assert post(api, admin, [run()]).body["errors"][0]["field"] == "body"
    assert post(api, admin, {"runs": []}).body["errors"][0]["field"] == "runs"
    assert post(api, admin, {"runs": [run()] * 101}).status == 400


@pytest.mark.parametrize("who, status", [(None, 401), ("reader", 403)])
def test_posting_needs_an_admin_key(api, make_key, who, status):
    assert post(api, make_key(who) if who else None, run()).status == status


def test_the_summary_gives_p75_and_means_per_page_device_and_theme_in_the_window(api, admin, reader):
    lcps = [1800, 2000, 2300, 2600, 4100]
    for i, lcp in enumerate(lcps):
        post(api, admin, run(lcp=lcp, perf=80 + i), at=f"2026-12-0{i + 1}T09:00:00Z")
    post(api, admin, run(lcp=9999, device="desktop"), at="2026-12-05T09:00:00Z")
    post(api, admin, run(lcp=9999), at="2026-11-01T09:00:00Z")  # outside the window
    body = api.get(SUMMARY + "?days=7", api_key=reader, frozen_now="2026-12-06T00:00:00Z").body
    rows = {(r["pagePath"], r["deviceType"]): r for r in body["rows"]}
    mobile = rows[("/", "mobile")]
    assert mobile["sampleCount"] == 5
    assert mobile["p75"]["lcp"] == pytest.approx(p75(lcps))
    assert mobile["meanScores"]["performance"] == pytest.approx(82)
    assert mobile["p75"]["fid"] is None
    assert rows[("/", "desktop")]["sampleCount"] == 1
    only = api.get(SUMMARY + "?days=7&deviceType=desktop", api_key=reader, frozen_now="2026-12-06T00:00:00Z").body
    assert [r["deviceType"] for r in only["rows"]] == ["desktop"]
    # The window ends at app_logic.now(): a day earlier the 5th run is not yet there.
    earlier = api.get(SUMMARY + "?days=7", api_key=reader, frozen_now="2026-12-04T12:00:00Z").body
    assert {(r["deviceType"], r["sampleCount"]) for r in earlier["rows"]} == {("mobile", 4)}


def test_regressions_compare_p75_with_the_previous_window_by_a_threshold_stored_as_data(api, db, admin, reader):
    for day, lcp in [(1, 2000), (2, 2000), (3, 2000), (8, 2300), (9, 2300), (10, 2300)]:
        post(api, admin, run(lcp=lcp), at=f"2026-12-{day:02d}T09:00:00Z")
    at = "2026-12-14T00:00:00Z"  # current window: Dec 7-14; previous: Nov 30-Dec 7
    found = api.get(REGRESSIONS + "?days=7", api_key=reader, frozen_now=at).body["regressions"]
    assert [(r["metric"], r["previousP75"], r["currentP75"], float(r["increasePercent"]), float(r["thresholdPercent"]))
            for r in found] == [("lcp", 2000, 2300, 15.0, 10.0)]
    # 15% worse is no regression once the operator allows 20%.
    db.execute("update app.performance_regression_thresholds set max_increase_percent = 20 where metric = 'lcp'")
    assert api.get(REGRESSIONS + "?days=7", api_key=reader, frozen_now=at).body["regressions"] == []
    # Too few samples in a window: no verdict.
    db.execute("update app.performance_regression_thresholds set max_increase_percent = 10, min_samples = 4")
    assert api.get(REGRESSIONS + "?days=7", api_key=reader, frozen_now=at).body["regressions"] == []


@pytest.mark.parametrize("query, field", [("?days=0", "days"), ("?days=201", "days"), ("?deviceType=tv", "deviceType"),
                                          ("?page=/", "page"), ("?days=7&days=8", "days")])
def test_a_bad_summary_parameter_is_named(api, reader, query, field):
    for path in (SUMMARY, REGRESSIONS):
        response = api.get(path + query, api_key=reader)
        assert response.status == 400 and field in {e["field"] for e in response.body["errors"]}


def test_the_summaries_need_a_reader_key(api):
    assert api.get(SUMMARY).status == 401 and api.get(REGRESSIONS).status == 401


def test_retention_removes_runs_older_than_13_months(api, db, admin):
    post(api, admin, run(), at="2025-01-01T00:00:00Z")
    post(api, admin, run(), at="2026-12-01T00:00:00Z")
    db.execute("select set_config('app.frozen_now', '2026-12-01T00:00:00Z', false)")
    removed = db.execute("select rows_removed, error from app_logic.apply_retention('performance_benchmarks')").fetchall()
    assert removed == [(1, None)]
    assert db.execute("select count(*) from app.performance_benchmarks").fetchone()[0] == 1
