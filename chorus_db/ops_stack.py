"""The optional processes of the local stack (issue 16): `invoke up --replica`, `--pgbouncer`,
`--monitoring`. Each is Debian's binary run from the run directory (.run/), recognised by its
pid file like the rest of the stack (chorus_db.stack.Service), and stopped by `invoke down`.

* replica: the hot standby (chorus_db.replica) and a second PostgREST on it, whose pre-request
  function refuses reads while the standby lags (nginx then serves them from the primary), and
  which listens for no NOTIFY (a standby cannot LISTEN): it reloads its schema cache on SIGUSR1
  after every build.
* pgbouncer: transaction pooling in front of the embedded cluster, for the other CHORUS
  services (README, "Connection pooling" says which client takes which path).
* monitoring: Prometheus scraping PostgREST's /metrics, prometheus-postgres-exporter with the
  product queries of deploy/monitoring/queries.yaml, prometheus-nginx-exporter on nginx's
  stub_status (a loopback-only server), node-exporter (disk), and mtail over nginx's access
  log (responses by status: 429s, 5xx); rules from deploy/monitoring/alerts.yml.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import config, stack
from .cluster import Cluster, ensure_os_user

MONITORING_DIR = config.DEPLOY_DIR / "monitoring"
QUERIES_FILE = MONITORING_DIR / "queries.yaml"
ALERTS_FILE = MONITORING_DIR / "alerts.yml"
MTAIL_PROGRAM_DIR = MONITORING_DIR / "mtail"
MONITOR_ROLE = "chorus_monitor"


def echo(message: str) -> None:
    print(f"» {message}", flush=True)


def _port(variable: str, default: int) -> int:
    return int(os.environ.get(variable, str(default)))


@dataclass
class OpsPorts:
    """Where the optional processes listen (127.0.0.1 only); each has an environment variable."""

    replica_postgrest: int = _port("REPLICA_POSTGREST_PORT", config.POSTGREST_PORT + 10)
    replica_postgrest_admin: int = _port("REPLICA_POSTGREST_ADMIN_PORT", config.POSTGREST_ADMIN_PORT + 10)
    pgbouncer: int = _port("PGBOUNCER_PORT", 6432)
    nginx_status: int = _port("NGINX_STATUS_PORT", config.API_PORT + 3)
    prometheus: int = _port("PROMETHEUS_PORT", 9090)
    postgres_exporter: int = _port("POSTGRES_EXPORTER_PORT", 9187)
    nginx_exporter: int = _port("NGINX_EXPORTER_PORT", 9113)
    node_exporter: int = _port("NODE_EXPORTER_PORT", 9100)
    mtail: int = _port("MTAIL_PORT", 3903)


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or next((p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)), None)
        if found:
            return found
    return None


def missing_message(program: str, package: str) -> str:
    return f"{program} was not found: install Debian's package (`apt-get install {package}`), then run `invoke up` again."


def _service(run_dir: Path, name: str, marker_file: Path) -> stack.Service:
    return stack.Service(name, run_dir / f"{marker_file.stem}.pid", marker=str(marker_file), logfile=run_dir / f"{marker_file.stem}.log")


def _spawn(service: stack.Service, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Start a foreground program detached from us, its output in its log file, its pid in its pid file."""
    service.pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(service.logfile, "ab") as log:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=cwd or service.pidfile.parent,
        )
    service.popen = proc
    service.pidfile.write_text(f"{proc.pid}\n")


def _wait_http(url: str, what: str, service: stack.Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.http_status(url) != 200:
        # Just after the fork /proc still shows our own command line: ask the child itself.
        gone = service.popen.poll() is not None if service.popen is not None else not service.running()
        if gone:
            raise stack.StackError(f"{what} stopped while starting; its log ({service.logfile}):\n{service.log_tail(1500)}")
        if time.monotonic() > deadline:
            raise stack.StackError(f"{what} did not answer 200 at {url} within {timeout:.0f} s; see {service.logfile}")
        time.sleep(0.1)


# -- replica ---------------------------------------------------------------------------------
def replica_dir(run_dir: Path) -> Path:
    return run_dir / "replica"


def replica_postgrest_service(run_dir: Path) -> stack.Service:
    return stack.postgrest_service(replica_dir(run_dir))


# What the replica's PostgREST sets beyond the primary's settings (compose's postgrest-replica too).
REPLICA_POSTGREST_ENV = {
    # 503 CHU02 while the standby lags beyond app.settings.replica_max_lag_seconds.
    "PGRST_DB_PRE_REQUEST": "app_logic.pre_request_replica",
    # A standby cannot LISTEN: the schema cache is reloaded by SIGUSR1 (reload_schema).
    "PGRST_DB_CHANNEL_ENABLED": "false",
}


def replica_postgrest_config(cfg: stack.StackConfig, standby: Cluster, password: str, ports: OpsPorts) -> stack.StackConfig:
    return stack.StackConfig(
        run_dir=replica_dir(cfg.run_dir),
        database_url=standby.url(cfg.database_url.rsplit("/", 1)[1].split("?")[0], user=config.AUTHENTICATOR, password=password),
        api_port=cfg.api_port,
        postgrest_port=ports.replica_postgrest,
        postgrest_admin_port=ports.replica_postgrest_admin,
        jwt_secret=cfg.jwt_secret,
        postgrest_bin=cfg.postgrest_bin,
        postgrest_extra_env=dict(REPLICA_POSTGREST_ENV),
    )


def start_replica(cfg: stack.StackConfig, primary: Cluster, standby: Cluster, password: str,
                  ports: OpsPorts | None = None) -> tuple[stack.StackConfig, list[str]]:
    """Create the standby if needed, start it and its PostgREST; returns that PostgREST's config
    and what was done. The caller renders nginx with cfg.postgrest_read_port set to its port."""
    from . import replica

    ports = ports or OpsPorts()
    done = []
    if not standby.initialized:
        replica.create_standby(primary, standby.datadir)
        done.append(f"made a hot standby of 127.0.0.1:{primary.port} in {standby.datadir} (pg_basebackup)")
    if standby.start():
        done.append(f"started the standby on 127.0.0.1:{standby.port}")
    rcfg = replica_postgrest_config(cfg, standby, password, ports)
    _, started = stack.start_postgrest(rcfg)
    if started:
        done.append(f"started the replica's PostgREST on 127.0.0.1:{rcfg.postgrest_port}")
    deadline = time.monotonic() + 30
    while stack.http_status(f"http://127.0.0.1:{rcfg.postgrest_admin_port}/ready") != 200:
        if time.monotonic() > deadline:
            svc = replica_postgrest_service(cfg.run_dir)
            raise stack.StackError(f"the replica's PostgREST is not ready after 30 s; its log:\n{svc.log_tail(1500)}")
        time.sleep(0.1)
    return rcfg, done


def reload_schema(run_dir: Path, primary_url: str | None = None, standby_url: str | None = None) -> bool:
    """After a build: let the standby replay it, then SIGUSR1 the PostgREST that cannot LISTEN."""
    from . import replica

    service = replica_postgrest_service(run_dir)
    pid = service.pid()
    if pid is None:
        return False
    if primary_url and standby_url:
        try:
            replica.wait_caught_up(primary_url, standby_url, timeout=15)
        except Exception:
            pass  # a lagging standby reloads what it has; the lag limit keeps its reads away
    os.kill(pid, signal.SIGUSR1)
    return True


# -- pgbouncer -------------------------------------------------------------------------------
def pgbouncer_dir(run_dir: Path) -> Path:
    return run_dir / "pgbouncer"


def pgbouncer_service(run_dir: Path) -> stack.Service:
    ini = pgbouncer_dir(run_dir) / "pgbouncer.ini"
    return stack.Service("PgBouncer", pgbouncer_dir(run_dir) / "pgbouncer.pid", marker=str(ini), logfile=pgbouncer_dir(run_dir) / "pgbouncer.log")


def pgbouncer_ini(directory: Path, pg_port: int, listen_port: int, pool_size: int = 20) -> str:
    return "\n".join(
        [
            "; Generated by chorus_db.ops_stack (`invoke up --pgbouncer`).",
            "[databases]",
            f"* = host=127.0.0.1 port={pg_port}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {listen_port}",
            "unix_socket_dir =",
            # Transaction pooling: a server connection serves one transaction, then the next client.
            # Session state (SET, LISTEN, session advisory locks, prepared statements) does not survive.
            "pool_mode = transaction",
            "auth_type = scram-sha-256",
            f"auth_file = {directory / 'userlist.txt'}",
            "admin_users = postgres",
            "stats_users = postgres",
            f"default_pool_size = {pool_size}",
            "max_client_conn = 1000",
            "max_db_connections = 60",
            # PostgREST's and psycopg's start-up parameters that PgBouncer does not track.
            "ignore_startup_parameters = extra_float_digits,options",
            "server_reset_query =",
            f"logfile = {directory / 'pgbouncer.log'}",
            f"pidfile = {directory / 'pgbouncer.pid'}",
            "",
        ]
    )


def start_pgbouncer(run_dir: Path, primary: Cluster, passwords: dict[str, str], port: int) -> tuple[stack.Service, bool]:
    """PgBouncer in transaction mode on 127.0.0.1:port in front of the primary; passwords maps
    the logins it accepts (kept in userlist.txt, mode 600, for its SCRAM exchanges both ways)."""
    binary = _which("pgbouncer")
    if binary is None:
        raise stack.StackError(missing_message("PgBouncer", "pgbouncer"))
    service = pgbouncer_service(run_dir)
    if service.running():
        return service, False
    stack._require_free(port, "PgBouncer", "PGBOUNCER_PORT")
    directory = pgbouncer_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    ini = directory / "pgbouncer.ini"
    ini.write_text(pgbouncer_ini(directory, primary.port, port))
    userlist = directory / "userlist.txt"
    userlist.write_text("".join(f'"{user}" "{password}"\n' for user, password in passwords.items()))
    userlist.chmod(0o600)
    user = ensure_os_user()
    argv = [binary, str(ini)]
    if user:
        for path in (directory, ini, userlist):
            shutil.chown(path, user=user)
        argv = [binary, "-u", user, str(ini)]  # PgBouncer refuses to run as root
    # PgBouncer writes its own pid file; its stdout is not needed (logfile).
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=devnull, stderr=subprocess.STDOUT, start_new_session=True)
    service.popen = proc
    deadline = time.monotonic() + 10
    while not service.running():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise stack.StackError(f"PgBouncer did not start; its log ({service.logfile}):\n{service.log_tail(1500)}")
        time.sleep(0.05)
    return service, True


def pgbouncer_url(port: int, user: str, password: str, dbname: str = config.DB_NAME) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/{dbname}"


# -- monitoring ------------------------------------------------------------------------------
def monitoring_dir(run_dir: Path) -> Path:
    return run_dir / "monitoring"


NGINX_MONITORING_TEMPLATE = config.DEPLOY_DIR / "nginx" / "monitoring.conf.template"
NGINX_MONITORING_VARIABLES = ("NGINX_STATUS_LISTEN", "NGINX_METRICS_LOG")


def nginx_monitoring_directives(run_dir: Path, status_port: int) -> str:
    """http-block lines for `up --monitoring`, from deploy/nginx/monitoring.conf.template (the
    file the container uses): stub_status on a loopback-only server, and the access log of
    status, method and public path that mtail reads."""
    import re

    values = {
        "NGINX_STATUS_LISTEN": f"127.0.0.1:{status_port}",
        "NGINX_METRICS_LOG": str(monitoring_dir(run_dir) / "nginx-metrics.log"),
    }
    text = NGINX_MONITORING_TEMPLATE.read_text()
    text = re.sub(r"\$\{(" + "|".join(NGINX_MONITORING_VARIABLES) + r")\}", lambda m: values[m.group(1)], text)
    return "\n".join(line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def prometheus_config(ports: OpsPorts, postgrest_admin_port: int, replica_admin_port: int | None,
                      scrape_interval: str = "15s") -> str:
    """The local Prometheus configuration: the jobs of deploy/monitoring/prometheus.yml (the
    compose one; a test proves the job names agree) with loopback targets."""
    jobs = [
        ("postgrest", [f"127.0.0.1:{postgrest_admin_port}"] + ([f"127.0.0.1:{replica_admin_port}"] if replica_admin_port else [])),
        ("postgres", [f"127.0.0.1:{ports.postgres_exporter}"]),
        ("nginx", [f"127.0.0.1:{ports.nginx_exporter}"]),
        ("node", [f"127.0.0.1:{ports.node_exporter}"]),
        ("mtail", [f"127.0.0.1:{ports.mtail}"]),
        ("prometheus", [f"127.0.0.1:{ports.prometheus}"]),
    ]
    lines = [
        "# Generated by chorus_db.ops_stack (`invoke up --monitoring`) from the jobs of",
        "# deploy/monitoring/prometheus.yml, with loopback targets.",
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
        "rule_files:",
        f"  - {ALERTS_FILE}",
        "scrape_configs:",
    ]
    for name, targets in jobs:
        lines += [f"  - job_name: {name}", "    static_configs:", "      - targets: [" + ", ".join(f"'{t}'" for t in targets) + "]"]
    return "\n".join(lines) + "\n"


MONITORING_PROGRAMS = (
    ("postgres_exporter", "prometheus-postgres-exporter"),
    ("nginx_exporter", "prometheus-nginx-exporter"),
    ("node_exporter", "prometheus-node-exporter"),
    ("mtail", "mtail"),
    ("prometheus", "prometheus"),
)


def monitoring_services(run_dir: Path) -> list[stack.Service]:
    directory = monitoring_dir(run_dir)
    return [
        stack.Service(name, directory / f"{name}.pid", marker=f"CHORUS_OPS_RUN_DIR={directory}", logfile=directory / f"{name}.log")
        for name, _package in MONITORING_PROGRAMS
    ]


def start_monitoring(run_dir: Path, primary: Cluster, monitor_password: str, postgrest_admin_port: int,
                     replica_admin_port: int | None = None, ports: OpsPorts | None = None,
                     scrape_interval: str = "15s", dbname: str = config.DB_NAME) -> list[str]:
    """Start the exporters, mtail and Prometheus (each unless already running); returns what started."""
    ports = ports or OpsPorts()
    binaries = {}
    for name, package in MONITORING_PROGRAMS:
        found = _which(package, name)
        if found is None:
            raise stack.StackError(missing_message(name, package))
        binaries[name] = found
    directory = monitoring_dir(run_dir)
    (directory / "prometheus-data").mkdir(parents=True, exist_ok=True)
    (directory / "nginx-metrics.log").touch()
    prom_yml = directory / "prometheus.yml"
    prom_yml.write_text(prometheus_config(ports, postgrest_admin_port, replica_admin_port, scrape_interval))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PGRST_")}
    base_env["CHORUS_OPS_RUN_DIR"] = str(directory)
    dsn = f"postgresql://{MONITOR_ROLE}:{monitor_password}@127.0.0.1:{primary.port}/{dbname}?sslmode=disable"
    argv = {
        "postgres_exporter": [
            binaries["postgres_exporter"], f"--web.listen-address=127.0.0.1:{ports.postgres_exporter}",
            f"--extend.query-path={QUERIES_FILE}", "--disable-settings-metrics", "--log.level=warn",
        ],
        "nginx_exporter": [
            binaries["nginx_exporter"], f"-nginx.scrape-uri=http://127.0.0.1:{ports.nginx_status}/stub_status",
            f"-web.listen-address=127.0.0.1:{ports.nginx_exporter}",
        ],
        "node_exporter": [
            binaries["node_exporter"], f"--web.listen-address=127.0.0.1:{ports.node_exporter}",
            "--collector.disable-defaults", "--collector.filesystem",
        ],
        "mtail": [
            binaries["mtail"], "--progs", str(MTAIL_PROGRAM_DIR), "--logs", str(directory / "nginx-metrics.log"),
            "--address", "127.0.0.1", "--port", str(ports.mtail), "--logtostderr", "--poll_interval", "250ms",
        ],
        "prometheus": [
            binaries["prometheus"], f"--config.file={prom_yml}", f"--storage.tsdb.path={directory / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{ports.prometheus}", "--storage.tsdb.retention.time=7d",
            "--log.level=warn",
        ],
    }
    ready = {
        "postgres_exporter": f"http://127.0.0.1:{ports.postgres_exporter}/metrics",
        "nginx_exporter": f"http://127.0.0.1:{ports.nginx_exporter}/metrics",
        "node_exporter": f"http://127.0.0.1:{ports.node_exporter}/metrics",
        "mtail": f"http://127.0.0.1:{ports.mtail}/metrics",
        "prometheus": f"http://127.0.0.1:{ports.prometheus}/-/ready",
    }
    port_of = {
        "postgres_exporter": (ports.postgres_exporter, "POSTGRES_EXPORTER_PORT"),
        "nginx_exporter": (ports.nginx_exporter, "NGINX_EXPORTER_PORT"),
        "node_exporter": (ports.node_exporter, "NODE_EXPORTER_PORT"),
        "mtail": (ports.mtail, "MTAIL_PORT"),
        "prometheus": (ports.prometheus, "PROMETHEUS_PORT"),
    }
    started = []
    for service in monitoring_services(run_dir):
        if service.running():
            continue
        port, variable = port_of[service.name]
        stack._require_free(port, service.name, variable)
        env = dict(base_env)
        if service.name == "postgres_exporter":
            env["DATA_SOURCE_NAME"] = dsn
        _spawn(service, argv[service.name], env=env, cwd=directory)
        _wait_http(ready[service.name], service.name, service)
        started.append(f"{service.name} on 127.0.0.1:{port}")
    return started


def set_monitor_password(database_url: str, password: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter role {} with login password {}").format(sql.Identifier(MONITOR_ROLE), sql.Literal(password)))


# -- hooks of `invoke up` and `invoke db.build` -----------------------------------------------
def up_extras_before_nginx(cfg, cluster, password: str, replica: bool, pgbouncer: bool, monitoring: bool) -> None:
    """Start the replica and PgBouncer, and prepare nginx for monitoring. What runs already
    stays in the stack, so a later plain `invoke up` keeps the read pool and the status page."""
    from .replica import replica_cluster

    ports = OpsPorts()
    if replica or replica_postgrest_service(cfg.run_dir).running():
        rcfg, done = start_replica(cfg, cluster, replica_cluster(), password, ports)
        for line in done:
            echo(line)
        reload_schema(cfg.run_dir, cluster.url(), replica_cluster().url())
        cfg.postgrest_read_port = rcfg.postgrest_port
        echo(f"nginx sends read-only GETs to the replica's PostgREST (127.0.0.1:{rcfg.postgrest_port}), the primary as backup")
    if pgbouncer:
        _, started = start_pgbouncer(
            cfg.run_dir, cluster, {"postgres": cluster.password, config.AUTHENTICATOR: password}, ports.pgbouncer
        )
        echo(("started" if started else "already running:") + f" PgBouncer (transaction pooling) on 127.0.0.1:{ports.pgbouncer}")
    if monitoring or any(s.running() for s in monitoring_services(cfg.run_dir)):
        set_monitor_password(cluster.url(), stack.secret(cfg.run_dir, "monitor_password"))
        (cfg.run_dir / "monitoring").mkdir(parents=True, exist_ok=True)
        cfg.nginx_http_extra += "\n" + nginx_monitoring_directives(cfg.run_dir, ports.nginx_status)


def up_extras_after_nginx(cfg, cluster, monitoring: bool) -> None:
    if not (monitoring or any(s.running() for s in monitoring_services(cfg.run_dir))):
        return
    ports = OpsPorts()
    started = start_monitoring(
        cfg.run_dir, cluster, stack.secret(cfg.run_dir, "monitor_password"), cfg.postgrest_admin_port,
        ports.replica_postgrest_admin if cfg.postgrest_read_port else None, ports,
        scrape_interval=os.environ.get("PROMETHEUS_SCRAPE_INTERVAL", "15s"),
    )
    for line in started:
        echo(f"started {line}")
    echo(f"Prometheus: http://127.0.0.1:{ports.prometheus}/ (rules: deploy/monitoring/alerts.yml)")


def after_build(url: str) -> None:
    """A PostgREST that cannot LISTEN (the replica's) reloads its schema cache after a build."""
    from .replica import replica_cluster

    standby = replica_cluster()
    if standby.running() and reload_schema(config.RUN_DIR, url, standby.url()):
        echo("reloaded the schema cache of the replica's PostgREST")


# -- stopping --------------------------------------------------------------------------------
def stop_extras(run_dir: Path | None = None, standby: Cluster | None = None) -> list[str]:
    """Stop what `up --replica/--pgbouncer/--monitoring` started from run_dir; names of those stopped."""
    run_dir = run_dir or config.RUN_DIR
    stopped = []
    for service in [*monitoring_services(run_dir), pgbouncer_service(run_dir), replica_postgrest_service(run_dir)]:
        if service.stop():
            stopped.append(service.name if service.name != "PostgREST" else "the replica's PostgREST")
    if standby is not None and standby.running():
        standby.stop()
        stopped.append("the standby PostgreSQL")
    return stopped
