"""A bounded schemathesis run against the OpenAPI document GET /api/ serves: no request
generated from it, valid or not, may get a 5xx through nginx and PostgREST.

Every generated request comes from a loopback address of its own, so the rate limits do not
stop the run at the first few submissions, and carries an admin key, so the admin endpoints are
reached too (generated emails are random: they name no lead of another test).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

pytestmark = [pytest.mark.http, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def api_schema(http):
    document = http.get("/api/").json()
    # An event stream (GET /api/live/brand-metrics) never ends: schemathesis reads it until this
    # many events or the request timeout. Its status (what not_a_server_error checks) and the
    # snapshot event come at once; waiting out the timeout for each example checks nothing more.
    config = schemathesis.config.SchemathesisConfig.from_dict({"max-stream-events": 1})
    return schemathesis.openapi.from_dict(document, config=config)


@pytest.fixture
def admin_key(http) -> str:
    return http.make_key("admin")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_generated_from_the_openapi_document_gets_a_5xx(case, http, admin_key):
    client = http.fresh_client()
    case.call_and_validate(
        base_url=http.base_url,
        session=client.session,
        headers={"X-API-Key": admin_key},
        checks=[not_a_server_error],
        timeout=10,
    )


def test_an_event_stream_is_read_to_its_first_event_only(api_schema):
    """Else each generated GET of the live stream waits out the 10 s request timeout."""
    live = [path for path in api_schema.raw_schema["paths"] if path.startswith("/api/live/")]
    assert live, "the OpenAPI document lists the live stream"
    operation = api_schema[live[0]]["GET"]
    assert api_schema.config.max_stream_events_for(operation=operation) == 1
