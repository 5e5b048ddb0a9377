"""`invoke gdpr.*`: the consent audit's hash chains and one person's data (export, erase), with
the same SQL as the endpoints (chorus_db.gdpr)."""

from __future__ import annotations

import json
from pathlib import Path

from invoke import Exit

from ._helpers import confirm, database_url, echo, task, where


@task
def verify(c):
    """Walk the consent audit's hash chains; name the first broken row (exit 1) or count what verified."""
    from chorus_db.gdpr import verify_chain

    url = database_url()
    echo(f"verifying the consent audit of {where(url)}")
    report = verify_chain(url)
    print(report.describe())
    if not report.intact:
        raise Exit(
            "the consent audit was altered behind its back: keep this database as evidence and "
            "compare the named subject's chain with the latest backup",
            code=1,
        )


@task(help={"email": "the person's email address (any letter case)", "out": "write the JSON here instead of stdout"})
def export(c, email, out=None):
    """Print everything held about one person as one JSON document (like POST /api/gdpr/export)."""
    from chorus_db.gdpr import export as export_data

    url = database_url()
    # On stderr: stdout is the document alone, ready for a file or jq.
    echo(f"exporting the personal data of {email} from {where(url)}", err=True)
    document = export_data(url, email)
    if document is None:
        raise Exit(f"no personal data is held for {email}", code=1)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out:
        Path(out).write_text(text + "\n")
        Path(out).chmod(0o600)
        echo(f"wrote {out}")
    else:
        print(text)


@task(help={"email": "the person's email address (any letter case)", "yes": "do not ask for confirmation"})
def erase(c, email, yes=False):
    """Erase one person's personal data everywhere (like POST /api/gdpr/erase); asks unless --yes."""
    from chorus_db.gdpr import erase as erase_data
    from chorus_db.gdpr import export as export_data
    from chorus_db.gdpr import held_summary

    url = database_url()
    held = held_summary(export_data(url, email))
    found = {k: v for k, v in held.items() if v}
    if found:
        print(f"held about {email}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
        print("the consent audit rows stay (pseudonymous) and gain an erasure record")
    else:
        print(f"nothing is held about {email}; the request will still be recorded in the consent audit")
    if not yes and not confirm(f"erase the personal data of {email} from {where(url)}?"):
        raise Exit("nothing was erased", code=1)
    removed = erase_data(url, email)
    echo("erased: " + ", ".join(f"{k} {v}" for k, v in removed.items()))
