"""The mail worker task: `invoke mail.worker` delivers the database's outbox (chorus_db.mail).
`invoke up` starts it in the background (chorus_db.stack.start_mail_worker)."""

from __future__ import annotations

import os

from invoke import Collection, Exit, task


@task(help={"once": "deliver what is due now, then stop", "poll": "seconds between looks at an empty outbox"})
def worker(c, once=False, poll=2.0):
    """Deliver the outbox: over SMTP_URL when set, else as files in .run/mail/; runs until stopped."""
    import psycopg

    from chorus_db import mail
    from chorus_db.cluster import database_url

    url = database_url()
    try:
        transport = mail.transport_from_env(os.environ.get("SMTP_URL"))
    except mail.ConfigError as exc:
        raise Exit(str(exc), code=1)
    print(f"» mail worker: outbox of {url.rsplit('@', 1)[-1]} to {transport.describe()}", flush=True)
    try:
        handled = mail.run(url, transport, once=once, poll_seconds=float(poll), log=lambda m: print(m, flush=True))
    except psycopg.OperationalError as exc:
        raise Exit(f"cannot reach the database ({str(exc).strip().splitlines()[0]}): start it with `invoke db.up`", code=1)
    except psycopg.errors.InvalidParameterValue as exc:
        raise Exit(f"the database has no mail_worker role ({exc}): run `invoke db.build`", code=1)
    print(f"» {handled} message(s) handled", flush=True)


def register(ns: Collection) -> None:
    mail = Collection("mail")
    mail.add_task(worker)
    ns.add_collection(mail)
