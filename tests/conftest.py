"""Fixtures: a real PostgreSQL cluster, the schema built once into a template, a fresh copy
per test, and the PostgREST-request helper bound to that copy.

The cluster is the project's test cluster (in the system temp directory, see
chorus_db.testing; as root it runs as an unprivileged OS user), stopped at the end when this
session started it. pytest-postgresql's DatabaseJanitor makes and drops the per-test copies of
the template.

Under CI=true a test that cannot run (a skip, PostgREST or nginx missing) is a failure: CI must
run the whole suite, and a skip there would hide a missing part.
"""

from __future__ import annotations

import itertools
import os

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

from chorus_db import testing
from chorus_db.cluster import Cluster
from tests.support.postgrest import PostgrestSim

# Under CI=true a skip is a failure (tests/support/ci_plugin.py).
pytest_plugins = ["tests.support.ci_plugin"]

AUTHENTICATOR_PASSWORD = "authenticator-test-only"
_counter = itertools.count()


def pytest_configure(config):
    # Where no PostgREST is configured, the vendored copy (CHORUS_VENDOR_DIR) is unpacked now, so
    # every HTTP test and every `invoke up` run under test finds it as POSTGREST_BIN.
    from chorus_db.vendor import VendorError

    try:
        testing.postgrest_for_tests()
    except VendorError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_collection_modifyitems(config, items):
    # In parallel workers (`invoke test`), the files holding a slow test go first: a long file
    # handed out last would run alone at the end while the other workers wait.
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def pg_cluster():
    with testing.running_test_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def template_url(pg_cluster: Cluster) -> str:
    url = testing.build_template(pg_cluster)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"alter role authenticator password '{AUTHENTICATOR_PASSWORD}'")
    return url


@pytest.fixture
def db_url(pg_cluster: Cluster, template_url: str):
    """A fresh database copied from the built template, dropped after the test."""
    name = f"chorus_t{os.getpid()}_{next(_counter)}"
    janitor = DatabaseJanitor(
        user="postgres",
        host="127.0.0.1",
        port=pg_cluster.port,
        dbname=name,
        template_dbname=testing.TEMPLATE_DB,
        password=pg_cluster.password,
    )
    with janitor:
        yield pg_cluster.url(name)


@pytest.fixture
def db(db_url: str):
    """A superuser connection (autocommit) to the per-test database, for setup and checks."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def api(db_url: str) -> PostgrestSim:
    """Requests as PostgREST makes them, against the per-test database."""
    return PostgrestSim(make_conninfo(db_url, user="authenticator", password=AUTHENTICATOR_PASSWORD))


@pytest.fixture
def make_key(db):
    """Create an API key of a role and return the secret."""

    def _make(role: str = "reader", name: str | None = None) -> str:
        name = name or f"{role}-{next(_counter)}"
        return db.execute("select app_logic.create_api_key(%s, %s)", (name, role)).fetchone()[0]

    return _make


@pytest.fixture
def admin(make_key) -> str:
    """An admin key (the SQL-level API tests; the HTTP modules make theirs through `http`)."""
    return make_key("admin")


@pytest.fixture
def reader(make_key) -> str:
    """A reader key."""
    return make_key("reader")


@pytest.fixture(scope="session")
def http(pg_cluster: Cluster, template_url: str):
    """The API through nginx and PostgREST (tests marked http), on free ports, against a copy of
    the template (database chorus_http); skipped with the reason where PostgREST is absent
    (a failure under CI=true)."""
    from tests.support.http_stack import HttpStack

    stack = HttpStack(pg_cluster, AUTHENTICATOR_PASSWORD)
    client = stack.start()
    if client is None:
        pytest.skip(stack.skip_reason)
    try:
        yield client
    finally:
        stack.stop()
