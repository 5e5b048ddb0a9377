"""The HTTP test stack: PostgREST and nginx, started by the code `invoke up` uses
(chorus_db.stack), on free ports, against a database copied from the built template.

`HttpStack.start()` returns None (with the reason in `skip_reason`) where PostgREST or nginx is
missing, so the `http` fixture can skip with that reason printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests
from requests.adapters import HTTPAdapter

from chorus_db import config, stack, testing
from chorus_db.cluster import Cluster

HTTP_DB = "chorus_http"

# Client addresses handed out by HttpClient.fresh_client(): 127.1.0.1 upwards. The whole of
# 127.0.0.0/8 is on the loopback interface, so a socket bound to one of them reaches nginx on
# 127.0.0.1 and nginx sees it as the TCP peer ($remote_addr): a distinct client for the rate
# limits. 127.0.0.x stays free for tests that name their addresses.
_client_numbers = itertools.count(1)


def next_client_address() -> str:
    n = next(_client_numbers)
    return f"127.1.{n // 250}.{n % 250 + 1}"


class SourceAddressAdapter(HTTPAdapter):
    """Connections bound to one local (loopback) source address."""

    def __init__(self, source_ip: str, **kwargs: Any):
        self.source_ip = source_ip
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source_ip, 0)
        super().init_poolmanager(*args, **kwargs)


@dataclass
class HttpClient:
    """requests against the API through nginx; `db_url` is a superuser URL of its database."""

    base_url: str  # http://127.0.0.1:<port>, paths start with /api
    db_url: str
    cfg: stack.StackConfig
    session: requests.Session = field(default_factory=requests.Session)
    source_ip: str = "127.0.0.1"

    def url(self, path: str) -> str:
        return self.base_url + path

    def from_address(self, source_ip: str) -> "HttpClient":
        """The same API, requested from another loopback address (another client for nginx)."""
        session = requests.Session()
        session.mount("http://", SourceAddressAdapter(source_ip))
        return dataclasses.replace(self, session=session, source_ip=source_ip)

    def fresh_client(self) -> "HttpClient":
        """A client at a loopback address no other test uses: rate limits start empty for it."""
        return self.from_address(next_client_address())

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def exists(self, sql_name: str, is_rpc: bool) -> bool:
        """Whether the api object behind a route exists in this database."""
        check = "select to_regproc(%s) is not null" if is_rpc else "select to_regclass(%s) is not null"
        return self.sql(check, (sql_name,))[0][0]

    def make_key(self, role: str = "reader") -> str:
        name = f"http-{role}-{secrets.token_hex(4)}"
        return self.sql("select app_logic.create_api_key(%s, %s)", (name, role))[0][0]

    @property
    def rendered_nginx_conf(self) -> str:
        return (self.cfg.nginx_dir / "api.conf").read_text()


class HttpStack:
    def __init__(self, cluster: Cluster, authenticator_password: str):
        self.cluster = cluster
        self.authenticator_password = authenticator_password
        self.run_dir: Path | None = None
        self.skip_reason = ""
        self.cfg: stack.StackConfig | None = None

    def start(self) -> HttpClient | None:
        postgrest_bin = stack.find_postgrest()
        if postgrest_bin is None:
            self.skip_reason = "PostgREST not found: set POSTGREST_BIN to the postgrest binary (v12.2.x) or put it on PATH"
            return None
        nginx_bin = stack.find_nginx()
        if nginx_bin is None:
            self.skip_reason = "nginx not found: apt-get install nginx"
            return None
        db_url = testing.copy_of_template(self.cluster, HTTP_DB)
        # Roles are cluster-wide; the template fixture set this password already, this makes
        # the stack independent of that.
        stack.set_authenticator_password(db_url, self.authenticator_password)
        self.run_dir = config.scratch_dir("http")
        self.cfg = stack.StackConfig(
            run_dir=self.run_dir,
            database_url=self.cluster.url(HTTP_DB, user=config.AUTHENTICATOR, password=self.authenticator_password),
            api_port=stack.free_port(),
            live_relay=True,
            jwt_secret=stack.secret(self.run_dir, "jwt_secret", 48),
            postgrest_bin=postgrest_bin,
            nginx_bin=nginx_bin,
        )
        try:
            self._postgrest, _ = stack.start_postgrest(self.cfg)
            self._relay, _ = stack.start_live_relay(self.cfg)
            self._nginx, _ = stack.start_nginx(self.cfg)
            stack.wait_until_ready(self.cfg, timeout=30)
        except Exception:
            self.stop()
            raise
        return HttpClient(f"http://127.0.0.1:{self.cfg.api_port}", db_url, self.cfg)

    def stop(self) -> None:
        if self.run_dir is None:
            return
        for name in ("_nginx", "_relay", "_postgrest"):
            service = getattr(self, name, None)
            if service is not None:
                service.stop()
        stack.stop_all(self.run_dir)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir = None


@contextlib.contextmanager
def recording(http: HttpClient, create: str, drop: str, query: str):
    """A recorder made for one test only (a table and the trigger that fills it, `create`),
    dropped before and after (`drop`); yields a function that reads it (`query`)."""
    http.sql(drop)
    http.sql(create)
    try:
        yield lambda: http.sql(query)
    finally:
        http.sql(drop)


def listens_on_tcp(pid: int) -> bool:
    """Whether the process holds a listening TCP socket (IPv4 or IPv6)."""
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
              if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
    assert inodes, f"process {pid} holds no socket at all"
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                listening.add(fields[9])
    return bool(inodes & listening)


def connects_as(user: str, socket_path: str) -> str:
    """"connected" or "refused": what a connect() to the unix socket gives another local user."""
    probe = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\n"
             "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('refused')\nelse:\n    print('connected')\n")
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    proc = subprocess.run([python, "-c", probe, socket_path], user=user, capture_output=True, text=True, timeout=10)
    return proc.stdout.strip() or proc.stderr.strip()


# -- nginx in front of a recorder instead of PostgREST ---------------------------------------
@dataclass
class Seen:
    method: str
    path: str  # with the query string, as nginx sent it
    headers: dict[str, str]  # names lower-cased
    body: bytes


class CaptureUpstream:
    """A tiny HTTP server standing where PostgREST would: it records what nginx forwards and
    answers 200 {}. With nginx rendered from the same template in front of it, a test sees
    exactly the path, query and headers PostgREST would receive."""

    def __init__(self):
        import http.server
        import threading

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                payload = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _record

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def last(self) -> Seen:
        assert self.seen, "nginx forwarded nothing to the upstream"
        return self.seen[-1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class CapturingNginx:
    """nginx rendered from deploy/nginx/api.conf.template with the recorder as its upstream."""

    def __init__(self):
        self.skip_reason = ""
        self.run_dir: Path | None = None
        self.upstream: CaptureUpstream | None = None

    def start(self) -> tuple[str, CaptureUpstream] | None:
        nginx_bin = stack.find_nginx()
        if nginx_bin is None:
            self.skip_reason = "nginx not found: apt-get install nginx"
            return None
        self.upstream = CaptureUpstream()
        self.run_dir = config.scratch_dir("nginx")
        self.cfg = stack.StackConfig(
            run_dir=self.run_dir,
            database_url="",
            api_port=stack.free_port(),
            postgrest_port=self.upstream.port,
            nginx_bin=nginx_bin,
        )
        try:
            stack.start_nginx(self.cfg)
        except Exception:
            self.stop()
            raise
        return f"http://127.0.0.1:{self.cfg.api_port}", self.upstream

    def stop(self) -> None:
        if self.run_dir is not None:
            stack.stop_all(self.run_dir)
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
