"""PostgREST's refusals of the query grammar on the lists (the GETs of views), through nginx and
PostgREST: every kind of grammar error on every list answers the API's own error shape (400
CHV01 naming the parameter, 416 CHQ04 for rows outside the list), never PostgREST's JSON naming
internal views, columns, relationships or hints, and never a 5xx."""

from __future__ import annotations

import pytest

from chorus_db.routes import ROUTES

pytestmark = pytest.mark.http

LISTS = [r for r in ROUTES if r.method == "GET" and not r.is_rpc]
# What PostgREST's own errors say, and no answer of ours may.
LEAKS = ["PGRST", "42703", "42883", "22P02", "22007", "schema", "relationship", "Perhaps", "does not exist",
         "'api'", "operator does not exist", "Searched for", "invalid input syntax", "media types are available"]


@pytest.fixture(scope="module")
def keys(http):
    return {"reader": http.make_key("reader"), "admin": http.make_key("admin")}


def _fields(http, route) -> dict[str, str]:
    """The list's fields and their type category (S text, N number, U uuid/jsonb, D time, B boolean, ...)."""
    return dict(http.sql(
        "select a.attname::text, t.typcategory::text from pg_attribute as a join pg_type as t on t.oid = a.atttypid"
        " where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (route.sql_name,),
    ))


def _cases(fields: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(what, query string, extra headers) of every kind of grammar error, and the parameter it is about."""
    first = next(iter(fields))
    text = next((f for f, c in fields.items() if c == "S"), None)
    typed = next((f for f, c in fields.items() if c in ("N", "D", "B")), None)
    not_text = next((f for f, c in fields.items() if c != "S"), None)
    cases = [
        ("select", "select=nosuch", {}),
        ("select", f"select={first},nosuch", {}),
        ("select", "select=a:nosuch", {}),
        ("select", "select=*,nosuch(*)", {}),
        ("select", "select=count()", {}),
        ("order", "order=nosuch.desc", {}),
        ("order", f"order={first}.sideways", {}),
        ("nosuch", "nosuch=eq.1", {}),
        (first, f"{first}=foo.1", {}),
        (first, f"{first}=like", {}),
        (first, f"{first}=in.1,2", {}),
        (first, f"{first}=is.maybe", {}),
        ("or", "or=(nosuch.eq.1)", {}),
        ("or", f"or=({first}.eq.1", {}),
        ("and", f"and=({first}.zz.1)", {}),
        ("not.or", f"not.or=({first}.is.null,and(nosuch.eq.1))", {}),
        ("limit", "limit=-1", {}),
    ]
    if typed:
        cases.append((typed, f"{typed}=gte.notavalue", {}))
    if not_text:
        cases.append((not_text, f"{not_text}=like.x*", {}))
        cases.append((not_text, f"{not_text}=adj.(1,2)", {}))
    if text:
        cases.append((text, f"{text}=ov.{{a}}", {}))
    return cases


def _assert_ours(answer, what: str):
    assert answer.status_code < 500, (what, answer.status_code, answer.text[:300])
    body = answer.json()
    assert set(body) >= {"code", "message", "details", "hint"}, body
    for leak in LEAKS:
        assert leak not in answer.text, (what, leak, answer.text[:300])
    return body


@pytest.mark.parametrize("route", LISTS, ids=lambda r: r.path)
def test_every_grammar_error_on_every_list_is_a_400_naming_the_parameter_in_our_shape(http, keys, route):
    key = keys["admin" if route.key == "admin" else "reader"]
    fields = _fields(http, route)
    internal = route.name  # the view's name: a public word only where the path says it too
    for param, query, headers in _cases(fields):
        answer = http.get(f"{route.path}?{query}", headers={"X-API-Key": key, **headers})
        body = _assert_ours(answer, query)
        assert (answer.status_code, body["code"]) == (400, "CHV01"), (query, answer.status_code, answer.text[:300])
        assert [e["field"] for e in body["errors"]] == [param], (query, body)
        assert body["message"].startswith((param + ":", param + " ", "This list has no field")), (query, body)
        assert f"api.{internal}" not in answer.text
        if internal.replace("_", "-") not in route.path:
            assert internal not in answer.text, (query, answer.text[:300])
        assert answer.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("route", LISTS, ids=lambda r: r.path)
def test_rows_outside_a_list_are_416_in_our_shape(http, keys, route):
    key = keys["admin" if route.key == "admin" else "reader"]
    for headers, query in (({"Range": "5-1"}, ""), ({"Prefer": "count=exact"}, "?offset=100000000")):
        answer = http.get(route.path + query, headers={"X-API-Key": key, **headers})
        body = _assert_ours(answer, str(headers))
        assert (answer.status_code, body["code"]) == (416, "CHQ04"), answer.text[:300]


def test_a_grammar_error_without_a_key_is_401_and_a_reader_on_an_admin_list_is_403(http, keys):
    # PostgREST parses the query before the pre-request checks the key: its embed error reached
    # a caller without any key.
    answer = http.fresh_client().get("/api/leads?select=*,nosuch(*)")
    assert (answer.status_code, _assert_ours(answer, "no key")["code"]) == (401, "CHK01")
    wrong = http.fresh_client().get("/api/leads?select=*,nosuch(*)", headers={"X-API-Key": "chk_wrong"})
    assert (wrong.status_code, _assert_ours(wrong, "wrong key")["code"]) == (401, "CHK01")
    reader = http.get("/api/brand-audit?select=*,nosuch(*)", headers={"X-API-Key": keys["reader"]})
    assert (reader.status_code, _assert_ours(reader, "reader")["code"]) == (403, "CHK02")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_good_query_still_answers_and_a_bad_one_keeps_its_status_on_head(http, keys, method):
    good = http.request(method, "/api/leads?select=id,email&order=createdAt.desc&limit=2&email=like.*x*",
                        headers={"X-API-Key": keys["reader"]})
    assert good.status_code == 200, good.text[:300]
    bad = http.request(method, "/api/leads?select=nosuch", headers={"X-API-Key": keys["reader"]})
    assert bad.status_code == 400


@pytest.mark.parametrize("accept", ["application/json", "text/csv", "*/*", "application/vnd.pgrst.object+json", "text/html"])
def test_every_accept_on_a_bad_list_query_gets_our_json_error(http, keys, accept):
    answer = http.get("/api/leads?order=nosuch.desc", headers={"X-API-Key": keys["reader"], "Accept": accept})
    body = _assert_ours(answer, accept)
    if accept == "text/html":  # content negotiation comes first in PostgREST
        assert (answer.status_code, body["code"]) == (406, "CHT02")
    else:
        assert (answer.status_code, body["code"]) == (400, "CHV01")
