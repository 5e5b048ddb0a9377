"""Faults under the HTTP stack (issue 7): PostgreSQL stops under PostgREST and nginx; requests
get a prompt 503 (not a hang, not a 500), and the API comes back by itself when the database
does, without restarting PostgREST.

The database is a dedicated cluster, never the shared test cluster: stopping that one would
break every other test.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import pytest
import requests

from chorus_db import config, stack
from chorus_db.build import build
from chorus_db.cluster import Cluster

pytestmark = pytest.mark.http

PASSWORD = "authenticator-http-faults-only"
DB = "chorus_http_faults"
REQUEST_TIMEOUT = 10  # a request taking longer counts as a hang
RECOVERY_TIMEOUT = 30


@pytest.fixture
def dedicated_stack():
    postgrest_bin, nginx_bin = stack.find_postgrest(), stack.find_nginx()
    if postgrest_bin is None:
        pytest.skip("PostgREST not found: set POSTGREST_BIN to the postgrest binary (v12.2.x) or put it on PATH")
    if nginx_bin is None:
        pytest.skip("nginx not found: apt-get install nginx")
    # Not pytest's tmp_path: it is private to root, and the server runs as another OS user.
    base = config.scratch_dir("http-faults")
    cluster = Cluster(base / "pgdata", cron_database=DB, first_port=56300)
    run_dir = base / "run"
    services = []
    try:
        cluster.start()
        url = cluster.url(DB)
        build(url, log=lambda _m: None)
        stack.set_authenticator_password(url, PASSWORD)
        cfg = stack.StackConfig(
            run_dir=run_dir,
            database_url=cluster.url(DB, user=config.AUTHENTICATOR, password=PASSWORD),
            api_port=stack.free_port(),
            jwt_secret=stack.secret(run_dir, "jwt_secret", 48),
            postgrest_bin=postgrest_bin,
            nginx_bin=nginx_bin,
        )
        services.append(stack.start_postgrest(cfg)[0])
        services.append(stack.start_nginx(cfg)[0])
        stack.wait_until_ready(cfg, timeout=30)
        yield cluster, cfg, services[0]
    finally:
        for service in reversed(services):
            service.stop()
        stack.stop_all(run_dir)
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


def timed(method: str, url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
    return response, time.monotonic() - started


def lead(email: str) -> dict:
    return {"firstName": "Grace", "lastName": "Hopper", "email": email, "gdprConsent": True}


def test_postgrest_answers_503_while_postgresql_is_down_and_recovers_by_itself(dedicated_stack):
    cluster, cfg, postgrest = dedicated_stack
    api = f"http://127.0.0.1:{cfg.api_port}"
    health = api + "/api/leads/health"
    assert requests.get(health, timeout=REQUEST_TIMEOUT).status_code == 200
    assert requests.post(api + "/api/leads", json=lead("before@example.org"), timeout=REQUEST_TIMEOUT).status_code == 201
    pid = postgrest.pid()

    cluster.stop()  # pg_ctl stop -m fast: every connection of the pool is closed
    for method, path, body in [
        ("GET", "/api/leads/health", None),
        ("POST", "/api/leads", lead("during@example.org")),
        ("GET", "/api/leads/health", None),
        ("POST", "/api/page-views", {"sessionId": "s", "path": "/"}),
    ]:
        response, elapsed = timed(method, api + path, json=body)
        assert response.status_code == 503, (method, path, response.status_code, response.text)
        assert elapsed < REQUEST_TIMEOUT
        error = response.json()
        assert {"code", "message", "details", "hint"} <= set(error)
        assert "password" not in response.text.lower()

    cluster.start()
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    statuses = []
    while True:
        try:
            status = requests.get(health, timeout=REQUEST_TIMEOUT).status_code
        except requests.RequestException as exc:  # a hang or a refused connection is a failure too
            status = type(exc).__name__
        statuses.append(status)
        if status == 200:
            break
        assert time.monotonic() < deadline, f"no 200 within {RECOVERY_TIMEOUT} s after PostgreSQL came back: {statuses[-5:]}"
        assert status == 503, statuses
        time.sleep(0.2)
    assert postgrest.pid() == pid, "PostgREST was restarted"
    after = requests.post(api + "/api/leads", json=lead("after@example.org"), timeout=REQUEST_TIMEOUT)
    assert after.status_code == 201
    with psycopg.connect(cluster.url(DB), autocommit=True) as conn:
        emails = {e for (e,) in conn.execute("select email from app.leads")}
    assert emails == {"before@example.org", "after@example.org"}


def test_nginx_answers_503_in_the_api_error_shape_when_postgrest_is_down():
    nginx_bin = stack.find_nginx()
    if nginx_bin is None:
        pytest.skip("nginx not found: apt-get install nginx")
    run_dir = config.scratch_dir("nginx-down")
    cfg = stack.StackConfig(
        run_dir=run_dir, database_url="", api_port=stack.free_port(),
        postgrest_port=stack.free_port(),  # nothing listens there: PostgREST is down
        nginx_bin=nginx_bin,
    )
    try:
        stack.start_nginx(cfg)
        for method, path in [("GET", "/api/leads/health"), ("POST", "/api/leads"), ("GET", "/api/")]:
            response, elapsed = timed(method, f"http://127.0.0.1:{cfg.api_port}{path}", json={} if method == "POST" else None)
            assert response.status_code == 503, (method, path, response.text)
            assert elapsed < REQUEST_TIMEOUT
            assert response.json()["code"] == "CHU01"
            assert set(response.json()) == {"code", "message", "details", "hint"}
    finally:
        stack.stop_all(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
