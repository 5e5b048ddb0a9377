"""docker-compose.yml agrees with the local stack (no Docker engine runs here, so the files are
read): the same nginx template, the same PostgREST settings, roles and database, healthchecks,
secrets from the environment, PostgREST unpublished; likewise docker-compose.external.yml."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from chorus_db import config, stack

ROOT = config.ROOT
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
EXTERNAL = yaml.safe_load((ROOT / "docker-compose.external.yml").read_text())
CONF = stack.read_postgrest_conf()
# Settings the environment supplies on purpose (secrets) or that differ in a container.
ENV_ONLY = {"db-uri", "jwt-secret"}
CONTAINER_DIFFERS = {"server-host"}
SECRET_VARIABLES = {"POSTGRES_PASSWORD", "AUTHENTICATOR_PASSWORD", "PGRST_JWT_SECRET"}


def _unescape(value) -> str:
    return str(value).replace("$$", "$")


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} with the given variables."""

    def repl(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in variables:
            return variables[name]
        if op == ":-":
            return arg
        raise KeyError(name)

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", repl, str(value)).replace("$$", "$")


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _postgrest_settings(env: dict[str, str]) -> dict[str, str]:
    by_env = {stack.env_name(key): key for key in CONF | dict.fromkeys(ENV_ONLY)}
    unknown = set(env) - set(by_env)
    assert not unknown, f"PGRST_* variables with no counterpart in postgrest.conf: {unknown}"
    return {by_env[name]: _unescape(value) for name, value in env.items()}


@pytest.fixture(params=["docker-compose.yml", "docker-compose.external.yml"])
def compose(request):
    return request.param, COMPOSE if request.param == "docker-compose.yml" else EXTERNAL


def test_services_are_the_database_the_build_postgrest_and_nginx():
    always = {name for name, service in COMPOSE["services"].items() if "profiles" not in service}
    assert always == {"postgres", "migrate", "postgrest", "nginx"}
    # The external mode uses the shared server instead of its own.
    assert set(EXTERNAL["services"]) == {"migrate", "postgrest", "nginx"}


def test_postgrest_gets_exactly_the_settings_of_postgrest_conf(compose):
    name, doc = compose
    service = doc["services"]["postgrest"]
    assert service["image"] == "postgrest/postgrest:v12.2.3"
    settings = _postgrest_settings(service["environment"])
    for key, value in CONF.items():
        if key in CONTAINER_DIFFERS:
            continue
        assert settings.get(key) == value, f"{name}: {key} is {settings.get(key)!r}, postgrest.conf says {value!r}"
    assert set(settings) == set(CONF) | ENV_ONLY
    assert settings["server-host"] == "*"  # reachable by nginx on the compose network only
    assert CONF["server-host"] == "127.0.0.1"  # locally: loopback only
    assert CONF["db-anon-role"] == config.ANON_ROLE
    uri = urlsplit(_interpolate(settings["db-uri"], {"AUTHENTICATOR_PASSWORD": "pw"}))
    assert uri.username == config.AUTHENTICATOR and uri.password == "pw"
    assert uri.path == "/" + config.DB_NAME


def test_postgrest_publishes_no_port_and_waits_for_the_build(compose):
    _, doc = compose
    service = doc["services"]["postgrest"]
    assert "ports" not in service and "network_mode" not in service
    assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}


def test_nginx_uses_the_same_template_file_with_only_the_upstream_and_listen_from_env(compose):
    _, doc = compose
    nginx = doc["services"]["nginx"]
    assert nginx["image"].startswith("nginx:1.27")
    mount = "./deploy/nginx/api.conf.template:/etc/nginx/templates/api.conf.template:ro"
    # The template includes chorus/routes.conf (relative to /etc/nginx): the build step's rendering.
    monitoring = "./deploy/nginx/monitoring.conf.template:/etc/nginx/templates/monitoring.conf.template:ro"
    assert nginx["volumes"] == [mount, "nginx-routes:/etc/nginx/chorus:ro", monitoring, "nginx-metrics:/var/log/nginx-metrics"]
    assert "nginx-routes:/nginx-routes" in doc["services"]["migrate"]["volumes"]
    assert "python -m chorus_db.routes nginx /nginx-routes/routes.conf" in " ".join(doc["services"]["migrate"]["command"])
    assert (ROOT / mount.split(":")[0]).resolve() == stack.NGINX_TEMPLATE
    env = nginx["environment"]
    from chorus_db.ops_stack import NGINX_MONITORING_VARIABLES

    assert set(env) == set(stack.TEMPLATE_VARIABLES) | set(NGINX_MONITORING_VARIABLES) | {"NGINX_ENVSUBST_FILTER"}
    for name in NGINX_MONITORING_VARIABLES:
        assert re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), name)
    assert env["NGINX_STATUS_LISTEN"].startswith("127.0.0.1:")
    assert re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "API_LISTEN")
    assert re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "POSTGREST_UPSTREAM")
    assert re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "POSTGREST_READ_UPSTREAM")
    # Without the replica profile the read pool is the primary's PostgREST.
    assert env["POSTGREST_READ_UPSTREAM"] == "${POSTGREST_READ_UPSTREAM:-postgrest:3000}"
    assert not re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "PATH")
    postgrest = _postgrest_settings(doc["services"]["postgrest"]["environment"])
    assert env["POSTGREST_UPSTREAM"] == f"postgrest:{postgrest['server-port']}"
    assert str(env["API_LISTEN"]) == "8080"
    assert nginx["ports"] == ["${API_PORT:-8080}:8080"]
    assert nginx["depends_on"] == {"postgrest": {"condition": "service_started"}}


def test_every_long_running_service_has_a_healthcheck(compose):
    _, doc = compose
    services = doc["services"]
    nginx_check = " ".join(services["nginx"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/api/leads/health" in nginx_check
    # The PostgREST image has no shell: its /ready is asked from the nginx container.
    admin_port = _postgrest_settings(services["postgrest"]["environment"])["admin-server-port"]
    assert f"http://postgrest:{admin_port}/ready" in nginx_check
    if "postgres" in services:
        assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_the_database_image_has_pg_cron_and_pgtap_preloaded_like_the_embedded_cluster():
    postgres = COMPOSE["services"]["postgres"]
    dockerfile = (ROOT / postgres["build"]["context"] / "Dockerfile").read_text()
    assert re.search(r"^FROM postgres:15\s*$", dockerfile, re.M)
    assert "postgresql-${PG_MAJOR}-cron" in dockerfile and "postgresql-${PG_MAJOR}-pgtap" in dockerfile
    args = postgres["command"]
    settings = dict(a.split("=", 1) for a in args if "=" in a)
    assert settings["shared_preload_libraries"] == "pg_cron"
    assert settings["cron.database_name"] == config.DB_NAME
    # The same choices as chorus_db/cluster.py's chorus.conf.
    cluster_source = (ROOT / "chorus_db" / "cluster.py").read_text()
    for key in ("cron.use_background_workers", "max_worker_processes", "cron.timezone", "timezone"):
        assert f'"{key} = ' in cluster_source and settings[key] in cluster_source
    assert postgres["environment"]["POSTGRES_DB"] == config.DB_NAME
    assert all(p.startswith("127.0.0.1:") for p in postgres.get("ports", []))


def test_the_build_runs_invoke_db_build_on_the_project_database_then_sets_the_login(compose):
    name, doc = compose
    migrate = doc["services"]["migrate"]
    script = " ".join(migrate["command"])
    assert "invoke db.build" in script and "invoke db.authenticator-password" in script
    # The source runs from its read-only mount as it is now: no copy (a restart would nest it in
    # the old one and build stale source), no install at start (versions are pinned in the image).
    assert "cp " not in script and "pip install" not in script
    assert migrate["build"] == {"context": ".", "dockerfile": "deploy/migrate/Dockerfile"}
    assert script.index("invoke db.build") < script.index("invoke db.authenticator-password")
    url = urlsplit(_interpolate(migrate["environment"]["DATABASE_URL"], {"POSTGRES_PASSWORD": "pw"}))
    assert url.path == "/" + config.DB_NAME
    if name == "docker-compose.yml":
        assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for mount in migrate["volumes"]:
        if mount.startswith("./"):  # the source, read-only; the other is the nginx-routes volume
            assert (ROOT / mount.split(":")[0]).exists() and mount.endswith(":ro")


def test_secrets_come_from_the_environment_and_env_example_names_them_all(compose):
    name, doc = compose
    text = (ROOT / name).read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = _env_example()
    assert used <= set(example), f"{name} uses variables .env.example does not name: {used - set(example)}"
    for variable in SECRET_VARIABLES:
        assert re.search(r"\$\{" + variable + r":\?", text), f"{variable} must be required (${{{variable}:?...}})"
        assert example[variable].startswith("change-me")
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_external_mode_joins_the_chorus_network_instead_of_its_own_database():
    network = EXTERNAL["networks"]["chorus_network"]
    assert network["external"] is True
    assert "CHORUS_NETWORK" in network["name"]
    for service in ("migrate", "postgrest"):
        assert "chorus_network" in EXTERNAL["services"][service]["networks"]
    # nginx stays off the shared network.
    assert EXTERNAL["services"]["nginx"]["networks"] == ["default"]
    host = urlsplit(_interpolate(EXTERNAL["services"]["postgrest"]["environment"]["PGRST_DB_URI"], {"AUTHENTICATOR_PASSWORD": "x"}))
    assert host.hostname == "postgres" and host.path == "/" + config.DB_NAME


def test_both_files_run_the_same_postgrest_and_nginx():
    for service in ("postgrest", "nginx"):
        a, b = COMPOSE["services"][service], EXTERNAL["services"][service]
        for key in ("image", "environment", "volumes", "ports", "healthcheck", "depends_on"):
            if key == "environment" and service == "postgrest":
                same = {k: v for k, v in a[key].items() if k != "PGRST_DB_URI"}
                assert same == {k: v for k, v in b[key].items() if k != "PGRST_DB_URI"}
            else:
                assert a.get(key) == b.get(key), f"{service}.{key} differs"


# -- as a user runs it ------------------------------------------------------------------------
def test_both_files_are_valid_compose_files_by_the_compose_specifications_schema(compose):
    """tests/schemas/compose-spec.json is the Compose Specification's own JSON schema (its source
    is in tests/schemas/README.md)."""
    import json

    import jsonschema

    name, doc = compose
    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_check_can_fail():
    import json

    import jsonschema

    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    broken = {**COMPOSE, "services": {**COMPOSE["services"], "nginx": {**COMPOSE["services"]["nginx"], "restart": ["no"]}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_the_two_files_are_two_projects_so_switching_leaves_no_orphan():
    assert COMPOSE["name"] != EXTERNAL["name"]
    assert {COMPOSE["name"], EXTERNAL["name"]} == {"chorus-website", "chorus-website-external"}


def test_the_build_steps_image_and_the_local_install_pin_the_same_versions():
    constraints = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            constraints[package.strip().lower()] = version.strip()
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]
    for requirement in map(Requirement, wanted):
        name = requirement.name.lower()
        assert name in constraints, f"constraints.txt does not pin {name}"
        assert requirement.specifier.contains(constraints[name]), f"{name}=={constraints[name]} does not satisfy {requirement}"
    dockerfile = (ROOT / "deploy" / "migrate" / "Dockerfile").read_text()
    assert "COPY constraints.txt" in dockerfile and "-c /tmp/constraints.txt" in dockerfile
    assert "pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'" in (ROOT / ".ci" / "run").read_text()
    # The image's build context is the repository: only constraints.txt may enter it.
    assert (ROOT / ".dockerignore").read_text().split("\n")[1:3] == ["*", "!constraints.txt"]


def test_the_external_network_has_one_name_in_the_file_env_example_and_readme():
    default = re.fullmatch(r"\$\{CHORUS_NETWORK:-([^}]+)\}", EXTERNAL["networks"]["chorus_network"]["name"]).group(1)
    assert _env_example()["CHORUS_NETWORK"] == default
    readme = (ROOT / "README.md").read_text()
    assert f"`{default}`" in readme
    names = set(re.findall(r"`([a-z_-]*chorus[a-z_-]*network)`", readme))
    assert names == {default}, f"the README names the network differently: {names}"
