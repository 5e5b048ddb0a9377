"""The task layer as a newcomer meets it: one module per collection, and every failure a user
can hit is one sentence saying what to do, exit status 1, no traceback (CHORUS_DEBUG=1 shows
it). `invoke down` stops what this checkout started, leftovers of killed runs included."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chorus_db import config, stack
from chorus_db.cluster import Cluster


def invoke(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CHORUS_DEBUG")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=config.ROOT, env=full, input="",
        capture_output=True, text=True, timeout=timeout,
    )


def one_sentence(result: subprocess.CompletedProcess) -> str:
    """The failure's message, after checking it is one line on stderr, exit 1, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("» ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _closed_port() -> int:
    port = stack.free_port()
    assert stack.port_is_free(port)
    return port


def test_every_collection_is_one_module_of_the_tasks_package():
    modules = {p.stem for p in (config.ROOT / "tasks").glob("*.py")} - {"__init__", "_helpers"}
    # ops.py is the exception: its tasks join the db collection (db.promote, db.recover, db.pitr.*).
    assert modules == {"stack", "db", "api", "gdpr", "mail", "lint", "test", "bench", "docs", "web", "ops"}
    assert not (config.ROOT / "tasks.py").exists()
    assert not list((config.ROOT / "chorus_db").glob("tasks*.py")), "library code holds no task code"
    listing = invoke("--list").stdout
    for name in ("up", "down", "db.build", "db.backup", "api.keys", "gdpr.verify", "gdpr.anchor", "mail.worker", "lint.all",
                 "test.all", "bench.run", "web.build", "web.client", "db.promote", "db.recover", "db.pitr.backup"):
        assert f"  {name}" in listing, name


def test_an_unreachable_database_url_is_one_sentence(tmp_path):
    port = _closed_port()
    result = invoke("db.status", env={"DATABASE_URL": f"postgresql://someone:secret@127.0.0.1:{port}/chorus_website"})
    message = one_sentence(result)
    assert message.startswith(f"cannot reach the database at 127.0.0.1:{port}/chorus_website (")
    assert "DATABASE_URL" in message and "secret" not in message


def test_a_stopped_server_is_one_sentence_and_chorus_debug_shows_the_traceback(pg_cluster):
    # The test cluster's own URL with the port of a server that is not running.
    url = pg_cluster.url("chorus_website").replace(f":{pg_cluster.port}/", f":{_closed_port()}/")
    message = one_sentence(invoke("api.keys", env={"DATABASE_URL": url}))
    assert message.startswith("cannot reach the database at 127.0.0.1:") and "invoke db.up" in message
    debug = invoke("api.keys", env={"DATABASE_URL": url, "CHORUS_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "OperationalError" in debug.stderr


def test_missing_postgresql_binaries_are_one_sentence(tmp_path):
    message = one_sentence(invoke("db.up", env={"PG_BINDIR": str(tmp_path), "CHORUS_PGDATA": str(tmp_path / "pgdata")}))
    assert message == f"PG_BINDIR={tmp_path} holds no `postgres` binary: point it at PostgreSQL 15's bin directory"
    assert not (tmp_path / "pgdata").exists()


def test_postgresql_of_another_major_version_is_one_sentence(tmp_path):
    fake = tmp_path / "bin" / "postgres"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 14.11'\n")
    fake.chmod(0o755)
    message = one_sentence(invoke("db.up", env={"PG_BINDIR": str(fake.parent), "CHORUS_PGDATA": str(tmp_path / "pgdata")}))
    assert message.startswith(f"{fake} is PostgreSQL 14, the project needs 15: ")


def test_a_missing_extension_names_the_package_to_install(pg_cluster, tmp_path):
    from chorus_db import testing
    from chorus_db.build import BuildError, Source, build

    source = tmp_path / "db"
    for kind in ("schema", "functions", "policies"):
        (source / kind).mkdir(parents=True)
    (source / "schema" / "000-x.sql").write_text("create extension if not exists chorus_no_such_extension;\n")
    url = testing.recreate_database(pg_cluster, "chorus_missing_ext")
    try:
        with pytest.raises(BuildError) as caught:
            build(url, source=Source(source), log=lambda _m: None)
        assert str(caught.value) == (
            "db/schema/000-x.sql: the PostgreSQL server lacks the extension chorus_no_such_extension: install the "
            "package that provides chorus_no_such_extension where it runs (`bash .ci/run` installs every package "
            "the project needs on Debian 12)"
        )
    finally:
        testing.recreate_database(pg_cluster, "chorus_missing_ext")


@pytest.fixture
def own_checkout_id():
    """A checkout id of its own, so `invoke down` here never stops this session's servers."""
    checkout_id = f"down-test-{os.getpid()}"
    env = {
        "CHORUS_CHECKOUT_ID": checkout_id,
        "CHORUS_PGDATA": str(Path("/nonexistent-chorus") / checkout_id),
        "CHORUS_RUN_DIR": str(Path("/nonexistent-chorus") / checkout_id / "run"),
    }
    yield checkout_id, env
    for leftover in Path(os.environ.get("TMPDIR", "/tmp")).glob(f"chorus-{checkout_id}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def test_down_stops_what_a_killed_test_run_left_in_this_checkouts_temporary_directories(own_checkout_id, monkeypatch):
    checkout_id, env = own_checkout_id
    monkeypatch.setattr(config, "CHECKOUT_ID", checkout_id)
    leftover = Cluster(config.scratch_dir("http-faults") / "pgdata", first_port=56645)
    leftover.start()
    try:
        assert leftover.running()
        result = invoke("down", env=env)
        assert result.returncode == 0, result.stderr
        assert f"stopped PostgreSQL in {leftover.datadir}" in result.stdout
        assert not leftover.running()
    finally:
        leftover.destroy()


def test_a_taken_api_port_is_one_sentence(tmp_path):
    if stack.find_postgrest() is None or stack.find_nginx() is None:
        pytest.skip("PostgREST or nginx not found")
    base = config.scratch_dir("port-taken")
    env = {
        "CHORUS_CHECKOUT_ID": f"port-test-{os.getpid()}",
        "CHORUS_PGDATA": str(base / "pgdata"),
        "CHORUS_RUN_DIR": str(base / "run"),
        "CHORUS_PG_PORT": str(stack.free_port()),
    }
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        env["API_PORT"] = str(holder.getsockname()[1])
        try:
            result = invoke("up", env=env, timeout=180)
            message = one_sentence(result)
            assert message.startswith(f"port {env['API_PORT']} for nginx (the API) is taken by another program: stop it or set API_PORT to a free port")
            assert message.endswith("; the stack is half up: `invoke down` stops what started")
        finally:
            invoke("down", env=env, timeout=60)
            shutil.rmtree(base, ignore_errors=True)


def test_backup_restore_and_retention_show_their_progress_as_count_lines_off_a_terminal(pg_cluster, template_url):
    from chorus_db import testing

    url = testing.copy_of_template(pg_cluster, "chorus_progress")
    restored = "chorus_progress_restored"
    dump = config.scratch_dir("progress") / "x.dump"
    try:
        env = {"DATABASE_URL": url}
        backup = invoke("db.backup", "--out", str(dump), env=env)
        assert backup.returncode == 0, backup.stderr
        lines = [line for line in backup.stdout.splitlines() if line.startswith("  tables dumped: ")]
        total = int(lines[-1].split()[2].split("/")[1])
        assert lines[0].startswith("  tables dumped: 1/") and lines[-1].startswith(f"  tables dumped: {total}/{total} ")
        assert "\x1b[" not in backup.stdout, "no terminal escapes in a log"

        restore = invoke("db.restore", str(dump), "--target", restored, env=env)
        assert restore.returncode == 0, restore.stderr
        lines = [line for line in restore.stdout.splitlines() if line.startswith("  archive entries restored: ")]
        assert 2 <= len(lines) <= 25, "count lines, throttled: not one per archive entry"
        done, total = lines[-1].split()[3].split("/")
        assert done == total

        retention = invoke("db.retention", "--apply", env=env)
        assert retention.returncode == 0, retention.stderr
        assert "  retention batches: 1 " in retention.stdout and "removed 0 row(s)" in retention.stdout
    finally:
        testing.recreate_database(pg_cluster, "chorus_progress")
        with __import__("psycopg").connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f"drop database if exists {restored} with (force)")
        shutil.rmtree(dump.parent, ignore_errors=True)


def test_as_root_a_checkout_the_server_user_cannot_enter_keeps_its_cluster_where_it_can(tmp_path, monkeypatch):
    """A clone under a mode-700 directory (as /root is): `db.up` works and says where the data is."""
    if os.geteuid() != 0:  # the server runs as the user itself, who can enter its own checkout
        from chorus_db.cluster import embedded_datadir

        monkeypatch.delenv("CHORUS_PGDATA", raising=False)
        assert embedded_datadir() == config.ROOT / ".pgdata"
        return
    private = config.scratch_dir("private")
    private.chmod(0o700)
    clone = private / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(config.ROOT), str(clone)], check=True, capture_output=True)
    for name in ("tasks", "chorus_db", "db"):  # this working tree, committed or not
        shutil.rmtree(clone / name)
        shutil.copytree(config.ROOT / name, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_") and k != "DATABASE_URL"}
    env["CHORUS_PG_PORT"] = str(stack.free_port())
    run = lambda *args: subprocess.run([sys.executable, "-m", "invoke", *args], cwd=clone, env=env,
                                       capture_output=True, text=True, timeout=120)
    checkout_id = __import__("hashlib").sha1(str(clone).encode()).hexdigest()[:10]
    datadir = Path("/var/lib/chorus-website-db") / checkout_id / "pgdata"
    try:
        up = run("db.up")
        assert up.returncode == 0, up.stderr
        assert f"(data in {datadir})" in up.stdout
        assert not (clone / ".pgdata").exists()
        assert oct(private.stat().st_mode & 0o777) == "0o700", "the user's directory is left as it was"
        url = next(line.split("=", 1)[1] for line in up.stdout.splitlines() if line.startswith("DATABASE_URL="))
        from psycopg.conninfo import make_conninfo

        with __import__("psycopg").connect(make_conninfo(url, dbname="postgres"), connect_timeout=5) as conn:
            assert conn.execute("select current_setting('data_directory')").fetchone()[0] == str(datadir)
    finally:
        down = run("down")
        assert down.returncode == 0, down.stderr
        shutil.rmtree(datadir.parent, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)


def test_a_client_generation_that_fails_is_one_sentence(tmp_path):
    from chorus_db import web

    if web.npm() is None:
        pytest.skip(web.NPM_MISSING)
    web.install(log=lambda _m: None)
    result = invoke("web.client", "--url", str(tmp_path / "no-such-openapi.json"))
    message = one_sentence(result)
    assert message.startswith("openapi-typescript failed (exit ")
    assert "no-such-openapi.json" in result.stdout


# A run that starts a stack and a drill's servers the way the tests do, then waits to be killed.
_KILLED_RUN = """
import json, sys, time
from pathlib import Path
from chorus_db import config, ops_stack, stack, testing
from chorus_db.cluster import Cluster
from tests.support import ops

shared = Cluster(Path(sys.argv[1]))  # the session's test cluster: only a database of it is used
url = testing.copy_of_template(shared, "chorus_killed_run")
stack.set_authenticator_password(url, "authenticator-test-only")
run_dir = config.scratch_dir("http")
cfg = stack.StackConfig(
    run_dir=run_dir, database_url=shared.url("chorus_killed_run", user=config.AUTHENTICATOR, password="authenticator-test-only"),
    api_port=stack.free_port(), live_relay=True, jwt_secret="k" * 48,
    postgrest_bin=stack.find_postgrest(), nginx_bin=stack.find_nginx(),
)
stack.start_postgrest(cfg)
stack.start_live_relay(cfg)
stack.start_nginx(cfg)
stack.wait_until_ready(cfg, timeout=30)
drill = ops.new_cluster("chorus-drill-")  # a drill's own cluster, with PgBouncer in front
drill.start()
ops_stack.start_pgbouncer(drill.datadir.parent / "run", drill, {"postgres": drill.password}, stack.free_port())
print(json.dumps({"api": cfg.api_port, "dirs": [str(run_dir), str(drill.datadir.parent)]}), flush=True)
time.sleep(300)
"""


def test_down_stops_the_stack_and_drill_servers_of_a_run_killed_with_sigkill(own_checkout_id, pg_cluster, template_url):
    import json
    import signal
    import tempfile
    import time

    if stack.find_postgrest() is None or stack.find_nginx() is None or shutil.which("pgbouncer") is None:
        pytest.skip("PostgREST, nginx or PgBouncer not found")
    checkout_id, env = own_checkout_id
    places = [str(Path(tempfile.gettempdir()) / f"chorus-{checkout_id}-")]
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(pg_cluster.datadir)], cwd=config.ROOT, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        line = child.stdout.readline()
        assert line, child.stderr.read()[-2000:]
        started = json.loads(line)
        ours = stack.leftover_processes(places)
        names = " ".join(ours.values())
        assert "nginx: master" in names and "postgrest" in names and "pgbouncer" in names and "postgres" in names, names
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert stack.leftover_processes(places), "the servers outlive the killed run"
        assert stack.http_status(f"http://127.0.0.1:{started['api']}/api/leads/health") == 200

        began = time.monotonic()
        result = invoke("down", env=env, timeout=90)
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - began < 60
        assert stack.leftover_processes(places) == {}, "invoke down left servers of the killed run running"
        assert all(not stack._alive(pid) for pid in ours)
        assert stack.http_status(f"http://127.0.0.1:{started['api']}/api/leads/health") is None
        for expected in ("stopped nginx of", "stopped PostgREST of", "pgbouncer (pid", f"PostgreSQL in {started['dirs'][1]}"):
            assert expected in result.stdout, (expected, result.stdout)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        stack.stop_leftover_processes(places)  # nothing, unless the test failed
        with __import__("psycopg").connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("drop database if exists chorus_killed_run with (force)")
