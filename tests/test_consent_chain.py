"""`invoke gdpr.verify`: walks the consent audit's hash chains and names the first broken row.

Tampering is done as a superuser would do it behind the audit's back: with its triggers
disabled, or with session_replication_role = replica (which skips ordinary triggers).
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.support.invoke_cli import run_invoke


@pytest.fixture
def audit(db):
    """Three consent rows for one person and one for another, as the endpoints write them."""
    for subject, event, kind, granted in (
        ("subject-one", "consent", "gdpr", True),
        ("subject-two", "consent", "gdpr", True),
        ("subject-one", "consent", "marketing", True),
        ("subject-one", "consent", "marketing", False),
    ):
        db.execute("select app_logic.append_consent(%s, %s, %s, %s, 'test')", (subject, event, kind, granted))
    return dict(db.execute("select seq, id from app.consent_audit where subject = 'subject-one'").fetchall())


def test_verify_reports_how_many_rows_and_subjects_it_verified(db_url, audit):
    proc = run_invoke("gdpr.verify", database_url=db_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "consent audit intact: 4 row(s) of 2 subject(s) verified" in proc.stdout


def test_replication_role_replica_does_not_switch_the_guard_off(db, audit):
    # The guard triggers are ENABLE ALWAYS: replica mode, which skips ordinary triggers, does not.
    db.execute("set session_replication_role = replica")
    try:
        with pytest.raises(psycopg.Error, match="append-only") as refused:
            db.execute("update app.consent_audit set granted = true where subject = 'subject-one' and seq = 3")
        assert refused.value.sqlstate == "CHA01"
    finally:
        db.execute("reset session_replication_role")


def test_a_row_changed_with_triggers_disabled_is_named_and_exits_1(db, db_url, audit):
    db.execute("alter table app.consent_audit disable trigger user")
    try:
        db.execute("update app.consent_audit set granted = true where subject = 'subject-one' and seq = 3")
    finally:
        db.execute("alter table app.consent_audit enable trigger user")
    proc = run_invoke("gdpr.verify", database_url=db_url)
    assert proc.returncode == 1
    assert f"BROKEN at row id {audit[3]} (subject subject-one, seq 3): row_hash does not match" in proc.stdout
    assert "altered behind its back" in proc.stderr


def test_a_row_deleted_with_triggers_disabled_is_found_through_the_gap(db, db_url, audit):
    db.execute("alter table app.consent_audit disable trigger user")
    try:
        db.execute("delete from app.consent_audit where subject = 'subject-one' and seq = 2")
    finally:
        db.execute("alter table app.consent_audit enable trigger user")
    proc = run_invoke("gdpr.verify", database_url=db_url)
    assert proc.returncode == 1
    assert re.search(rf"row id {audit[3]} \(subject subject-one, seq 3\): seq 3 follows seq 1", proc.stdout)


def test_the_audit_refuses_changes_while_its_triggers_are_on(db, audit):
    import psycopg

    with pytest.raises(psycopg.DatabaseError) as err:
        db.execute("delete from app.consent_audit where subject = 'subject-two'")
    assert err.value.diag.sqlstate == "CHA01"


def test_simultaneous_appends_to_one_chain_keep_it_whole(db, db_url):
    # 8 form submissions of one address and 4 confirmations at once, each holding its
    # transaction open after appending: each append must wait for the lock and then see the rows
    # its predecessor committed (the chain end is read in a statement after the lock's).
    writers = 12
    barrier = threading.Barrier(writers)

    def one(n: int) -> None:
        with psycopg.connect(db_url) as conn:
            barrier.wait()
            conn.execute(
                "select set_config('request.headers', %s, true)",
                (f'{{"x-real-ip": "198.51.100.{n}", "user-agent": "writer {n}"}}',),
            )
            if n < 8:
                conn.execute("select app_logic.record_form_consent('same.person@example.org', %s, %s)", (n % 2 == 0, n))
            else:
                conn.execute(
                    "select app_logic.append_consent(app_logic.person_pseudonym('same.person@example.org'),"
                    " 'consent', 'marketing', true, 'email_confirmation')"
                )
            conn.execute("select pg_sleep(0.05)")

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(one, range(writers)))
    rows = db.execute(
        "select seq, submission_id, prev_hash = lag(row_hash) over (order by seq) from app.consent_audit"
        " where subject = app_logic.person_pseudonym('same.person@example.org') order by seq"
    ).fetchall()
    assert [seq for seq, _, _ in rows] == list(range(1, 21))
    assert all(linked for _, _, linked in rows[1:])
    # A submission's two rows follow each other in the chain.
    submissions = [sub for _, sub, _ in rows if sub is not None]
    assert sorted(submissions) == sorted(list(range(8)) * 2)
    assert all(submissions[i] == submissions[i + 1] for i in range(0, 16, 2))
    assert db.execute("select count(*) from app_logic.verify_consent_chain()").fetchone()[0] == 0
