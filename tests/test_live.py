"""The live relay's per-minute aggregation (chorus_db/live.py) without a stream: what a stream
sends after a change. End to end through nginx and in Chromium: tests/test_http_live.py."""

from __future__ import annotations

import calendar

from chorus_db.live import Aggregator

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
