"""POST /api/page-views through the PostgREST-request helper, and the monthly partitions of
app.page_views: what is stored (no IP, no user agent, the referrer's host only), bad input,
the rate limit, the partition job and a missing partition."""

from __future__ import annotations

import json

import psycopg
import pytest

from chorus_db import testing
from chorus_db.build import build
from chorus_db.drift import drift
from tests.support import direct

PAGE_VIEWS = "/api/page-views"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 PageViewTest"
CLIENT_IP = "198.51.100.23"


def rows(db):
    return db.execute(
        "select session_id, path, referrer_host, device_type, duration_ms from app.page_views order by id"
    ).fetchall()


def test_a_page_view_is_recorded_with_the_referrers_host_only(api, db):
    body = {
        "sessionId": "sess_abc123",
        "path": "/ecosystem",
        "referrer": "https://Www.Google.COM/search?q=chorus+services&client=firefox",
        "deviceType": "desktop",
        "durationMs": 5400,
    }
    response = api.post(PAGE_VIEWS, body)
    assert response.status == 201, response.body
    assert response.body == {"status": "recorded"}
    assert rows(db) == [("sess_abc123", "/ecosystem", "www.google.com", "desktop", 5400)]


def test_no_ip_and_no_user_agent_are_stored_with_a_page_view(api, db):
    response = api.post(
        PAGE_VIEWS, {"sessionId": "s", "path": "/"}, client_ip=CLIENT_IP, headers={"User-Agent": USER_AGENT}
    )
    assert response.status == 201
    (stored,) = db.execute("select to_jsonb(v)::text from app.page_views as v").fetchone()
    assert CLIENT_IP not in stored and "Firefox" not in stored
    columns = {r[0] for r in db.execute(
        "select attname from pg_attribute where attrelid = 'app.page_views'::regclass and attnum > 0"
    )}
    assert columns == {"id", "session_id", "path", "referrer_host", "device_type", "duration_ms", "viewed_at"}


def test_the_path_is_stored_without_its_query_string_or_fragment(api, db):
    assert api.post(PAGE_VIEWS, {"sessionId": "s", "path": "/contact?email=ada@example.com#form"}).status == 201
    assert rows(db)[0][1] == "/contact"


def test_an_empty_referrer_means_none(api, db):
    assert api.post(PAGE_VIEWS, {"sessionId": "s", "path": "/", "referrer": ""}).status == 201
    assert rows(db)[0][2] is None


# The validation table (every rule, one bad field at a time) is pgTAP's:
# db/tests/060-page-views.sql. Here: what a refusal looks like through PostgREST's path.
def test_an_invalid_page_view_is_a_400_naming_the_field_and_stores_nothing(api, db):
    response = api.post(PAGE_VIEWS, {"sessionId": "s", "path": "/a b"}, client_ip=None)
    assert response.status == 400
    assert response.body["code"] == "CHV01"
    assert [e["field"] for e in response.body["errors"]] == ["path"]
    for raw in ("[]", '"/"', "null", "{}"):
        response = api.post(PAGE_VIEWS, raw_body=raw, client_ip=None)
        assert response.status == 400, (raw, response.body)
    assert rows(db) == []


ODD_VALUES = ['""', '"x"', "-1", "1.5", "1e400", "2147483648", "true", "{}", "[]", '"https://"', '"/\\u00e9"']


def test_no_value_of_any_field_causes_an_error(db):
    rule = db.execute("select app_logic.record_page_view_rule()").fetchone()[0]
    fields = sorted(rule["properties"])
    assert fields == ["deviceType", "durationMs", "path", "referrer", "sessionId"]
    for n, (field, value) in enumerate((f, v) for f in fields for v in ODD_VALUES):
        body = {k: v for k, v in {"sessionId": "s", "path": "/"}.items() if k != field}
        raw = json.dumps(body)[:-1] + f', "{field}": {value}}}'
        status, answer = direct.call(db, "api.record_page_view", raw, client_ip=f"198.51.100.{n + 1}")
        assert status in (201, 400), (field, value, answer)
        if status == 400:
            assert field in answer["details"], (field, value, answer)


def test_the_121st_page_view_of_a_client_within_a_minute_is_a_429(db):
    frozen = db.execute("select date_trunc('minute', now())::text").fetchone()[0]
    raw = json.dumps({"sessionId": "s", "path": "/"})
    for n in range(120):
        status, answer = direct.call(db, "api.record_page_view", raw, frozen_now=frozen)
        assert status == 201, (n, answer)
    status, answer = direct.call(db, "api.record_page_view", raw, frozen_now=frozen)
    assert status == 429 and answer["code"] == "CHR01"
    assert db.execute("select count(*) from app.page_views").fetchone()[0] == 120


def test_bad_page_views_count_towards_the_limit_and_429_says_when_to_retry(api, db):
    db.execute("update app.rate_limit_rules set max_requests = 2 where action = 'page_views'")
    minute = db.execute("select date_trunc('minute', now())").fetchone()[0]
    assert api.post(PAGE_VIEWS, {"path": "/"}, frozen_now=minute.replace(second=1).isoformat()).status == 400
    assert api.post(PAGE_VIEWS, {"sessionId": "s", "path": "/"}, frozen_now=minute.replace(second=2).isoformat()).status == 201
    limited = api.post(PAGE_VIEWS, {"sessionId": "s", "path": "/"}, frozen_now=minute.replace(second=40).isoformat())
    assert limited.status == 429
    # Sliding window: the bad request at :01 still counts and leaves the window at :61.
    assert limited.headers["Retry-After"] == "21"
    assert len(rows(db)) == 1


# -- partitions ----------------------------------------------------------------------------------


def partitions(db) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            """select c.relname::text from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
               where i.inhparent = 'app.page_views'::regclass order by 1"""
        )
    ]


def test_every_build_holds_the_partitions_of_this_month_and_the_next_three(db):
    expected = [
        r[0]
        for r in db.execute(
            "select app_logic.page_view_partition_name(now() + make_interval(months => m)) from generate_series(0, 3) as m"
        )
    ]
    assert set(expected) <= set(partitions(db))


def test_the_partition_job_makes_the_months_ahead_from_the_frozen_clock(db):
    db.execute("set app.frozen_now = '2033-11-05 08:00:00+00'")
    assert db.execute("select app_logic.ensure_page_view_partitions(3)").fetchone()[0] == 4
    assert [p for p in partitions(db) if p.startswith("page_views_203")] == [
        "page_views_2033_11", "page_views_2033_12", "page_views_2034_01", "page_views_2034_02",
    ]
    assert db.execute("select app_logic.ensure_page_view_partitions(3)").fetchone()[0] == 0


def test_a_page_view_without_a_partition_for_its_month_is_a_503_and_stores_nothing(api, db):
    response = api.post(PAGE_VIEWS, {"sessionId": "s", "path": "/"}, frozen_now="2041-02-10T00:00:00Z")
    assert response.status == 503
    assert response.body["code"] == "CHU01"
    assert "page_views_2041_02" in response.body["details"]
    assert rows(db) == []


def test_a_page_view_lands_in_the_partition_of_its_month(api, db):
    db.execute("set app.frozen_now = '2033-11-05 08:00:00+00'")
    db.execute("select app_logic.ensure_page_view_partitions(1)")
    assert api.post(PAGE_VIEWS, {"sessionId": "s", "path": "/"}, frozen_now="2033-12-01T00:00:00Z").status == 201
    assert db.execute("select tableoid::regclass::text from app.page_views").fetchone()[0] == "app.page_views_2033_12"


def test_drift_ignores_partitions_made_by_the_job_since_the_build(db, db_url):
    db.execute("set app.frozen_now = '2033-11-05 08:00:00+00'")
    db.execute("select app_logic.ensure_page_view_partitions(0)")
    assert drift(db_url) == ""


@pytest.fixture
def cron_db_url(pg_cluster):
    """The database pg_cron serves (cron.database_name), built from the source."""
    url = testing.recreate_database(pg_cluster, pg_cluster.cron_database)
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select cron.unschedule(jobid) from cron.job where jobname like 'chorus_website:%'")


def test_the_build_schedules_the_daily_partition_job(cron_db_url):
    result = build(cron_db_url, log=lambda _m: None)
    assert "chorus_website:page-view-partitions" in result.jobs_scheduled
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        schedule, command, active = conn.execute(
            "select schedule, command, active from cron.job where jobname = 'chorus_website:page-view-partitions'"
        ).fetchone()
        assert (schedule, active) == ("17 3 * * *", True)
        assert command == "select app_logic.ensure_page_view_partitions(3)"
        # What the job runs works, and finds nothing left to do right after a build.
        assert conn.execute(command).fetchone()[0] == 0
