"""The brand audit log (issue 14): every change of brand data recorded append-only with its
old and new values and its actor, readable by admin keys only, erased with the person,
kept as long as its own retention rule says."""

from __future__ import annotations

import psycopg
import pytest

PREFS = {"sessionId": "sess_audit_1", "accessibilityTheme": "protanopia"}


def entries(db, table: str | None = None) -> list[dict]:
    cur = db.execute(
        "select * from app.brand_audit" + (" where table_name = %s" if table else "") + " order by id",
        (table,) if table else (),
    )
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def test_an_edit_records_the_changed_columns_with_old_and_new_values_and_the_actor(api, db):
    assert api.post("/api/accessibility-preferences", PREFS).status == 201
    changed = {**PREFS, "accessibilityTheme": "tritanopia", "fontSizePreference": "large"}
    assert api.post("/api/accessibility-preferences", changed).status == 200
    created, edited = entries(db, "accessibility_preferences")
    # The theme and font size are encrypted (db/functions/045-field-encryption.sql): the log
    # names the sealed column as changed and never holds its values, in clear or encrypted.
    assert created["operation"] == "INSERT" and created["changes"]["sealed"] == {"new": "[secret]"}
    assert created["changes"]["key_version"] == {"new": 1} and "accessibility_theme" not in created["changes"]
    assert edited["operation"] == "UPDATE"
    assert edited["changes"]["sealed"] == {"old": "[secret]", "new": "[secret]"}
    assert set(edited["changes"]) == {"sealed", "last_updated"}
    assert "protanopia" not in str(entries(db)) and "tritanopia" not in str(entries(db))
    assert edited["row_key"] == {"id": created["row_key"]["id"]}
    assert (edited["actor_role"], edited["actor_api_key_id"]) == ("anon", None)
    assert edited["request_path"] == "/rpc/save_accessibility_preferences"
    assert edited["session_id"] == "sess_audit_1"


def test_a_request_with_a_key_records_the_key_id(api, db, make_key):
    key = make_key("admin")
    (key_id,) = db.execute("select max(id) from app.api_keys").fetchone()
    assert api.post("/api/brand-engagement", {"sessionId": "s9", "scrollDepthPercentage": 10}, api_key=key).status == 201
    (entry,) = entries(db, "brand_engagement")
    assert (entry["actor_role"], entry["actor_api_key_id"]) == ("admin", key_id)


def test_an_operator_change_of_rules_and_settings_is_recorded_under_its_database_role(db):
    db.execute("update app.rate_limit_rules set max_requests = 7 where action = 'leads' and scope = 'ip'")
    db.execute("update app.retention_rules set keep_for = '30 days' where kind = 'accessibility_preferences'")
    db.execute("update app.settings set value = 'x@example.org' where key = 'team_notify_email'")
    rules, retention, settings = entries(db, "rate_limit_rules"), entries(db, "retention_rules"), entries(db, "settings")
    assert rules[-1]["changes"] == {"max_requests": {"old": 5, "new": 7}}
    assert rules[-1]["row_key"] == {"action": "leads", "scope": "ip"} and rules[-1]["actor_role"] == "postgres"
    assert retention[-1]["changes"]["keep_for"] == {"old": "90 days", "new": "30 days"}
    assert settings[-1]["changes"] == {"value": {"old": "", "new": "x@example.org"}}


def test_secrets_are_recorded_as_changed_never_by_value(db, make_key):
    make_key("reader")
    db.execute("update app.settings set value = 'new-pepper-value' where key = 'hash_pepper'")
    (key_entry,) = entries(db, "api_keys")
    assert key_entry["changes"]["key_hash"] == {"new": "[secret]"}
    (pepper_entry,) = [e for e in entries(db, "settings") if e["row_key"] == {"key": "hash_pepper"}]
    assert pepper_entry["changes"]["value"] == {"old": "[secret]", "new": "[secret]"}
    assert "new-pepper-value" not in str(entries(db))


@pytest.mark.parametrize(
    "statement",
    ["update app.brand_audit set actor_role = 'x'", "delete from app.brand_audit", "truncate app.brand_audit"],
)
def test_the_log_is_append_only_even_for_the_owner(api, db, statement):
    api.post("/api/accessibility-preferences", PREFS)
    with pytest.raises(psycopg.Error) as err:
        db.execute(statement)
    assert err.value.diag.sqlstate == "CHA01"


def test_erasure_replaces_the_persons_values_with_the_erasure_marker(api, db):
    lead = {"firstName": "Eve", "lastName": "E", "email": "eve@example.org", "gdprConsent": True, "sessionId": "sess_eve"}
    assert api.post("/api/leads", lead).status == 201
    assert api.post("/api/accessibility-preferences", {**PREFS, "sessionId": "sess_eve"}).status == 201
    assert api.post("/api/accessibility-preferences", PREFS).status == 201  # someone else's
    db.execute("select app_logic.erase_personal_data('eve@example.org', 'test')")
    mine = [e for e in entries(db, "accessibility_preferences") if e["session_id"] is None]
    assert {e["operation"] for e in mine} == {"INSERT", "DELETE"}
    for entry in mine:
        values = [v for change in entry["changes"].values() for v in change.values()]
        assert values and set(values) == {"[erased]"}
    assert "sess_eve" not in str(entries(db))
    assert {e["session_id"] for e in entries(db, "accessibility_preferences") if e["session_id"]} == {"sess_audit_1"}


def test_retention_removes_entries_older_than_its_own_rule(api, db):
    api.post("/api/accessibility-preferences", PREFS)
    db.execute("update app.retention_rules set keep_for = '1 day' where kind = 'brand_audit'")
    assert len(entries(db)) == 2
    db.execute("set app.frozen_now = '2099-01-01'")
    (row,) = db.execute("select kind, rows_removed, error from app_logic.apply_retention('brand_audit')").fetchall()
    assert row == ("brand_audit", 2, None)
    assert entries(db) == []


def test_only_admin_keys_read_the_log_through_the_api(api, db, make_key):
    api.post("/api/accessibility-preferences", PREFS)
    assert api.get("/api/brand-audit").status == 401
    assert api.get("/api/brand-audit", api_key=make_key("reader")).status == 403
    answer = api.get("/api/brand-audit", api_key=make_key("admin"), where="t.\"tableName\" = 'accessibility_preferences'")
    assert answer.status == 200
    (row,) = answer.json()
    assert row["operation"] == "INSERT" and row["actorRole"] == "anon" and "changes" in row


def test_attaching_a_new_table_is_one_line(db):
    db.execute("create table app.heatmaps_probe (id bigint primary key, clicks integer)")
    db.execute("select app_logic.attach_brand_audit('app.heatmaps_probe')")
    db.execute("insert into app.heatmaps_probe values (1, 3)")
    db.execute("update app.heatmaps_probe set clicks = 4")
    db.execute("delete from app.heatmaps_probe")
    assert [(e["operation"], e["changes"]) for e in entries(db, "heatmaps_probe")] == [
        ("INSERT", {"id": {"new": 1}, "clicks": {"new": 3}}),
        ("UPDATE", {"clicks": {"old": 3, "new": 4}}),
        ("DELETE", {"id": {"old": 1}, "clicks": {"old": 4}}),
    ]


def test_a_table_without_a_primary_key_cannot_be_attached(db):
    db.execute("create table app.no_key_probe (x integer)")
    with pytest.raises(psycopg.Error) as err:
        db.execute("select app_logic.attach_brand_audit('app.no_key_probe')")
    assert err.value.diag.sqlstate == "CHX04"
