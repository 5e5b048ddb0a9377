"""The compose profiles of issue 16 (no Docker engine runs here, so the files are read): they
run the same pieces, with the same settings and the same secret files, as `invoke up
--replica/--pgbouncer/--monitoring`."""

from __future__ import annotations

import configparser

import yaml

from chorus_db import config, ops_stack, replica
from tests.test_compose import SECRET_FILES

ROOT = config.ROOT
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _profile(name: str) -> set[str]:
    return {service for service, spec in SERVICES.items() if name in spec.get("profiles", [])}


def test_the_profiles_hold_the_replica_pgbouncer_and_monitoring_pieces():
    assert _profile("replica") == {"postgres-replica", "postgrest-replica"}
    assert _profile("pgbouncer") == {"pgbouncer"}
    assert _profile("monitoring") == {"monitor-login", "prometheus", "postgres-exporter", "nginx-exporter",
                                      "node-exporter", "mtail"}


def test_the_replica_postgrest_is_the_primary_one_with_the_local_replica_settings():
    primary = SERVICES["postgrest"]
    standby = SERVICES["postgrest-replica"]
    extra = ops_stack.REPLICA_POSTGREST_ENV
    assert {k: v for k, v in standby["environment"].items() if k not in extra} == {
        k: v for k, v in primary["environment"].items() if k != "PGRST_DB_PRE_REQUEST"}
    assert {k: standby["environment"][k] for k in extra} == extra
    assert standby["image"] == primary["image"] and standby["user"] == primary["user"]
    # Its own secrets and socket, in volumes of its own; no port, no admin server.
    assert standby["volumes"] == ["postgrest-replica-secrets:/run/postgrest-secrets:ro", "postgrest-replica-socket:/run/postgrest"]
    assert "ports" not in standby and "expose" not in standby
    assert not any("ADMIN" in k or "SERVER_PORT" in k or "SERVER_HOST" in k for k in standby["environment"])
    mounting = {n for n, s in SERVICES.items() if any(v.startswith("postgrest-replica-socket:") for v in s.get("volumes", []))}
    assert mounting == {"postgrest-replica", "nginx", "migrate"}
    assert "postgrest-replica-socket:/run/postgrest-replica:ro" in SERVICES["nginx"]["volumes"]
    # The build step writes its db-uri (naming postgres-replica) from the same secret files.
    script = " ".join(SERVICES["migrate"]["command"])
    assert ("python -m chorus_db.compose_secrets postgrest /run/secrets /postgrest-replica-secrets "
            "/postgrest-replica-socket postgres-replica 5432") in script


def test_nginx_reads_from_the_replica_only_when_env_says_so():
    env = SERVICES["nginx"]["environment"]
    assert env["POSTGREST_READ_UPSTREAM"] == "${POSTGREST_READ_UPSTREAM:-unix:/run/postgrest/postgrest.sock}"
    example = (ROOT / ".env.example").read_text()
    assert "# POSTGREST_READ_UPSTREAM=unix:/run/postgrest-replica/postgrest.sock" in example


def test_the_standby_is_a_base_backup_streaming_through_the_slot_of_the_local_replica():
    service = SERVICES["postgres-replica"]
    command = " ".join(service["command"])
    assert f"--slot={replica.SLOT}" in command and "pg_basebackup -h postgres" in command
    assert "--write-recovery-conf" in command and "hot_standby=on" in command
    # As the embedded cluster's standby (chorus_db/cluster.py): a vacuum on the primary cannot cancel its reads.
    assert "hot_standby_feedback=on" in command and '"hot_standby_feedback = on"' in (ROOT / "chorus_db/cluster.py").read_text()
    # Its password comes from the secret file, never from a variable.
    assert service["secrets"] == ["postgres_password", "field_keys"] and 'PGPASSWORD="$$(cat /run/secrets/postgres_password)"' in command
    assert service["image"] == SERVICES["postgres"]["image"]
    # The primary admits the standby's replication connection and caps what its slot keeps.
    hba = (ROOT / "deploy/postgres/initdb/50-replication.sh").read_text()
    assert "host replication all all scram-sha-256" in hba
    assert "COPY initdb/ /docker-entrypoint-initdb.d/" in (ROOT / "deploy/postgres/Dockerfile").read_text()
    assert f"max_slot_wal_keep_size={replica.MAX_SLOT_WAL_KEEP}" in SERVICES["postgres"]["command"]
    # The standby keeps the primary's no-personal-data log settings.
    for setting in ("log_min_error_statement=panic", "log_parameter_max_length=0", "log_error_verbosity=terse"):
        assert setting in SERVICES["postgres"]["command"] and setting in command


def _pool(text: str) -> dict[str, str]:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(text)
    return dict(parser["pgbouncer"])


def test_the_compose_pgbouncer_has_the_local_pool_settings_and_reads_the_secret_files():
    compose = _pool((config.DEPLOY_DIR / "pgbouncer" / "pgbouncer.ini").read_text())
    local = _pool(ops_stack.pgbouncer_ini(config.RUN_DIR, 5432, 6432))
    for key, value in ops_stack.PGBOUNCER_POOL.items():
        assert compose[key] == local[key] == value, key
    service = SERVICES["pgbouncer"]
    assert set(service["secrets"]) <= SECRET_FILES
    entrypoint = (config.DEPLOY_DIR / "pgbouncer" / "entrypoint.sh").read_text()
    for name in service["secrets"]:
        assert f"/run/secrets/{name}" in entrypoint
    assert "umask 077" in entrypoint
    # Published on the host's loopback only; the image is Debian's package on the official image.
    assert service["ports"] == ["127.0.0.1:${PGBOUNCER_HOST_PORT:-6432}:6432"]
    dockerfile = (config.DEPLOY_DIR / "pgbouncer" / "Dockerfile").read_text()
    assert "FROM debian:bookworm-slim" in dockerfile and "pgbouncer" in dockerfile


def test_monitoring_uses_the_official_images_the_local_files_and_secret_files():
    assert SERVICES["prometheus"]["image"] == "prom/prometheus:v2.42.0"  # Debian 12's is 2.42.0
    assert SERVICES["postgres-exporter"]["image"] == "quay.io/prometheuscommunity/postgres-exporter:v0.11.1"
    assert SERVICES["nginx-exporter"]["image"] == "nginx/nginx-prometheus-exporter:0.11.0"
    assert SERVICES["node-exporter"]["image"] == "prom/node-exporter:v1.5.0"
    assert "./deploy/monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro" in SERVICES["prometheus"]["volumes"]
    prometheus = yaml.safe_load((config.DEPLOY_DIR / "monitoring/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert all(p.startswith("127.0.0.1:") for p in SERVICES["prometheus"]["ports"])
    # The exporter's password is a secret file, set on the role by a one-shot step of the profile.
    exporter = SERVICES["postgres-exporter"]
    assert "./deploy/monitoring/queries.yaml:/etc/postgres-exporter/queries.yaml:ro" in exporter["volumes"]
    assert exporter["environment"]["DATA_SOURCE_USER"] == ops_stack.MONITOR_ROLE
    assert exporter["environment"]["DATA_SOURCE_PASS_FILE"] == "/run/secrets/monitor_password"
    assert exporter["secrets"] == ["monitor_password"] and "DATA_SOURCE_NAME" not in exporter["environment"]
    login = SERVICES["monitor-login"]
    assert 'MONITOR_PASSWORD="$$(cat /run/secrets/monitor_password)" invoke db.monitor-password' in " ".join(login["command"])
    assert exporter["depends_on"] == {"monitor-login": {"condition": "service_completed_successfully"}}
    # Only the monitoring profile names that secret: the default stack starts without the file.
    users = {n for n, s in SERVICES.items() if "monitor_password" in s.get("secrets", [])}
    assert users == {"monitor-login", "postgres-exporter"} and users <= _profile("monitoring")
    # No PostgREST target: PostgREST runs no admin server (its /config shows the secrets).
    assert "postgrest" not in {j["job_name"] for j in prometheus["scrape_configs"]}
    assert not any("ADMIN" in k for s in ("postgrest", "postgrest-replica") for k in SERVICES[s]["environment"])


def test_nginx_status_stays_on_the_containers_loopback_and_mtail_reads_the_metrics_log():
    nginx = SERVICES["nginx"]
    env = nginx["environment"]
    assert env["NGINX_STATUS_LISTEN"].startswith("127.0.0.1:")
    assert "./deploy/nginx/monitoring.conf.template:/etc/nginx/templates/monitoring.conf.template:ro" in nginx["volumes"]
    exporter = SERVICES["nginx-exporter"]
    assert exporter["network_mode"] == "service:nginx" and "ports" not in exporter
    assert f"-nginx.scrape-uri=http://{env['NGINX_STATUS_LISTEN']}/stub_status" in exporter["command"]
    dockerfile = (config.DEPLOY_DIR / "monitoring/mtail.Dockerfile").read_text()
    assert env["NGINX_METRICS_LOG"] in dockerfile and "COPY mtail/ /etc/mtail/" in dockerfile
    assert "FROM debian:bookworm-slim" in dockerfile
    assert "nginx-metrics:/var/log/nginx-metrics:ro" in SERVICES["mtail"]["volumes"]
    # The local stack renders the same template with the same two placeholders.
    template = ops_stack.NGINX_MONITORING_TEMPLATE.read_text()
    for name in ops_stack.NGINX_MONITORING_VARIABLES:
        assert "${" + name + "}" in template
