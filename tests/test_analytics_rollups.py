"""The day rollups of the two analytics over sealed fields (db/functions/070-analytics.sql):
accessibility-usage and design-effectiveness answer exactly what their rows give, with or
without rollups, whatever the window's ends (midnight, mid-day), for sessions that post on
several days; a rolled-up day is read from its rollup; and any write to a rolled-up day drops
its rollup in the same transaction. The reference is the views' former SQL over the per-row
decrypting readers (app_logic.opened_preference_themes / opened_engagement_counts)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from psycopg.types.json import Jsonb

# A past month (the job rolls up only days that have ended by the clock).
NOW = datetime(2025, 3, 20, 0, 0, tzinfo=timezone.utc)
THEMES = ["default", "protanopia", "deuteranopia", "tritanopia", "achromatopsia"]
# Window ends: midnight (every inner day whole), mid-day (two partial days), and later ones.
ENDS = [NOW, NOW + timedelta(hours=13, minutes=37), NOW - timedelta(days=9, hours=5), NOW + timedelta(days=12)]

USAGE_FROM_ROWS = """
select themes.theme, count(p.created_at)::integer, avg(p.session_duration)::double precision
from (values (1, 'default'), (2, 'protanopia'), (3, 'deuteranopia'), (4, 'tritanopia'), (5, 'achromatopsia'))
    as themes (position, theme)
left join app_logic.opened_preference_themes(app_logic.now() - interval '30 days', app_logic.now()) as p
    on themes.theme = p.accessibility_theme
group by themes.position, themes.theme
order by themes.position
"""
DESIGN_FROM_ROWS = """
with per_session as (
    select e.session_id, max(e.scroll_depth_percentage) as scroll_depth, max(e.cta_clicks) as cta_clicks
    from app_logic.opened_engagement_counts(app_logic.now() - interval '30 days', app_logic.now()) as e
    group by e.session_id
)
select count(*)::integer, avg(scroll_depth)::double precision, avg(cta_clicks)::double precision from per_session
"""
USAGE = 'select "accessibilityTheme", sessions, "meanSessionDuration" from api.accessibility_usage'
DESIGN = 'select sessions, "meanScrollDepthPercentage", "meanCtaClicksPerSession" from api.design_effectiveness'


@pytest.fixture
def rows(db):
    """Sealed preferences and engagement over 50 days before NOW; sessions post 1 to 4 times,
    on one day or several, some with no scroll depth or duration."""
    rng = random.Random(20250320)
    prefs = []
    for n in range(400):
        created = NOW - timedelta(seconds=rng.uniform(-5 * 86400, 50 * 86400))
        prefs.append((f"p{n}", rng.choice(THEMES), rng.choice([None, rng.randrange(0, 900000)]), created, created))
    db.cursor().executemany(
        "insert into app.accessibility_preferences (session_id, accessibility_theme, session_duration, created_at, last_updated)"
        " values (%s, %s, %s, %s, %s)",
        prefs,
    )
    posts = []
    for n in range(300):
        first = NOW - timedelta(seconds=rng.uniform(-5 * 86400, 50 * 86400))
        for k in range(rng.randrange(1, 5)):
            # Most snapshots within the hour, some a day or three later (another day).
            later = timedelta(minutes=rng.uniform(0, 50)) if rng.random() < 0.7 else timedelta(days=rng.uniform(0.5, 3))
            posts.append((f"e{n}", rng.choice([None, rng.randrange(0, 101)]),
                          Jsonb([f"cta-{i}" for i in range(rng.randrange(0, 7))]), first + later * k))
    db.cursor().executemany(
        "insert into app.brand_engagement (session_id, scroll_depth_percentage, cta_clicks, created_at) values (%s, %s, %s, %s)",
        posts,
    )
    (clear,) = db.execute(
        "select (select count(*) from app.accessibility_preferences where sealed is null)"
        " + (select count(*) from app.brand_engagement where sealed is null)"
    ).fetchone()
    assert clear == 0, "the rows are sealed"
    return db


def answers(db, end: datetime) -> tuple:
    db.execute("select set_config('app.frozen_now', %s, false)", (end.isoformat(),))
    return (db.execute(USAGE).fetchall(), db.execute(DESIGN).fetchall())


def from_rows(db, end: datetime) -> tuple:
    db.execute("select set_config('app.frozen_now', %s, false)", (end.isoformat(),))
    return (db.execute(USAGE_FROM_ROWS).fetchall(), db.execute(DESIGN_FROM_ROWS).fetchall())


def rollups(db) -> tuple[int, int]:
    return db.execute(
        "select (select count(*) from app.preference_theme_days), (select count(*) from app.engagement_days)"
    ).fetchone()


def test_the_answers_are_those_of_the_rows_before_and_after_the_days_are_rolled_up(rows):
    db = rows
    expected = {end: from_rows(db, end) for end in ENDS}
    assert any(e[1][0][0] > 0 for e in expected.values()) and any(e[0][1][1] > 0 for e in expected.values())
    assert rollups(db) == (0, 0)
    for end in ENDS:
        assert answers(db, end) == expected[end], end
    db.execute("call app_logic.refresh_analytics_rollups()")
    # Every ended day with rows is rolled up (about 55 days each).
    prefs, engagement = rollups(db)
    assert prefs >= 50 and engagement >= 50
    for end in ENDS:
        assert answers(db, end) == expected[end], end
    # Exact, not close: the means are the same numeric division as avg().
    assert answers(db, NOW)[1] == expected[NOW][1]


def test_a_rolled_up_day_is_read_from_its_rollup(rows):
    db = rows
    db.execute("call app_logic.refresh_analytics_rollups()")
    before = answers(db, NOW)
    day = (NOW - timedelta(days=10)).date()
    (theme,) = db.execute(
        "select min(k) from app.preference_theme_days as d, jsonb_object_keys(d.themes) as k where d.day = %s", (day,)
    ).fetchone()
    assert theme is not None
    # A rollup that lied would show: the answer moves with it (so the rows are not read again).
    db.execute("update app.engagement_days set sessions = sessions + 1000 where day = %s", (day,))
    db.execute(
        "update app.preference_theme_days set themes = jsonb_set(themes, array[%s, '0'], "
        "to_jsonb((themes -> %s ->> 0)::bigint + 1000)) where day = %s",
        (theme, theme, day),
    )
    usage, design = answers(db, NOW)
    assert design[0][0] == before[1][0][0] + 1000
    assert dict((t, n) for t, n, _m in usage)[theme] == dict((t, n) for t, n, _m in before[0])[theme] + 1000


@pytest.mark.parametrize(
    "change",
    [
        "insert into app.brand_engagement (session_id, scroll_depth_percentage, cta_clicks, created_at) "
        "values ('late', 100, '[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\"]', %(at)s)",
        "insert into app.accessibility_preferences (session_id, accessibility_theme, session_duration, created_at) "
        "values ('late', 'tritanopia', 5, %(at)s)",
        "update app.accessibility_preferences set accessibility_theme = 'achromatopsia' "
        "where created_at between %(at)s and %(at)s + interval '1 day'",
        "update app.brand_engagement set cta_clicks = '[]' where created_at between %(at)s and %(at)s + interval '1 day'",
        "delete from app.brand_engagement where created_at between %(at)s and %(at)s + interval '1 day'",
        "delete from app.accessibility_preferences where created_at between %(at)s and %(at)s + interval '1 day'",
    ],
)
def test_a_write_to_a_rolled_up_day_drops_its_rollup_in_the_same_transaction(rows, change):
    db = rows
    db.execute("call app_logic.refresh_analytics_rollups()")
    at = datetime.combine((NOW - timedelta(days=10)).date(), datetime.min.time(), timezone.utc) + timedelta(hours=6)
    with db.transaction():
        db.execute(change, {"at": at})
        # Inside the writing transaction the answers already follow the rows.
        for end in ENDS:
            assert answers(db, end) == from_rows(db, end), end
    table = "brand_engagement" if "brand_engagement" in change else "accessibility_preferences"
    rollup = "engagement_days" if table == "brand_engagement" else "preference_theme_days"
    assert db.execute(f"select count(*) from app.{rollup} where day = %s", (at.date(),)).fetchone()[0] == 0
    db.execute("call app_logic.refresh_analytics_rollups()")
    for end in ENDS:
        assert answers(db, end) == from_rows(db, end), end


def test_truncate_drops_every_rollup_of_the_table_and_today_is_never_rolled_up(rows):
    db = rows
    db.execute("insert into app.brand_engagement (session_id, scroll_depth_percentage) values ('today', 50)")
    db.execute("call app_logic.refresh_analytics_rollups()")
    (today,) = db.execute("select (clock_timestamp() at time zone 'UTC')::date").fetchone()
    assert db.execute("select count(*) from app.engagement_days where day >= %s", (today,)).fetchone()[0] == 0
    db.execute("truncate app.brand_engagement")
    assert rollups(db)[1] == 0 and rollups(db)[0] > 0
    for end in ENDS:
        assert answers(db, end) == from_rows(db, end), end


def test_the_rollups_and_their_writers_are_closed_to_the_web_roles(db):
    for role in ("anon", "reader", "admin", "authenticator"):
        for table in ("app.preference_theme_days", "app.engagement_days"):
            assert not db.execute("select has_table_privilege(%s, %s, 'select')", (role, table)).fetchone()[0]
        for function in ("app_logic.roll_up_preference_day(date)", "app_logic.roll_up_engagement_day(date)"):
            assert not db.execute("select has_function_privilege(%s, %s, 'execute')", (role, function)).fetchone()[0]
