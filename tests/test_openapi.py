"""The OpenAPI document (api.openapi(), GET /api/): it documents exactly the routes of
db/routes.toml (app_logic.routes, filled by the build), and it is valid OpenAPI 3.0."""

from __future__ import annotations

import json

from openapi_spec_validator import validate
from psycopg import sql

from chorus_db.routes import ROUTES

EXAMPLE_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email", "gdprConsent"],
    "properties": {
        "email": {"type": "email", "maxLength": 254, "description": "Address."},
        "phone": {"type": "phone", "description": "Phone."},
        "firstName": {"type": "string", "trim": True, "minLength": 1, "maxLength": 100, "description": "Name."},
        "leadSource": {"type": "string", "pattern": "^[a-z0-9_]{1,50}$", "patternText": "a slug", "description": "Slug."},
        "gdprConsent": {"type": "boolean", "const": True, "description": "Consent."},
        "score": {"type": "number", "minimum": 0, "exclusiveMaximum": 100, "description": "Score."},
        "browserInfo": {"type": "object", "maxBytes": 4096, "description": "Anything."},
        "timings": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}, "description": "ms."},
        "pagesViewed": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 200}, "description": "Paths."},
        "anything": {"description": "Any JSON value."},
        "theme": {"type": "string", "enum": ["default", "protanopia"], "default": "default", "unknownWord": 1, "description": "Theme."},
    },
}


def test_the_sql_route_table_is_db_routes_toml(db):
    rows = db.execute(
        "select method, path, target, key, success, coalesce(rate_limit, ''), health, coalesce(rule, '')"
        " from app_logic.routes"
    ).fetchall()
    assert sorted(rows) == sorted(
        (r.method, r.path, r.target, r.key, list(r.success), r.rate_limit, list(r.health), r.rule) for r in ROUTES
    )


def test_the_documented_public_posts_answer_201(db):
    rows = dict(db.execute("select path, success from app_logic.routes where method = 'POST'").fetchall())
    for path in ("/api/leads", "/api/brand-engagement", "/api/page-views", "/api/lead-interactions"):
        assert rows[path] == [201], path  # the API contract: 201


def test_anon_gets_the_document(db):
    with db.transaction():
        db.execute("set local role anon")
        (document,) = db.execute("select api.openapi()").fetchone()
    assert "/api/leads/health" in document["paths"]


def _expected_responses(route) -> set[str]:
    """Exactly the responses an operation documents, from its route row."""
    expected = {str(s) for s in route.success} | {"401", "default"}
    if route.key != "none":
        expected.add("403")
    if route.link:
        # A mail link: a bad token, an invalid link (CHC01); the POST (the one that acts) also the
        # rate limit and a body's size. The GET, a read-only page, counts against no limit.
        expected |= {"400", "404"} | ({"413", "429"} if route.method == "POST" else set())
    elif route.method == "POST":
        expected |= {"400", "413"} | ({"429"} if route.rate_limit else set())
    elif route.query:
        # A GET reading its query string: 400 names a bad parameter; it may count a rate limit.
        expected |= {"400"} | ({"429"} if route.rate_limit else set())
    elif not route.is_rpc:
        expected.add("400")
    return expected


def test_the_document_of_this_build_documents_exactly_every_route(db):
    (document,) = db.execute("select api.openapi()").fetchone()
    validate(document)
    assert document["openapi"] == "3.0.3"
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    assert documented == {(r.path, r.method) for r in ROUTES}
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["security"] == ([{}, {"ApiKey": []}] if route.key == "none" else [{"ApiKey": []}])
        assert set(operation["responses"]) == _expected_responses(route), route.label()
        assert operation["summary"] == route.label()
        assert ("requestBody" in operation) == (route.method == "POST")
        if not route.is_rpc:
            schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert schema == {"type": "array", "items": {"$ref": f"#/components/schemas/{route.name}"}}
    expected_schemas = {"Error"} | {r.name for r in ROUTES if not r.is_rpc} | {
        r.name + "_body" for r in ROUTES if r.method == "POST" and not r.link
    }
    assert set(document["components"]["schemas"]) == expected_schemas
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    text = json.dumps(document)
    assert "app_logic" not in text and "/rpc/" not in text


def test_rules_are_translated_to_openapi_words(db):
    db.execute("create function api.openapi_probe(jsonb) returns jsonb language sql as $$ select '{}'::jsonb $$")
    db.execute(
        sql.SQL("create function app_logic.openapi_probe_rule() returns jsonb language sql immutable as $$ select {}::jsonb $$").format(
            sql.Literal(json.dumps(EXAMPLE_RULE))
        )
    )
    routes = [{"method": "POST", "path": "/api/probe", "target": "/rpc/openapi_probe", "key": "none", "success": [201]}]
    (document,) = db.execute("select app_logic.openapi_document(%s::jsonb)", (json.dumps(routes),)).fetchone()
    validate(document)
    body = document["components"]["schemas"]["openapi_probe_body"]
    props = body["properties"]
    assert props["email"] == {"type": "string", "format": "email", "maxLength": 254, "description": "Address."}
    assert props["phone"]["type"] == "string" and "format" not in props["phone"]
    assert props["firstName"].get("nullable") is True and "trim" not in props["firstName"]
    assert props["gdprConsent"]["enum"] == [True] and "nullable" not in props["gdprConsent"]
    assert props["score"]["maximum"] == 100 and props["score"]["exclusiveMaximum"] is True
    assert props["timings"]["additionalProperties"] == {"type": "integer", "minimum": 0}
    assert props["leadSource"]["description"] == "Slug. Must be a slug."
    assert props["browserInfo"]["description"] == "Anything. At most 4096 bytes of JSON."
    assert "unknownWord" not in props["theme"] and props["theme"]["default"] == "default"
    assert "type" not in props["anything"]
    assert body["required"] == ["email", "gdprConsent"] and body["additionalProperties"] is False
