"""The live relay's per-minute aggregation (chorus_db/live.py) without a stream: what a stream
sends after a change. End to end through nginx and in Chromium: tests/test_http_live.py."""

from __future__ import annotations

import calendar

from chorus_db.live import Aggregator, _iso

MINUTE = calendar.timegm((2026, 12, 2, 12, 0, 0))


def page_view(at: float) -> dict:
    return {"kind": "page_view", "at": at, "deviceType": "tablet"}


def test_the_minute_that_ended_is_sent_with_the_next_one():
    aggregator = Aggregator()
    aggregator.add(page_view(MINUTE + 10))
    sent = aggregator.version
    # Within one coalescing interval: the last view of 12:00, then two of 12:01.
    for at in (MINUTE + 59.9, MINUTE + 60.1, MINUTE + 60.2):
        aggregator.add(page_view(at))
    changed = aggregator.changed_since(sent)
    assert [(m["minute"], m["counts"]["page_view"]) for m in changed] == [
        ("2026-12-02T12:00:00Z", 2), ("2026-12-02T12:01:00Z", 2)]
    assert aggregator.changed_since(aggregator.version) == []


def test_only_the_minutes_kept_are_sent():
    aggregator = Aggregator(keep_minutes=2)
    for minute in range(4):
        aggregator.add(page_view(MINUTE + 60 * minute))
    assert [m["minute"] for m in aggregator.changed_since(0)] == ["2026-12-02T12:02:00Z", "2026-12-02T12:03:00Z"]
    assert len(aggregator.minute_version) == 2


def test_minutes_in_any_order_keep_the_memory_and_the_events_bounded():
    """Red team, session 11: notifications of 5,000 minutes in a shuffled order (late commits,
    a clock stepped back and forth): at most keep_minutes buckets and versions are kept, and a
    stream that slept through all of it gets at most keep_minutes events."""
    import random

    rng = random.Random(11)
    aggregator = Aggregator(keep_minutes=10)
    minutes = [MINUTE + 60 * rng.randrange(5000) for _ in range(20000)]
    for at in minutes:
        aggregator.add(page_view(at + rng.random() * 59))
        assert len(aggregator.minutes) <= 10 and set(aggregator.minute_version) <= set(aggregator.minutes)
    changed = aggregator.changed_since(0)
    assert 0 < len(changed) <= 10
    assert [m["minute"] for m in changed] == sorted(m["minute"] for m in changed)
    # What is kept is the newest minutes seen, each sent once per change.
    kept = sorted(set(minutes))[-10:]
    assert [m["minute"] for m in aggregator.recent()] == [_iso(m) for m in kept]
