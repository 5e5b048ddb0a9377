"""The optional processes of the local stack (issue 16): `invoke up --replica`, `--pgbouncer`,
`--monitoring`. Each is Debian's program run from the run directory (.run/), recognised by its
pid file like the rest of the stack (chorus_db.stack.Service), and stopped by `invoke down`.

* replica: the hot standby (chorus_db.replica) and a second PostgREST on it, on a unix socket
  of its own that only nginx's workers may open, like the primary's. Its pre-request function
  refuses reads while the standby lags (nginx then serves them from the primary), and it
  listens for no NOTIFY (a standby cannot LISTEN): it reloads its schema cache on SIGUSR1
  after every build.
* pgbouncer: transaction pooling in front of the embedded cluster, for the other CHORUS
  services (README, "Connection pooling" says which client takes which path).
* monitoring: Prometheus, prometheus-postgres-exporter with the product queries of
  deploy/monitoring/queries.yaml, prometheus-nginx-exporter on nginx's stub_status (a
  loopback-only server); rules from deploy/monitoring/alerts.yml.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import config, stack
from .cluster import Cluster, ensure_os_user


def echo(message: str) -> None:
    print(f"» {message}", flush=True)


def _port(variable: str, default: int) -> int:
    return int(os.environ.get(variable, str(default)))


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or next(
            (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)), None
        )
        if found:
            return found
    return None


def missing_message(program: str, package: str) -> str:
    return f"{program} was not found: install Debian's package (`apt-get install {package}`), then run `invoke up` again."


def unix_http(socket_path: Path, path: str, headers: dict[str, str] | None = None, timeout: float = 5.0,
              method: str = "GET", body: bytes = b"") -> tuple[int | None, bytes]:
    """A request to an HTTP server on a unix socket (PostgREST's): (status, body), or (None, b"")
    when nothing answers. HTTP/1.0, so the server closes the connection after the answer."""
    headers = {"Host": "localhost", **(headers or {})}
    if body:
        headers["Content-Length"] = str(len(body))
    lines = [f"{method} {path} HTTP/1.0", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall("\r\n".join(lines).encode() + body)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body
    except (IndexError, ValueError):
        return None, b""


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


def replica_postgrest_config(cfg: stack.StackConfig, standby: Cluster, password: str, dbname: str) -> stack.StackConfig:
    return stack.StackConfig(
        run_dir=replica_dir(cfg.run_dir),
        database_url=standby.url(dbname, user=config.AUTHENTICATOR, password=password),
        api_port=cfg.api_port,
        jwt_secret=cfg.jwt_secret,
        postgrest_bin=cfg.postgrest_bin,
        postgrest_extra_env=dict(REPLICA_POSTGREST_ENV),
    )


def wait_postgrest_socket(rcfg: stack.StackConfig, timeout: float = 30.0) -> None:
    """Until the PostgREST of rcfg answers a health check on its socket (it has no admin server)."""
    service = stack.postgrest_service(rcfg.run_dir)
    deadline = time.monotonic() + timeout
    while unix_http(rcfg.postgrest_socket, "/rpc/check_leads_health")[0] != 200:
        if not service.running():
            raise stack.StackError(f"the replica's PostgREST stopped while starting; its log ({service.logfile}):\n{service.log_tail(1500)}")
        if time.monotonic() > deadline:
            raise stack.StackError(
                f"the replica's PostgREST did not answer within {timeout:.0f} s: check that the standby accepts "
                f"the authenticator's connections (`invoke db.replica`), then run again; its log:\n{service.log_tail(1500)}"
            )
        time.sleep(0.1)


def start_replica(cfg: stack.StackConfig, primary: Cluster, standby: Cluster, password: str,
                  dbname: str = config.DB_NAME) -> tuple[stack.StackConfig, list[str]]:
    """Create the standby if needed, start it and its PostgREST, and point cfg's read pool at
    that PostgREST; returns its config and what was done."""
    from . import replica

    done = []
    if not standby.initialized:
        replica.create_standby(primary, standby.datadir)
        done.append(f"made a hot standby of 127.0.0.1:{primary.port} in {standby.datadir} (pg_basebackup)")
    if standby.start():
        done.append(f"started the standby on 127.0.0.1:{standby.port}")
    # The schema cache is loaded from the standby: it must have replayed the build first.
    replica.wait_caught_up(primary.url(dbname), standby.url(dbname))
    rcfg = replica_postgrest_config(cfg, standby, password, dbname)
    _, started = stack.start_postgrest(rcfg)
    if started:
        done.append(f"started the replica's PostgREST on {rcfg.postgrest_socket} (nginx's workers only)")
    else:
        reload_schema(cfg.run_dir)
    wait_postgrest_socket(rcfg)
    cfg.read_upstream = f"unix:{rcfg.postgrest_socket}"
    return rcfg, done


def reload_schema(run_dir: Path, primary_url: str | None = None, standby_url: str | None = None) -> bool:
    """After a build: let the standby replay it, then SIGUSR1 the PostgREST that cannot LISTEN."""
    from . import replica

    pid = replica_postgrest_service(run_dir).pid()
    if pid is None:
        return False
    if primary_url and standby_url:
        try:
            replica.wait_caught_up(primary_url, standby_url, timeout=15)
        except replica.ReplicaError:
            pass  # a lagging standby reloads what it has; the lag limit keeps its reads away
    os.kill(pid, signal.SIGUSR1)
    return True


def after_build(url: str) -> None:
    """`invoke db.build`: the replica's PostgREST (which cannot LISTEN) reloads its schema cache."""
    from .replica import replica_cluster

    if replica_postgrest_service(config.RUN_DIR).pid() is None:
        return  # no replica in this stack (nor in a container's build step)
    standby = replica_cluster()
    if standby.running() and reload_schema(config.RUN_DIR, url, standby.url()):
        echo("reloaded the schema cache of the replica's PostgREST")


# -- pgbouncer -------------------------------------------------------------------------------
def pgbouncer_dir(run_dir: Path) -> Path:
    return run_dir / "pgbouncer"


def pgbouncer_service(run_dir: Path) -> stack.Service:
    directory = pgbouncer_dir(run_dir)
    return stack.Service("PgBouncer", directory / "pgbouncer.pid", marker=str(directory / "pgbouncer.ini"),
                         logfile=directory / "pgbouncer.log")


# The pool settings, the one place they are written; deploy/pgbouncer/pgbouncer.ini (compose)
# carries the same, and tests/test_pgbouncer.py proves it.
PGBOUNCER_POOL = {
    # Transaction pooling: a server connection serves one transaction, then the next client.
    # Session state (SET, LISTEN, session advisory locks, prepared statements) does not survive.
    "pool_mode": "transaction",
    "auth_type": "scram-sha-256",
    "default_pool_size": "20",
    "max_client_conn": "1000",
    "max_db_connections": "60",
    # Start-up parameters of psycopg and PostgREST that PgBouncer does not track.
    "ignore_startup_parameters": "extra_float_digits,options",
    # Transaction mode: nothing of a session is left to reset.
    "server_reset_query": "",
}


def pgbouncer_ini(directory: Path, pg_port: int, listen_port: int) -> str:
    lines = [
        "; Generated by chorus_db.ops_stack (`invoke up --pgbouncer`).",
        "[databases]",
        f"* = host=127.0.0.1 port={pg_port}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {listen_port}",
        "unix_socket_dir =",
        *(f"{key} = {value}" for key, value in PGBOUNCER_POOL.items()),
        f"auth_file = {directory / 'userlist.txt'}",
        f"logfile = {directory / 'pgbouncer.log'}",
        f"pidfile = {directory / 'pgbouncer.pid'}",
        "",
    ]
    return "\n".join(lines)


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
    directory.chmod(0o700)
    ini = directory / "pgbouncer.ini"
    ini.write_text(pgbouncer_ini(directory, primary.port, port))
    userlist = directory / "userlist.txt"
    fd = os.open(userlist, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f'"{user}" "{password}"\n' for user, password in passwords.items()))
    user = ensure_os_user()
    argv = [binary, str(ini)]
    if user:
        for path in (directory, ini, userlist):
            shutil.chown(path, user=user)
        argv = [binary, "-u", user, str(ini)]  # PgBouncer refuses to run as root
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=devnull, stderr=subprocess.STDOUT, start_new_session=True)
    service.popen = proc
    deadline = time.monotonic() + 10
    while not service.running():  # PgBouncer writes its own pid file
        if proc.poll() is not None or time.monotonic() > deadline:
            raise stack.StackError(f"PgBouncer did not start; its log ({service.logfile}):\n{service.log_tail(1500)}")
        time.sleep(0.05)
    return service, True


# What a PostgREST going through PgBouncer needs (the benchmark's subject; as shipped it keeps
# its own pool): Debian's PgBouncer 1.18 predates prepared-statement support in transaction
# mode, and a LISTEN through a transaction pooler hears nothing.
PGBOUNCER_POSTGREST_ENV = {"PGRST_DB_PREPARED_STATEMENTS": "false", "PGRST_DB_CHANNEL_ENABLED": "false"}


def pgbouncer_url(port: int, user: str, password: str, dbname: str = config.DB_NAME) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/{dbname}"


# -- monitoring ------------------------------------------------------------------------------
MONITORING_DIR = config.DEPLOY_DIR / "monitoring"
QUERIES_FILE = MONITORING_DIR / "queries.yaml"
ALERTS_FILE = MONITORING_DIR / "alerts.yml"
MTAIL_PROGRAM_DIR = MONITORING_DIR / "mtail"
MONITOR_ROLE = "chorus_monitor"
NGINX_MONITORING_TEMPLATE = config.DEPLOY_DIR / "nginx" / "monitoring.conf.template"
NGINX_MONITORING_VARIABLES = ("NGINX_STATUS_LISTEN", "NGINX_METRICS_LOG")


def monitoring_dir(run_dir: Path) -> Path:
    return run_dir / "monitoring"


# (service name, Debian package = program name, port variable, default port). Each listens on
# 127.0.0.1 only. PostgREST is not among the targets: its metrics are on its admin server only,
# which also serves /config (the database password, the JWT secret) and can only listen on TCP,
# where any user of the machine reaches it; the stack runs none (README, "Monitoring"). Its pool
# is seen from PostgreSQL's side (chorus_connections_connections{application="postgrest"}).
MONITORING_PROGRAMS = (
    ("postgres_exporter", "prometheus-postgres-exporter", "POSTGRES_EXPORTER_PORT", 9187),
    ("nginx_exporter", "prometheus-nginx-exporter", "NGINX_EXPORTER_PORT", 9113),
    ("node_exporter", "prometheus-node-exporter", "NODE_EXPORTER_PORT", 9100),
    ("mtail", "mtail", "MTAIL_PORT", 3903),
    ("prometheus", "prometheus", "PROMETHEUS_PORT", 9090),
)


def monitoring_ports() -> dict[str, int]:
    """Where each monitoring program listens, from its variable; nginx's stub_status too."""
    ports = {name: _port(variable, default) for name, _package, variable, default in MONITORING_PROGRAMS}
    ports["nginx_status"] = _port("NGINX_STATUS_PORT", config.API_PORT + 3)
    return ports


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


def prometheus_config(ports: dict[str, int], scrape_interval: str = "15s") -> str:
    """The local Prometheus configuration: the jobs of deploy/monitoring/prometheus.yml (the
    compose one; a test proves the job names agree) with loopback targets."""
    jobs = [("postgres", "postgres_exporter"), ("nginx", "nginx_exporter"), ("node", "node_exporter"),
            ("mtail", "mtail"), ("prometheus", "prometheus")]
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
    for job, program in jobs:
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: ['127.0.0.1:{ports[program]}']"]
    return "\n".join(lines) + "\n"


def monitoring_services(run_dir: Path) -> list[stack.Service]:
    directory = monitoring_dir(run_dir)
    return [
        stack.Service(name, directory / f"{name}.pid", marker=f"CHORUS_OPS_RUN_DIR={directory}", logfile=directory / f"{name}.log")
        for name, _package, _variable, _default in MONITORING_PROGRAMS
    ]


def _spawn(service: stack.Service, argv: list[str], env: dict[str, str], cwd: Path) -> None:
    """Start a foreground program detached from us, its output in its log file, its pid in its pid file."""
    with open(service.logfile, "ab") as log:
        service.popen = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=cwd)
    service.pidfile.write_text(f"{service.popen.pid}\n")


def _wait_http(url: str, service: stack.Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.http_status(url) != 200:
        if service.popen is not None and service.popen.poll() is not None:
            raise stack.StackError(f"{service.name} stopped while starting; its log ({service.logfile}):\n{service.log_tail(1500)}")
        if time.monotonic() > deadline:
            raise stack.StackError(f"{service.name} did not answer 200 at {url} within {timeout:.0f} s; see {service.logfile}")
        time.sleep(0.1)


def start_monitoring(run_dir: Path, primary: Cluster, monitor_password: str, ports: dict[str, int] | None = None,
                     scrape_interval: str = "15s", dbname: str = config.DB_NAME) -> list[str]:
    """Start the exporters, mtail and Prometheus (each unless already running); returns what started.
    nginx must run with nginx_monitoring_directives() (stub_status, the metrics log)."""
    ports = ports or monitoring_ports()
    binaries = {}
    for name, package, _variable, _default in MONITORING_PROGRAMS:
        found = _which(package, name)
        if found is None:
            raise stack.StackError(missing_message(name, package))
        binaries[name] = found
    directory = monitoring_dir(run_dir)
    (directory / "prometheus-data").mkdir(parents=True, exist_ok=True)
    (directory / "nginx-metrics.log").touch()
    prom_yml = directory / "prometheus.yml"
    prom_yml.write_text(prometheus_config(ports, scrape_interval))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGRST_", "DATA_SOURCE"))}
    env["CHORUS_OPS_RUN_DIR"] = str(directory)
    listen = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    argv = {
        "postgres_exporter": [
            binaries["postgres_exporter"], f"--web.listen-address={listen['postgres_exporter']}",
            f"--extend.query-path={QUERIES_FILE}", "--disable-settings-metrics", "--log.level=warn",
        ],
        "nginx_exporter": [
            binaries["nginx_exporter"], f"-nginx.scrape-uri=http://{listen['nginx_status']}/stub_status",
            f"-web.listen-address={listen['nginx_exporter']}",
        ],
        "node_exporter": [
            binaries["node_exporter"], f"--web.listen-address={listen['node_exporter']}",
            "--collector.disable-defaults", "--collector.filesystem",
        ],
        "mtail": [
            binaries["mtail"], "--progs", str(MTAIL_PROGRAM_DIR), "--logs", str(directory / "nginx-metrics.log"),
            "--address", "127.0.0.1", "--port", str(ports["mtail"]), "--logtostderr", "--poll_interval", "250ms",
        ],
        "prometheus": [
            binaries["prometheus"], f"--config.file={prom_yml}", f"--storage.tsdb.path={directory / 'prometheus-data'}",
            f"--web.listen-address={listen['prometheus']}", "--storage.tsdb.retention.time=7d", "--log.level=warn",
        ],
    }
    ready = {name: f"http://{listen[name]}/metrics" for name in argv}
    ready["prometheus"] = f"http://{listen['prometheus']}/-/ready"
    variables = {name: variable for name, _package, variable, _default in MONITORING_PROGRAMS}
    started = []
    for service in monitoring_services(run_dir):
        if service.running():
            continue
        stack._require_free(ports[service.name], service.name, variables[service.name])
        service_env = dict(env)
        if service.name == "postgres_exporter":
            # The exporter reads its login from the environment; it is the monitoring role's only.
            service_env["DATA_SOURCE_NAME"] = (
                f"postgresql://{MONITOR_ROLE}:{monitor_password}@127.0.0.1:{primary.port}/{dbname}?sslmode=disable")
        _spawn(service, argv[service.name], service_env, directory)
        _wait_http(ready[service.name], service)
        started.append(f"{service.name} on {listen[service.name]}")
    return started


def set_monitor_password(database_url: str, password: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter role {} with login password {}").format(sql.Identifier(MONITOR_ROLE), sql.Literal(password)))


# -- hooks of `invoke up` ----------------------------------------------------------------------
def _monitoring_on(run_dir: Path, monitoring: bool) -> bool:
    return monitoring or any(s.running() for s in monitoring_services(run_dir))


def up_before_nginx(cfg: stack.StackConfig, cluster: Cluster, password: str, replica: bool, pgbouncer: bool,
                    monitoring: bool = False) -> None:
    """Start the replica and PgBouncer, and give nginx the monitoring directives, before nginx is
    rendered. What runs already stays in the stack, so a later plain `invoke up` keeps the read
    pool and the status page."""
    from .replica import replica_cluster

    if replica or replica_postgrest_service(cfg.run_dir).running():
        rcfg, done = start_replica(cfg, cluster, replica_cluster(), password)
        for line in done:
            echo(line)
        echo("nginx sends GETs of views to the replica's PostgREST, the primary's as backup")
    if pgbouncer:
        port = _port("PGBOUNCER_PORT", 6432)
        _, started = start_pgbouncer(cfg.run_dir, cluster, {"postgres": cluster.password, config.AUTHENTICATOR: password}, port)
        echo(("started" if started else "already running:") + f" PgBouncer (transaction pooling) on 127.0.0.1:{port}")
    if _monitoring_on(cfg.run_dir, monitoring):
        set_monitor_password(cluster.url(), stack.secret(cfg.run_dir, "monitor_password"))
        monitoring_dir(cfg.run_dir).mkdir(parents=True, exist_ok=True)
        cfg.nginx_http_after += "\n" + nginx_monitoring_directives(cfg.run_dir, monitoring_ports()["nginx_status"])


def up_after_nginx(cfg: stack.StackConfig, cluster: Cluster, monitoring: bool) -> None:
    if not _monitoring_on(cfg.run_dir, monitoring):
        return
    ports = monitoring_ports()
    started = start_monitoring(cfg.run_dir, cluster, stack.secret(cfg.run_dir, "monitor_password"), ports,
                               scrape_interval=os.environ.get("PROMETHEUS_SCRAPE_INTERVAL", "15s"))
    for line in started:
        echo(f"started {line}")
    echo(f"Prometheus: http://127.0.0.1:{ports['prometheus']}/ (rules: deploy/monitoring/alerts.yml)")


# -- stopping --------------------------------------------------------------------------------
def stop_extras(run_dir: Path | None = None, standby: Cluster | None = None) -> list[str]:
    """Stop what `up --replica/--pgbouncer/--monitoring` started from run_dir; names of those stopped."""
    run_dir = run_dir or config.RUN_DIR
    stopped = [service.name for service in monitoring_services(run_dir) if service.stop()]
    if pgbouncer_service(run_dir).stop():
        stopped.append("PgBouncer")
    # stop_all also removes the replica PostgREST's socket directory.
    if stack.stop_all(replica_dir(run_dir)):
        stopped.append("the replica's PostgREST")
    if standby is not None and standby.running():
        standby.stop()
        stopped.append("the standby PostgreSQL")
    return stopped
