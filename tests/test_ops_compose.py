"""The compose profiles of issue 16 (no Docker engine runs here, so the files are read): they
run the same pieces, with the same settings, as `invoke up --replica/--pgbouncer/--monitoring`
and the pgBackRest set-up of the embedded cluster."""

from __future__ import annotations

import configparser
import re

import yaml

from chorus_db import config, ops_stack, pitr, replica

ROOT = config.ROOT
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _profile(name: str) -> set[str]:
    return {service for service, spec in SERVICES.items() if name in spec.get("profiles", [])}


def test_the_profiles_hold_the_replica_pgbouncer_and_monitoring_pieces():
    assert _profile("replica") == {"postgres-replica", "postgrest-replica"}
    assert _profile("pgbouncer") == {"pgbouncer"}
    assert _profile("monitoring") == {"prometheus", "postgres-exporter", "nginx-exporter", "node-exporter", "mtail"}


def test_the_replica_postgrest_is_the_primary_one_with_the_local_replica_settings():
    primary = SERVICES["postgrest"]["environment"]
    standby = SERVICES["postgrest-replica"]["environment"]
    extra = ops_stack.REPLICA_POSTGREST_ENV
    assert {k: v for k, v in standby.items() if k not in ("PGRST_DB_URI", *extra)} == {
        k: v for k, v in primary.items() if k not in ("PGRST_DB_URI", "PGRST_DB_PRE_REQUEST")}
    assert {k: standby[k] for k in extra} == extra
    assert "@postgres-replica:5432/" in standby["PGRST_DB_URI"]
    command = " ".join(SERVICES["postgres-replica"]["command"])
    assert f"--slot={replica.SLOT}" in command and "pg_basebackup -h postgres" in command
    assert "--write-recovery-conf" in command and "hot_standby=on" in command
    # The primary admits the standby's replication connection (a script of its image's initdb).
    hba = (ROOT / "deploy/postgres/initdb/50-replication.sh").read_text()
    assert "host replication all all scram-sha-256" in hba
    assert "COPY initdb/ /docker-entrypoint-initdb.d/" in (ROOT / "deploy/postgres/Dockerfile").read_text()


def test_monitoring_uses_the_official_images_and_the_same_files_as_the_local_stack():
    assert SERVICES["prometheus"]["image"].startswith("prom/prometheus:v2.42")
    assert SERVICES["postgres-exporter"]["image"].startswith("quay.io/prometheuscommunity/postgres-exporter:v0.11")
    assert SERVICES["nginx-exporter"]["image"].startswith("nginx/nginx-prometheus-exporter:0.11")
    assert SERVICES["node-exporter"]["image"].startswith("prom/node-exporter:v1.5")
    assert "./deploy/monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro" in SERVICES["prometheus"]["volumes"]
    prometheus = yaml.safe_load((config.DEPLOY_DIR / "monitoring/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert "./deploy/monitoring/queries.yaml:/etc/postgres-exporter/queries.yaml:ro" in SERVICES["postgres-exporter"]["volumes"]
    assert "chorus_monitor:" in SERVICES["postgres-exporter"]["environment"]["DATA_SOURCE_NAME"]
    # stub_status stays on nginx's loopback: the exporter shares nginx's network namespace.
    nginx_env = SERVICES["nginx"]["environment"]
    assert SERVICES["nginx-exporter"]["network_mode"] == "service:nginx"
    assert f"-nginx.scrape-uri=http://{nginx_env['NGINX_STATUS_LISTEN']}/stub_status" in SERVICES["nginx-exporter"]["command"]
    assert nginx_env["NGINX_STATUS_LISTEN"].startswith("127.0.0.1:") and "ports" not in SERVICES["nginx-exporter"]
    # mtail reads the log nginx writes, with the program of the local stack.
    dockerfile = (config.DEPLOY_DIR / "monitoring/mtail.Dockerfile").read_text()
    assert nginx_env["NGINX_METRICS_LOG"] in dockerfile and "COPY mtail/ /etc/mtail/" in dockerfile
    assert "nginx-metrics:/var/log/nginx-metrics:ro" in SERVICES["mtail"]["volumes"]
    # The build gives the exporter's login its password.
    assert "invoke db.monitor-password" in " ".join(SERVICES["migrate"]["command"])


def test_compose_archives_wal_with_pgbackrest_like_the_embedded_cluster():
    command = SERVICES["postgres"]["command"]
    assert "archive_mode=on" in command
    assert f"archive_command=pgbackrest --stanza={pitr.STANZA} archive-push %p" in command
    assert "./deploy/pgbackrest/pgbackrest.conf:/etc/pgbackrest/pgbackrest.conf:ro" in SERVICES["postgres"]["volumes"]
    compose_conf = configparser.ConfigParser()
    compose_conf.read_string((config.DEPLOY_DIR / "pgbackrest/pgbackrest.conf").read_text())
    from chorus_db.cluster import Cluster

    local_conf = configparser.ConfigParser()
    local_conf.read_string(pitr.render_config(Cluster(config.RUN_DIR / "pgdata"), port=5432))
    assert compose_conf.sections() == local_conf.sections() == ["global", pitr.STANZA]
    for key in ("repo1-retention-full", "start-fast", "log-level-console"):
        assert compose_conf["global"][key] == local_conf["global"][key], key
    assert compose_conf[pitr.STANZA]["pg1-path"] == "/var/lib/postgresql/data"
    assert "pgbackrest" in (ROOT / "deploy/postgres/Dockerfile").read_text()


def _readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no sh block after {heading!r}"
    return match.group(1)


def test_the_readme_compose_pitr_commands_use_the_stanza_and_the_services_of_compose():
    block = _readme_block("**Point-in-time recovery in compose.**")
    commands = [line for line in block.splitlines() if line.startswith("docker compose")]
    assert any("stanza-create" in line for line in commands)
    assert any("--type=full backup" in line for line in commands)
    assert any("--type=time" in line and "restore" in line for line in commands)
    for line in commands:
        if "pgbackrest" in line:
            assert f"--stanza={pitr.STANZA}" in line, line
            assert re.search(r"docker compose (exec -u postgres postgres pgbackrest|run --rm --no-deps -u postgres "
                             r"--entrypoint pgbackrest postgres) ", line), line
    # Every service a command names exists.
    for service in re.findall(r"docker compose (?:stop|start|up -d) ([a-z -]+)", block):
        for name in service.split():
            assert name in SERVICES, name
