"""The consent audit: what every accepted submission records, and that nobody can change it."""

from __future__ import annotations

import psycopg
import pytest

LEAD = {"firstName": "Ada", "lastName": "Lovelace", "email": "Ada@Example.org", "gdprConsent": True}


def pseudonym(db, value: str) -> str:
    return db.execute("select app_logic.pseudonym(%s)", (value,)).fetchone()[0]


def audit(db) -> list[tuple]:
    return db.execute(
        "select subject, seq, event, consent_type, granted, source, ip_hash, user_agent, consent_text_version"
        " from app.consent_audit order by id"
    ).fetchall()


def test_an_accepted_submission_records_gdpr_and_marketing_consent(api, db):
    response = api.post(
        "/api/leads", {**LEAD, "marketingConsent": True}, client_ip="203.0.113.10", headers={"User-Agent": "Firefox/130"}
    )
    assert response.status == 201
    subject = pseudonym(db, "ada@example.org")
    ip_hash = pseudonym(db, "203.0.113.10")
    assert audit(db) == [
        (subject, 1, "consent", "gdpr", True, "web_form", ip_hash, "Firefox/130", "2026-01"),
        # A request until the confirmation link is opened (double opt-in).
        (subject, 2, "request", "marketing", True, "web_form", ip_hash, "Firefox/130", "2026-01"),
    ]
    assert db.execute("select app_logic.consent_chain_is_intact(%s)", (subject,)).fetchone()[0] is True


def test_the_audit_keeps_neither_the_email_nor_the_ip_in_clear(api, db):
    api.post("/api/leads", LEAD, client_ip="203.0.113.10")
    dump = str(db.execute("select * from app.consent_audit").fetchall()).lower()
    assert "ada@example.org" not in dump and "203.0.113.10" not in dump


def test_an_ipv6_client_is_hashed_by_its_full_address_not_its_64(api, db):
    api.post("/api/leads", LEAD, client_ip="2001:db8:1:2::abcd")
    ip_hashes = {row[6] for row in audit(db)}
    assert ip_hashes == {pseudonym(db, "2001:db8:1:2::abcd")}
    assert pseudonym(db, "2001:db8:1:2::/64") not in ip_hashes


def test_the_consent_text_version_comes_from_the_settings(api, db):
    db.execute(
        "insert into app.consent_texts (version, body, sha256, valid_from)"
        " values ('2026-07', 'July.', sha256('July.'), '2026-07-01')"
    )
    api.post("/api/leads", LEAD)
    assert {row[8] for row in audit(db)} == {"2026-07"}


def test_a_resubmission_appends_to_the_same_chain(api, db):
    api.post("/api/leads", LEAD)
    api.post("/api/leads", {**LEAD, "email": "ADA@example.ORG", "marketingConsent": True})
    rows = audit(db)
    assert [(r[1], r[3], r[4]) for r in rows] == [(1, "gdpr", True), (2, "marketing", False), (3, "gdpr", True), (4, "marketing", True)]
    assert len({r[0] for r in rows}) == 1


def test_a_rejected_submission_records_no_consent(api, db):
    assert api.post("/api/leads", {**LEAD, "deviceType": "fridge"}).status == 400
    assert audit(db) == []


@pytest.mark.parametrize(
    "statement",
    [
        "update app.consent_audit set granted = not granted",
        "delete from app.consent_audit",
        "truncate app.consent_audit",
    ],
)
def test_the_audit_is_append_only_for_the_owner_too(api, db, statement):
    api.post("/api/leads", LEAD)
    before = audit(db)
    with pytest.raises(psycopg.Error) as err:
        db.execute(statement)
    assert err.value.diag.sqlstate == "CHA01"
    assert audit(db) == before


def test_the_guard_holds_with_session_replication_role_replica(api, db):
    api.post("/api/leads", LEAD)
    db.execute("set session_replication_role = replica")
    with pytest.raises(psycopg.Error) as err:
        db.execute("delete from app.consent_audit")
    assert err.value.diag.sqlstate == "CHA01"
    db.execute("reset session_replication_role")
    assert len(audit(db)) == 2


# A consent or a request without its consent type or granted, written directly by the owner:
# the always empty index consent_audit_consent_fields_idx (db/schema/800) refuses it on every
# path that writes the audit's indexes, COPY included, with the SQLSTATE and the constraint name
# the table CHECK it replaced gave (the message names the index key's domain now).
FIELDLESS = ("fields-direct", 1, "request", "marketing", None, "test", b"\x00")
COLUMNS = "subject, seq, event, consent_type, granted, source, row_hash"


@pytest.mark.parametrize("path", ["insert", "insert-on-conflict", "copy"])
def test_a_consent_without_its_fields_is_refused_on_every_write_path_naming_the_constraint(db, path):
    insert = f"insert into app.consent_audit ({COLUMNS}) values (%s, %s, %s, %s, %s, %s, %s)"
    with pytest.raises(psycopg.errors.CheckViolation) as err:
        if path == "copy":
            with db.cursor().copy(f"copy app.consent_audit ({COLUMNS}) from stdin") as copy:
                copy.write_row(FIELDLESS)
        else:
            db.execute(insert + (" on conflict do nothing" if path == "insert-on-conflict" else ""), FIELDLESS)
    assert err.value.diag.sqlstate == "23514"
    assert err.value.diag.constraint_name == "consent_audit_consent_fields"
    assert audit(db) == []


def test_no_api_role_can_touch_the_audit(db):
    rows = db.execute(
        "select r, p from unnest(array['anon', 'reader', 'admin']) as r,"
        " unnest(array['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger']) as p"
        " where has_table_privilege(r, 'app.consent_audit', p)"
    ).fetchall()
    assert rows == []


def test_a_text_an_append_under_way_names_cannot_be_deleted_under_it(db, db_url):
    # The foreign key locked the text each append named (FOR KEY SHARE) until the append
    # committed. The domain that replaced it (db/schema/770) locks nothing, so the texts' guard
    # locks the audit before it looks for rows naming the text: the delete waits for the append,
    # then sees its row. Without that lock the delete would commit under the append, leaving a
    # row naming a text that is gone.
    db.execute(
        "insert into app.consent_texts (version, body, sha256, valid_from)"
        " values ('race-1', 'Raced.', sha256(convert_to('Raced.', 'UTF8')), '2000-01-01T00:00:00Z')"
    )
    with psycopg.connect(db_url) as appender, psycopg.connect(db_url, autocommit=True) as deleter:
        appender.execute(
            "insert into app.consent_audit (subject, seq, event, consent_type, granted, source,"
            " consent_text_version, row_hash) values ('race', 1, 'consent', 'gdpr', true, 'test', 'race-1', '\\x00')"
        )
        deleter.execute("set lock_timeout = '500ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            deleter.execute("delete from app.consent_texts where version = 'race-1'")
        appender.commit()
        named = 'foreign key constraint "consent_audit_text_fkey" on table "consent_audit"'
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match=named):
            deleter.execute("delete from app.consent_texts where version = 'race-1'")
    assert db.execute("select count(*) from app.consent_texts where version = 'race-1'").fetchone()[0] == 1


@pytest.mark.parametrize("path", ["merge", "insert-select", "on-conflict-do-update"])
def test_a_consent_without_its_fields_is_refused_by_merge_and_an_upsert_too(db, path):
    """Red team, session 11: the other statements that write the audit's indexes (MERGE, a
    multi-row INSERT ... SELECT, and the update arm of an upsert with the append-only guard off)
    meet the always-empty index as INSERT does."""
    if path == "on-conflict-do-update":
        db.execute(f"insert into app.consent_audit ({COLUMNS}) values ('fields-upsert', 1, 'consent', 'gdpr', true, 'test', '\\x00')")
        db.execute("alter table app.consent_audit disable trigger consent_audit_append_only")
        statement = (f"insert into app.consent_audit ({COLUMNS}) values ('fields-upsert', 1, 'consent', 'gdpr', true, 'test', '\\x00')"
                     " on conflict (subject, seq) do update set granted = null")
    elif path == "merge":
        statement = (f"merge into app.consent_audit as a using (select 'fields-merge' as s) as v on a.subject = v.s"
                     f" when not matched then insert ({COLUMNS}) values (v.s, 1, 'request', 'marketing', null, 'test', '\\x00')")
    else:
        statement = (f"insert into app.consent_audit ({COLUMNS}) select 'fields-many-' || i, 1,"
                     " 'consent', case when i = 3 then null else 'gdpr' end, true, 'test', '\\x00' from generate_series(1, 5) as i")
    try:
        with pytest.raises(psycopg.errors.CheckViolation) as err:
            db.execute(statement)
    finally:
        db.execute("alter table app.consent_audit enable trigger consent_audit_append_only")
    assert err.value.diag.constraint_name == "consent_audit_consent_fields"
    assert [row[:5] for row in audit(db)] == ([("fields-upsert", 1, "consent", "gdpr", True)] if path == "on-conflict-do-update" else [])
