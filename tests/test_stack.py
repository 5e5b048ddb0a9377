"""The local stack: the nginx route maps (rendered from db/routes.toml by chorus_db.routes),
what nginx forwards (through a recorder standing where PostgREST would), and `invoke up` /
`invoke down` run as the user runs them."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests

from chorus_db import config, stack
from chorus_db.routes import LINK_PATHS, ROUTES, nginx_routes_conf
from tests.support.http_stack import CapturingNginx

TEMPLATE = stack.NGINX_TEMPLATE.read_text()


def _map_block(name: str, text: str | None = None) -> dict[str, str]:
    """The entries of `map ... $name { ... }` in the rendered route maps (default excluded)."""
    block = re.search(r"map [^{]*\$" + name + r" \{(.*?)\n\}", text or nginx_routes_conf(), re.S)
    assert block, f"no map for ${name} in the route maps"
    entries = {}
    for line in block.group(1).strip().splitlines():
        line = line.strip().rstrip(";")
        if not line or line.startswith("#") or line.startswith("default"):
            continue
        match = re.match(r'"([^"]+)"\s+(.*)$|(\S+)\s+(.*)$', line)
        key, value = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        entries[key] = value.strip().strip('"')
    return entries


def _expected_methods(path: str) -> set[str]:
    methods = {r.method for r in ROUTES if r.path == path}
    return methods | ({"HEAD"} if "GET" in methods else set())


# -- the route maps against the route table -------------------------------------------------
def test_the_nginx_route_maps_map_exactly_the_routes_of_db_routes_toml():
    targets = _map_block("chorus_target")
    expected = {}
    for route in ROUTES:
        target = route.target if route.is_rpc else route.target + "$is_args$args"
        for method in [route.method] + (["HEAD"] if route.method == "GET" else []):
            expected[f"{method} {route.path}"] = target
    assert targets == expected


def test_the_nginx_route_maps_allow_exactly_the_methods_of_each_public_path():
    allow = {path: set(methods.split(", ")) for path, methods in _map_block("chorus_allow").items()}
    expected = {route.path: _expected_methods(route.path) for route in ROUTES}
    assert allow == expected


def test_the_template_includes_the_route_maps_and_writes_none_by_hand():
    lines = [line.strip() for line in TEMPLATE.splitlines() if not line.strip().startswith("#")]
    assert "include chorus/routes.conf;" in lines
    assert "$chorus_target {" not in TEMPLATE and "$chorus_allow {" not in TEMPLATE
    assert not any(route.path in line for route in ROUTES for line in lines)


def test_the_template_has_only_the_four_environment_placeholders():
    placeholders = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", TEMPLATE))
    assert placeholders == set(stack.TEMPLATE_VARIABLES)
    rendered = stack.render_template(
        TEMPLATE, {"API_LISTEN": "8080", "POSTGREST_UPSTREAM": "postgrest:3000", "LIVE_RELAY_UPSTREAM": "live-relay:3002",
                   "POSTGREST_READ_UPSTREAM": "replica:3000"}
    )
    assert "${" not in rendered and "server postgrest:3000;" in rendered and "listen 8080;" in rendered
    assert "server live-relay:3002;" in rendered
    # The read pool: the replica first, the primary as backup.
    assert "server replica:3000 max_fails=1 fail_timeout=10s;" in rendered and "server postgrest:3000 backup;" in rendered
    # nginx's own variables are left alone.
    assert "$remote_addr" in rendered and "$chorus_target" in rendered


def test_nginx_overwrites_the_client_ip_headers_and_never_appends_to_them():
    lines = [line.strip() for line in TEMPLATE.splitlines() if not line.strip().startswith("#")]
    assert "proxy_set_header X-Real-IP $remote_addr;" in lines
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in lines
    assert not any("proxy_add_x_forwarded_for" in line for line in lines)
    assert "client_max_body_size 64k;" in lines


@pytest.fixture(scope="module")
def nginx_rendered(tmp_path_factory):
    if stack.find_nginx() is None:
        pytest.skip("nginx not found: apt-get install nginx")
    run_dir = tmp_path_factory.mktemp("nginx-t")
    cfg = stack.StackConfig(run_dir=run_dir, database_url="", api_port=18079)
    yield cfg, stack.render_nginx(cfg)
    stack.stop_all(run_dir)  # removes the directory outside the run directory too


def test_nginx_accepts_the_rendered_local_config(nginx_rendered):
    cfg, main = nginx_rendered
    proc = subprocess.run(stack._nginx_argv(cfg, "-t"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"include {cfg.nginx_dir / 'api.conf'};" in main.read_text()
    assert (cfg.nginx_dir / "chorus" / "routes.conf").read_text() == nginx_routes_conf()
    assert (cfg.nginx_dir / "request_checks.conf").read_text() == stack.NGINX_REQUEST_CHECKS.read_text()


# -- what nginx forwards: a recorder stands where PostgREST would ----------------------------
def test_the_query_string_map_lists_exactly_the_routes_marked_query():
    expected = {f"{m} {r.path}": "1" for r in ROUTES if r.query for m in r.methods}
    assert expected and _map_block("chorus_query_string") == expected


def test_a_clients_own_x_chorus_query_never_reaches_postgrest(capture):
    base, upstream = capture
    requests.get(base + "/api/ab-tests/assignment", headers={"X-Chorus-Query": "test=a&sessionId=b"}, timeout=5)
    assert "x-chorus-query" not in upstream.last().headers
    requests.post(base + "/api/leads", data=b"{}", headers={"Content-Type": "application/json", "X-Chorus-Query": "x=1"},
                  timeout=5)
    assert "x-chorus-query" not in upstream.last().headers


@pytest.fixture(scope="module")
def capture():
    runner = CapturingNginx()
    started = runner.start()
    if started is None:
        pytest.skip(runner.skip_reason)
    base, upstream = started
    yield base, upstream
    runner.stop()


# The live stream goes to the relay after PostgREST checked the key (the test below).
POSTGREST_ROUTES = [r for r in ROUTES if not r.path.startswith("/api/live/")]


def test_the_live_stream_asks_postgrest_for_the_key_then_goes_to_the_relay(capture):
    base, upstream = capture
    before = len(upstream.seen)
    response = requests.get(base + "/api/live/brand-metrics", headers={"X-API-Key": "k", "X-Real-IP": "6.6.6.6"}, timeout=5)
    seen = upstream.seen[before:]
    assert [(s.method, s.path) for s in seen] == [("GET", "/rpc/live_brand_metrics")]
    assert seen[0].headers["x-api-key"] == "k" and seen[0].headers["x-real-ip"] == "127.0.0.1"
    assert seen[0].headers["accept"] == "text/event-stream"
    # No relay runs behind this nginx: the stream is 503, in PostgREST's error shape.
    assert response.status_code == 503 and response.json()["code"] == "CHU01"
    assert requests.get(base + "/api/live/other", timeout=5).status_code == 404
    assert requests.post(base + "/api/live/brand-metrics", timeout=5).status_code in (405, 415)


@pytest.mark.parametrize("route", POSTGREST_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_public_route_reaches_its_postgrest_path(capture, route):
    base, upstream = capture
    body = b'{"probe": true}' if route.method == "POST" else None
    response = requests.request(
        route.method, base + route.path + "?select=id&order=id.desc&limit=2", data=body,
        headers={"Content-Type": "application/json"}, timeout=5,
    )
    assert response.status_code == 200
    seen = upstream.last()
    if route.query or route.path in LINK_PATHS:
        if route.query:
            # The query string travels in a header, the body is {} and the method POST.
            assert (seen.method, seen.path, seen.body) == ("POST", route.target, b"{}")
            assert seen.headers["x-chorus-query"] == "select=id&order=id.desc&limit=2"
        else:
            # A mail link: POST with the token as the JSON body, whatever the client sent.
            assert (seen.method, seen.path, seen.body) == ("POST", route.target, b'{"token":""}')
        assert seen.headers["content-type"] == "application/json"
        return
    assert seen.method == route.method
    # Views keep the query string (PostgREST filters); RPCs get none (it would become arguments).
    assert seen.path == (route.target if route.is_rpc else route.target + "?select=id&order=id.desc&limit=2")
    if body:
        assert seen.body == body


@pytest.mark.parametrize("path", sorted(LINK_PATHS))
def test_a_mail_link_reaches_postgrest_as_post_with_its_token_only_and_the_client_ip(capture, path):
    base, upstream = capture
    token = "T" * 43
    response = requests.get(
        f"{base}{path}?token={token}&token=other",
        headers={"X-Real-IP": "6.6.6.6", "X-API-Key": "chk_x", "Accept": "text/plain;q=0.9, */*"}, timeout=5,
    )
    assert response.status_code == 200
    seen = upstream.last()
    assert (seen.method, seen.body) == ("POST", b'{"token":"' + token.encode() + b'"}')
    assert seen.headers["accept"] == "application/json"  # exactly HTML or JSON reaches PostgREST
    assert seen.headers["x-real-ip"] == "127.0.0.1" and seen.headers["x-api-key"] == "chk_x"
    assert "authorization" not in seen.headers


@pytest.mark.parametrize("token", ['"},"x":"', "a%22b", "%E2%80%AE" * 3, "A" * 65])
def test_a_token_of_another_shape_never_reaches_the_json_body(capture, token):
    base, upstream = capture
    assert requests.get(f"{base}/api/consent/confirm?token={token}", timeout=5).status_code == 200
    assert upstream.last().body == b'{"token":""}'


def test_the_template_s_link_location_covers_exactly_the_link_routes():
    (pattern,) = re.findall(r"location ~ (\^/api/consent/\S+) \{", TEMPLATE)
    public = {r.path for r in ROUTES}
    assert {p for p in public if re.match(pattern, p)} == LINK_PATHS and LINK_PATHS


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_and_head_on_a_mail_link_reach_only_its_read_only_page(capture, method):
    base, upstream = capture
    answer = requests.request(method, f"{base}/api/consent/confirm?token=" + "T" * 43, timeout=5)
    assert answer.status_code == 200
    assert (upstream.last().method, upstream.last().path) == ("POST", "/rpc/confirm_consent_page")
    requests.post(f"{base}/api/consent/confirm?token=" + "T" * 43, timeout=5)
    assert upstream.last().path == "/rpc/confirm_consent"


def test_get_api_root_reaches_postgrest_root_asking_for_json(capture):
    base, upstream = capture
    response = requests.get(base + "/api/", headers={"Accept": "application/openapi+json"}, timeout=5)
    assert response.status_code == 200
    seen = upstream.last()
    assert (seen.method, seen.path, seen.headers["accept"]) == ("GET", "/", "application/json")


def test_spoofed_client_ip_headers_are_replaced_by_the_tcp_peer(capture, db):
    base, upstream = capture
    requests.post(
        base + "/api/leads",
        data=b"{}",
        headers={
            "Content-Type": "application/json",
            "X-Forwarded-For": "198.51.100.7, 10.0.0.1",
            "X-Real-IP": "198.51.100.7",
            "Forwarded": "for=198.51.100.7",
            "X-API-Key": "chk_example",
            "Prefer": "count=exact",
            "Range": "0-9",
            "Authorization": "Bearer not-a-jwt",
            "User-Agent": "spoof-test/1.0",
        },
        timeout=5,
    )
    headers = upstream.last().headers
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert "forwarded" not in headers
    assert "authorization" not in headers
    # The headers the API reads pass unchanged; a POST gets no Prefer and no Range (they could
    # change what the request does), and nothing else reaches PostgREST.
    assert headers["x-api-key"] == "chk_example"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "spoof-test/1.0"
    assert "prefer" not in headers and "range" not in headers
    assert set(headers) == {
        "host", "x-real-ip", "x-forwarded-for", "x-api-key", "accept", "content-type", "user-agent", "content-length"
    }
    # What the rate limiter will count: the SQL reads exactly these headers (PostgREST puts them,
    # lower-cased, in request.headers).
    import json

    with db.transaction():
        db.execute("select set_config('request.headers', %s, true)", (json.dumps(headers),))
        (network,) = db.execute("select app_logic.client_network()::text").fetchone()
    assert network == "127.0.0.1/32"


@pytest.mark.parametrize(
    "method, path",
    [("DELETE", "/api/leads"), ("PUT", "/api/leads/health"), ("POST", "/api/leads/health"),
     ("GET", "/api/gdpr/export"), ("PATCH", "/api/page-views"), ("OPTIONS", "/api/leads"), ("POST", "/api/")],
)
def test_a_method_outside_the_route_table_is_405_with_allow(capture, method, path):
    base, upstream = capture
    before = len(upstream.seen)
    response = requests.request(method, base + path, timeout=5)
    assert response.status_code == 405
    expected = _expected_methods(path) if path != "/api/" else {"GET", "HEAD"}
    assert set(response.headers["Allow"].split(", ")) == expected
    assert set(response.json()) == {"code", "message", "details", "hint"}
    assert response.json()["code"] == "CHM01"
    assert len(upstream.seen) == before, "a refused request must not reach PostgREST"


@pytest.mark.parametrize(
    "path",
    ["/rpc/check_leads_health", "/leads", "/", "/api", "/api/nope", "/api/leads/", "/api/rpc/submit_lead",
     "/api/check_leads_health", "/api/leads/health/x", "/lead_interactions"],
)
def test_paths_outside_the_route_table_are_404_and_never_reach_postgrest(capture, path):
    base, upstream = capture
    before = len(upstream.seen)
    for method in ("GET", "POST"):
        response = requests.request(method, base + path, data=b"{}", timeout=5)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json() == {
            "code": "CHN01", "message": "There is no endpoint at this path.", "details": None,
            "hint": "GET /api/ lists the endpoints.",
        }
    assert len(upstream.seen) == before


# location /, the mail links and the live streams include the same request checks
# (deploy/nginx/request_checks.conf): each answers them itself, before anything reaches PostgREST.
@pytest.mark.parametrize("method, path", [("POST", "/api/leads"), ("POST", "/api/consent/confirm"),
                                          ("GET", "/api/live/brand-metrics")])
@pytest.mark.parametrize("request_, status, code", [
    ({"body": iter([b"{}"]), "headers": {}}, 411, "CHP05"),
    ({"body": b"{}", "headers": {"User-Agent": "a\x01b"}}, 400, "CHP08"),
    ({"query": "?token=%ff", "body": b"{}", "headers": {}}, 400, "CHP09"),
])
def test_every_api_location_makes_the_shared_request_checks(capture, method, path, request_, status, code):
    base, upstream = capture
    before = len(upstream.seen)
    conn = http.client.HTTPConnection(base.split("//")[1], timeout=5)
    body = request_["body"]
    headers = {"Content-Type": "application/json", **request_["headers"]}
    conn.request(method, path + request_.get("query", ""), body=body, headers=headers,
                 encode_chunked=not isinstance(body, bytes))
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    assert (response.status, json.loads(answer)["code"]) == (status, code)
    assert len(upstream.seen) == before


@pytest.mark.parametrize("raw_path", ["/api/../rpc/submit_lead", "/api/leads/health/../../../leads", "/api/%2e%2e/rpc/submit_lead"])
def test_dot_segments_cannot_reach_postgrest_paths(capture, raw_path):
    base, upstream = capture
    before = len(upstream.seen)
    conn = http.client.HTTPConnection(base.split("//")[1], timeout=5)
    conn.request("POST", raw_path, body=b"{}", headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status in (400, 404)
    assert len(upstream.seen) == before


def test_a_body_over_64_kib_is_refused_with_413_in_json(capture):
    base, upstream = capture
    before = len(upstream.seen)
    json_type = {"Content-Type": "application/json"}  # else nginx answers 415 before reading the body
    response = requests.post(base + "/api/leads", data=b"x" * (64 * 1024 + 1), headers=json_type, timeout=5)
    assert response.status_code == 413
    assert response.json()["code"] == "CHB01"
    assert set(response.json()) == {"code", "message", "details", "hint"}
    # Without a Content-Length (chunked) the body is refused before nginx reads it.
    chunked = requests.post(base + "/api/leads", data=iter([b"x" * 40000, b"x" * 40000]), headers=json_type, timeout=5)
    assert chunked.status_code == 411
    assert chunked.json()["code"] == "CHP05"
    assert len(upstream.seen) == before


def test_a_body_of_exactly_64_kib_is_forwarded_whole(capture):
    base, upstream = capture
    body = b'{"pad":"' + b"a" * (64 * 1024 - 10) + b'"}'
    assert len(body) == 64 * 1024
    response = requests.post(base + "/api/leads", data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 200
    assert upstream.last().body == body


# -- invoke up / invoke down -----------------------------------------------------------------
def _invoke(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def stack_env():
    """Environment for a separate stack: its own data dir, run dir and ports. The directory is
    under the system temp dir, open to the cluster's OS user (pytest's tmp_path is not, as root)."""
    base = config.scratch_dir("stack")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(
        CHORUS_PGDATA=str(base / "pgdata"),
        CHORUS_RUN_DIR=str(base / "run"),
        # Its own checkout id: `invoke down` stops what carries this id, never this session's
        # test cluster or HTTP stack.
        CHORUS_CHECKOUT_ID=f"stack-test-{base.name[-8:]}",
        CHORUS_PG_PORT=str(stack.free_port()),
        API_PORT=str(stack.free_port()),
    )
    yield env, base
    _invoke(["down"], env, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (text in cmdline or text in environ):
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_up_serves_the_health_endpoint_and_down_leaves_no_process_of_ours(stack_env):
    if stack.find_postgrest() is None:
        pytest.skip("PostgREST not found: set POSTGREST_BIN to the postgrest binary (v12.2.x) or put it on PATH")
    env, base = stack_env
    first = _invoke(["up"], env)
    assert first.returncode == 0, first.stdout + first.stderr
    api_url = f"http://127.0.0.1:{env['API_PORT']}/api"
    assert f"API: {api_url}" in first.stdout
    response = requests.get(api_url + "/leads/health", timeout=5)
    assert response.status_code == 200 and response.json()["status"] == "ok"

    run_dir = Path(env["CHORUS_RUN_DIR"])
    for name in ("authenticator_password", "jwt_secret"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o600
    pids = {p: (run_dir / p).read_text() for p in ("postgrest.pid", "nginx/nginx.pid")}

    second = _invoke(["up"], env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already running: PostgREST" in second.stdout
    assert pids == {p: (run_dir / p).read_text() for p in pids}, "a second `up` started new processes"
    assert len(_processes_mentioning(f"CHORUS_STACK_RUN_DIR={run_dir}")) == 1

    down = _invoke(["down"], env, timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped nginx" in down.stdout and "stopped PostgREST" in down.stdout
    assert "stopped the embedded PostgreSQL cluster" in down.stdout
    assert _processes_mentioning(str(base)) == []
    for port in ("API_PORT", "CHORUS_PG_PORT"):
        assert stack.port_is_free(int(env[port])), f"{port} {env[port]} is still taken"
    assert not stack.outside_dir(run_dir).exists(), "the socket and cache directory was left behind"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={env['CHORUS_PG_PORT']} dbname=postgres connect_timeout=2")


def test_up_without_postgrest_explains_in_one_paragraph_and_starts_nothing(stack_env):
    env, base = stack_env
    env.pop("POSTGREST_BIN", None)
    env["PATH"] = os.pathsep.join(p for p in ("/usr/sbin", "/usr/bin", "/sbin", "/bin") if not (Path(p) / "postgrest").exists())
    result = _invoke(["up"], env)
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message.startswith("PostgREST was not found")
    assert "\n" not in message, "one paragraph"
    assert "POSTGREST_BIN=" in message and "v12.2" in message and "releases" in message
    assert not (base / "pgdata").exists(), "nothing is started without PostgREST"


def test_a_service_is_ours_by_its_marker_or_while_our_child_is_still_inside_execve(tmp_path):
    """Service.pid(): a pid file's process counts as ours by the marker in its command line or
    environment, and also while it is a child of this process whose exec has not yet laid out
    its command line and environment (both read empty then: seen under load, where it made
    wait_postgrest_socket report a PostgREST that was starting as stopped)."""
    marker = f"CHORUS_TEST_MARKER={tmp_path}"
    # The /proc facts of a child caught inside execve, and of the same facts elsewhere.
    assert stack._is_ours(marker, "", [""], os.getpid())
    assert not stack._is_ours(marker, "", [""], 1), "a process that is not our child is never taken as ours"
    assert not stack._is_ours(marker, "sleep 30", ["PATH=/bin"], os.getpid()), "a child of ours running another program"
    # Real processes: our child with the marker is found by its pid file, one without it is not.
    for env, expected in ((dict(os.environ, CHORUS_TEST_MARKER=str(tmp_path)), True), (dict(os.environ), False)):
        proc = subprocess.Popen(["sleep", "30"], env=env)
        try:
            service = stack.Service("sleeper", tmp_path / "sleep.pid", marker=marker, popen=proc)
            service.pidfile.write_text(f"{proc.pid}\n")
            deadline = time.monotonic() + 10
            while stack._cmdline(proc.pid) == "" and time.monotonic() < deadline:
                time.sleep(0.01)  # past the exec, so the marker alone decides
            assert (service.pid() == proc.pid) is expected
        finally:
            proc.kill()
            proc.wait()
        assert service.pid() is None, "a reaped process is not running"
