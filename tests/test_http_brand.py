"""Brand intelligence end to end through nginx and PostgREST (issue 15): one session's A/B flow
(assignment, exposure, lead, conversion, results with a p-value), heatmap posts, the grid and
the SVG picture rendered to PNG (rsvg-convert) with its colours checked, and hostile requests
against every new endpoint: bodies, query strings, Prefer and Accept headers, keys."""

from __future__ import annotations

import json
import math
import secrets
import shutil
import subprocess

import pytest

from tests.support.png import read_png

pytestmark = pytest.mark.http

ERROR_KEYS = {"code", "message", "details", "hint"}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def keys(http):
    return {"admin": http.make_key("admin"), "reader": http.make_key("reader")}


def create_test(http, keys, name, goal="lead", weights=(1, 1)):
    body = {"name": name, "goal": goal,
            "variants": [{"name": f"v{i}", "design": {"logo": f"style-{i}"}, "weight": w} for i, w in enumerate(weights)]}
    return http.fresh_client().post("/api/ab-tests", json=body, headers={"X-API-Key": keys["admin"]})


# -- one session's flow ------------------------------------------------------------------------
def test_one_sessions_flow_assignment_exposure_lead_conversion_results(http, keys):
    name = unique("hero")
    assert create_test(http, keys, name).status_code == 201
    client, session = http.fresh_client(), unique("sess")
    first = client.get(f"/api/ab-tests/assignment?test={name}&sessionId={session}")
    assert first.status_code == 200, first.text
    assert set(first.json()) == {"test", "variant", "design"}
    assert client.get(f"/api/ab-tests/assignment?test={name}&sessionId={session}").json() == first.json()
    assert http.sql("select count(*) from app.ab_test_exposures where session_id = %s", (session,)) == [(1,)]
    lead = {"firstName": "Ada", "lastName": "Lovelace", "email": f"{session}@example.org", "gdprConsent": True,
            "sessionId": session}
    assert client.post("/api/leads", json=lead).status_code == 201
    assert http.sql("select kind from app.ab_test_conversions where session_id = %s", (session,)) == [("lead",)]
    rows = http.get(f"/api/brand-analytics/ab-tests?test=eq.{name}&accessibilityTheme=eq.all",
                    headers={"X-API-Key": keys["reader"]}).json()
    mine = next(r for r in rows if r["variant"] == first.json()["variant"])
    assert (mine["exposures"], mine["conversions"], mine["conversionRate"]) == (1, 1, 1.0)


def test_results_through_nginx_carry_the_z_test_p_value(http, keys):
    name = unique("cta")
    assert create_test(http, keys, name, goal="cta_click").status_code == 201
    converted = {"v0": 0, "v1": 0}
    seen = {"v0": 0, "v1": 0}
    client = http.fresh_client()
    for i in range(60):
        session = f"{name}-s{i}"
        variant = client.get(f"/api/ab-tests/assignment?test={name}&sessionId={session}").json()["variant"]
        seen[variant] += 1
        if (variant == "v1" and i % 2 == 0) or (variant == "v0" and i % 5 == 0):
            response = client.post("/api/ab-tests/conversions", json={"test": name, "sessionId": session, "kind": "cta_click"})
            assert response.status_code == 201
            converted[variant] += 1
    rows = {r["variant"]: r for r in http.get(
        f"/api/brand-analytics/ab-tests?test=eq.{name}&accessibilityTheme=eq.all", headers={"X-API-Key": keys["reader"]}
    ).json()}
    assert {v: rows[v]["exposures"] for v in rows} == seen
    x1, n1, x2, n2 = converted["v0"], seen["v0"], converted["v1"], seen["v1"]
    pooled = (x1 + x2) / (n1 + n2)
    z = abs(x2 / n2 - x1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert rows["v1"]["pValue"] == pytest.approx(math.erfc(z / math.sqrt(2)), abs=1e-6)
    assert rows["v1"]["uplift"] == pytest.approx((x2 / n2) / (x1 / n1) - 1)


# -- heatmaps and the picture --------------------------------------------------------------------
def test_heatmap_posts_the_grid_and_the_svg_rendered_to_png(http, keys, tmp_path):
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        pytest.skip("rsvg-convert not found: apt-get install librsvg2-bin")
    client = http.fresh_client()
    # Only this test posts achromatopsia heatmaps.
    points = [{"x": 0.05, "y": 0.05, "durationMs": 100}] * 3 + [{"x": 0.95, "y": 0.95, "durationMs": 400}]
    for _ in range(2):
        response = client.post("/api/logo-heatmaps", json={"sessionId": unique("hm"), "accessibilityTheme": "achromatopsia",
                                                           "points": points})
        assert response.status_code == 201, response.text
    grid = http.get("/api/brand-analytics/logo-heatmap?theme=achromatopsia&days=1&size=4",
                    headers={"X-API-Key": keys["reader"]}).json()
    assert grid["counts"][0][0] == 6 and grid["counts"][3][3] == 2 and grid["maxCount"] == 6
    svg = http.get("/api/brand-analytics/logo-heatmap.svg?theme=achromatopsia&days=1&size=4",
                   headers={"X-API-Key": keys["reader"], "Accept": "text/html,image/webp,*/*"})
    assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
    (tmp_path / "heatmap.svg").write_bytes(svg.content)
    subprocess.run([rsvg, "-o", str(tmp_path / "heatmap.png"), str(tmp_path / "heatmap.svg")], check=True, timeout=30)
    width, height, pixels = read_png((tmp_path / "heatmap.png").read_bytes())
    assert (width, height) == (640, 560)

    def rgb(x, y):
        return pixels[y][x][:3]

    # Cells are 120 px from (20, 60): the busiest is viridis' yellow; 2 of 1..6 sits at 0.2 of the
    # scale, viridis' blue-violet stop.
    assert rgb(80, 120) == (0xFD, 0xE7, 0x25)
    assert rgb(440, 480) == (0x41, 0x44, 0x87)
    assert rgb(200, 240) == (0xE8, 0xE8, 0xE8)
    # The legend bar runs from purple at the bottom to yellow at the top.
    top, bottom = rgb(542, 64), rgb(542, 416)
    assert top[0] > 200 and top[2] < 100 and bottom[0] < 100 and bottom[2] > 60


def test_a_bad_svg_query_is_a_json_400(http, keys):
    response = http.get("/api/brand-analytics/logo-heatmap.svg?size=1000", headers={"X-API-Key": keys["reader"]})
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["errors"][0]["field"] == "size"


# -- performance benchmarks ------------------------------------------------------------------------
BENCHMARK_RUN = {
    "pagePath": "/http-bench", "deviceType": "tablet", "accessibilityTheme": "tritanopia",
    "coreWebVitals": {"lcp": 2100, "inp": 90}, "threeJsRenderTimeMs": 140,
    "lighthouseScores": {"performance": 88, "accessibility": 100, "bestPractices": 92, "seo": 97},
}


def test_benchmark_runs_posted_by_ci_show_in_the_summary(http, keys):
    page = "/" + unique("page")
    runs = [{**BENCHMARK_RUN, "pagePath": page, "coreWebVitals": {"lcp": lcp}} for lcp in (1000, 2000, 3000, 4000)]
    one = http.fresh_client().post("/api/performance-benchmarks", json=runs[0], headers={"X-API-Key": keys["admin"]})
    assert (one.status_code, one.json()) == (201, {"status": "recorded", "count": 1})
    batch = http.fresh_client().post("/api/performance-benchmarks", json={"runs": runs[1:]}, headers={"X-API-Key": keys["admin"]})
    assert batch.json()["count"] == 3
    body = http.get(f"/api/brand-analytics/performance-benchmarks?days=1&pagePath={page}",
                    headers={"X-API-Key": keys["reader"]}).json()
    (row,) = body["rows"]
    assert (row["sampleCount"], row["p75"]["lcp"], row["meanScores"]["seo"]) == (4, 3250, 97)
    regressions = http.get("/api/brand-analytics/performance-benchmarks/regressions?days=1",
                           headers={"X-API-Key": keys["reader"]})
    assert regressions.status_code == 200 and isinstance(regressions.json()["regressions"], list)


# -- keys ------------------------------------------------------------------------------------------
ADMIN_POSTS = [
    ("/api/ab-tests", {"name": "k", "goal": "lead", "variants": []}),
    ("/api/ab-tests/stop", {"name": "k"}),
    ("/api/performance-benchmarks", {"pagePath": "/"}),
    ("/api/logo-materials", {"theme": "default", "material": {}}),
]
READER_GETS = [
    "/api/brand-analytics/ab-tests",
    "/api/brand-analytics/logo-heatmap",
    "/api/brand-analytics/logo-heatmap.svg",
    "/api/brand-analytics/performance-benchmarks",
    "/api/brand-analytics/performance-benchmarks/regressions",
]


@pytest.mark.parametrize("path, body", ADMIN_POSTS, ids=[p for p, _ in ADMIN_POSTS])
@pytest.mark.parametrize("key, status", [(None, 401), ("chk_wrong", 401), ("reader", 403)])
def test_admin_endpoints_refuse_no_key_a_wrong_key_and_a_reader_key(http, keys, path, body, key, status):
    headers = {"X-API-Key": keys.get(key, key)} if key else {}
    response = http.fresh_client().post(path, json=body, headers=headers)
    assert response.status_code == status
    assert set(response.json()) >= ERROR_KEYS


@pytest.mark.parametrize("path", READER_GETS)
@pytest.mark.parametrize("key, status", [(None, 401), ("chk_wrong", 401)])
def test_reader_endpoints_refuse_no_key_and_a_wrong_key(http, path, key, status):
    headers = {"X-API-Key": key} if key else {}
    assert http.get(path, headers=headers).status_code == status


def test_a_wrong_key_is_refused_on_the_public_endpoints_too(http):
    response = http.fresh_client().get("/api/ab-tests/assignment?test=a&sessionId=b", headers={"X-API-Key": "nope"})
    assert response.status_code == 401


def test_the_new_health_endpoints_answer_ok(http):
    for path in ("/api/ab-tests", "/api/ab-tests/stop", "/api/ab-tests/conversions", "/api/logo-heatmaps",
                 "/api/performance-benchmarks", "/api/logo-materials"):
        response = http.get(path + "/health")
        assert (response.status_code, response.json()["status"]) == (200, "ok"), path


# -- hostile requests ------------------------------------------------------------------------------
DEEP = 30_000


def heatmap_body(**overrides):
    return {"sessionId": "hostile", "accessibilityTheme": "default", "points": [{"x": 0.5, "y": 0.5, "durationMs": 1}],
            **overrides}


def raw_with(body: dict, extra: str) -> bytes:
    text = json.dumps(body)
    return (text[:-1] + ", " + extra + "}").encode()


# (name, path, body bytes, field a 400 must name or None); every one must store nothing.
HOSTILE_POSTS = [
    ("heatmap-number-body", "/api/logo-heatmaps", b"42", None),
    ("heatmap-array-body", "/api/logo-heatmaps", json.dumps([heatmap_body()]).encode(), None),
    ("heatmap-huge-x", "/api/logo-heatmaps", json.dumps(heatmap_body()).replace('"x": 0.5', '"x": 1e400').encode(), "points[0].x"),
    ("heatmap-huge-duration", "/api/logo-heatmaps", json.dumps(heatmap_body()).replace('"durationMs": 1', '"durationMs": -1e400').encode(),
     "points[0].durationMs"),
    ("heatmap-deep-points", "/api/logo-heatmaps", json.dumps(heatmap_body(points=None)).replace("null", "[" * DEEP + "]" * DEEP).encode(),
     "points[0]"),
    ("heatmap-deep-extra", "/api/logo-heatmaps", raw_with(heatmap_body(), '"extra": ' + "[" * DEEP + "]" * DEEP), "extra"),
    ("heatmap-nul", "/api/logo-heatmaps", raw_with(heatmap_body(), '"sessionId": "a\\u0000b"'), None),
    ("heatmap-lone-surrogate", "/api/logo-heatmaps", raw_with(heatmap_body(), '"sessionId": "\\ud800"'), None),
    ("heatmap-theme-homoglyph", "/api/logo-heatmaps", json.dumps(heatmap_body(accessibilityTheme="d\u0435fault")).encode(),
     "accessibilityTheme"),
    ("conversion-name-rtl-override", "/api/ab-tests/conversions",
     json.dumps({"test": "hero\u202elogo", "sessionId": "s", "kind": "cta_click"}).encode(), "test"),
    ("conversion-kind-zero-width", "/api/ab-tests/conversions",
     json.dumps({"test": "hero", "sessionId": "s", "kind": "cta\u200bclick"}).encode(), "kind"),
    ("conversion-session-too-long-in-emoji", "/api/ab-tests/conversions",
     json.dumps({"test": "hero", "sessionId": "\U0001F600" * 101, "kind": "cta_click"}).encode(), "sessionId"),
    ("benchmark-huge-score", "/api/performance-benchmarks", json.dumps(
        {"pagePath": "/", "deviceType": "mobile", "accessibilityTheme": "default",
         "lighthouseScores": {"performance": 1, "accessibility": 1, "bestPractices": 1, "seo": 1}}
    ).replace('"seo": 1', '"seo": 1e400').encode(), "lighthouseScores.seo"),
    ("benchmark-deep-batch", "/api/performance-benchmarks", ('{"runs": ' + "[" * DEEP + "]" * DEEP + "}").encode(), "runs[0]"),
    ("benchmark-bare-array", "/api/performance-benchmarks", b'[{"pagePath": "/"}, {"seo": 1}]', None),
    ("material-deep", "/api/logo-materials",
     ('{"theme": "default", "material": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}").encode(), "material.a"),
    ("material-huge-number", "/api/logo-materials", b'{"theme": "default", "material": {"metalness": 1e400}}',
     "material.metalness"),
    ("conversion-unknown-field", "/api/ab-tests/conversions",
     json.dumps({"test": "hero", "sessionId": "s", "kind": "cta_click", "variant": "v1"}).encode(), "variant"),
]


def brand_rows(http) -> tuple:
    return http.sql(
        "select (select count(*) from app.logo_interaction_heatmaps), (select count(*) from app.ab_test_conversions),"
        " (select count(*) from app.ab_test_exposures), (select count(*) from app.ab_tests),"
        " (select count(*) from app.performance_benchmarks),"
        " (select md5(jsonb_agg(material order by accessibility_theme)::text) from app.logo_materials)"
    )[0]


@pytest.mark.parametrize("path, body, field", [h[1:] for h in HOSTILE_POSTS], ids=[h[0] for h in HOSTILE_POSTS])
def test_a_hostile_body_gets_a_4xx_and_stores_nothing(http, keys, path, body, field):
    assert len(body) <= 64 * 1024
    before = brand_rows(http)
    response = http.fresh_client().post(path, data=body, headers={"Content-Type": "application/json", "X-API-Key": keys["admin"]})
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) >= ERROR_KEYS
    if field is not None:
        assert response.status_code == 400
        assert field in {e["field"] for e in response.json()["errors"]}
    assert brand_rows(http) == before


def test_a_hostile_test_definition_is_refused_and_stores_nothing(http, keys):
    before = brand_rows(http)
    deep_design = '{"name": "deep", "goal": "lead", "variants": [{"name": "a", "weight": 1, "design": ' \
        + '{"a": ' * 5000 + "1" + "}" * 5000 + '}, {"name": "b", "weight": 1e400, "design": {}}]}'
    for body in (deep_design.encode(),
                 json.dumps({"name": "w", "goal": "lead", "variants": [{"name": "a", "design": {}, "weight": 1e308}] * 2}).encode()):
        response = http.fresh_client().post("/api/ab-tests", data=body,
                                            headers={"Content-Type": "application/json", "X-API-Key": keys["admin"]})
        assert response.status_code == 400, response.text
    assert brand_rows(http) == before


HOSTILE_QUERIES = [
    "test=%FF%FE&sessionId=x",
    "test=a&sessionId=%00",
    "test=a&sessionId=" + "%F0%9F%98%80" * 101,
    "test=" + "a" * 3000 + "&sessionId=x",
    "test=a&sessionId=x&" + "&".join(f"p{i}=1" for i in range(200)),
    "test[]=a&sessionId=x",
    "%=%&test=a&sessionId=x",
    "test=a&test=b&sessionId=x",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=range(len(HOSTILE_QUERIES)))
def test_a_hostile_query_string_gets_a_400_naming_a_parameter(http, query):
    before = brand_rows(http)
    response = http.fresh_client().get("/api/ab-tests/assignment?" + query)
    assert response.status_code == 400, response.text
    # nginx refuses a query string that is not UTF-8 itself (CHP09); the SQL names the parameter.
    assert response.json()["code"] == "CHP09" or (response.json()["code"] == "CHV01" and response.json()["errors"])
    assert brand_rows(http) == before


@pytest.mark.parametrize("query", ["days=1e9999", "days=-1", "size=99999999999999999999999", "theme=%E2%80%AEdefault",
                                   "days=" + "9" * 5000])
def test_a_hostile_heatmap_query_gets_a_4xx(http, keys, query):
    for path in ("/api/brand-analytics/logo-heatmap", "/api/brand-analytics/logo-heatmap.svg"):
        response = http.get(f"{path}?{query}", headers={"X-API-Key": keys["reader"]})
        assert 400 <= response.status_code < 500, (path, response.text)


PREFERS = ["return=representation", "return=minimal", "count=exact", "tx=rollback", "tx=commit", "params=single-object",
           "resolution=merge-duplicates", "missing=default", "handling=strict", "max-affected=0", "timezone=Asia/Tokyo",
           "return=headers-only"]
ACCEPTS = ["application/json", "text/csv", "application/octet-stream", "application/vnd.pgrst.object+json",
           "application/vnd.pgrst.plan+json", "image/svg+xml", "text/plain", "*/*", "application/geo+json", "text/html"]


@pytest.mark.parametrize("header, values", [("Prefer", PREFERS), ("Accept", ACCEPTS)])
def test_every_prefer_and_accept_header_gets_no_5xx_on_the_new_endpoints(http, keys, header, values):
    name = unique("hdr")
    assert create_test(http, keys, name).status_code == 201
    for value in values:
        client = http.fresh_client()
        answers = [
            client.post("/api/logo-heatmaps", json=heatmap_body(), headers={header: value}),
            client.get(f"/api/ab-tests/assignment?test={name}&sessionId=s-{value}", headers={header: value}),
            client.post("/api/ab-tests/conversions", json={"test": name, "sessionId": f"s-{value}", "kind": "x"},
                        headers={header: value}),
            client.get("/api/brand-analytics/logo-heatmap?size=4", headers={header: value, "X-API-Key": keys["reader"]}),
            client.get("/api/brand-analytics/logo-heatmap.svg?size=4", headers={header: value, "X-API-Key": keys["reader"]}),
            client.get("/api/brand-analytics/ab-tests", headers={header: value, "X-API-Key": keys["reader"]}),
            client.post("/api/ab-tests/stop", json={"name": "nope"}, headers={header: value, "X-API-Key": keys["admin"]}),
            client.post("/api/performance-benchmarks", json={"runs": [BENCHMARK_RUN]}, headers={header: value, "X-API-Key": keys["admin"]}),
            client.get("/api/brand-analytics/performance-benchmarks?days=2", headers={header: value, "X-API-Key": keys["reader"]}),
            client.get("/api/brand-analytics/performance-benchmarks/regressions", headers={header: value, "X-API-Key": keys["reader"]}),
            client.get("/api/logo-materials?theme=achromatopsia", headers={header: value}),
            client.post("/api/logo-materials", json={"theme": "achromatopsia", "material": {}},
                        headers={header: value, "X-API-Key": keys["admin"]}),
        ]
        for response in answers:
            assert response.status_code < 500, (value, response.request.url, response.text)


# -- logo materials through nginx's cache ------------------------------------------------------------
def test_logo_materials_are_served_from_nginx_cache_and_revalidated_with_304s(http):
    theme = "deuteranopia"  # only this test reads this theme through the cache
    path = f"logo-materials?theme={theme}"
    first = http.get("/api/" + path)
    assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS", first.headers
    assert first.json()["theme"] == theme
    second = http.get("/api/" + path)
    assert (second.headers["X-Cache-Status"], second.json()) == ("HIT", first.json())
    assert second.headers["ETag"] == first.headers["ETag"]
    assert "max-age=" in second.headers["Cache-Control"]
    # A client holding the ETag gets 304 from the cache, without a body.
    again = http.get("/api/" + path, headers={"If-None-Match": first.headers["ETag"]})
    assert (again.status_code, again.content, again.headers["X-Cache-Status"]) == (304, b"", "HIT")


def test_a_logo_material_edit_is_visible_within_the_cache_lifetime(http, keys):
    import time

    http.sql("update app.settings set value = '1' where key = 'logo_materials_max_age'")
    try:
        path = "/api/logo-materials?theme=tritanopia"
        before = http.get(path)
        assert before.headers["Cache-Control"] == "public, max-age=1"
        value = round(secrets.randbelow(1000) / 1000, 3)
        edit = http.fresh_client().post("/api/logo-materials", json={"theme": "tritanopia", "material": {"roughness": value}},
                                        headers={"X-API-Key": keys["admin"]})
        assert edit.status_code == 200
        # max-age 1 s; nginx counts in whole seconds, so the entry is stale at most ~2 s after it was stored.
        deadline, seen = time.monotonic() + 4, []
        while time.monotonic() < deadline:
            response = http.get(path)
            seen.append(response.headers["X-Cache-Status"])
            if response.json()["material"]["roughness"] == value:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the edit did not show within 4 s: {seen}")
        # An unchanged stale entry is revalidated: the SQL answers 304 to nginx's If-None-Match.
        time.sleep(2.1)
        assert http.get(path).headers["X-Cache-Status"] == "REVALIDATED"
    finally:
        http.sql("update app.settings set value = '60' where key = 'logo_materials_max_age'")


def test_a_wrong_key_is_refused_even_when_the_answer_is_cached(http):
    path = "/api/logo-materials?theme=default"
    assert http.get(path).status_code == 200 and http.get(path).headers["X-Cache-Status"] == "HIT"
    refused = http.get(path, headers={"X-API-Key": "chk_wrong"})
    assert refused.status_code == 401 and refused.headers["X-Cache-Status"] == "BYPASS"


def test_other_query_string_gets_are_never_cached(http, keys):
    for _ in range(2):
        response = http.get("/api/brand-analytics/logo-heatmap?size=4", headers={"X-API-Key": keys["reader"]})
        assert response.headers.get("X-Cache-Status", "") == ""
