"""What every task module shares: the `task` decorator that turns a failure into one sentence
(exit 1, no traceback), the echo line, the database URL, a URL without its password, and the
yes/no question. No task logic lives here, and no library code lives in tasks/.

A failure's traceback is shown with `invoke --debug ...` or CHORUS_DEBUG=1.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import time
import traceback

import invoke
from invoke import Exit

DEBUG_HINT = "run it again with CHORUS_DEBUG=1 (or `invoke --debug`) to see the traceback"


def echo(message: str, *, err: bool = False) -> None:
    print(f"» {message}", file=sys.stderr if err else sys.stdout, flush=True)


def debugging() -> bool:
    return os.environ.get("CHORUS_DEBUG", "").strip() not in ("", "0") or logging.getLogger("invoke").isEnabledFor(logging.DEBUG)


def where(url: str) -> str:
    """host:port/dbname of a URL or conninfo string, never its password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:  # an unparsable URL: say so without echoing it (it may hold a password)
        return "(an unparsable DATABASE_URL)"
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def database_url() -> str:
    """DATABASE_URL if set, else the embedded cluster's (started if needed)."""
    from chorus_db.cluster import database_url as url

    return url()


def set_password_from_env(role: str, variable: str, purpose: str) -> None:
    """Give a login role the password in $variable on DATABASE_URL (the db.*-password tasks)."""
    from chorus_db.stack import set_login_password

    password = os.environ.get(variable, "")
    if not password:
        raise Exit(f"set {variable} to the password {purpose}", code=1)
    url = database_url()
    set_login_password(url, role, password)
    echo(f"set the password of role {role} on {where(url)}")


def start_embedded(running_word: str = "already running"):
    """Start the embedded cluster (created if needed), saying what happened and where; the cluster."""
    from chorus_db.cluster import embedded

    cluster = embedded()
    if cluster.init():
        echo(f"initialised a new cluster in {cluster.datadir}")
    started = cluster.start()
    if cluster.moved_from:
        echo(f"port {cluster.moved_from} is taken by another program: the cluster moved to {cluster.port}")
    echo(("started" if started else running_word) + f" PostgreSQL on 127.0.0.1:{cluster.port} (data in {cluster.datadir})")
    return cluster


def report(findings: list[str], what: str, advice: str) -> None:
    """A linter's findings, one per line, then exit 1 with a sentence; "no problems" when none."""
    for finding in findings:
        print(f"  {finding}")
    if findings:
        raise Exit(f"{what} found {len(findings)} problem(s): {advice}", code=1)
    print("  no problems")


def confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        return False
    return answer.strip().lower() in ("y", "yes")


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def sentence(exc: BaseException) -> str | None:
    """The one sentence for a failure the user can fix; None for a bug (then the hint)."""
    import psycopg

    from chorus_db import errors

    if isinstance(exc, errors.UserError):
        return str(exc)
    if isinstance(exc, psycopg.OperationalError):
        url = os.environ.get("DATABASE_URL")
        target = where(url) if url else "the embedded cluster"
        reason = _first_line(exc).removeprefix("connection failed: ")
        return (
            f"cannot reach the database at {target} ({reason}): start it (`invoke db.up` for the "
            "embedded cluster) or set DATABASE_URL to a server that runs"
        )
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return f"the database refused this login: {_first_line(exc)}; use a role that owns the project's objects"
    if isinstance(exc, psycopg.Error):
        return errors.missing_extension(str(exc)) or f"the database refused a statement: {_first_line(exc)}"
    return None


def task(*args, **kwargs):
    """invoke's @task, with every failure reported as one sentence and exit status 1."""

    def decorate(body):
        @functools.wraps(body)
        def run(*a, **kw):
            try:
                return body(*a, **kw)
            except (Exit, invoke.exceptions.UnexpectedExit, KeyboardInterrupt):
                raise
            except Exception as exc:
                if debugging():
                    traceback.print_exc()
                message = sentence(exc)
                if message is None:
                    message = f"unexpected {type(exc).__name__}: {_first_line(exc) or 'no message'}; {DEBUG_HINT}"
                raise Exit(message, code=1) from None

        return invoke.task(run, **kwargs)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


@contextlib.contextmanager
def progress(what: str, total: int | None = None):
    """Progress of a long task: a rich progress bar on a terminal, plain count lines otherwise
    (CI logs). Yields step(done, total, note) to call as the work goes."""
    if sys.stdout.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[note]}")]
        with Progress(*columns, transient=False) as bar:
            task_id = bar.add_task(what, total=total, note="")

            def step(done: int, new_total: int | None = None, note: str = "") -> None:
                bar.update(task_id, completed=done, total=new_total or total, note=note[:60])

            yield step
        return

    # Plain lines: the first, every tenth of the total, the last, and otherwise at most one a second.
    last = {"printed": 0.0, "tenth": -1}

    def plain(done: int, new_total: int | None = None, note: str = "") -> None:
        whole = new_total or total
        tenth = done * 10 // whole if whole else -1
        now = time.monotonic()
        if done in (1, whole) or tenth != last["tenth"] or now - last["printed"] >= 1.0:
            count = f"{done}/{whole}" if whole else str(done)
            print(f"  {what}: {count} {note}".rstrip(), flush=True)
            last.update(printed=now, tenth=tenth)

    yield plain
