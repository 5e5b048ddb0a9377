"""`invoke mail.worker`: delivers the database's outbox (chorus_db.mail); `invoke up` starts it
in the background."""

from __future__ import annotations

import os

from invoke import Exit

from ._helpers import database_url, echo, task, where


@task(help={"once": "deliver what is due now, then stop", "poll": "seconds between looks at an empty outbox"})
def worker(c, once=False, poll=2.0):
    """Deliver the outbox: over SMTP_URL when set, else as files in .run/mail/; runs until stopped."""
    import psycopg

    from chorus_db import mail

    url = database_url()
    try:
        transport = mail.transport_from_env(os.environ.get("SMTP_URL"))
    except mail.ConfigError as exc:
        raise Exit(str(exc), code=1)
    echo(f"mail worker: the outbox of {where(url)} to {transport.describe()}")
    try:
        handled = mail.run(url, transport, once=once, poll_seconds=float(poll), log=lambda m: print(m, flush=True))
    except psycopg.OperationalError as exc:
        raise Exit(f"cannot reach the database ({str(exc).strip().splitlines()[0]}): start it with `invoke db.up`", code=1)
    except psycopg.errors.InvalidParameterValue:
        raise Exit("the database has no mail_worker role: run `invoke db.build`", code=1)
    echo(f"{handled} message(s) handled")
