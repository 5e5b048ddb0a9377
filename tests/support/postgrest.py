"""PostgREST 12's per-request SQL, reproduced so the API is tested on every machine.

For each request PostgREST (as the `authenticator` login) opens a transaction, sets the
role and the request settings with set_config(..., true), calls the pre-request function,
runs the query, reads response.status / response.headers, and commits. Any error rolls the
whole transaction back and is mapped to an HTTP status. This helper does the same through
the public routes of chorus_db.routes (the nginx mapping), so a test written against it
reads like an HTTP test: `api.post("/api/leads", body)`.

What it does not reproduce: PostgREST's URL filter grammar (tests pass a SQL `where`),
content negotiation, and anything nginx does (body size, header rewriting).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

from chorus_db.routes import LINK_PATHS, Route, resolve

PRE_REQUEST = "app_logic.pre_request"


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return self.body

    @property
    def message(self) -> str:
        return (self.body or {}).get("message", "") if isinstance(self.body, dict) else ""


def status_for_sqlstate(code: str, role: str) -> int:
    """PostgREST 12's mapping of SQLSTATE to HTTP status (docs: Errors)."""
    if code.startswith("PT") and code[2:].isdigit():
        return int(code[2:])
    exact = {
        "23503": 409, "23505": 409, "25006": 405, "42883": 404, "42P01": 404, "P0001": 400,
        "42P17": 500, "53400": 500, "57P01": 503,
    }
    if code in exact:
        return exact[code]
    if code == "42501":
        # By the JWT role, and requests carry no JWT (API keys switch the role in the pre-request
        # function, which answers 403 itself for a key whose role lacks the privilege).
        return 401
    prefix = {
        "08": 503, "09": 500, "0L": 403, "0P": 403, "22": 400, "23": 400, "25": 500, "28": 403,
        "2D": 500, "38": 500, "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500,
        "57": 500, "58": 500, "F0": 500, "HV": 500, "P0": 500, "XX": 500, "42": 400,
    }
    return prefix.get(code[:2], 400)


class PostgrestSim:
    """Send requests to the API as PostgREST would, at the SQL level."""

    def __init__(self, authenticator_dsn: str, client_ip: str = "203.0.113.10"):
        self.dsn = authenticator_dsn
        self.client_ip = client_ip

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        client_ip: str | None = None,
        where: str | None = None,
        frozen_now: str | None = None,
        raw_body: str | None = None,
    ) -> Response:
        route = resolve(method, path)
        query_string = path.partition("?")[2]
        if route.path in LINK_PATHS:
            # nginx forwards a mail link as POST with the query's token as the JSON body.
            token = parse_qs(urlsplit(path).query).get("token", [""])[0]
            method, raw_body = "POST", json.dumps({"token": token if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token) else ""})
        request_headers = {
            "content-type": "application/json",
            "user-agent": "pytest-postgrest-sim/1.0",
            # nginx sets X-Real-IP from the TCP peer; None leaves it out (direct access).
            **({"x-real-ip": client_ip or self.client_ip} if (client_ip or self.client_ip) else {}),
            **({"x-api-key": api_key} if api_key is not None else {}),
            **{k.lower(): v for k, v in (headers or {}).items()},
            # nginx hands the query string to the query-string GETs (db/functions/201-query-strings.sql).
            **({"x-chorus-query": query_string} if query_string else {}),
        }
        if raw_body is None and body is not None:
            raw_body = json.dumps(body)
        if method.upper() == "POST" and raw_body is not None:
            try:
                json.loads(raw_body)
            except RecursionError:
                pass  # deeper than Python's parser goes; PostgREST's parser takes it, PostgreSQL decides
            except ValueError:
                return Response(400, {"code": "PGRST102", "message": "Empty or invalid json", "details": None, "hint": None})
        role = "anon"
        read_only = method.upper() in ("GET", "HEAD")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if route.is_rpc and method.upper() == "GET" and self._takes_jsonb(conn, route):
                # A query-string GET: nginx sends it as a POST of {} (api.conf.template, @query_string).
                method, raw_body, read_only = "POST", "{}", False
            if route.is_rpc and not read_only:
                # PostgREST runs POST to a STABLE or IMMUTABLE function read-only as well.
                # Looked up by name: to_regproc raises for a schema the authenticator cannot use.
                volatility = conn.execute(
                    "select p.provolatile from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace"
                    " where n.nspname = %s and p.proname = %s",
                    tuple(route.sql_name.split(".")),
                ).fetchone()
                read_only = bool(volatility and volatility[0] in ("s", "i"))
            conn.execute("begin isolation level read committed" + (" read only" if read_only else ""))
            try:
                conn.execute(
                    """
                    select set_config('role', 'anon', true),
                           set_config('request.jwt.claims', '{"role":"anon"}', true),
                           set_config('request.method', %s, true),
                           set_config('request.path', %s, true),
                           set_config('request.headers', %s, true),
                           set_config('request.cookies', '{}', true),
                           set_config('search_path', 'api', true)
                    """,
                    # Written as PostgREST writes it (no spaces, UTF-8 as it is), so the
                    # pre-request reads it from its text as for a real request (header_text_value).
                    (method.upper(), route.target, json.dumps(request_headers, separators=(",", ":"), ensure_ascii=False)),
                )
                if frozen_now:
                    conn.execute("select set_config('app.frozen_now', %s, true)", (frozen_now,))
                conn.execute(f"select {PRE_REQUEST}()")
                role = conn.execute("select current_user").fetchone()[0]
                body_out = self._query(conn, route, method.upper(), raw_body, where)
                status_raw, headers_raw = conn.execute(
                    "select current_setting('response.status', true), current_setting('response.headers', true)"
                ).fetchone()
                conn.execute("commit")
            except psycopg.Error as exc:
                conn.execute("rollback")
                return self._error(exc, role)
        status = int(status_raw) if status_raw else (200 if route.is_rpc or method.upper() == "GET" else 201)
        out_headers: dict[str, str] = {}
        for item in json.loads(headers_raw) if headers_raw else []:
            out_headers.update(item)
        if isinstance(body_out, (bytes, memoryview)):
            # The "any" media-type handler: the function chose the Content-Type.
            body_out = bytes(body_out).decode("utf-8")
            if out_headers.get("Content-Type", "").startswith("application/json"):
                body_out = json.loads(body_out)
        return Response(status, body_out, out_headers)

    @staticmethod
    def _takes_jsonb(conn, route: Route) -> bool:
        row = conn.execute(
            "select p.pronargs = 1 and p.proargtypes[0] = 'jsonb'::regtype from pg_proc as p"
            " join pg_namespace as n on n.oid = p.pronamespace where n.nspname = %s and p.proname = %s",
            tuple(route.sql_name.split(".")),
        ).fetchone()
        return bool(row and row[0])

    def _query(self, conn, route: Route, method: str, raw_body: str | None, where: str | None):
        schema, name = route.sql_name.split(".")
        if route.is_rpc:
            fn = sql.Identifier(schema, name)
            if method == "POST":
                row = conn.execute(sql.SQL("select {}(%s::jsonb)").format(fn), (raw_body or "{}",)).fetchone()
            else:
                row = conn.execute(sql.SQL("select {}()").format(fn)).fetchone()
            return row[0]
        query = sql.SQL("select coalesce(jsonb_agg(to_jsonb(t)), '[]'::jsonb) from {} as t").format(
            sql.Identifier(schema, name)
        )
        if where:
            query = query + sql.SQL(" where ") + sql.SQL(where)
        return conn.execute(query).fetchone()[0]

    @staticmethod
    def _error(exc: psycopg.Error, role: str) -> Response:
        diag = exc.diag
        code = diag.sqlstate or "XX000"
        if code == "PGRST":
            body = json.loads(diag.message_primary)
            detail = json.loads(diag.message_detail or "{}")
            return Response(int(detail.get("status", 400)), body, dict(detail.get("headers", {})))
        body = {"code": code, "message": diag.message_primary, "details": diag.message_detail, "hint": diag.message_hint}
        return Response(status_for_sqlstate(code, role), body)

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs) -> Response:
        return self.request("POST", path, body, **kwargs)
