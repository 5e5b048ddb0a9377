"""The public HTTP routes, read from db/routes.toml (the one place they are written), and what
is generated from them:

* `nginx_routes_conf()`: nginx's route maps (public method and path -> PostgREST path, and the
  methods of each path for a 405's Allow), rendered by `invoke up` and the HTTP tests into
  <nginx dir>/chorus/routes.conf, and by the compose build step for the nginx container;
* `sql_rows()`: the rows the build puts into app_logic.routes (chorus_db.build), which the
  OpenAPI document and the health checks read; the build refuses a route whose database
  objects are missing (`missing_objects`).

`python -m chorus_db.routes nginx [FILE]` writes the nginx include (stdout without FILE).
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import config

ROUTES_FILE = config.DB_DIR / "routes.toml"
KEYS = ("none", "reader", "admin")
METHODS = ("GET", "POST")
# The role that must hold the privilege on a route's object for each key value.
KEY_ROLE = {"none": config.ANON_ROLE, "reader": "reader", "admin": "admin"}


class RouteError(ValueError):
    """db/routes.toml holds a row that cannot be served; the message names it."""


@dataclass(frozen=True)
class Route:
    method: str  # public method: GET (HEAD too) or POST
    path: str  # public path, under /api
    target: str  # PostgREST path: /rpc/<function> or /<view>
    key: str  # "none", "reader" (reader or admin key) or "admin"
    success: tuple[int, ...] = (200,)
    rate_limit: str = ""  # action in app.rate_limit_rules, "" for none
    health: tuple[str, ...] = ()  # tables the endpoint needs
    # A GET whose query string the SQL reads: nginx sends it as a POST of {} with the raw query
    # string in X-Chorus-Query (api.conf.template, @query_string; db/functions/201-query-strings.sql).
    query: bool = False
    # A link of a mail: nginx forwards it (GET too) as POST with {"token": <the query's token>}
    # as the body, so the function takes jsonb whatever the method (deploy/nginx/api.conf.template).
    link: bool = False
    # The app_logic function (no arguments) holding the rule of the endpoint's input, when it is
    # not <function>_rule (app_logic.route_rule reads the default).
    rule: str = ""

    @property
    def is_rpc(self) -> bool:
        return self.target.startswith("/rpc/")

    @property
    def name(self) -> str:
        return self.target.rsplit("/", 1)[1]

    @property
    def sql_name(self) -> str:
        """The api-schema object behind the route."""
        return "api." + self.name

    @property
    def sql_signature(self) -> str:
        """to_regprocedure's text for a function (a POST takes the body as one jsonb), or the view."""
        if not self.is_rpc:
            return self.sql_name
        return f"{self.sql_name}({'jsonb' if self.method == 'POST' or self.query or self.link else ''})"

    @property
    def auth(self) -> str:
        """"public", "reader" or "admin": the key value in the words of the API's docs."""
        return "public" if self.key == "none" else self.key

    @property
    def methods(self) -> tuple[str, ...]:
        """The HTTP methods nginx accepts for this route."""
        return (self.method, "HEAD") if self.method == "GET" else (self.method,)

    @property
    def nginx_target(self) -> str:
        # Views keep the query string (select, filters, order, limit, offset); RPCs get none,
        # as PostgREST would read it as function arguments.
        return self.target if self.is_rpc else self.target + "$is_args$args"

    def label(self) -> str:
        return f"{self.method} {self.path}"


def _check(row: dict, where: str) -> Route:
    fields = {"method", "path", "target", "key", "success", "rate_limit", "health"}
    optional = {"query", "link", "rule"}
    unknown = set(row) - fields - optional
    if unknown:
        raise RouteError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; a route has {', '.join(sorted(fields))}")
    if not isinstance(row.get("link", False), bool):
        raise RouteError(f"{where}: link must be true or false")
    missing = fields - set(row)
    if missing:
        raise RouteError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    method, path, target, key = row["method"], row["path"], row["target"], row["key"]
    label = f"{where} ({method} {path})"
    if method not in METHODS:
        raise RouteError(f"{label}: method must be one of {', '.join(METHODS)}")
    if not (isinstance(path, str) and path.startswith("/api/") and path.rstrip("/") == path and " " not in path):
        raise RouteError(f"{label}: path must start with /api/, without a trailing slash or spaces")
    if not (isinstance(target, str) and (target.startswith("/rpc/") or target.count("/") == 1) and target.startswith("/")):
        raise RouteError(f"{label}: target must be /rpc/<function> or /<view>")
    if not target.rsplit("/", 1)[1].replace("_", "").isalnum():
        raise RouteError(f"{label}: target names an api object with letters, digits and _ only")
    if key not in KEYS:
        raise RouteError(f"{label}: key must be one of {', '.join(KEYS)}")
    success = row["success"]
    if not (isinstance(success, list) and success and all(isinstance(s, int) and 200 <= s < 300 for s in success)):
        raise RouteError(f"{label}: success must list the 2xx statuses the endpoint answers with")
    if not isinstance(row["rate_limit"], str):
        raise RouteError(f"{label}: rate_limit must be an action name or \"\"")
    health = row["health"]
    if not (isinstance(health, list) and all(isinstance(t, str) and t.startswith("app.") for t in health)):
        raise RouteError(f"{label}: health must list app.<table> names")
    query = row.get("query", False)
    if not isinstance(query, bool) or (query and (method != "GET" or not target.startswith("/rpc/"))):
        raise RouteError(f"{label}: query = true is for a GET of an /rpc/ function that reads its query string")
    rule = row.get("rule", "")
    if not (isinstance(rule, str) and re.fullmatch(r"[a-z0-9_]*", rule)):
        raise RouteError(f"{label}: rule names an app_logic function with lower-case letters, digits and _ only")
    return Route(method, path, target, key, tuple(success), row["rate_limit"], tuple(health), query,
                 row.get("link", False), rule)


def load(path: Path = ROUTES_FILE) -> tuple[Route, ...]:
    """The routes of a route file, checked for shape; a bad row raises RouteError naming it."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise RouteError(f"{path.name}: {exc}") from exc
    rows = data.get("route", [])
    routes = tuple(_check(row, f"{path.name}: route {i + 1}") for i, row in enumerate(rows))
    seen: set[tuple[str, str]] = set()
    for route in routes:
        if (route.method, route.path) in seen:
            raise RouteError(f"{path.name}: {route.label()} is listed twice")
        seen.add((route.method, route.path))
    return routes


ROUTES: tuple[Route, ...] = load()
# The public paths of the mail links (nginx's `location` for them lists the same paths).
LINK_PATHS = frozenset(r.path for r in ROUTES if r.link)


def resolve(method: str, path: str, routes: tuple[Route, ...] = ROUTES) -> Route:
    path = path.split("?", 1)[0].rstrip("/") or "/"
    for route in routes:
        if route.method == method.upper() and route.path == path:
            return route
    raise KeyError(f"no route for {method} {path}")


def allowed_methods(routes: tuple[Route, ...] = ROUTES) -> dict[str, list[str]]:
    """Public path -> the methods it answers, in a stable order (GET, HEAD, POST)."""
    order = {"GET": 0, "HEAD": 1, "POST": 2}
    allow: dict[str, set[str]] = {}
    for route in routes:
        allow.setdefault(route.path, set()).update(route.methods)
    return {path: sorted(methods, key=order.__getitem__) for path, methods in allow.items()}


# -- UTF-8 checks for nginx --------------------------------------------------------------------
# PostgREST answers 500 to a header or query string that is not UTF-8 (Data.Text cannot decode
# it) and leaves its connection in a transaction: nginx refuses such requests first (400). nginx
# has no UTF-8 test of its own, so these are regular expressions over bytes (PCRE without UTF
# mode; Python's re reads them the same way, which tests/test_nginx_rules.py uses).
_CONT = (0x80, 0xBF)
# The well-formed multi-byte sequences (RFC 3629, table 3-7 of the Unicode standard): no
# overlong forms, no surrogates, nothing above U+10FFFF.
_SEQUENCES = (
    ((0xC2, 0xDF), _CONT),
    ((0xE0, 0xE0), (0xA0, 0xBF), _CONT),
    ((0xE1, 0xEC), _CONT, _CONT),
    ((0xEE, 0xEF), _CONT, _CONT),
    ((0xED, 0xED), (0x80, 0x9F), _CONT),
    ((0xF0, 0xF0), (0x90, 0xBF), _CONT, _CONT),
    ((0xF1, 0xF3), _CONT, _CONT, _CONT),
    ((0xF4, 0xF4), (0x80, 0x8F), _CONT, _CONT),
)


def _hex_class(digits: list[int]) -> str:
    if digits == list(range(16)):
        return "[0-9A-Fa-f]"
    text = "".join(f"{d:X}" + (f"{d:x}" if d > 9 else "") for d in digits)
    return text if len(text) == 1 else f"[{text}]"


def _percent(lo: int, hi: int) -> str:
    """The percent-encoded forms of the bytes lo..hi (either letter case)."""
    by_high: dict[int, list[int]] = {}
    for byte in range(lo, hi + 1):
        by_high.setdefault(byte >> 4, []).append(byte & 15)
    return "|".join(f"%{_hex_class([high])}{_hex_class(lows)}" for high, lows in by_high.items())


def _byte(lo: int, hi: int, encoded: bool) -> str:
    raw = f"\\x{lo:02X}" if lo == hi else f"[\\x{lo:02X}-\\x{hi:02X}]"
    return f"(?:{raw}|{_percent(lo, hi)})" if encoded else raw


def utf8_pattern(encoded: bool) -> str:
    """A regular expression matching exactly the byte strings that are UTF-8 without control
    characters (tab aside); with `encoded` (a query string), any byte may also be
    percent-encoded, a raw % must start an escape, and only NUL is refused among the encoded
    control characters. Possessive, so a long value never backtracks."""
    ascii_raw = "[\\x20-\\x24\\x26-\\x7E]" if encoded else "[\\x09\\x20-\\x7E]"
    alternatives = [ascii_raw]
    if encoded:
        alternatives.append("%(?:0[1-9A-Fa-f]|[1-7][0-9A-Fa-f])")
    for sequence in _SEQUENCES:
        alternatives.append("".join(_byte(lo, hi, encoded) for lo, hi in sequence))
    return "^(?:" + "|".join(alternatives) + ")*+$"


def nginx_utf8_maps() -> list[str]:
    """$chorus_bad_query / $chorus_bad_headers: 1 when the query string / one of the headers
    PostgREST receives is not UTF-8 (or holds a control character)."""
    headers = "$http_user_agent|$http_x_api_key|$http_accept|$http_content_type|$http_prefer|$http_range"
    return [
        "map $args $chorus_bad_query {",
        "    default 1;",
        '    "" 0;  # a regular expression is never tried on an empty value',
        f'    "~{utf8_pattern(True)}" 0;',
        "}",
        "",
        f'map "{headers}" $chorus_bad_headers {{',
        "    default 1;",
        f'    "~{utf8_pattern(False)}" 0;',
        "}",
        "",
    ]


def nginx_routes_conf(routes: tuple[Route, ...] = ROUTES) -> str:
    """nginx's generated maps: $chorus_target (the PostgREST path of a public method and path, ""
    when there is none), $chorus_allow (the methods of a public path, "" for other paths), and
    the UTF-8 checks of the query string and the forwarded headers."""
    lines = [
        "# Generated from db/routes.toml by chorus_db.routes: do not edit, edit the route table.",
        "# Included by deploy/nginx/api.conf.template.",
        "",
        *nginx_utf8_maps(),
        'map "$request_method $uri" $chorus_target {',
        '    default "";',
    ]
    for route in routes:
        for method in route.methods:
            lines.append(f'    "{method} {route.path}" {route.nginx_target};')
    lines += ["}", "", "map $uri $chorus_allow {", '    default "";']
    for path, methods in allowed_methods(routes).items():
        lines.append(f'    {path} "{", ".join(methods)}";')
    # The GETs that read their query string in SQL (query = true): 1 sends them to @query_string.
    lines += ["}", "", 'map "$request_method $uri" $chorus_query_string {', "    default 0;"]
    for route in routes:
        if route.query:
            for method in route.methods:
                lines.append(f'    "{method} {route.path}" 1;')
    # The reads a key may make (views and analytics functions alike): "reads" takes one of the
    # few slots of the limit_conn zone chorus_reads, so slow reads never hold the PostgREST
    # connections submissions need.
    lines += ["}", "", 'map "$request_method $uri" $chorus_read_slot {', '    default "";']
    for route in routes:
        if route.method == "GET" and route.key != "none":
            for method in route.methods:
                lines.append(f'    "{method} {route.path}" reads;')
    lines += ["}", ""]
    return "\n".join(lines)


def sql_rows(routes: tuple[Route, ...] = ROUTES) -> list[tuple]:
    """The rows of app_logic.routes: (method, path, target, key, success, rate_limit, health, rule)."""
    return [
        (r.method, r.path, r.target, r.key, list(r.success), r.rate_limit or None, list(r.health), r.rule or None)
        for r in routes
    ]


# What the build asks the database about each route: the object, the role's privilege on it, and
# the health tables. One query per route; every problem is returned as a sentence.
_OBJECT_CHECK = """
select
    case when %(rpc)s then to_regprocedure(%(signature)s) is not null
         else exists (select from pg_catalog.pg_class as c
                      where c.oid = to_regclass(%(signature)s) and c.relkind = 'v') end,
    case when %(rpc)s then coalesce(has_function_privilege(%(role)s, to_regprocedure(%(signature)s), 'execute'), false)
         else coalesce(has_table_privilege(%(role)s, to_regclass(%(signature)s), 'select'), false) end,
    array(select t from unnest(%(health)s::text[]) as t where to_regclass(t) is null),
    %(rule)s = '' or to_regprocedure(format('app_logic.%%I()', %(rule)s)) is not null
"""


def missing_objects(conn, routes: tuple[Route, ...] = ROUTES) -> list[str]:
    """Why each route cannot be served by the database on `conn`: its api object is missing, the
    role its key names may not use it, a health table or the rule function its row names is
    missing. Empty when all can."""
    problems = []
    for route in routes:
        role = KEY_ROLE[route.key]
        exists, allowed, missing_tables, rule_exists = conn.execute(
            _OBJECT_CHECK,
            {"rpc": route.is_rpc, "signature": route.sql_signature, "role": role, "health": list(route.health),
             "rule": route.rule},
        ).fetchone()
        kind = "function" if route.is_rpc else "view"
        if not exists:
            problems.append(f"{route.label()} needs the {kind} {route.sql_signature}, which no file in db/functions creates")
        elif not allowed:
            privilege = "EXECUTE" if route.is_rpc else "SELECT"
            problems.append(f"{route.label()} (key {route.key}) needs {privilege} on {route.sql_signature} for role {role} (db/policies)")
        for table in missing_tables:
            problems.append(f"{route.label()} names the health table {table}, which does not exist")
        if not rule_exists:
            problems.append(f"{route.label()} names the rule app_logic.{route.rule}(), which no file in db/functions creates")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or argv[0] != "nginx":
        print("usage: python -m chorus_db.routes nginx [FILE]", file=sys.stderr)
        return 2
    text = nginx_routes_conf()
    if len(argv) == 2:
        out = Path(argv[1])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
