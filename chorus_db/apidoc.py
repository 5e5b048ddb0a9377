"""docs/API.md, the API reference, in part generated from what the API itself uses: the OpenAPI
document the database builds from its validation rules (api.openapi(), what GET /api/ serves),
the route table (db/routes.toml), the rate-limit rules (app.rate_limit_rules), the roles'
settings and the PostgREST and nginx limits.

The prose of docs/API.md is written by hand; the blocks between
`<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->` are rendered here.
`invoke docs` rewrites them from a fresh build; tests/test_api_doc.py renders them from the
live OpenAPI document (through nginx and PostgREST) and fails when the file differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import config, routes, stack

API_DOC = config.ROOT / "docs" / "API.md"
BLOCK = re.compile(r"(<!-- BEGIN GENERATED: ([a-z-]+) -->\n)(.*?)(<!-- END GENERATED: \2 -->)", re.S)
# Roles a request runs as; their settings (statement_timeout, ...) are limits of the API.
WEB_ROLES = (config.AUTHENTICATOR, config.ANON_ROLE, *config.API_ROLES)
KEY_WORDS = {"none": "none", "reader": "reader or admin", "admin": "admin"}


@dataclass
class Facts:
    """What the generated blocks are rendered from."""

    openapi: dict
    rate_limits: list[tuple[str, str, int, int]]  # action, scope, max_requests, window_seconds
    role_settings: dict[str, list[str]]  # role -> its settings (rolconfig)
    route_table: tuple[routes.Route, ...] = routes.ROUTES


def facts_from_database(url: str, openapi: dict | None = None) -> Facts:
    """The facts of a built database; `openapi` when given (the live document), else api.openapi()."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if openapi is None:
            (openapi,) = conn.execute("select api.openapi()").fetchone()
        limits = conn.execute(
            "select action, scope, max_requests, window_seconds from app.rate_limit_rules order by action, window_seconds"
        ).fetchall()
        settings = dict(
            conn.execute("select rolname, coalesce(rolconfig, '{}') from pg_roles where rolname = any(%s)", (list(WEB_ROLES),)).fetchall()
        )
    return Facts(openapi=openapi, rate_limits=[tuple(r) for r in limits], role_settings=settings)


# -- rendering helpers -----------------------------------------------------------------------
def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text) -> str:
    return f"`{text}`"


def _resolve(doc: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        parts = node["$ref"].lstrip("#/").split("/")
        target = doc
        for part in parts:
            target = target[part]
        node = target
    return node


def _duration(seconds: int) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def _type_of(schema: dict) -> str:
    kind = schema.get("type", "any JSON")
    if kind == "array":
        return "array of " + _type_of(schema.get("items", {}))
    if "format" in schema:
        kind += f" ({schema['format']})"
    return kind


def _rules_of(schema: dict) -> str:
    rules = []
    if "enum" in schema:
        rules.append("one of " + ", ".join(_code(json.dumps(v)) for v in schema["enum"]))
    if "minLength" in schema or "maxLength" in schema:
        rules.append(f"{schema.get('minLength', 0)} to {schema['maxLength']} characters" if "maxLength" in schema
                     else f"at least {schema['minLength']} characters")
    if "minimum" in schema or "maximum" in schema:
        low, high = schema.get("minimum"), schema.get("maximum")
        rules.append(f"{low} to {high}" if low is not None and high is not None else f"≥ {low}" if low is not None else f"≤ {high}")
    if "maxItems" in schema:
        rules.append(f"at most {schema['maxItems']} items")
    if "pattern" in schema:
        rules.append("matches " + _code(schema["pattern"]))
    if schema.get("nullable"):
        rules.append("null allowed")
    if "default" in schema:
        rules.append("default " + _code(json.dumps(schema["default"])))
    return "; ".join(rules)


def _field_rows(schema: dict, prefix: str = "") -> list[str]:
    """One table row per field, nested objects' fields as parent.child."""
    rows = []
    required = set(schema.get("required", []))
    for name in sorted(schema.get("properties", {}), key=lambda n: (n not in required, n)):
        prop = schema["properties"][name]
        rows.append(
            f"| {_code(prefix + name)} | {_cell(_type_of(prop))} | {'yes' if name in required else 'no'} | "
            f"{_cell(_rules_of(prop))} | {_cell(prop.get('description', ''))} |"
        )
        if prop.get("type") == "object" and prop.get("properties"):
            rows += _field_rows(prop, prefix + name + ".")
        items = prop.get("items", {})
        if prop.get("type") == "array" and items.get("type") == "object" and items.get("properties"):
            rows += _field_rows(items, prefix + name + "[].")
    return rows


FIELD_HEADER = ["| field | type | required | rules | meaning |", "|---|---|---|---|---|"]


def _operation(doc: dict, path: str, method: str, route: routes.Route | None) -> list[str]:
    op = doc["paths"][path][method.lower()]
    out = [f"### {method} {path}", ""]
    if route is not None:
        facts = [f"key: {KEY_WORDS[route.key]}", "success: " + ", ".join(str(s) for s in route.success)]
        if route.rate_limit:
            facts.append(f"rate limit: `{route.rate_limit}`")
        if "text/event-stream" in op.get("responses", {}).get("200", {}).get("content", {}):
            facts.append(f"key checked by PostgREST's `{route.target}`, streamed by the live relay (`chorus_db/live.py`)")
        else:
            facts.append(f"served by PostgREST's `{route.target}`")
        out += ["- " + "; ".join(facts), ""]
    if op.get("description"):
        out += [op["description"], ""]
    body = op.get("requestBody")
    if body and "application/json" in body["content"]:
        schema = _resolve(doc, body["content"]["application/json"]["schema"])
        # oneOf: a single object, or a batch of them (page views): the object's fields, then the batch.
        choices = [_resolve(doc, s) for s in schema.get("oneOf", [schema])]
        out += ["Request body (JSON object; unknown fields are refused):", "", *FIELD_HEADER, *_field_rows(choices[0]), ""]
        for batch in choices[1:]:
            out += [f"Or: {batch.get('description', '')}", "", *FIELD_HEADER, *_field_rows(batch), ""]
    elif body:
        # A mail link's one-click POST (RFC 8058): a form body that is not read.
        out += [f"Request body ({', '.join(_code(c) for c in body['content'])}): {body.get('description', '')}", ""]
    params = [_resolve(doc, p) for p in op.get("parameters", [])]
    if route is not None and route.query:
        # A GET reading its query string (db/routes.toml query = true): its own parameters,
        # checked like a body's fields (an unknown one is refused).
        schema = {"type": "object", "required": [p["name"] for p in params if p.get("required")],
                  "properties": {p["name"]: {**p.get("schema", {}), "description": p.get("description", "")} for p in params}}
        if params:
            out += ["Query parameters (unknown ones are refused):", "", *FIELD_HEADER, *_field_rows(schema), ""]
        else:
            out += ["Query parameters: none (any one is refused).", ""]
        params = []
    if params:
        standard = [
            p for p in params
            if p["in"] == "header" or p["name"] in ("select", "order", "limit", "offset") or p.get("required")
        ]
        filters = [p["name"] for p in params if p not in standard]
        out += ["Parameters:", ""]
        out += [f"- {p['in']} {_code(p['name'])}: {p.get('description', '')}" for p in standard]
        if filters:
            out.append("- filters (`?name=eq.value`, `in.(a,b)`, `gt.value`, …) on " + ", ".join(_code(f) for f in filters))
        out.append("")
    out += ["| status | meaning |", "|---|---|"]
    for status, response in op["responses"].items():
        out.append(f"| {status} | {_cell(_resolve(doc, response).get('description', ''))} |")
    out.append("")
    for status, response in op["responses"].items():
        schema = _resolve(doc, response).get("content", {}).get("application/json", {}).get("schema")
        if not (status.startswith("2") and schema):
            continue
        rows_schema = _resolve(doc, schema.get("items", {})) if schema.get("type") == "array" else _resolve(doc, schema)
        if rows_schema.get("properties"):
            what = "Each row" if schema.get("type") == "array" else "The answer"
            out += [f"{what} ({status}):", "", *FIELD_HEADER, *_field_rows(rows_schema), ""]
        break
    return out


# -- the blocks ------------------------------------------------------------------------------
def block_routes(facts: Facts) -> str:
    lines = ["| method | path | key | success | rate limit | PostgREST |", "|---|---|---|---|---|---|"]
    for r in facts.route_table:
        lines.append(
            f"| {r.method} | {_code(r.path)} | {KEY_WORDS[r.key]} | {', '.join(map(str, r.success))} | "
            f"{_code(r.rate_limit) if r.rate_limit else '—'} | {_code(r.target)} |"
        )
    lines.append("| GET | `/api/` | none | 200 | — | the OpenAPI document (`api.openapi`) |")
    return "\n".join(lines) + "\n"


def block_endpoints(facts: Facts) -> str:
    doc = facts.openapi
    by_label = {r.label(): r for r in facts.route_table}
    out: list[str] = []
    order = {r.path: i for i, r in reversed(list(enumerate(facts.route_table)))}
    for path in sorted(doc["paths"], key=lambda p: (order.get(p, len(order)), p)):
        for method in ("post", "get"):
            if method in doc["paths"][path]:
                out += _operation(doc, path, method.upper(), by_label.get(f"{method.upper()} {path}"))
    return "\n".join(out)


def block_rate_limits(facts: Facts) -> str:
    lines = ["| action | counted per | at most | in any window of |", "|---|---|---|---|"]
    for action, scope, max_requests, window in facts.rate_limits:
        scope_words = {"ip": "client IP (IPv6: /64)", "email": "email address"}.get(scope, scope)
        lines.append(f"| `{action}` | {scope_words} | {max_requests} | {_duration(window)} |")
    return "\n".join(lines) + "\n"


def _limit_req(template: str, zone: str) -> str:
    rate = re.search(rf"zone={zone}:\S+ rate=(\d+)r/s", template)
    burst = re.search(rf"limit_req zone={zone} burst=(\d+)", template)
    return f"{rate.group(1)}/s, bursts of {burst.group(1)}" if rate and burst else "not set"


def _limit_conn(template: str, zone: str) -> str:
    found = re.search(rf"^\s*limit_conn {zone} (\d+);", template, re.M)
    return found.group(1) if found else "not set"


def block_limits(facts: Facts) -> str:
    conf = stack.read_postgrest_conf()
    template = stack.NGINX_TEMPLATE.read_text()

    server = template.split("\nserver {", 1)[-1]  # the server's own settings, not the upstream's

    def nginx(directive: str) -> str:
        match = re.search(rf"^\s*{directive}\s+([^;]+);", server, re.M)
        return match.group(1) if match else "not set"

    lines = [
        "| limit | value | set in |",
        "|---|---|---|",
        f"| request body | {nginx('client_max_body_size')} (413 `CHB01`) | nginx `client_max_body_size` |",
        f"| time to send the body | {nginx('client_body_timeout')} | nginx `client_body_timeout` |",
        f"| time to send the headers | {nginx('client_header_timeout')} (connection closed) | nginx `client_header_timeout` |",
        f"| idle kept-alive connection | {nginx('keepalive_timeout')} | nginx `keepalive_timeout` |",
        f"| time for PostgREST's answer | {nginx('proxy_read_timeout')} | nginx `proxy_read_timeout` |",
        f"| requests at once per address | {_limit_conn(template, 'chorus_conn')} (429 `CHR02`) | nginx `limit_conn` |",
        f"| requests per address | {_limit_req(template, 'chorus_req')} (429 `CHR02`) | nginx `limit_req` |",
        f"| POSTs per address | {_limit_req(template, 'chorus_post')} (429 `CHR02`) | nginx `limit_req` |",
        f"| `GET /api/` per address | {_limit_req(template, 'chorus_openapi_req')} (429 `CHR02`) | nginx `limit_req` |",
        f"| reads with a key at once (views, analytics), all clients | {_limit_conn(template, 'chorus_reads')} (429 `CHR02`) | nginx `limit_conn` |",
        f"| live streams per address, per key, in all | {_limit_conn(template, 'chorus_live_conn')}, "
        f"{_limit_conn(template, 'chorus_live_key')}, {_limit_conn(template, 'chorus_live')} (429 `CHR02`) | nginx `limit_conn` |",
        f"| rows per GET | {conf.get('db-max-rows', 'unlimited')} | PostgREST `db-max-rows` |",
        f"| wait for a database connection | {conf.get('db-pool-acquisition-timeout', 'default')} s | PostgREST `db-pool-acquisition-timeout` |",
    ]
    for role in WEB_ROLES:
        settings = ", ".join(_code(s) for s in sorted(facts.role_settings.get(role, []))) or "none"
        lines.append(f"| settings of role `{role}` | {settings} | `alter role` in db/policies |")
    return "\n".join(lines) + "\n"


def block_error_shape(facts: Facts) -> str:
    schema = facts.openapi["components"]["schemas"]["Error"]
    return "\n".join([*FIELD_HEADER, *_field_rows(schema)]) + "\n"


BLOCKS = {
    "routes": block_routes,
    "endpoints": block_endpoints,
    "rate-limits": block_rate_limits,
    "limits": block_limits,
    "error-shape": block_error_shape,
}


def render(text: str, facts: Facts) -> str:
    """`text` (docs/API.md) with every generated block rendered from `facts`."""
    found = {m.group(2) for m in BLOCK.finditer(text)}
    missing = set(BLOCKS) - found
    if missing:
        raise ValueError(f"docs/API.md lacks the generated block(s) {', '.join(sorted(missing))}")

    def fill(match: re.Match) -> str:
        body = BLOCKS[match.group(2)](facts)
        return match.group(1) + body.rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(fill, text)


def write(facts: Facts, path: Path = API_DOC) -> bool:
    """Rewrite the generated blocks of docs/API.md; True when the file changed."""
    old = path.read_text()
    new = render(old, facts)
    if new != old:
        path.write_text(new)
    return new != old
