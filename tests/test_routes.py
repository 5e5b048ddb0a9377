"""db/routes.toml is the one route table: adding an endpoint is one row there (plus its SQL),
and nginx, the OpenAPI document and app_logic.routes follow; a row the database cannot serve
fails the build, naming the row and what is missing."""

from __future__ import annotations

import json
import shutil

import psycopg
import pytest
import requests

from chorus_db import config, routes, stack, testing
from chorus_db.build import BuildError, Source, build

THROWAWAY_ROW = (
    '    { method = "POST", path = "/api/throwaway-pings", target = "/rpc/record_throwaway_ping", key = "none",'
    ' success = [201], rate_limit = "", health = ["app.settings"] },\n'
)
THROWAWAY_FUNCTION = """
create function api.record_throwaway_ping(jsonb) returns jsonb
language plpgsql volatile
as $$
begin
    perform set_config('response.status', '201', true);
    return jsonb_build_object('status', 'pinged', 'echo', $1 -> 'n');
end
$$;
comment on function api.record_throwaway_ping(jsonb) is 'POST /api/throwaway-pings: a route added by a test.';
"""
THROWAWAY_GRANT = "grant execute on function api.record_throwaway_ping(jsonb) to anon;\n"


def quiet(_msg: str) -> None:
    pass


def _add_row(root, row: str) -> None:
    table = root / "routes.toml"
    text = table.read_text()
    closing = text.rindex("]")
    table.write_text(text[:closing] + row + text[closing:])


@pytest.fixture
def source_copy(tmp_path) -> Source:
    root = tmp_path / "db"
    shutil.copytree(config.DB_DIR, root)
    return Source(root)


@pytest.fixture
def template_copy(pg_cluster, template_url, request):
    name = f"chorus_routes_{request.node.name[:30].lower()}"
    url = testing.copy_of_template(pg_cluster, name)
    yield url
    testing.recreate_database(pg_cluster, name)


def test_the_route_table_has_the_public_endpoints_once_each():
    assert len({(r.method, r.path) for r in routes.ROUTES}) == len(routes.ROUTES)
    assert routes.resolve("POST", "/api/leads").target == "/rpc/submit_lead"
    assert routes.resolve("GET", "/api/leads?select=id").key == "reader"


@pytest.fixture
def throwaway(source_copy, template_copy):
    """The build of a source with one more route: its function, its grant and its row."""
    (source_copy.root / "functions" / "990-throwaway.sql").write_text(THROWAWAY_FUNCTION)
    (source_copy.root / "policies" / "990-throwaway.sql").write_text(THROWAWAY_GRANT)
    _add_row(source_copy.root, THROWAWAY_ROW)
    build(template_copy, source=source_copy, log=quiet)
    return source_copy, template_copy


def test_a_throwaway_route_reaches_the_route_table_openapi_and_nginx(throwaway, pg_cluster):
    source, url = throwaway
    table = routes.load(source.root / "routes.toml")
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select key, success, health from app_logic.routes where path = '/api/throwaway-pings' and method = 'POST'"
        ).fetchone()
        (document,) = conn.execute("select api.openapi()").fetchone()
    assert row == ("none", [201], ["app.settings"])
    operation = document["paths"]["/api/throwaway-pings"]["post"]
    assert operation["description"] == "POST /api/throwaway-pings: a route added by a test."
    assert set(operation["responses"]) == {"201", "400", "401", "413", "default"}  # no rate limit: no 429
    assert '"POST /api/throwaway-pings" /rpc/record_throwaway_ping;' in routes.nginx_routes_conf(table)

    # nginx rendered from that table in front of PostgREST serves the new path end to end.
    postgrest_bin, nginx_bin = stack.find_postgrest(), stack.find_nginx()
    if postgrest_bin is None or nginx_bin is None:
        pytest.skip("PostgREST or nginx not found: set POSTGREST_BIN, apt-get install nginx")
    password = "throwaway-authenticator"
    stack.set_authenticator_password(url, password)
    dbname = url.rsplit("/", 1)[1].split("?")[0]
    cfg = stack.StackConfig(
        # A scratch directory of the checkout: `invoke down` finds it after a killed run.
        run_dir=config.scratch_dir("routes"),
        database_url=pg_cluster.url(dbname, user=config.AUTHENTICATOR, password=password),
        api_port=stack.free_port(),
        jwt_secret="j" * 48, postgrest_bin=postgrest_bin, nginx_bin=nginx_bin, nginx_routes=table,
    )
    try:
        stack.start_postgrest(cfg)
        stack.start_nginx(cfg)
        stack.wait_until_ready(cfg, timeout=30)
        base = f"http://127.0.0.1:{cfg.api_port}"
        answer = requests.post(base + "/api/throwaway-pings", json={"n": 7}, timeout=10)
        assert (answer.status_code, answer.json()) == (201, {"status": "pinged", "echo": 7})
        refused = requests.get(base + "/api/throwaway-pings", timeout=10)
        assert (refused.status_code, refused.headers["Allow"]) == (405, "POST")
    finally:
        stack.stop_all(cfg.run_dir)
        shutil.rmtree(cfg.run_dir, ignore_errors=True)
        # Roles are cluster-wide: give the authenticator back the password the other tests use.
        from tests.conftest import AUTHENTICATOR_PASSWORD

        stack.set_authenticator_password(url, AUTHENTICATOR_PASSWORD)


def test_a_route_whose_function_is_missing_fails_the_build_and_changes_nothing(source_copy, template_copy):
    _add_row(source_copy.root, THROWAWAY_ROW)
    with pytest.raises(BuildError) as err:
        build(template_copy, source=source_copy, log=quiet)
    assert str(err.value).startswith(
        "db/routes.toml: POST /api/throwaway-pings needs the function api.record_throwaway_ping(jsonb), "
        "which no file in db/functions creates"
    )
    with psycopg.connect(template_copy, autocommit=True) as conn:
        (count,) = conn.execute("select count(*) from app_logic.routes where path = '/api/throwaway-pings'").fetchone()
    assert count == 0


def test_a_route_its_role_may_not_use_fails_the_build(source_copy, template_copy):
    (source_copy.root / "functions" / "990-throwaway.sql").write_text(THROWAWAY_FUNCTION)
    _add_row(source_copy.root, THROWAWAY_ROW)  # no grant to anon
    with pytest.raises(BuildError, match=r"POST /api/throwaway-pings \(key none\) needs EXECUTE on "
                                         r"api.record_throwaway_ping\(jsonb\) for role anon"):
        build(template_copy, source=source_copy, log=quiet)


def test_a_route_naming_a_missing_health_table_fails_the_build(source_copy, template_copy):
    (source_copy.root / "functions" / "990-throwaway.sql").write_text(THROWAWAY_FUNCTION)
    (source_copy.root / "policies" / "990-throwaway.sql").write_text(THROWAWAY_GRANT)
    _add_row(source_copy.root, THROWAWAY_ROW.replace("app.settings", "app.no_such_table"))
    with pytest.raises(BuildError, match="names the health table app.no_such_table, which does not exist"):
        build(template_copy, source=source_copy, log=quiet)


def test_a_route_naming_a_missing_rule_fails_the_build(source_copy, template_copy):
    (source_copy.root / "functions" / "990-throwaway.sql").write_text(THROWAWAY_FUNCTION)
    (source_copy.root / "policies" / "990-throwaway.sql").write_text(THROWAWAY_GRANT)
    _add_row(source_copy.root, THROWAWAY_ROW.replace(" },", ', rule = "no_such_rule" },'))
    with pytest.raises(BuildError, match=r"POST /api/throwaway-pings names the rule app_logic.no_such_rule\(\), "
                                         r"which no file in db/functions creates"):
        build(template_copy, source=source_copy, log=quiet)


def test_a_route_s_rule_is_the_body_schema_its_openapi_operation_shows(db):
    """The rule a route row names (app_logic.route_rule) is the one the document translates; a
    row without one has app_logic.<function>_rule()."""
    route = {"method": "POST", "path": "/api/throwaway-pings", "target": "/rpc/save_accessibility_preferences",
             "key": "none", "success": [201]}
    named = {**route, "rule": "session_id_rule"}
    (default, by_row, expected) = db.execute(
        "select app_logic.openapi_document(%s::jsonb), app_logic.openapi_document(%s::jsonb),"
        " app_logic.openapi_schema_of_rule(app_logic.session_id_rule())",
        (json.dumps([route]), json.dumps([named])),
    ).fetchone()
    schemas = "components", "schemas", "save_accessibility_preferences_body"
    assert _at(by_row, schemas) == expected and _at(by_row, schemas)["type"] == "string"
    assert _at(default, schemas)["required"] == ["sessionId", "accessibilityTheme"]


def _at(document: dict, keys: tuple[str, ...]):
    for key in keys:
        document = document[key]
    return document


@pytest.mark.parametrize(
    "row, message",
    [
        (THROWAWAY_ROW.replace(" },", ', rule = "Bad-Rule" },'), "rule names an app_logic function"),
        (THROWAWAY_ROW.replace('method = "POST"', 'method = "PUT"'), "method must be one of GET, POST"),
        (THROWAWAY_ROW.replace('key = "none"', 'key = "anyone"'), "key must be one of none, reader, admin"),
        (THROWAWAY_ROW.replace("success = [201]", "success = [404]"), "success must list the 2xx statuses"),
        (THROWAWAY_ROW.replace('"/api/throwaway-pings"', '"/throwaway"'), "path must start with /api/"),
        (THROWAWAY_ROW.replace('rate_limit = "", ', ""), "missing field(s) rate_limit"),
        (THROWAWAY_ROW.replace("key =", "kee ="), "unknown field(s) kee"),
        (
            '    { method = "POST", path = "/api/leads", target = "/rpc/submit_lead", key = "none",'
            ' success = [201], rate_limit = "leads", health = [] },\n',
            "POST /api/leads is listed twice",
        ),
    ],
)
def test_a_malformed_route_row_is_refused_with_a_sentence_naming_it(source_copy, row, message):
    _add_row(source_copy.root, row)
    with pytest.raises(routes.RouteError) as err:
        routes.load(source_copy.root / "routes.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("routes.toml: ")


def test_the_nginx_include_is_written_by_the_module_command(tmp_path):
    out = tmp_path / "chorus" / "routes.conf"
    assert routes.main(["nginx", str(out)]) == 0
    assert out.read_text() == routes.nginx_routes_conf()
