"""`invoke gdpr.verify`: walks the consent audit's hash chains and names the first broken row.

Tampering is done as a superuser would do it behind the audit's back: with its triggers
disabled, or with session_replication_role = replica (which skips ordinary triggers).
"""

from __future__ import annotations

import re

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
