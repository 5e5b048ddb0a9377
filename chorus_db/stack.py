"""The local stack behind `invoke up` / `invoke down`: PostgREST and nginx next to the embedded
cluster, every runtime file in the run directory (.run/, git-ignored).

The same functions start the HTTP test stack (tests/support/http_stack.py) with other ports and
another run directory, so the tests exercise what `up` runs:

* PostgREST reads deploy/postgrest/postgrest.conf, the settings the container uses too; the
  secrets (database URI with the authenticator's password, JWT secret) and its socket come from
  its environment (PGRST_* overrides the file). It listens on a unix socket only, in a
  directory only nginx's workers (and the user running the stack) may enter, and runs no admin
  server: nothing else on the machine reaches it, so nothing gets around nginx's checks or
  reads PostgREST's /config.
* nginx is Debian's binary with a config rendered from deploy/nginx/api.conf.template (the file
  the nginx container uses) inside a main config whose pid, temp and log paths are in the run
  directory, so it runs as any user; its worker and connection sizing is the container's
  (deploy/nginx/nginx.conf).
* Each process's pid is in a pid file; `stop_all` stops what those files name, after checking
  that the pid still belongs to the process we started (pids get reused).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .errors import UserError
from .cluster import port_is_free

POSTGREST_CONF = config.DEPLOY_DIR / "postgrest" / "postgrest.conf"
NGINX_TEMPLATE = config.DEPLOY_DIR / "nginx" / "api.conf.template"
# The request checks the template's API locations include (request_checks.conf, beside it).
NGINX_REQUEST_CHECKS = config.DEPLOY_DIR / "nginx" / "request_checks.conf"
# The container's main nginx config; the local one takes its worker and connection sizing.
NGINX_MAIN = config.DEPLOY_DIR / "nginx" / "nginx.conf"
# The only placeholders of the template; every other "$word" is an nginx variable.
# LIVE_RELAY_UPSTREAM: where the live brand-metrics relay (chorus_db/live.py) listens.
# POSTGREST_READ_UPSTREAM: the read pool's PostgREST (the replica's; the primary's without one).
TEMPLATE_VARIABLES = ("API_LISTEN", "POSTGREST_UPSTREAM", "LIVE_RELAY_UPSTREAM", "POSTGREST_READ_UPSTREAM")
POSTGREST_MAJOR_MINOR = "12.2"

POSTGREST_MISSING = (
    "PostgREST was not found: `invoke up` serves the API with PostgREST 12.2 between nginx and "
    "PostgreSQL, and looks for it in POSTGREST_BIN, then on PATH. Get the official static "
    "binary for Linux from PostgREST's GitHub releases (https://github.com/PostgREST/postgrest/"
    "releases, v12.2.3: postgrest-v12.2.3-linux-static-x64.tar.xz), unpack it anywhere outside "
    "this checkout, and run `POSTGREST_BIN=/path/to/postgrest invoke up` (or put it on PATH). "
    "Without it, `invoke db.up` and `invoke db.build` still give you the database; the tests use "
    "the vendored copy where CHORUS_VENDOR_DIR names it and otherwise skip the HTTP tests (under "
    "CI=true those fail)."
)


class StackError(UserError):
    """A stack step that failed; the message says what to do."""


# -- finding the programs ------------------------------------------------------------------
def find_postgrest() -> Path | None:
    """POSTGREST_BIN when set (it must be an executable file), else `postgrest` on PATH."""
    explicit = os.environ.get("POSTGREST_BIN")
    if explicit:
        path = Path(explicit)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    found = shutil.which("postgrest")
    return Path(found) if found else None


def postgrest_missing_message() -> str:
    explicit = os.environ.get("POSTGREST_BIN")
    if explicit:
        return f"POSTGREST_BIN={explicit} is not an executable file. " + POSTGREST_MISSING
    return POSTGREST_MISSING


def postgrest_version(binary: Path) -> str:
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", proc.stdout + proc.stderr)
    return match.group(1) if match else "unknown"


def find_nginx() -> Path | None:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    return Path(found) if found else None


NGINX_MISSING = "nginx was not found: install Debian's package (`apt-get install nginx`), then run `invoke up` again."


# -- secrets ---------------------------------------------------------------------------------
def secret(run_dir: Path, name: str, nbytes: int = 32) -> str:
    """A secret generated once and kept in run_dir/<name> (mode 600), never in the repository."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes) + "\n")
    path.chmod(0o600)
    return path.read_text().strip()


def set_login_password(database_url: str, role: str, password: str) -> None:
    """Give a login role its password (roles are cluster-wide)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter role {} with login password {}").format(sql.Identifier(role), sql.Literal(password)))


def set_authenticator_password(database_url: str, password: str) -> None:
    """Give PostgREST's login role its password."""
    set_login_password(database_url, config.AUTHENTICATOR, password)


# -- PostgREST settings ----------------------------------------------------------------------
def read_postgrest_conf(path: Path = POSTGREST_CONF) -> dict[str, str]:
    """The key = value pairs of a PostgREST config file (quotes removed)."""
    settings: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not a `key = value` line: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        settings[key.strip()] = value
    return settings


def env_name(setting: str) -> str:
    """PostgREST's environment variable for a setting: db-uri -> PGRST_DB_URI."""
    return "PGRST_" + setting.upper().replace("-", "_").replace(".", "_")


# -- nginx config ----------------------------------------------------------------------------
def render_template(text: str, values: dict[str, str]) -> str:
    """What the nginx image's envsubst does with NGINX_ENVSUBST_FILTER limited to our variables:
    replace ${NAME} and $NAME for those names only."""
    missing = [name for name in TEMPLATE_VARIABLES if name not in values]
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")

    def substitute(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return values[name] if name in TEMPLATE_VARIABLES else match.group(0)

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", substitute, text)


def _worker_user_group() -> tuple[str, str] | None:
    """As root nginx's workers drop to an unprivileged user; otherwise they run as we do (None)."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    for user, group in (("www-data", "www-data"), ("nobody", "nogroup"), ("nobody", "nobody")):
        try:
            pwd.getpwnam(user)
            grp.getgrnam(group)
        except KeyError:
            continue
        return user, group
    return None


def _worker_user() -> str:
    found = _worker_user_group()
    return f"user {found[0]} {found[1]};\n" if found else ""


# The sizing of deploy/nginx/nginx.conf, the one place it is written.
SIZING_DIRECTIVES = ("worker_processes", "worker_rlimit_nofile", "worker_connections")


def nginx_sizing(path: Path = NGINX_MAIN) -> dict[str, str]:
    """worker_processes, worker_rlimit_nofile and worker_connections of the container's config."""
    text = path.read_text()
    found = {}
    for name in SIZING_DIRECTIVES:
        match = re.search(r"^\s*" + name + r"\s+([^;\s]+)\s*;", text, re.M)
        if not match:
            raise ValueError(f"{path}: no {name} directive")
        found[name] = match.group(1)
    return found


# The OpenAPI document's cache (api.conf.template: proxy_cache chorus_openapi), sized for one
# document; the container's nginx.conf declares the same zone.
OPENAPI_CACHE_ZONE = "keys_zone=chorus_openapi:1m max_size=10m inactive=10m use_temp_path=off"


def nginx_main_config(nginx_dir: Path, api_conf: Path, http_extra: str = "", cache_dir: Path | None = None,
                      http_after: str = "") -> str:
    """The local nginx.conf: every path in nginx_dir, the API server from the rendered template.
    http_extra: directives added to the http block (the benchmark trusts X-Real-IP with it);
    http_after: directives after the API's (`up --monitoring`'s, which use its variables)."""
    temp = nginx_dir / "temp"
    sizing = nginx_sizing()
    return (
        "# Generated by chorus_db.stack for the local stack; the API itself is in api.conf,\n"
        "# rendered from deploy/nginx/api.conf.template; the sizing is deploy/nginx/nginx.conf's.\n"
        + _worker_user()
        + f"worker_processes {sizing['worker_processes']};\n"
        f"worker_rlimit_nofile {sizing['worker_rlimit_nofile']};\n"
        f"pid {nginx_dir / 'nginx.pid'};\n"
        f"error_log {nginx_dir / 'error.log'} warn;\n"
        f"events {{ worker_connections {sizing['worker_connections']}; }}\n"
        "http {\n"
        f"    proxy_cache_path {cache_dir or temp / 'openapi_cache'} levels=1 {OPENAPI_CACHE_ZONE};\n"
        f"    client_body_temp_path {temp / 'client_body'};\n"
        f"    proxy_temp_path {temp / 'proxy'};\n"
        f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
        f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
        f"    scgi_temp_path {temp / 'scgi'};\n"
        "    # Large responses stream through instead of going to a temporary file the workers\n"
        "    # might not be allowed to write.\n"
        "    proxy_max_temp_file_size 0;\n"
        + "".join(f"    {line}\n" for line in http_extra.splitlines() if line.strip())
        + f"    include {api_conf};\n"
        + "".join(f"    {line}\n" for line in http_after.splitlines() if line.strip())
        # After the include: the template defines the log format.
        + f"    access_log {nginx_dir / 'access.log'} chorus;\n"
        "}\n"
    )


# -- processes -------------------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...); [] when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return []


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (an orphan nobody reaped is dead)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _is_ours(marker: str, cmdline: str, environ: list[str], ppid: int | None) -> bool:
    """Whether a live process is the one a pid file names: its command line or environment holds
    the marker, or it is a child of this process still inside execve. Popen returns as soon as
    the exec has replaced the child's memory, but the kernel shows the new command line and
    environment only once the exec has laid them out; until then both read empty. Under load
    that took long enough to be seen (PostgREST, in state D, empty cmdline and environ, found by
    the first check after start_postgrest: a false "stopped while starting" in 1 of 6 loaded runs
    of tests/test_replica.py). A child of ours cannot be another program's reused pid, since its
    pid stays taken until we reap it."""
    if marker in cmdline or marker in environ:
        return True
    return ppid == os.getpid() and (not cmdline or environ == [""])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _environ(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unix_http_status(socket_path: Path, path: str, timeout: float = 2.0) -> int | None:
    """The status of GET path from an HTTP server on a unix socket; None when it does not answer."""
    import socket

    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: relay\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class Service:
    """One process of the stack, known by its pid file."""

    name: str
    pidfile: Path
    # Ours when this text is in the process's command line or is one of its environment entries.
    marker: str
    logfile: Path | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        if not _alive(pid):
            return None
        fields = _stat(pid)
        ppid = int(fields[1]) if len(fields) > 1 else None
        if not _is_ours(self.marker, _cmdline(pid), _environ(pid), ppid):
            return None  # the pid was reused by a process that is not ours
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def log_tail(self, chars: int = 3000) -> str:
        if self.logfile and self.logfile.exists():
            return self.logfile.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM, wait, SIGKILL if needed. True when a process of ours was stopped."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            if self.popen is not None:
                try:
                    self.popen.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        if self.popen is not None:
            self.popen.wait()
        self.pidfile.unlink(missing_ok=True)
        return True


@dataclass
class StackConfig:
    """Where one stack lives and listens. `invoke up` uses the defaults of chorus_db.config."""

    run_dir: Path
    database_url: str  # the authenticator's URL
    api_port: int
    # None: PostgREST listens on its unix socket only (`invoke up`, the HTTP tests). A port:
    # on 127.0.0.1:port instead, for what must reach it directly (the benchmark's d line, a
    # recorder standing in for it in tests).
    postgrest_port: int | None = None
    jwt_secret: str = ""
    postgrest_bin: Path | None = None
    nginx_bin: Path | None = None
    # Whether the live brand-metrics relay (chorus_db/live.py) runs, on live_relay_socket.
    live_relay: bool = False
    # Extra nginx http-block directives; only `invoke bench` sets them.
    nginx_http_extra: str = ""
    # Directives after the API's (they may use its maps): `up --monitoring`'s stub_status server.
    nginx_http_after: str = ""
    # The routes nginx maps; None: db/routes.toml (a test serves a route table of its own).
    nginx_routes: tuple | None = None
    # Extra PostgREST environment (PGRST_* settings, GHCRTS): `invoke bench`, the replica's.
    postgrest_extra_env: dict = field(default_factory=dict)
    # nginx's `server` for the read pool (`up --replica`: the replica's PostgREST socket);
    # None: the primary's PostgREST serves the reads too.
    read_upstream: str | None = None

    @property
    def nginx_dir(self) -> Path:
        return self.run_dir / "nginx"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api"

    @property
    def postgrest_socket(self) -> Path:
        return postgrest_socket_dir(self.run_dir) / "postgrest.sock"

    @property
    def live_relay_socket(self) -> Path:
        # Beside PostgREST's, in the directory only nginx's workers may enter besides us: the
        # relay checks no key (nginx does, with auth_request), so nothing else may reach it.
        return postgrest_socket_dir(self.run_dir) / "relay.sock"

    @property
    def postgrest_upstream(self) -> str:
        """nginx's `server` for PostgREST."""
        if self.postgrest_port is not None:
            return f"127.0.0.1:{self.postgrest_port}"
        return f"unix:{self.postgrest_socket}"


def outside_dir(run_dir: Path) -> Path:
    """Runtime files nginx's workers must reach (PostgREST's socket, the OpenAPI cache): in the
    temporary directory, not the run directory, because the workers (www-data under root) may
    not enter the checkout (/root) or a private temporary run directory. One per run directory."""
    import hashlib
    import tempfile

    digest = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"chorus-stack-{digest}"


def postgrest_socket_dir(run_dir: Path) -> Path:
    return outside_dir(run_dir) / "postgrest"


def _own_dir(path: Path, mode: int) -> None:
    """mkdir, or accept an existing directory only if it is ours and not a link."""
    import stat

    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise StackError(f"{path} exists and is not a directory of this user: remove it and run again")
    path.chmod(mode)


def prepare_outside_dir(run_dir: Path, keep_postgrest_socket: bool = False) -> Path:
    """Create the outside directory (entered, not listed, by others: 0711) and PostgREST's socket
    directory in it, entered only by us and nginx's workers: mode 0700, or 2750 with the workers'
    group under root (the socket, mode 660, inherits the group through the setgid bit)."""
    top = outside_dir(run_dir)
    _own_dir(top, 0o711)
    directory = postgrest_socket_dir(run_dir)
    _own_dir(directory, 0o700)
    workers = _worker_user_group()
    if workers is not None:
        import grp

        os.chown(directory, -1, grp.getgrnam(workers[1]).gr_gid)
        directory.chmod(0o2750)
    if not keep_postgrest_socket:
        (directory / "postgrest.sock").unlink(missing_ok=True)
    return top

def postgrest_service(run_dir: Path) -> Service:
    return Service(
        "PostgREST",
        run_dir / "postgrest.pid",
        marker=f"CHORUS_STACK_RUN_DIR={run_dir}",
        logfile=run_dir / "postgrest.log",
    )


def nginx_service(run_dir: Path) -> Service:
    nginx_dir = run_dir / "nginx"
    return Service("nginx", nginx_dir / "nginx.pid", marker=str(nginx_dir / "nginx.conf"), logfile=nginx_dir / "error.log")


def postgrest_env(cfg: StackConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGRST_")}
    env.update(
        {
            "PGRST_DB_URI": cfg.database_url,
            "PGRST_JWT_SECRET": cfg.jwt_secret,
            # Lets `stop_all` recognise the process as ours by its environment.
            "CHORUS_STACK_RUN_DIR": str(cfg.run_dir),
        }
    )
    if cfg.postgrest_port is None:
        env["PGRST_SERVER_UNIX_SOCKET"] = str(cfg.postgrest_socket)
    else:
        env.update({"PGRST_SERVER_HOST": "127.0.0.1", "PGRST_SERVER_PORT": str(cfg.postgrest_port)})
    env.update(cfg.postgrest_extra_env)
    return env


def _require_free(port: int, what: str, variable: str) -> None:
    if not port_is_free(port):
        raise StackError(f"port {port} for {what} is taken by another program: stop it or set {variable} to a free port")


def start_postgrest(cfg: StackConfig) -> tuple[Service, bool]:
    """Start PostgREST unless ours already runs. Returns the service and whether it was started."""
    service = postgrest_service(cfg.run_dir)
    if service.running():
        return service, False
    if cfg.postgrest_bin is None:
        raise StackError(postgrest_missing_message())
    if cfg.postgrest_port is None:
        prepare_outside_dir(cfg.run_dir)
    else:
        _require_free(cfg.postgrest_port, "PostgREST", "POSTGREST_PORT")
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    log = open(service.logfile, "ab")
    try:
        service.popen = subprocess.Popen(
            [str(cfg.postgrest_bin), str(POSTGREST_CONF)],
            env=postgrest_env(cfg),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cfg.run_dir,
        )
    finally:
        log.close()
    service.pidfile.write_text(f"{service.popen.pid}\n")
    return service, True


def live_relay_service(run_dir: Path) -> Service:
    return Service(
        "the live-metrics relay", run_dir / "live-relay.pid", marker=f"CHORUS_LIVE_RUN_DIR={run_dir}",
        logfile=run_dir / "live-relay.log",
    )


def start_live_relay(cfg: StackConfig) -> tuple[Service, bool]:
    """Start the live brand-metrics relay (LISTEN -> SSE) unless ours already runs; wait for it."""
    import sys

    service = live_relay_service(cfg.run_dir)
    if service.running():
        return service, False
    prepare_outside_dir(cfg.run_dir, keep_postgrest_socket=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGRST_", "CHORUS_LIVE_"))}
    env.update(
        CHORUS_LIVE_DATABASE_URL=cfg.database_url,
        CHORUS_LIVE_SOCKET=str(cfg.live_relay_socket),
        CHORUS_LIVE_RUN_DIR=str(cfg.run_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(config.ROOT), os.environ.get("PYTHONPATH", "")])),
    )
    log = open(service.logfile, "ab")
    try:
        service.popen = subprocess.Popen(
            [sys.executable, "-m", "chorus_db.live"], env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=cfg.run_dir,
        )
    finally:
        log.close()
    service.pidfile.write_text(f"{service.popen.pid}\n")
    deadline = time.monotonic() + 20
    while unix_http_status(cfg.live_relay_socket, "/health") != 200:
        if service.popen.poll() is not None:
            raise StackError(f"the live-metrics relay stopped while starting; its log ({service.logfile}):\n{service.log_tail()}")
        if time.monotonic() > deadline:
            raise StackError(f"the live-metrics relay did not listen within 20 s; see {service.logfile}:\n{service.log_tail()}")
        time.sleep(0.1)
    return service, True


def render_nginx(cfg: StackConfig, routes: tuple | None = None) -> Path:
    """Write run_dir/nginx/{api.conf,chorus/routes.conf,request_checks.conf,nginx.conf} (the routes
    of db/routes.toml unless given); returns the main config's path."""
    from . import routes as routes_module

    nginx_dir = cfg.nginx_dir
    (nginx_dir / "temp").mkdir(parents=True, exist_ok=True)
    # The template includes chorus/routes.conf and request_checks.conf, relative to the main
    # config's directory (here nginx_dir, in the container /etc/nginx).
    (nginx_dir / "chorus").mkdir(exist_ok=True)
    (nginx_dir / "chorus" / "routes.conf").write_text(
        routes_module.nginx_routes_conf(routes or cfg.nginx_routes or routes_module.ROUTES)
    )
    (nginx_dir / NGINX_REQUEST_CHECKS.name).write_text(NGINX_REQUEST_CHECKS.read_text())
    api_conf = nginx_dir / "api.conf"
    api_conf.write_text(
        render_template(
            NGINX_TEMPLATE.read_text(),
            {
                "API_LISTEN": f"127.0.0.1:{cfg.api_port}",
                "POSTGREST_UPSTREAM": cfg.postgrest_upstream,
                # Without a relay the stream location answers 503, like a stopped relay.
                "LIVE_RELAY_UPSTREAM": f"unix:{cfg.live_relay_socket}" if cfg.live_relay else "127.0.0.1:9",
                "POSTGREST_READ_UPSTREAM": cfg.read_upstream or cfg.postgrest_upstream,
            },
        )
    )
    main = nginx_dir / "nginx.conf"
    _own_dir(outside_dir(cfg.run_dir), 0o711)
    main.write_text(nginx_main_config(nginx_dir, api_conf, cfg.nginx_http_extra, outside_dir(cfg.run_dir) / "openapi_cache",
                                      cfg.nginx_http_after))
    place_pages(cfg)
    return main


# -- the pages (web/public), served from `web` under nginx's prefix ----------------------------
# The template's `root` for the pages, relative to nginx's prefix: a link or a copy here, the
# `pages` volume at /etc/nginx/web in compose (tests/test_compose.py checks all three agree).
PAGES_ROOT = "web"


def _workers_can_reach(path: Path) -> bool:
    """Whether nginx's workers can read below path. As root they run as another user (see
    _worker_user), who needs every directory on the way searchable by others: a checkout under
    /root (mode 700) is not."""
    if os.geteuid() != 0:
        return True
    resolved = path.resolve()
    # A directory not made yet will be made with the usual umask (searchable by others).
    return all(d.stat().st_mode & 0o001 for d in (resolved, *resolved.parents) if d.exists())


def pages_prefix(cfg: StackConfig) -> Path:
    """nginx's prefix (-p): the run's nginx directory, or, where the workers cannot reach it,
    `pages` in the run's outside directory (which they can enter)."""
    if _workers_can_reach(cfg.nginx_dir):
        return cfg.nginx_dir
    return outside_dir(cfg.run_dir) / "pages"


def place_pages(cfg: StackConfig) -> None:
    """Put web/public at <prefix>/web: a link where the workers can read the checkout, else a
    copy (made again at every start, so it is never stale after `up`)."""
    web = pages_prefix(cfg) / PAGES_ROOT
    if web.is_symlink() or web.is_file():
        web.unlink()
    elif web.is_dir():
        shutil.rmtree(web)
    web.parent.mkdir(parents=True, exist_ok=True)
    web.parent.chmod(0o755)
    if _workers_can_reach(config.WEB_ROOT):
        web.symlink_to(config.WEB_ROOT, target_is_directory=True)
        return
    shutil.copytree(config.WEB_ROOT, web)
    for directory, _dirs, files in os.walk(web):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


def _nginx_argv(cfg: StackConfig, *extra: str) -> list[str]:
    nginx_dir = cfg.nginx_dir
    return [str(cfg.nginx_bin or find_nginx() or "nginx"), "-p", f"{pages_prefix(cfg)}/", "-e", str(nginx_dir / "error.log"), "-c", str(nginx_dir / "nginx.conf"), *extra]


def start_nginx(cfg: StackConfig) -> tuple[Service, bool]:
    """Render the config and start nginx, or reload the one that runs. Returns (service, started)."""
    service = nginx_service(cfg.run_dir)
    render_nginx(cfg)
    check = subprocess.run(_nginx_argv(cfg, "-t", "-q"), capture_output=True, text=True)
    if check.returncode != 0:
        raise StackError(f"nginx refused the rendered config {cfg.nginx_dir / 'nginx.conf'}:\n{check.stderr.strip()}")
    if service.running():
        subprocess.run(_nginx_argv(cfg, "-s", "reload"), check=True, capture_output=True)
        return service, False
    _require_free(cfg.api_port, "nginx (the API)", "API_PORT")
    # nginx daemonizes: its output goes to a file, so no pipe is left open by the daemon.
    startlog = cfg.nginx_dir / "start.log"
    with open(startlog, "wb") as out:
        proc = subprocess.run(_nginx_argv(cfg), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise StackError(f"nginx did not start:\n{startlog.read_text(errors='replace').strip()}\n{service.log_tail()}")
    deadline = time.monotonic() + 10
    while not service.running():
        if time.monotonic() > deadline:
            raise StackError(f"nginx started but wrote no pid file:\n{service.log_tail()}")
        time.sleep(0.05)
    return service, True


def wait_until_ready(cfg: StackConfig, timeout: float = 30.0, health_path: str = "/api/leads/health") -> None:
    """Wait for the health endpoint through nginx (PostgREST has no admin server: nothing but
    nginx reaches it); explain a failure."""
    postgrest = postgrest_service(cfg.run_dir)
    checks = [(f"GET {health_path} through nginx", f"http://127.0.0.1:{cfg.api_port}{health_path}")]
    deadline = time.monotonic() + timeout
    for what, url in checks:
        while True:
            status = http_status(url)
            if status == 200:
                break
            if not postgrest.running():
                raise StackError(f"PostgREST stopped while starting; its log ({postgrest.logfile}):\n{postgrest.log_tail()}")
            if time.monotonic() > deadline:
                raise StackError(
                    f"{what} did not answer 200 within {timeout:.0f} s (last: {status}); "
                    f"see {postgrest.logfile} and {cfg.nginx_dir / 'error.log'}:\n{postgrest.log_tail(1500)}"
                )
            time.sleep(0.1)


def mail_worker_service(run_dir: Path) -> Service:
    return Service(
        "the mail worker", run_dir / "mail-worker.pid", marker=f"CHORUS_MAIL_WORKER_RUN_DIR={run_dir}",
        logfile=run_dir / "mail-worker.log",
    )


def start_mail_worker(run_dir: Path, database_url: str) -> tuple[Service, bool]:
    """Start `invoke mail.worker` in the background unless ours runs (SMTP_URL passes through)."""
    service = mail_worker_service(run_dir)
    if service.running():
        return service, False
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATABASE_URL=database_url, CHORUS_MAIL_WORKER_RUN_DIR=str(run_dir), PYTHONUNBUFFERED="1")
    with open(service.logfile, "ab") as log:
        service.popen = subprocess.Popen(
            [sys.executable, "-m", "invoke", "mail.worker"], env=env, cwd=config.ROOT,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    service.pidfile.write_text(f"{service.popen.pid}\n")
    return service, True


def stop_all(run_dir: Path | None = None) -> list[str]:
    """Stop nginx, PostgREST and the mail worker started from run_dir (default .run/); the names of those stopped."""
    run_dir = run_dir or config.RUN_DIR
    stopped = []
    for service in (nginx_service(run_dir), live_relay_service(run_dir), postgrest_service(run_dir), mail_worker_service(run_dir)):
        if service.stop():
            stopped.append(service.name)
    outside = outside_dir(run_dir)
    if outside.is_dir() and not outside.is_symlink() and outside.stat().st_uid == os.geteuid():
        shutil.rmtree(outside, ignore_errors=True)
    return stopped


def stop_everything() -> list[str]:
    """Stop every server this checkout started: the local stack (.run/) and the embedded cluster,
    then whatever test and benchmark runs left in this checkout's temporary directories (a run
    that was killed before its cleanup) and the test cluster. Returns what was stopped."""
    from .cluster import Cluster, embedded
    from .testing import test_cluster_unstarted, worker_test_clusters

    from . import ops_stack, replica

    stopped = stop_all() + ops_stack.stop_extras(standby=replica.replica_cluster())
    if embedded().stop():
        stopped.append("the embedded PostgreSQL cluster")
    for directory in config.scratch_dirs():
        for pidfile in sorted(directory.glob("**/postgrest.pid")):
            stopped += [f"{name} of {pidfile.parent}" for name in stop_all(pidfile.parent)]
        for pidfile in sorted(directory.glob("**/nginx/nginx.pid")):
            stopped += [f"{name} of {pidfile.parent.parent}" for name in stop_all(pidfile.parent.parent)]
        for version in sorted(directory.glob("**/PG_VERSION")):
            if (version.parent / "global").is_dir() and Cluster(version.parent).stop():
                stopped.append(f"PostgreSQL in {version.parent}")
    if test_cluster_unstarted().stop():
        stopped.append("the test cluster")
    for cluster in worker_test_clusters():
        if cluster.stop():
            stopped.append(f"the test cluster of a parallel pytest worker ({cluster.datadir})")
    return stopped + stop_leftover_processes()


def checkout_places() -> list[str]:
    """Path prefixes only this checkout's servers name: its scratch directories, its test
    clusters' directory and its run directory."""
    from .testing import CHECKOUT_TEST_PGDATA

    return [
        str(Path(tempfile.gettempdir()) / f"chorus-{config.CHECKOUT_ID}-"),
        f"{CHECKOUT_TEST_PGDATA.parent}/",
        f"{config.RUN_DIR}/",
    ]


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def leftover_processes(places: list[str] | None = None) -> dict[int, str]:
    """pid -> command line of every live process whose command line or environment names one of
    this checkout's places (a server a killed run left when its pid file is gone or was never read:
    pid files are only in directories `stop_everything` knows). This process and its parents
    (the shell running `invoke down`) are never listed."""
    places = places or checkout_places()
    mine = _ancestors()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine or not _alive(int(entry.name)):
            continue
        pid = int(entry.name)
        cmdline = _cmdline(pid)
        if any(place in cmdline for place in places) or any(place in item for item in _environ(pid) for place in places):
            found[pid] = cmdline.strip()
    return found


def _describe(pid: int, cmdline: str, places: list[str]) -> str:
    words = cmdline.split()
    program = Path(words[0]).name if words else "a process"
    if program.startswith("python") and "-m" in words[:-1]:
        program = words[words.index("-m") + 1]
    where = next((w for w in words if any(w.startswith(p) for p in places)), "")
    return f"{program} (pid {pid}{', ' + where if where else ''}), left by a killed run"


def stop_leftover_processes(places: list[str] | None = None, timeout: float = 10.0) -> list[str]:
    """Stop what `leftover_processes` finds: a PostgreSQL postmaster with pg_ctl (fast shutdown,
    its data stays usable), anything else with SIGTERM, then SIGKILL after `timeout`. Their
    children (nginx's workers, PostgreSQL's backends) end with them."""
    from .cluster import Cluster

    places = places or checkout_places()
    found = leftover_processes(places)
    stopped = []
    for pid, cmdline in sorted(found.items()):
        words = cmdline.split()
        datadir = Path(words[words.index("-D") + 1]) if "-D" in words[:-1] else None
        if datadir is not None and Path(words[0]).name == "postgres" and (datadir / "PG_VERSION").is_file():
            try:
                Cluster(datadir).stop()
            except (subprocess.CalledProcessError, OSError):
                pass  # the signals below stop it
    for pid in found:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in found) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in found:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid, cmdline in sorted(found.items()):
        stopped.append(_describe(pid, cmdline, places))
    return stopped
