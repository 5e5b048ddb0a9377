"""Many calls of one endpoint function, fast: the SQL PostgREST runs, on one connection.

The PostgREST-request helper opens a connection per request (as PostgREST's pool would not),
which costs some 25 ms; loops of hundreds of requests (the rate limit, value fuzzing) use
this instead. Same settings, same role switch, same commit of a 4xx answer.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql


def call(
    conn: psycopg.Connection,
    function: str,
    raw_body: str,
    *,
    role: str = "anon",
    client_ip: str = "203.0.113.10",
    frozen_now: str | None = None,
) -> tuple[int, Any]:
    """POST raw_body to api.<function> as `role`; returns (status, body). Errors propagate."""
    schema, name = function.split(".")
    headers = json.dumps({"content-type": "application/json", "x-real-ip": client_ip})
    with conn.transaction():
        conn.execute(
            "select set_config('request.headers', %s, true), set_config('app.frozen_now', %s, true)",
            (headers, frozen_now or ""),
        )
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        body = conn.execute(sql.SQL("select {}(%s::jsonb)").format(sql.Identifier(schema, name)), (raw_body,)).fetchone()[0]
        status = conn.execute("select current_setting('response.status', true)").fetchone()[0]
    return (int(status) if status else 200), body
