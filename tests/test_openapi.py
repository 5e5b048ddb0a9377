"""The OpenAPI document (api.openapi(), GET /api/): its route table is chorus_db.routes', and it
is valid OpenAPI 3.0 whatever endpoints the build holds."""

from __future__ import annotations

import json

import pytest
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


def test_the_sql_route_table_equals_chorus_db_routes(db):
    rows = db.execute("select method, path, target, auth from app_logic.public_routes()").fetchall()
    assert sorted(rows) == sorted((r.method, r.path, r.target, r.auth) for r in ROUTES)


def test_every_route_declares_its_success_statuses(db):
    rows = db.execute("select method, path, success from app_logic.public_routes()").fetchall()
    for method, path, success in rows:
        assert success and all(200 <= s < 300 for s in success), (method, path)
        if method == "POST" and path in ("/api/leads", "/api/brand-engagement", "/api/page-views", "/api/lead-interactions"):
            assert success == [201], path  # API.md: 201


def test_the_document_of_this_build_is_valid_openapi_3(db):
    (document,) = db.execute("select api.openapi()").fetchone()
    validate(document)
    assert document["openapi"].startswith("3.0")
    assert set(document["paths"]) <= {r.path for r in ROUTES}


def test_anon_gets_the_document(db):
    with db.transaction():
        db.execute("set local role anon")
        (document,) = db.execute("select api.openapi()").fetchone()
    assert "/api/leads/health" in document["paths"]


@pytest.fixture
def every_endpoint(db):
    """An api object (and a rule) for every route that lacks one, so the whole document is built."""
    for route in ROUTES:
        schema, name = route.sql_name.split(".")
        if route.is_rpc:
            args = "jsonb" if route.method == "POST" else ""
            exists = db.execute("select to_regprocedure(%s) is not null", (f"api.{name}({args})",)).fetchone()[0]
            if not exists:
                db.execute(
                    sql.SQL("create function api.{}({}) returns jsonb language sql as $$ select '{{}}'::jsonb $$").format(
                        sql.Identifier(name), sql.SQL(args)
                    )
                )
            if route.method == "POST" and db.execute(
                "select to_regprocedure(%s) is null", (f"app_logic.{name}_rule()",)
            ).fetchone()[0]:
                db.execute(
                    sql.SQL("create function app_logic.{}() returns jsonb language sql immutable as $$ select {}::jsonb $$").format(
                        sql.Identifier(name + "_rule"), sql.Literal(json.dumps(EXAMPLE_RULE))
                    )
                )
        elif db.execute("select to_regclass(%s) is null", (route.sql_name,)).fetchone()[0]:
            db.execute(
                sql.SQL(
                    """create view api.{} as select 1::bigint as id, 'x'::text as "firstName",
                       now() as "createdAt", '{{}}'::jsonb as "browserInfo", array['a']::text[] as tags,
                       0.5::numeric as ratio, true as flag, gen_random_uuid() as ref"""
                ).format(sql.Identifier(name))
            )
            db.execute(sql.SQL('comment on column api.{}."firstName" is \'First name.\'').format(sql.Identifier(name)))
    return db


def test_the_document_of_every_route_is_valid_and_lists_exactly_the_public_paths(every_endpoint):
    (document,) = every_endpoint.execute("select api.openapi()").fetchone()
    validate(document)
    assert set(document["paths"]) == {r.path for r in ROUTES}
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        if route.auth == "public":
            assert {} in operation["security"]
        else:
            assert operation["security"] == [{"ApiKey": []}]
            assert {"401", "403"} <= set(operation["responses"])
        if route.method == "POST":
            assert {"400", "413", "429"} <= set(operation["responses"])
            assert "requestBody" in operation
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    text = json.dumps(document)
    assert "app_logic" not in text and "/rpc/" not in text and "unknownWord" not in text


def test_rules_are_translated_to_openapi_words(db):
    db.execute("create function api.openapi_probe(jsonb) returns jsonb language sql as $$ select '{}'::jsonb $$")
    db.execute(
        sql.SQL("create function app_logic.openapi_probe_rule() returns jsonb language sql immutable as $$ select {}::jsonb $$").format(
            sql.Literal(json.dumps(EXAMPLE_RULE))
        )
    )
    routes = [{"method": "POST", "path": "/api/probe", "target": "/rpc/openapi_probe", "auth": "public", "success": [201]}]
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
