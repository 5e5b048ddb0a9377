"""No personal data in the server log: the errors of web requests are not logged, and the
cluster logs no statement, parameters or DETAIL with an error (issue 10, finding 17)."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.conftest import AUTHENTICATOR_PASSWORD


def log_since(cluster, offset: int) -> str:
    with cluster.logfile.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def test_errors_of_web_requests_and_their_details_leave_no_email_in_the_server_log(pg_cluster, db_url, db):
    web_probe = f"web-{secrets.token_hex(4)}@example.org"
    owner_probe = f"owner-{secrets.token_hex(4)}@example.org"
    row_probe = f"row-{secrets.token_hex(4)}@example.org"
    start = pg_cluster.logfile.stat().st_size
    # As PostgREST runs a reader's GET /api/leads?id=eq.<email>: its login, then the role.
    with psycopg.connect(make_conninfo(db_url, user="authenticator", password=AUTHENTICATOR_PASSWORD)) as web:
        web.execute("set local role reader")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation) as refused:
            web.execute("select id from api.leads where id = %s::uuid", (web_probe,))
        assert web_probe in str(refused.value), "the client still learns what was wrong"
    # The owner's errors are logged, but without the statement or its parameters, and without
    # the DETAIL that would show the failing row.
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        db.execute("select %s::uuid", (owner_probe,))
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "insert into app.leads (first_name, last_name, email, gdpr_consent) values ('', 'x', %s, true)", (row_probe,)
        )
    db.execute("select pg_catalog.pg_sleep(0)")  # the log lines of the statements above are written
    log = log_since(pg_cluster, start)
    assert "violates check constraint" in log, "the owner's errors are logged: the check is not vacuous"
    assert web_probe not in log
    assert row_probe not in log, "no DETAIL with the failing row"
    assert "STATEMENT:" not in log and "parameters:" not in log
    assert log.count(owner_probe) == 1, "the owner's own error message, once, and no statement repeating it"
