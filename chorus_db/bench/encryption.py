"""`invoke bench --only encryption`: what field-level encryption (db/functions/045-field-encryption.sql)
costs, as ratios measured in alternation in the same run:

* ingest: POST /api/accessibility-preferences and /api/brand-engagement as PostgREST runs them,
  with the seal trigger on (the profiling fields encrypted) and off (stored in clear);
* analytics: GET /api/brand-analytics/accessibility-usage and design-effectiveness over the same
  number of rows, once over a month of sealed rows and once over a month of rows in clear (the
  clock frozen at the end of each month), both months' ended days rolled up as the hourly job
  leaves them."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from ..cluster import Cluster
from .common import BENCH_DB, BENCH_DIR, Check, Report, Subject, alternate

CLIENTS_NOTE = "pgbench, 16 clients, prepared statements"
PREFERENCES = Check("app.accessibility_preferences", "select count(*) from app.accessibility_preferences")
ENGAGEMENT = Check("app.brand_engagement", "select count(*) from app.brand_engagement")
TABLES = ("accessibility_preferences", "brand_engagement")
SEAL_ON = "; ".join(f"alter table app.{t} enable trigger seal_fields" for t in TABLES)
SEAL_OFF = "; ".join(f"alter table app.{t} disable trigger seal_fields" for t in TABLES)
# The same rows twice, 10 minutes apart (about 14 days): sealed from 80 days ago, in clear from
# 45 days ago, each read through a 30-day window that holds its own rows only. Past days, which
# the hourly job has rolled up (db/functions/070-analytics.sql), as on a live site; younger than
# every retention rule, so the retention part leaves them alone.
ANALYTICS_ROWS = 2000  # named in the analytics ratio below


def _windows() -> dict[str, tuple[str, str]]:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return {label: ((today - timedelta(days=back)).isoformat(), (today - timedelta(days=back - 30)).isoformat())
            for label, back in (("sealed", 80), ("clear", 45))}


WINDOWS = _windows()
POPULATE = """
insert into app.accessibility_preferences (session_id, accessibility_theme, reduced_motion, session_duration, created_at, last_updated)
select 'bench-{label}-' || n, (array['default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia'])[1 + n % 5],
       n % 3 = 0, 1000 * (n % 97), timestamptz '{start}' + n * interval '10 minutes', timestamptz '{start}' + n * interval '10 minutes'
from generate_series(1, {rows}) as n;
insert into app.brand_engagement (session_id, scroll_depth_percentage, cta_clicks, accessibility_features_used, created_at)
select 'bench-{label}-' || n, n % 101, (select coalesce(jsonb_agg(jsonb_build_object('id', 'cta' || k)), '[]') from generate_series(1, n % 6) as k),
       '["keyboard-navigation"]', timestamptz '{start}' + n * interval '10 minutes'
from generate_series(1, {rows}) as n;
"""


# POST /api/accessibility-preferences framed as PostgREST frames the engagement post of
# bench/brand_engagement_api.sql (the same statements; only the function and its body differ).
PREFERENCES_BODY = (
    """'{"sessionId": "s%s", "accessibilityTheme": "protanopia", "reducedMotion": true, "highContrast": true,'\n"""
    """            ' "fontSizePreference": "large", "logoInteractionCount": 3, "sessionDuration": 120000}',\n"""
)


def _preferences_script(directory: Path) -> Path:
    text = (BENCH_DIR / "brand_engagement_api.sql").read_text()
    start = text.index("'{\"sessionId\"")
    end = text.index("gen_random_uuid()", start)
    body = text[:start] + PREFERENCES_BODY + " " * 12 + text[end:]
    path = directory / "accessibility_preferences_api.sql"
    path.write_text(body.replace("record_brand_engagement", "save_accessibility_preferences"))
    return path


def _analytics_script(directory: Path, label: str, window_end: str) -> Path:
    path = directory / f"analytics_{label}.sql"
    path.write_text((BENCH_DIR / "analytics_api.sql").read_text().replace("__window_end__", window_end))
    return path


def _populate(cluster: Cluster) -> None:
    with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
        for label, (start, _end) in WINDOWS.items():
            conn.execute(SEAL_ON if label == "sealed" else SEAL_OFF)
            conn.execute(POPULATE.format(label=label, start=start, rows=ANALYTICS_ROWS))
        conn.execute(SEAL_ON)
        # What the hourly job does to days that have ended (chorus_website:analytics-rollups).
        conn.execute("call app_logic.refresh_analytics_rollups()")
        clear = conn.execute("select count(*) from app.accessibility_preferences where key_version is null").fetchone()[0]
        assert clear == ANALYTICS_ROWS, "the clear month holds the rows in clear"
        answers = {}
        for label, (_start, end) in WINDOWS.items():
            conn.execute("select set_config('app.frozen_now', %s, false)", (end,))
            answers[label] = conn.execute(
                "select (select jsonb_agg(t) from api.accessibility_usage as t), (select jsonb_agg(t) from api.design_effectiveness as t)"
            ).fetchone()
        # Equal answers over equal rows: what is compared is the decryption, nothing else.
        assert answers["sealed"] == answers["clear"], "the sealed and the clear month must give the same analytics"


def encryption_cost(report: Report, cluster: Cluster, seconds: int, rounds: int) -> None:
    print(f"Field-level encryption ({CLIENTS_NOTE})")
    tmp = tempfile.TemporaryDirectory(prefix="chorus-bench-enc-")
    preferences = _preferences_script(Path(tmp.name))
    try:
        ingest = alternate(
            report, cluster,
            [
                Subject("preferences post (encrypted)", preferences, "authenticator", SEAL_ON, (PREFERENCES,)),
                Subject("preferences post (clear)", preferences, "authenticator", SEAL_OFF, (PREFERENCES,)),
                Subject("engagement post (encrypted)", BENCH_DIR / "brand_engagement_api.sql", "authenticator",
                        SEAL_ON, (ENGAGEMENT,)),
                Subject("engagement post (clear)", BENCH_DIR / "brand_engagement_api.sql", "authenticator",
                        SEAL_OFF, (ENGAGEMENT,)),
            ],
            rounds, seconds,
        )
        with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
            conn.execute(SEAL_ON)
            conn.execute("truncate app.accessibility_preferences, app.brand_engagement")
        _populate(cluster)
        read = alternate(
            report, cluster,
            [
                Subject(f"analytics over {ANALYTICS_ROWS} sealed rows",
                        _analytics_script(Path(tmp.name), "sealed", WINDOWS["sealed"][1]), "authenticator"),
                Subject(f"analytics over {ANALYTICS_ROWS} clear rows",
                        _analytics_script(Path(tmp.name), "clear", WINDOWS["clear"][1]), "authenticator"),
            ],
            rounds, seconds,
        )
    finally:
        tmp.cleanup()
        with psycopg.connect(cluster.url(BENCH_DB), autocommit=True) as conn:
            conn.execute(SEAL_ON)
    prefs = ingest["preferences post (encrypted)"]["tps"] / ingest["preferences post (clear)"]["tps"]
    engagement = ingest["engagement post (encrypted)"]["tps"] / ingest["engagement post (clear)"]["tps"]
    analytics = read[f"analytics over {ANALYTICS_ROWS} sealed rows"]["tps"] / read[f"analytics over {ANALYTICS_ROWS} clear rows"]["tps"]
    report.ratios["encrypted-ingest/clear (the lower of preferences and engagement posts)"] = min(prefs, engagement)
    report.figures["encryption: preferences posts encrypted / clear"] = round(prefs, 3)
    report.figures["encryption: engagement posts encrypted / clear"] = round(engagement, 3)
    report.ratios["encrypted-analytics/clear (accessibility-usage + design-effectiveness over 2000 rows)"] = analytics
    report.notes.append(
        f"Field-level encryption keeps {prefs:.2f} of the preferences posts and {engagement:.2f} of the engagement posts per "
        f"second (one pgcrypto encryption and one read of the key file per row), and {analytics:.2f} of the analytics reads "
        f"over {ANALYTICS_ROWS} rows per table (ended days from their rollups; a decryption per row of the window's "
        f"partial first day, the key file read once per query)."
    )
