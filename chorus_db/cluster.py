"""The embedded PostgreSQL cluster: one the project owns, in a directory it chooses.

`invoke db.up` and the test fixtures both use this. initdb and postgres refuse to run as
root, so when we are root the server runs as an unprivileged OS user that is created on
first use (or reused). The cluster listens on 127.0.0.1 only, on a port chosen once at
initdb time (the first free one from CHORUS_PG_PORT) and then kept; when another program holds
it at a later start, the cluster moves to the next free one, so it never takes a port from a
server that is already there.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .errors import UserError

SETTINGS_FILE = "chorus.conf"
# As root, where the embedded cluster lives when the server's OS user cannot enter the checkout
# (a clone under /root, mode 700): one directory per checkout.
SYSTEM_DATA_DIR = Path("/var/lib/chorus-website-db")
PASSWORD_FILE = "chorus_superuser_password"
# The field-encryption key file, outside the data directory (chorus_db.fieldkeys).
KEY_FILE_SUFFIX = "field-keys"
SUPERUSER = "postgres"


class ClusterError(UserError):
    """The cluster cannot be created or started; the message says what to do."""


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_os_user(name: str = config.PG_OS_USER) -> str | None:
    """Return the OS user the server must run as, creating it when needed.

    None means "the current user", which is the case whenever we are not root.
    """
    if not is_root():
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )
    return name


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def first_free_port(start: int) -> int:
    for port in range(start, start + 200):
        if port_is_free(port):
            return port
    raise ClusterError(f"no free TCP port on 127.0.0.1 between {start} and {start + 199}: set CHORUS_PG_PORT to another start")


@dataclass
class Cluster:
    """A PostgreSQL 15 cluster in `datadir`, managed with pg_ctl."""

    datadir: Path
    cron_database: str = config.DB_NAME
    first_port: int = config.PG_FIRST_PORT
    # Set by start() when the remembered port was taken and the cluster moved to a free one.
    moved_from: int | None = field(default=None, init=False, compare=False)

    @property
    def os_user(self) -> str | None:
        return ensure_os_user()

    @property
    def logfile(self) -> Path:
        return self.datadir / "server.log"

    def _as_owner(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        user = self.os_user
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        return subprocess.run(argv, **kwargs)

    def _bin(self, name: str) -> str:
        return str(config.pg_bindir() / name)

    # -- state -------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    @property
    def port(self) -> int:
        for line in (self.datadir / SETTINGS_FILE).read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "port":
                return int(value.strip())
        raise ClusterError(f"{self.datadir / SETTINGS_FILE} names no port: remove {self.datadir} and start again")

    @property
    def key_file(self) -> Path:
        """The field-encryption key file the settings name (kept when the data directory was
        copied, as a replica's is), else this cluster's own `<pgdata>.field-keys`."""
        settings = self.datadir / SETTINGS_FILE
        if settings.exists():
            for line in settings.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "chorus.field_key_file":
                    return Path(value.strip().strip("'"))
        return self.datadir.parent / f"{self.datadir.name}.{KEY_FILE_SUFFIX}"

    def _ensure_key_file(self, created: bool) -> Path:
        """A new cluster gets a key file; so does one made before encryption (its settings name
        none). A key file gone from a cluster that had one is not replaced: the rows sealed with
        it would be lost for good, and the database says which file to restore."""
        path = self.key_file
        named = (self.datadir / SETTINGS_FILE).exists() and "chorus.field_key_file" in (
            self.datadir / SETTINGS_FILE).read_text()
        if not path.exists() and (created or not named):
            from .fieldkeys import new_key_file

            new_key_file(path, self.os_user)
        return path

    @property
    def password(self) -> str:
        return (self.datadir.parent / f"{self.datadir.name}.{PASSWORD_FILE}").read_text().strip()

    def running(self) -> bool:
        if not self.initialized:
            return False
        proc = self._as_owner(
            [self._bin("pg_ctl"), "status", "-D", str(self.datadir)],
            capture_output=True,
            text=True,
        )
        return proc.returncode == 0

    def url(self, dbname: str | None = None, user: str = SUPERUSER, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{dbname or self.cron_database}"

    # -- lifecycle ---------------------------------------------------------------
    def init(self) -> bool:
        """Create the cluster if absent. Returns True when it was created now."""
        if self.initialized:
            return False
        user = self.os_user
        self.check_binaries()
        self.datadir.mkdir(parents=True, exist_ok=True)
        if user and not can_enter(user, self.datadir.parent):
            raise ClusterError(
                f"the OS user {user} cannot enter {self.datadir.parent}: allow it (chmod o+x on the "
                "directories above) or set CHORUS_PGDATA to a directory it can reach"
            )
        password_path = self.datadir.parent / f"{self.datadir.name}.{PASSWORD_FILE}"
        password_path.write_text(secrets.token_urlsafe(24) + "\n")
        password_path.chmod(0o600)
        # initdb reads the password from a file the server user can read; it is removed after.
        pwfile = Path(tempfile.mkstemp(prefix="chorus-initpw-")[1])
        pwfile.write_text(password_path.read_text())
        if user:
            shutil.chown(self.datadir, user=user)
            shutil.chown(pwfile, user=user)
        self.datadir.chmod(0o700)
        proc = self._as_owner(
            [
                self._bin("initdb"),
                "-D", str(self.datadir),
                "-U", SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            capture_output=True,
            text=True,
        )
        pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            shutil.rmtree(self.datadir, ignore_errors=True)
            raise ClusterError(f"initdb failed in {self.datadir}: {_last_line(proc.stderr or proc.stdout)}")
        self._ensure_key_file(created=True)
        self._write_settings(first_free_port(self.first_port))
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude_if_exists = '{SETTINGS_FILE}'\n")
        return True

    def _write_settings(self, port: int) -> None:
        """The project's settings, rewritten at every start so a cluster made by an older
        checkout gets the current ones; only the port chosen at initdb time is kept."""
        key_file = self._ensure_key_file(created=False)
        settings = "\n".join(
            [
                "# Written by chorus_db.cluster: the embedded cluster's own settings.",
                f"port = {port}",
                # A server setting, not a role or database one: no dump carries it, no session
                # may change it (db/functions/045-field-encryption.sql).
                f"chorus.field_key_file = '{key_file}'",
                "listen_addresses = '127.0.0.1'",
                "unix_socket_directories = ''",
                "shared_preload_libraries = 'pg_cron'",
                f"cron.database_name = '{self.cron_database}'",
                # Jobs run in background workers: no libpq login, no password to manage.
                "cron.use_background_workers = on",
                "max_worker_processes = 16",
                "cron.timezone = 'UTC'",
                "timezone = 'UTC'",
                "max_connections = 200",
                # A 64 KiB body can nest 32,768 levels; parsing that needs more than the 2MB
                # default, and a client must not be able to cause a 5xx (OS stack is 8MB).
                "max_stack_depth = '6MB'",
                "shared_buffers = 256MB",
                # The first change of a page after a checkpoint writes the whole page to the WAL
                # (81% of what the retention job's deletions write); compressed, the deletions
                # write 15% less WAL and the vacuum after them 21% less, which the submissions'
                # commits flush with theirs (issue 13, goal 4). docker-compose.yml sets the same.
                "wal_compression = lz4",
                # On a standby (chorus_db/replica.py; no effect on a primary): the primary keeps
                # the row versions the standby's reads still see, so a vacuum there cannot cancel
                # a read here (40001, "conflict with recovery", which PostgREST answers 500 and
                # nginx does not retry on the primary). Reads are bounded by their roles'
                # statement timeouts, so what the primary keeps for them is too.
                "hot_standby_feedback = on",
                # No personal data in the log: no statement, parameters or DETAIL (which can
                # show a row) with an error; PostgREST's login logs no errors at all
                # (db/policies/000-foundation.sql).
                "log_min_error_statement = panic",
                "log_parameter_max_length = 0",
                "log_parameter_max_length_on_error = 0",
                "log_error_verbosity = terse",
                "fsync = on",
                "",
            ]
        )
        (self.datadir / SETTINGS_FILE).write_text(settings)
        if self.os_user:
            shutil.chown(self.datadir / SETTINGS_FILE, user=self.os_user)

    def start(self) -> bool:
        """Start the server if it is not running. Returns True when it was started now."""
        self.init()
        self.check_binaries()
        if self.running():
            return False
        remembered = self.port
        if port_is_free(remembered):
            self._write_settings(remembered)
        else:
            # Another program (often a second checkout's cluster) holds the port this cluster
            # remembered: move to a free one rather than refuse to start.
            self._write_settings(first_free_port(self.first_port))
            self.moved_from = remembered
        for _attempt in range(20):
            proc = self._as_owner(
                [self._bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.datadir), "-l", str(self.logfile)],
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                break
            tail = self._log_tail()
            if "Address already in use" in tail:
                # Another server took the port between the check and the start (a shared
                # machine): move to the next free one and try again.
                self.moved_from = self.moved_from or remembered
                self._write_settings(first_free_port(self.port + 1))
                continue
            # After a crash, orphaned backends may hold the shared memory for a moment.
            if "shared memory block is still in use" not in tail:
                break
            time.sleep(0.5)
        if proc.returncode != 0:
            reason = _last_line(self._log_tail()) or _last_line(proc.stderr or proc.stdout)
            raise ClusterError(f"PostgreSQL did not start ({reason}): see {self.logfile}")
        return True

    def check_binaries(self) -> None:
        """PostgreSQL 15's binaries, and a data directory made by the same major version."""
        bindir = config.pg_bindir()
        proc = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True)
        major = _major(proc.stdout)
        if major != config.PG_MAJOR:
            raise ClusterError(
                f"{bindir / 'postgres'} is PostgreSQL {major or 'of an unknown version'}, the project needs "
                f"{config.PG_MAJOR}: install postgresql-{config.PG_MAJOR} or set PG_BINDIR to its bin directory"
            )
        version_file = self.datadir / "PG_VERSION"
        if version_file.exists() and version_file.read_text().strip() != str(config.PG_MAJOR):
            raise ClusterError(
                f"{self.datadir} was made by PostgreSQL {version_file.read_text().strip()}, not "
                f"{config.PG_MAJOR}: move it away (or set CHORUS_PGDATA elsewhere) and start again"
            )

    def _log_tail(self) -> str:
        return self.logfile.read_text()[-2000:] if self.logfile.exists() else ""

    def stop(self, mode: str = "fast") -> bool:
        if not self.running():
            return False
        self._as_owner(
            [self._bin("pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.datadir)],
            check=True,
            capture_output=True,
        )
        return True

    def kill9(self) -> None:
        """Crash the postmaster (fault tests): SIGKILL, no shutdown checkpoint, WAL replay on start."""
        pid_file = self.datadir / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return  # gone and reaped
            if state == "Z":
                break
            time.sleep(0.05)
        # A container whose PID 1 reaps no orphans keeps the dead postmaster as a zombie, and a
        # zombie's PID still answers kill(pid, 0): pg_ctl would think the server runs. The lock
        # file is what a real crash leaves stale; removing it changes nothing of the recovery,
        # which the control file (state "in production") triggers.
        pid_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        self.stop("immediate") if self.running() else None
        shutil.rmtree(self.datadir, ignore_errors=True)
        (self.datadir.parent / f"{self.datadir.name}.{PASSWORD_FILE}").unlink(missing_ok=True)
        (self.datadir.parent / f"{self.datadir.name}.{KEY_FILE_SUFFIX}").unlink(missing_ok=True)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _major(version_output: str) -> int | None:
    import re

    match = re.search(r"\b(\d+)\.\d+", version_output)
    return int(match.group(1)) if match else None


def can_enter(user: str, directory: Path) -> bool:
    """Whether the OS user can reach `directory` (search permission on it and every parent)."""
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(directory)], capture_output=True).returncode == 0


def embedded_datadir() -> Path:
    """CHORUS_PGDATA, else .pgdata in the checkout. As root, when the server's OS user cannot
    enter the checkout (a clone under /root), /var/lib/chorus-website-db/<checkout id>/pgdata
    instead: the permissions of the user's directories are left as they are."""
    explicit = os.environ.get("CHORUS_PGDATA")
    if explicit:
        return Path(explicit)
    in_checkout = config.ROOT / ".pgdata"
    user = ensure_os_user()
    if user is None or (in_checkout / "PG_VERSION").exists() or can_enter(user, config.ROOT):
        return in_checkout
    outside = SYSTEM_DATA_DIR / config.CHECKOUT_ID
    outside.mkdir(parents=True, exist_ok=True)
    for directory in (SYSTEM_DATA_DIR, outside):
        directory.chmod(0o755)
    (outside / "checkout").write_text(f"{config.ROOT}\n")  # whose cluster this is
    return outside / "pgdata"


def embedded() -> Cluster:
    """The project's default cluster (`invoke db.up`)."""
    return Cluster(embedded_datadir())


def database_url() -> str:
    """DATABASE_URL if set, else the embedded cluster's URL (starting it if needed)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    cluster = embedded()
    cluster.start()
    return cluster.url()
