"""The limiter's upsert plan (issue 13): what PostgreSQL sets up for every limited request.

auto_explain logs the plan of the statement enforce_rate_limits runs (a nested statement), sent
to this connection as LOG messages. The plan must be the insert over one scan of the VALUES list
of the client's rows (in the order of the list, IP first: the lock order): no sort (a sort and a join for the pepper cost a submission 24k
instructions under callgrind), and the conflict clause of a returning client one call each for
its condition and its new log (its expressions inlined cost 14k more).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=timezone.utc)


def upsert_plan(db, email: str | None) -> str:
    plans: list[str] = []
    db.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    db.execute("load 'auto_explain'")
    for setting, value in (
        ("auto_explain.log_min_duration", "0"),
        ("auto_explain.log_nested_statements", "on"),
        ("auto_explain.log_verbose", "on"),
        ("client_min_messages", "log"),
    ):
        db.execute("select set_config(%s, %s, false)", (setting, value))
    with db.transaction():
        db.execute("select set_config('request.headers', '{\"x-real-ip\": \"198.51.100.40\"}', true)")
        db.execute("select app_logic.enforce_rate_limits('leads', %s)", (email,))
    db.execute("select set_config('client_min_messages', 'notice', false)")
    inserts = [p for p in plans if "Insert on app.rate_limit_counters" in p]
    assert len(inserts) == 1, plans
    return inserts[0]


def test_the_upsert_is_an_insert_over_one_scan_of_the_client_rows(db):
    plan = upsert_plan(db, "plan@example.org")
    nodes = re.findall(r"^\s*(?:->\s+)?([A-Z][A-Za-z ]*?)(?: on | using |  \(cost)", plan, flags=re.M)
    # The array of the scopes taken (an ARRAY sub-select over the CTE of the insert, whose rows
    # come from one scan of the VALUES list; no aggregate, which cost 8.6k instructions a call
    # to set up); the pepper is an InitPlan (an index scan run once).
    assert nodes == ["Result", "Insert", "Index Scan", "Values Scan", "CTE Scan"], plan
    assert re.search(r"InitPlan \d+ .*\n\s*->  CTE Scan on taken", plan), plan
    assert re.search(r"InitPlan 1 .*\n\s*->  Index Scan using settings_pkey on app\.settings", plan), plan
    # The keys are pgcrypto's hmac of the texts as they are (a UTF-8 database): no convert_to(),
    # two per key, each an encoding looked up by name (6k instructions a submission).
    assert "convert_to" not in plan and plan.count("hmac(") == 1, plan


def test_the_conflict_condition_is_one_call(db):
    plan = upsert_plan(db, None)
    (condition,) = re.findall(r"Conflict Filter: (.*)", plan)
    assert condition.startswith("app_logic.rate_limit_admits(c.hits, excluded.expires_at, "), condition
    assert not re.search(r"make_interval|live_hits|rate_limit_max|jsonb", condition), condition


def test_a_returning_client_is_still_counted_exactly(db):
    # The conflict clause's calls answer as its expressions did: the sliding window of 5 per 10
    # minutes, over a log the calls read and write.
    answers = []
    for second in (0, 60, 120, 180, 240, 300, 599, 600, 601):
        with db.transaction():
            db.execute("select set_config('request.headers', '{\"x-real-ip\": \"198.51.100.41\"}', true)")
            db.execute("select set_config('app.frozen_now', %s, true)", ((T0 + timedelta(seconds=second)).isoformat(),))
            (answer,) = db.execute("select app_logic.enforce_rate_limits('leads') is null").fetchone()
        answers.append(answer)
    # At 600 s the first hit leaves the window; at 601 the log is full again (60 s ... 600 s).
    assert answers == [True, True, True, True, True, False, False, True, False]
