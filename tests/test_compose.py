"""docker-compose.yml agrees with the local stack (no Docker engine runs here, so the files are
read): the same nginx template, the same PostgREST settings, roles and database, healthchecks,
secrets from the environment, PostgREST unpublished; likewise docker-compose.external.yml."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from chorus_db import config, ops_stack, stack

ROOT = config.ROOT
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
EXTERNAL = yaml.safe_load((ROOT / "docker-compose.external.yml").read_text())
CONF = stack.read_postgrest_conf()
TEMPLATE = stack.NGINX_TEMPLATE.read_text()
# Settings the environment supplies on purpose (secrets, as files) or that differ in a container.
ENV_ONLY = {"db-uri", "jwt-secret", "server-unix-socket"}
SECRET_FILES = {"postgres_password", "authenticator_password", "jwt_secret"}


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


def test_services_are_the_secrets_check_the_database_the_build_postgrest_the_live_relay_the_mail_worker_the_pages_and_nginx():
    # Without a profile (tests/test_ops_compose.py reads the replica and pgbouncer profiles).
    default = {name for name, spec in COMPOSE["services"].items() if not spec.get("profiles")}
    assert default == {"secrets", "postgres", "migrate", "postgrest", "live-relay", "mail-worker", "pages", "nginx"}
    # The external mode uses the shared server instead of its own.
    assert set(EXTERNAL["services"]) == {"secrets", "migrate", "postgrest", "live-relay", "pages", "nginx"}


def test_postgrest_gets_exactly_the_settings_of_postgrest_conf(compose):
    name, doc = compose
    service = doc["services"]["postgrest"]
    assert service["image"] == "postgrest/postgrest:v12.2.3"
    settings = _postgrest_settings(service["environment"])
    for key, value in CONF.items():
        assert settings.get(key) == value, f"{name}: {key} is {settings.get(key)!r}, postgrest.conf says {value!r}"
    assert set(settings) == set(CONF) | ENV_ONLY
    # Secrets as files (PostgREST's @file), written by the build step for PostgREST's user only.
    assert settings["db-uri"] == "@/run/postgrest-secrets/db_uri"
    assert settings["jwt-secret"] == "@/run/postgrest-secrets/jwt_secret"
    assert "postgrest-secrets:/run/postgrest-secrets:ro" in service["volumes"]


def test_postgrest_listens_on_a_socket_only_nginx_mounts_and_on_no_port(compose):
    _, doc = compose
    services = doc["services"]
    postgrest = services["postgrest"]
    settings = _postgrest_settings(postgrest["environment"])
    assert settings["server-unix-socket"] == "/run/postgrest/postgrest.sock"
    # No TCP listener, no admin server (its /config shows the secrets), nothing published.
    for key in ("server-host", "server-port", "admin-server-port"):
        assert key not in settings and key not in CONF
    assert "ports" not in postgrest and "expose" not in postgrest and "network_mode" not in postgrest
    # The socket's volume: PostgREST writes it, nginx reads it, the build prepares it; no one else.
    mounting = {n for n, s in services.items() if any(v.startswith("postgrest-socket:") for v in s.get("volumes", []))}
    assert mounting == {"postgrest", "nginx", "migrate"}
    assert "postgrest-socket:/run/postgrest:ro" in services["nginx"]["volumes"]
    assert services["nginx"]["environment"]["POSTGREST_UPSTREAM"] == "unix:/run/postgrest/postgrest.sock"
    # PostgREST runs in nginx's group (the official nginx image's gid 101): the 660 socket is nginx's.
    assert postgrest["user"] == "1000:101"
    assert CONF["server-unix-socket-mode"] == "660"
    assert postgrest["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}


def test_nginx_uses_the_same_template_and_main_config_with_only_the_upstream_and_listen_from_env(compose):
    _, doc = compose
    nginx = doc["services"]["nginx"]
    assert nginx["image"].startswith("nginx:1.27")
    mount = "./deploy/nginx/api.conf.template:/etc/nginx/templates/api.conf.template:ro"
    # The template includes chorus/routes.conf (relative to /etc/nginx): the build step's rendering;
    # and request_checks.conf there, the file the local stack copies beside its rendering.
    checks = "./deploy/nginx/request_checks.conf:/etc/nginx/request_checks.conf:ro"
    assert nginx["volumes"][:4] == [
        mount, "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro", "nginx-routes:/etc/nginx/chorus:ro", checks
    ]
    assert (ROOT / mount.split(":")[0]).resolve() == stack.NGINX_TEMPLATE
    assert (ROOT / checks.split(":")[0]).resolve() == stack.NGINX_REQUEST_CHECKS
    assert "include request_checks.conf;" in TEMPLATE
    assert "nginx-routes:/nginx-routes" in doc["services"]["migrate"]["volumes"]
    assert "python -m chorus_db.routes nginx /nginx-routes/routes.conf" in " ".join(doc["services"]["migrate"]["command"])
    env = nginx["environment"]
    # The API template's placeholders, and deploy/nginx/monitoring.conf.template's (tests/test_ops_compose.py).
    assert set(env) == set(stack.TEMPLATE_VARIABLES) | set(ops_stack.NGINX_MONITORING_VARIABLES) | {"NGINX_ENVSUBST_FILTER"}
    assert re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "API_LISTEN")
    assert re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "POSTGREST_UPSTREAM")
    assert re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "LIVE_RELAY_UPSTREAM")
    assert re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "POSTGREST_READ_UPSTREAM")
    assert env["LIVE_RELAY_UPSTREAM"] == "unix:/run/live-relay/relay.sock"
    assert not re.fullmatch(_unescape(env["NGINX_ENVSUBST_FILTER"]), "PATH")
    assert str(env["API_LISTEN"]) == "8080"
    assert nginx["depends_on"] == {
        "postgrest": {"condition": "service_started"}, "live-relay": {"condition": "service_started"},
        "pages": {"condition": "service_completed_successfully"},
    }


def test_the_live_relay_runs_chorus_db_live_as_the_authenticator_after_the_build(compose):
    _, doc = compose
    relay = doc["services"]["live-relay"]
    assert relay["command"] == ["python", "-m", "chorus_db.live"]
    assert relay["image"] == doc["services"]["migrate"]["image"]  # the pinned packages, the mounted source
    assert relay["volumes"] == [
        "./chorus_db:/src/chorus_db:ro", "postgrest-secrets:/run/postgrest-secrets:ro", "live-relay-socket:/run/live-relay"
    ]
    env = relay["environment"]
    assert env["CHORUS_LIVE_DATABASE_URL_FILE"] == "/run/postgrest-secrets/db_uri"
    # A socket nginx mounts read-only, named in nginx's upstream by path.
    assert env["CHORUS_LIVE_SOCKET"] == "/run/live-relay/relay.sock"
    assert "live-relay-socket:/run/live-relay:ro" in doc["services"]["nginx"]["volumes"]
    assert doc["services"]["nginx"]["environment"]["LIVE_RELAY_UPSTREAM"] == "unix:/run/live-relay/relay.sock"
    assert relay["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert "/run/live-relay/relay.sock" in " ".join(relay["healthcheck"]["test"])
    assert "ports" not in relay  # only nginx is reachable


# The official nginx image's prefix (`nginx -V`: --prefix=/etc/nginx): the template's relative
# paths (`include chorus/routes.conf`, the pages' `root web`) resolve below it.
NGINX_PREFIX = "/etc/nginx"


def _service(name: str, doc: dict, service: str) -> dict:
    """A service with compose's `extends` (from a file next to this one) applied."""
    definition = doc["services"][service]
    if "extends" not in definition:
        return definition
    extends = definition["extends"]
    other = extends.get("file", name)
    base = _service(other, yaml.safe_load((ROOT / other).read_text()), extends["service"])
    return {**base, **{k: v for k, v in definition.items() if k != "extends"}}


def _pages_location() -> tuple[list[str], str]:
    """The directories the template serves as pages, and its root for them."""
    block = re.search(r"location ~ \^/\(([a-z|]+)\)/ \{(.*?)\n    \}", TEMPLATE, re.S)
    assert block, "no pages location in the template"
    (root,) = re.findall(r"^\s*root (\S+);", block.group(2), re.M)
    return block.group(1).split("|"), root


def test_nginx_serves_the_pages_built_by_the_pages_service_from_the_templates_root_as_the_local_stack_does(compose):
    name, doc = compose
    directories, root = _pages_location()
    assert {"dashboard", "form"} <= set(directories)
    # The local stack puts web/public at the same root under its prefix (chorus_db.stack.place_pages).
    assert root == stack.PAGES_ROOT
    build_script = (config.WEB_DIR / "build.mjs").read_text()
    for directory in directories:
        if directory == "vendor":  # written by the build, never committed
            assert "join(here, 'public', 'vendor')" in build_script
        else:
            assert any((config.WEB_ROOT / directory).iterdir()), directory

    nginx = doc["services"]["nginx"]
    assert f"./deploy/nginx/api.conf.template:{NGINX_PREFIX}/templates/api.conf.template:ro" in nginx["volumes"]
    assert f"pages:{NGINX_PREFIX}/{root}:ro" in nginx["volumes"]
    assert nginx["depends_on"]["pages"] == {"condition": "service_completed_successfully"}
    assert "pages" in doc["volumes"]
    readers = {n for n in doc["services"] if any(str(v).startswith("pages:") for v in _service(name, doc, n).get("volumes", []))}
    assert readers == {"pages", "nginx"}

    # The pages service builds what `invoke web.build` builds (chorus_db.web: npm ci of the lock
    # file, then build.mjs) in a copy of the read-only source, then fills the volume with public/.
    pages = _service(name, doc, "pages")
    assert pages["volumes"] == ["./web:/src/web:ro", "pages:/pages"]
    image, _, tag = pages["image"].partition(":")
    assert image == "node" and int(tag.split("-")[0]) >= 18  # the README's Node.js 18+
    lines = [line.strip() for line in pages["command"][-1].strip().splitlines()]
    assert "cp /src/web/package.json /src/web/package-lock.json /src/web/build.mjs ." in lines
    assert "cp -R /src/web/public public" in lines
    npm_ci = next(i for i, line in enumerate(lines) if line.startswith("npm ci "))
    assert npm_ci < lines.index("node build.mjs") < lines.index("find /pages -mindepth 1 -delete") < lines.index("cp -R public/. /pages/")
    # --omit=dev leaves out the test and client packages: what build.mjs vendors must not be one.
    assert "--omit=dev" in lines[npm_ci].split()
    import json

    dependencies = json.loads((config.WEB_DIR / "package.json").read_text())["dependencies"]
    vendored = set(re.findall(r"^\s*\['([^']+)', '[^']+', '[^']+'\],", build_script, re.M))
    assert vendored and vendored <= set(dependencies), f"build.mjs vendors dev packages: {vendored - set(dependencies)}"
    assert pages["restart"] == "no" and "ports" not in pages


def test_nginx_is_published_on_loopback_unless_api_bind_says_otherwise(compose):
    _, doc = compose
    (port,) = doc["services"]["nginx"]["ports"]
    assert port == "${API_BIND:-127.0.0.1}:${API_PORT:-8080}:8080"
    assert _interpolate(port, {}) == "127.0.0.1:8080:8080"
    assert _interpolate(port, {"API_BIND": "0.0.0.0"}) == "0.0.0.0:8080:8080"


def test_nginx_resolves_no_host_name_so_a_recreated_postgrest_is_reached(compose):
    _, doc = compose
    rendered = stack.render_template(stack.NGINX_TEMPLATE.read_text(), doc["services"]["nginx"]["environment"])
    servers = re.findall(r"^\s*server\s+(\S+?);", rendered, re.M)
    assert servers and all(s.startswith("unix:") for s in servers)


def test_the_container_main_config_sizes_workers_and_declares_the_openapi_cache():
    sizing = stack.nginx_sizing()
    assert sizing["worker_processes"] == "auto"
    assert int(sizing["worker_connections"]) >= 4096
    assert int(sizing["worker_rlimit_nofile"]) >= 2 * int(sizing["worker_connections"])
    main = stack.NGINX_MAIN.read_text()
    assert stack.OPENAPI_CACHE_ZONE in main
    assert "include /etc/nginx/conf.d/*.conf;" in main and "access_log /dev/stdout chorus;" in main


def test_every_long_running_service_has_a_healthcheck(compose):
    _, doc = compose
    services = doc["services"]
    nginx_check = " ".join(services["nginx"]["healthcheck"]["test"])
    # Through the API: PostgREST has no admin server to ask.
    assert "http://127.0.0.1:8080/api/leads/health" in nginx_check
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
    for key in (
        "cron.use_background_workers", "max_worker_processes", "cron.timezone", "timezone",
        "log_min_error_statement", "log_parameter_max_length", "log_parameter_max_length_on_error", "log_error_verbosity",
        "wal_compression",
    ):
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
    assert "python -m chorus_db.compose_secrets postgrest /run/secrets /postgrest-secrets /postgrest-socket" in script
    assert "/chorus_website" in script
    if name == "docker-compose.yml":
        assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    else:
        assert migrate["depends_on"] == {"secrets": {"condition": "service_completed_successfully"}}
    for mount in migrate["volumes"]:
        if mount.startswith("./"):  # the source, read-only; the others are named volumes
            assert (ROOT / mount.split(":")[0]).exists() and mount.endswith(":ro")


def test_secrets_are_files_checked_before_anything_starts(compose):
    name, doc = compose
    text = (ROOT / name).read_text()
    # The field keys go to the project's own PostgreSQL (a shared server is configured by its
    # operator); the monitoring profile's exporter login is a file too, needed by that profile only.
    optional = {"monitor_password"} if name == "docker-compose.yml" else set()
    expected = SECRET_FILES | ({"field_keys"} if "postgres" in doc["services"] else set())
    assert {k: v["file"] for k, v in doc["secrets"].items()} == {s: f"./secrets/{s}" for s in expected | optional}
    # No secret travels in a variable: .env names none, the files use none.
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))  # $${X} is for the shell
    assert used <= set(_env_example()), f"{name} uses variables .env.example does not name"
    assert not {"POSTGRES_PASSWORD", "AUTHENTICATOR_PASSWORD", "PGRST_JWT_SECRET"} & (used | set(_env_example()))
    check = doc["services"]["secrets"]
    assert check["command"] == ["python", "-m", "chorus_db.compose_secrets", "check", "/run/secrets"]
    assert set(check["secrets"]) == expected and check["network_mode"] == "none"
    first = "postgres" if "postgres" in doc["services"] else "migrate"
    assert doc["services"][first]["depends_on"] == {"secrets": {"condition": "service_completed_successfully"}}
    if "postgres" in doc["services"]:
        env = doc["services"]["postgres"]["environment"]
        assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password" and "POSTGRES_PASSWORD" not in env
    assert "/secrets/" in (ROOT / ".gitignore").read_text().split()


def test_the_external_mode_joins_the_chorus_network_instead_of_its_own_database():
    network = EXTERNAL["networks"]["chorus_network"]
    assert network["external"] is True
    assert "CHORUS_NETWORK" in network["name"]
    services = EXTERNAL["services"]
    # nginx serves the other CHORUS services there; the build and PostgREST reach the database
    # there. PostgREST listens on nothing a container on that network could reach.
    on_shared = {n for n, s in services.items() if "chorus_network" in s.get("networks", [])}
    assert on_shared == {"nginx", "migrate", "postgrest", "live-relay"}
    assert services["postgrest"]["networks"] == ["chorus_network"]
    # The live relay reaches the database there too and listens only on its socket.
    assert services["live-relay"]["networks"] == ["chorus_network"]
    assert "server-port" not in _postgrest_settings(services["postgrest"]["environment"])
    script = " ".join(services["migrate"]["command"])
    assert "${DB_HOST}" in _unescape(script) and services["migrate"]["environment"]["DB_HOST"] == "${CHORUS_DB_HOST:-postgres}"


def test_both_files_run_the_same_postgrest_and_nginx():
    for service in ("postgrest", "nginx"):
        a, b = COMPOSE["services"][service], EXTERNAL["services"][service]
        for key in ("image", "environment", "volumes", "ports", "healthcheck", "depends_on"):
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
    assert "pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,bench]'" in (ROOT / ".ci" / "run").read_text()
    # The image's build context is the repository: only constraints.txt may enter it.
    assert (ROOT / ".dockerignore").read_text().split("\n")[1:3] == ["*", "!constraints.txt"]


def test_the_external_network_has_one_name_in_the_file_env_example_and_readme():
    default = re.fullmatch(r"\$\{CHORUS_NETWORK:-([^}]+)\}", EXTERNAL["networks"]["chorus_network"]["name"]).group(1)
    assert _env_example()["CHORUS_NETWORK"] == default
    readme = (ROOT / "README.md").read_text()
    assert f"`{default}`" in readme
    names = set(re.findall(r"`([a-z_-]*chorus[a-z_-]*network)`", readme))
    assert names == {default}, f"the README names the network differently: {names}"


def test_the_mail_worker_runs_the_task_with_smtp_url_from_the_environment():
    service = COMPOSE["services"]["mail-worker"]
    assert service["command"][-1].rstrip().endswith("exec invoke mail.worker")
    assert "postgres_password" in service["secrets"]
    assert service["image"] == COMPOSE["services"]["migrate"]["image"]
    assert service["environment"]["SMTP_URL"] == "${SMTP_URL:-}"
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_postgres_gets_the_field_key_file_as_a_secret_named_by_a_server_setting():
    service = COMPOSE["services"]["postgres"]
    assert "field_keys" in service["secrets"]
    command = service["command"]
    assert "chorus.field_key_file=/run/secrets/field_keys" in command
    assert command[command.index("chorus.field_key_file=/run/secrets/field_keys") - 1] == "-c"
    assert "field_keys" in COMPOSE["services"]["postgres-replica"]["secrets"], "the standby decrypts its reads too"
    assert not any("field_keys" in str(other.get("secrets", [])) for name, other in COMPOSE["services"].items()
                   if name not in ("postgres", "postgres-replica", "secrets")), "only PostgreSQL mounts the keys"
