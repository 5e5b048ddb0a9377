"""Page views in batches through nginx and PostgREST: POST /api/page-views with {"events": [...]}
of up to 100; each event validated and counted as a single one; all or nothing."""

from __future__ import annotations

import secrets

import pytest

pytestmark = pytest.mark.http


def events(session: str, n: int, **extra) -> dict:
    """A batch of n page views; every other one leaves out the optional fields."""
    return {"events": [
        {"sessionId": session, "path": f"/p{i}?q=1", **(extra if i % 2 else {"deviceType": "mobile", **extra})}
        for i in range(n)
    ]}


def stored(http, session: str) -> int:
    return http.sql("select count(*) from app.page_views where session_id = %s", (session,))[0][0]


def session_id() -> str:
    return f"batch_{secrets.token_hex(6)}"


def test_a_batch_of_100_page_views_is_201_with_its_count_and_all_stored(http):
    session = session_id()
    response = http.fresh_client().post("/api/page-views", json=events(session, 100))
    assert (response.status_code, response.json()) == (201, {"status": "recorded", "count": 100})
    assert stored(http, session) == 100
    assert http.sql("select count(*) from app.page_views where session_id = %s and path like '%%?%%'", (session,)) == [(0,)]


def test_a_partly_bad_batch_is_a_400_naming_each_bad_event_and_stores_nothing(http):
    session = session_id()
    batch = events(session, 5)
    batch["events"][1]["path"] = "no-slash"
    batch["events"][4]["deviceType"] = "fridge"
    response = http.fresh_client().post("/api/page-views", json=batch)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "CHV01"
    assert [e["field"] for e in body["errors"]] == ["events[1].path", "events[4].deviceType"]
    assert stored(http, session) == 0


@pytest.mark.parametrize(
    "batch, field",
    [
        ({"events": []}, "events"),
        ({"events": [{"sessionId": "x", "path": "/"}] * 101}, "events"),
        ({"events": {"sessionId": "x", "path": "/"}}, "events"),
        ({"events": ["not an event"]}, "events[0]"),
        ({"events": [[{"sessionId": "x", "path": "/"}]]}, "events[0]"),
        ({"events": [{"sessionId": "x", "path": "/", "durationMs": 10 ** 30}]}, "events[0].durationMs"),
        ({"events": [{"sessionId": "x", "path": "/", "durationMs": 1e308}]}, "events[0].durationMs"),
        ({"events": [{"sessionId": "x", "path": "/a b"}]}, "events[0].path"),
        ({"events": [{"sessionId": "x", "path": "/", "nested": {"a": [[[[[[]]]]]]}}]}, "events[0].nested"),
        ({"events": [{"sessionId": "x", "path": "/"}], "e\u0301vents": []}, "e\u0301vents"),
        ([{"sessionId": "x", "path": "/"}], "body"),
    ],
    ids=["empty", "101-events", "an-object", "a-string", "an-array", "huge-integer", "huge-float", "space-in-path",
         "unknown-deep-field", "unicode-lookalike-key", "bare-array"],
)
def test_hostile_batches_are_a_400_naming_the_field_never_a_5xx(http, batch, field):
    response = http.fresh_client().post("/api/page-views", json=batch)
    assert response.status_code == 400, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_a_batch_over_64_kib_is_refused_by_nginx(http):
    response = http.fresh_client().post("/api/page-views", json=events(session_id(), 100, referrer="https://e.com/" + "r" * 700))
    assert response.status_code == 413


@pytest.mark.parametrize(
    "headers",
    [{"Prefer": "params=multiple-objects"}, {"Prefer": "return=representation"}, {"Prefer": "tx=rollback"},
     {"Accept": "text/csv"}, {"Accept": "application/vnd.pgrst.object+json"}],
    ids=["multiple-objects", "representation", "tx-rollback", "csv", "singular"],
)
def test_prefer_and_accept_headers_do_not_change_what_a_batch_stores_or_counts(http, headers):
    session = session_id()
    client = http.fresh_client()
    response = client.post("/api/page-views", json=events(session, 3), headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code == 201:
        assert stored(http, session) == 3
    else:
        assert stored(http, session) == 0


def test_each_event_of_a_batch_counts_against_the_clients_limit(http):
    client = http.fresh_client()
    first = client.post("/api/page-views", json=events(session_id(), 100))
    assert first.status_code == 201
    # 120 per minute: 20 slots are left, a batch of 21 does not fit and takes none of them.
    refused = client.post("/api/page-views", json=events(session_id(), 21))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert client.post("/api/page-views", json=events(session_id(), 20)).status_code == 201
    assert client.post("/api/page-views", json={"sessionId": session_id(), "path": "/"}).status_code == 429


def test_a_bare_array_whose_events_differ_in_keys_is_a_4xx_and_never_a_5xx(http):
    """PostgREST 12 refuses it (PGRST102) before any SQL runs; the batch form is {"events": [...]}."""
    body = [{"sessionId": "x", "path": "/"}, {"sessionId": "x", "path": "/", "deviceType": "mobile"}]
    assert http.fresh_client().post("/api/page-views", json=body).status_code == 400


def test_a_wrong_api_key_is_401_and_a_valid_one_changes_nothing(http):
    session = session_id()
    client = http.fresh_client()
    assert client.post("/api/page-views", json=events(session, 2), headers={"X-API-Key": "chk_wrong"}).status_code == 401
    assert stored(http, session) == 0
