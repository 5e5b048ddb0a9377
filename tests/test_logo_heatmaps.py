"""Logo interaction heatmaps (issue 15) through the PostgREST-request helper: posting points,
the grid for reader keys, the SVG picture, and the brand tables' retention and GDPR export and
erasure (everything keyed by a person's sessions)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

NOW = "2026-12-01T09:00:00Z"
HEATMAPS = "/api/logo-heatmaps"


def post(api, points, session="sess-hm", theme="default", **kwargs):
    return api.post(HEATMAPS, {"sessionId": session, "accessibilityTheme": theme, "points": points}, frozen_now=NOW, **kwargs)


def point(x, y, ms=100):
    return {"x": x, "y": y, "durationMs": ms}


def grid(api, key, query="", frozen_now=NOW):
    return api.get(f"/api/brand-analytics/logo-heatmap{query}", api_key=key, frozen_now=frozen_now)


def test_points_are_stored_as_one_row_in_order(api, db):
    response = post(api, [point(0, 0, 10), point(1, 1, 20), point(0.25, 0.75, 30)])
    assert (response.status, response.body) == (201, {"status": "recorded", "points": 3})
    row = db.execute("select session_id, accessibility_theme, xs, ys, durations_ms from app.logo_interaction_heatmaps").fetchone()
    assert row == ("sess-hm", "default", [0, 1, 0.25], [0, 1, 0.75], [10, 20, 30])


@pytest.mark.parametrize(
    "points, field",
    [
        ([], "points"),
        ([point(1.01, 0)], "points[0].x"),
        ([point(0, -0.1)], "points[0].y"),
        ([point(0, 0, -1)], "points[0].durationMs"),
        ([point(0, 0, 1.5)], "points[0].durationMs"),
        ([point(0, 0, 10**30)], "points[0].durationMs"),
        ([{"x": 0, "y": 0}], "points[0].durationMs"),
        ([{**point(0, 0), "pressure": 1}], "points[0].pressure"),
        ([point(0, 0)] * 501, "points"),
        ([point("0.5", 0)], "points[0].x"),
    ],
)
def test_a_bad_point_is_named_and_nothing_is_stored(api, db, points, field):
    response = post(api, points)
    assert response.status == 400, response.body
    assert field in {e["field"] for e in response.body["errors"]}
    assert db.execute("select count(*) from app.logo_interaction_heatmaps").fetchone()[0] == 0


def test_500_points_are_accepted(api):
    assert post(api, [point(i / 499, 1 - i / 499) for i in range(500)]).status == 201


def test_the_grid_counts_points_per_cell_with_their_mean_duration(api, reader):
    post(api, [point(0, 0, 100), point(0.01, 0.02, 300), point(1, 1, 50), point(0.5, 0.25, 7)])
    post(api, [point(0.99, 0.99, 150)], theme="tritanopia")
    body = grid(api, reader, "?size=4").body
    assert (body["size"], body["days"], body["posts"], body["points"], body["maxCount"]) == (4, 30, 2, 5, 2)
    assert body["counts"] == [[2, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 2]]
    assert body["meanDurationMs"][0][0] == 200 and body["meanDurationMs"][3][3] == 100
    assert body["meanDurationMs"][1][1] is None
    only = grid(api, reader, "?size=4&theme=tritanopia").body
    assert only["counts"][3][3] == 1 and only["points"] == 1 and only["theme"] == "tritanopia"
    default = grid(api, reader).body
    assert len(default["counts"]) == 32 and {len(r) for r in default["counts"]} == {32}


def test_the_window_ends_at_app_logic_now(api, reader):
    post(api, [point(0.5, 0.5)])
    assert grid(api, reader, "?days=1", frozen_now="2026-12-02T08:59:00Z").body["points"] == 1
    assert grid(api, reader, "?days=1", frozen_now="2026-12-02T09:01:00Z").body["points"] == 0
    assert grid(api, reader, "?days=1", frozen_now="2026-12-01T08:00:00Z").body["points"] == 0


@pytest.mark.parametrize(
    "query, field",
    [("?size=3", "size"), ("?size=65", "size"), ("?days=0", "days"), ("?days=1e3", "days"),
     ("?days=99999999999999999999", "days"), ("?theme=sepia", "theme"), ("?colour=red", "colour"),
     ("?days=1&days=2", "days"), ("?size=%FF", "size")],
)
def test_a_bad_grid_parameter_is_named(api, reader, query, field):
    response = grid(api, reader, query)
    assert response.status == 400
    assert field in {e["field"] for e in response.body["errors"]}


def test_the_grid_and_the_picture_need_a_reader_key(api):
    assert grid(api, None).status == 401
    assert api.get("/api/brand-analytics/logo-heatmap.svg").status == 401


def test_the_picture_is_an_svg_with_a_viridis_cell_per_busy_cell_and_a_legend(api, reader):
    post(api, [point(0, 0)] * 3 + [point(1, 1)])
    svg = api.get("/api/brand-analytics/logo-heatmap.svg?size=4", api_key=reader, frozen_now=NOW).body
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    cells = [r for r in root.findall("s:rect", ns) if r.find("s:title", ns) is not None]
    assert len(cells) == 2
    fills = {r.find("s:title", ns).text.split(":")[0]: r.get("fill") for r in cells}
    # The busiest cell is viridis' yellow end, a cell of one point its purple start.
    assert fills == {"row 0, column 0": "#fde725", "row 3, column 3": "#440154"}
    assert root.find("s:desc", ns).text.startswith("Logo interaction heatmap, every theme, last 30 days: 4 points")
    assert len(root.findall("s:defs/s:linearGradient/s:stop", ns)) == 11
    assert re.search(r">3</text>", svg) and ">none</text>" in svg


def test_viridis_is_interpolated_between_its_stops(db):
    got = [db.execute("select app_logic.viridis(%s)", (t,)).fetchone()[0] for t in (0, 0.5, 1, 0.02, -1, 2)]
    assert got == ["#440154", "#21918c", "#fde725", "#45085b", "#440154", "#fde725"]


# -- retention and GDPR of the brand tables ----------------------------------------------------
def test_retention_removes_old_heatmaps_exposures_and_ended_tests(api, db, make_key):
    admin = make_key("admin")
    post(api, [point(0.5, 0.5)])
    api.post("/api/ab-tests", {"name": "old", "goal": "lead", "endsAt": "2026-12-01T10:00:00Z",
                               "variants": [{"name": "a", "design": {}, "weight": 1}, {"name": "b", "design": {}, "weight": 1}]},
             api_key=admin, frozen_now=NOW)
    api.get("/api/ab-tests/assignment?test=old&sessionId=s", frozen_now=NOW)
    kinds = ("logo_interaction_heatmaps", "ab_test_exposures", "ab_tests")

    def run(at):
        db.execute("select set_config('app.frozen_now', %s, false)", (at,))
        return {r[0]: r[1] for r in db.execute(
            "select kind, rows_removed from app_logic.apply_retention() where kind = any(%s)", (list(kinds),)
        ).fetchall()}

    assert run("2027-06-01T00:00:00Z") == dict.fromkeys(kinds, 0)
    assert run("2028-01-15T00:00:00Z") == {"logo_interaction_heatmaps": 1, "ab_test_exposures": 1, "ab_tests": 0}
    assert run("2030-01-15T00:00:00Z")["ab_tests"] == 1
    assert db.execute("select count(*) from app.ab_test_variants").fetchone()[0] == 0
    errors = db.execute("select kind, error from app.retention_runs where error is not null").fetchall()
    assert errors == []


def test_gdpr_export_and_erasure_cover_the_sessions_brand_data(api, db, make_key):
    admin = make_key("admin")
    api.post("/api/ab-tests", {"name": "t", "goal": "lead",
                               "variants": [{"name": "a", "design": {}, "weight": 1}, {"name": "b", "design": {}, "weight": 1}]},
             api_key=admin, frozen_now=NOW)
    for session in ("sess-ada", "sess-other"):
        api.get(f"/api/ab-tests/assignment?test=t&sessionId={session}", frozen_now=NOW)
        post(api, [point(0.1, 0.2, 30)], session=session)
    lead = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "gdprConsent": True, "sessionId": "sess-ada"}
    assert api.post("/api/leads", lead, frozen_now=NOW).status == 201
    exported = api.post("/api/gdpr/export", {"email": "ada@example.org"}, api_key=admin, frozen_now=NOW).body
    brand = exported["brandSessionData"]
    assert [e["sessionId"] for e in brand["abTestExposures"]] == ["sess-ada"]
    assert [(c["sessionId"], c["kind"]) for c in brand["abTestConversions"]] == [("sess-ada", "lead")]
    assert brand["logoInteractionHeatmaps"][0]["points"] == [{"x": 0.1, "y": 0.2, "durationMs": 30}]
    erased = api.post("/api/gdpr/erase", {"email": "ada@example.org"}, api_key=admin, frozen_now=NOW).body["removed"]
    assert (erased["abTestExposures"], erased["abTestConversions"], erased["logoInteractionHeatmaps"]) == (1, 1, 1)
    left = db.execute(
        "select (select array_agg(session_id) from app.ab_test_exposures),"
        " (select array_agg(session_id) from app.logo_interaction_heatmaps)"
    ).fetchone()
    assert left == (["sess-other"], ["sess-other"])
