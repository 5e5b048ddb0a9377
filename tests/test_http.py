"""The API over HTTP, through nginx and PostgREST as deployed (the `http` fixture): skipped, with
the reason, where PostgREST is absent. Routes whose api object is not in this build yet are
skipped by name, so the suite grows with the endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from openapi_spec_validator import validate

from chorus_db.routes import ROUTES

pytestmark = pytest.mark.http

HEALTH_ROUTES = [r for r in ROUTES if r.path.endswith("/health")]
ERROR_KEYS = {"code", "message", "details", "hint"}


def _require(http, route):
    if not http.exists(route.sql_name, route.is_rpc):
        pytest.skip(f"{route.sql_name} is not in this build yet")


@pytest.mark.parametrize("route", HEALTH_ROUTES, ids=lambda r: r.path)
def test_every_health_endpoint_answers_200_ok_without_a_key(http, route):
    _require(http, route)
    response = http.get(route.path)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["status"] == "ok"
    assert http.request("HEAD", route.path).status_code == 200


@pytest.mark.parametrize("accept", [None, "application/json", "application/openapi+json", "text/html"])
def test_get_api_root_returns_the_openapi_document_of_the_public_paths_only(http, accept):
    response = http.get("/api/", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    document = response.json()
    validate(document)
    documented = set(document["paths"])
    public = {r.path for r in ROUTES}
    assert documented <= public, f"not public: {documented - public}"
    served = {r.path for r in ROUTES if http.exists(r.sql_name, r.is_rpc)}
    assert served <= documented, f"served but not documented: {served - documented}"
    assert "/api/leads/health" in documented
    assert "/rpc/" not in response.text and "app_logic" not in response.text


def test_an_unknown_path_is_404_in_postgrest_error_shape(http):
    response = http.get("/api/no-such-endpoint")
    assert response.status_code == 404
    assert set(response.json()) == ERROR_KEYS


@pytest.mark.parametrize("path", ["/rpc/check_leads_health", "/leads", "/", "/api/rpc/check_leads_health"])
def test_postgrest_paths_are_reachable_only_through_the_public_paths(http, path):
    response = http.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "CHN01"


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on the port (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_nginx_listens_on_loopback_only(http):
    loopback = "0100007F"  # 127.0.0.1, as /proc/net/tcp spells it
    assert _listening_addresses(http.cfg.api_port) == {loopback}


def test_a_body_over_64_kib_is_413_before_reaching_postgrest(http):
    response = http.post("/api/leads", data=b"{" + b" " * (64 * 1024) + b"}", headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert set(response.json()) == ERROR_KEYS


def test_get_leads_without_a_key_is_401_and_returns_no_data(http):
    _require(http, next(r for r in ROUTES if r.method == "GET" and r.path == "/api/leads"))
    response = http.get("/api/leads")
    assert response.status_code == 401
    assert set(response.json()) >= ERROR_KEYS
    assert not isinstance(response.json(), list)


def test_a_wrong_api_key_is_401_through_nginx(http):
    response = http.get("/api/leads/health", headers={"X-API-Key": "chk_wrong"})
    assert response.status_code == 401
    assert response.json()["code"] == "CHK01"
    assert response.headers["WWW-Authenticate"] == "X-API-Key"


def test_a_valid_api_key_reaches_the_pre_request_function(http):
    key = http.make_key("reader")
    assert http.get("/api/leads/health", headers={"X-API-Key": key}).status_code == 200
    http.sql("select app_logic.revoke_api_key(name) from app.api_keys where key_prefix = %s", (key[:10],))
    assert http.get("/api/leads/health", headers={"X-API-Key": key}).status_code == 401


def test_a_bearer_token_is_dropped_by_nginx(http):
    # PostgREST itself would answer 401 (PGRST301) to a token that is not a JWT.
    response = http.get("/api/leads/health", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 200


def test_spoofed_ip_headers_do_not_escape_the_per_ip_rate_limit(http):
    route = next(r for r in ROUTES if r.method == "POST" and r.path == "/api/leads")
    _require(http, route)
    limit = 3
    (old,) = http.sql("select row(max_requests, window_seconds)::text from app.rate_limit_rules where action = 'leads' and scope = 'ip'")[0]
    # A day-long window: the test cannot straddle a window boundary.
    http.sql("update app.rate_limit_rules set max_requests = %s, window_seconds = 86400 where action = 'leads' and scope = 'ip'", (limit,))
    http.sql("delete from app.rate_limit_counters")
    try:
        statuses = []
        for i in range(limit + 1):
            spoofed = f"198.51.100.{i + 1}"
            response = http.post(
                route.path, json={}, headers={"X-Forwarded-For": spoofed, "X-Real-IP": spoofed}
            )
            statuses.append(response.status_code)
        # Every request came from 127.0.0.1 whatever it claimed: the last one is over the limit.
        assert 429 not in statuses[:limit], statuses
        assert statuses[-1] == 429, statuses
        assert int(response.headers["Retry-After"]) > 0
    finally:
        max_requests, window = old.strip("()").split(",")
        http.sql(
            "update app.rate_limit_rules set max_requests = %s, window_seconds = %s where action = 'leads' and scope = 'ip'",
            (int(max_requests), int(window)),
        )
        http.sql("delete from app.rate_limit_counters")
