"""db.build: atomic, idempotent, refuses edited schema files, removes what left the source."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from chorus_db import config, testing
from chorus_db.build import BuildError, Source, build, status
from chorus_db.drift import drift, schema_dump


@pytest.fixture
def empty_url(pg_cluster, request):
    name = f"chorus_build_{request.node.name[:30].lower()}"
    url = testing.recreate_database(pg_cluster, name)
    yield url
    testing.recreate_database(pg_cluster, name)  # leave an empty database behind, cheaply


@pytest.fixture
def source_copy(tmp_path) -> Source:
    root = tmp_path / "db"
    shutil.copytree(config.DB_DIR, root)
    return Source(root)


def quiet(_msg: str) -> None:
    pass


def test_second_build_changes_nothing_and_the_dump_is_identical(empty_url):
    first = build(empty_url, log=quiet)
    assert first.changed and first.applied_migrations
    before = schema_dump(empty_url)
    messages: list[str] = []
    second = build(empty_url, log=messages.append)
    assert not second.changed
    assert any("nothing to do" in m for m in messages)
    assert schema_dump(empty_url) == before


def test_a_broken_function_file_names_file_and_line_and_changes_nothing(empty_url, source_copy):
    build(empty_url, source=source_copy, log=quiet)
    before = schema_dump(empty_url)
    broken = source_copy.root / "functions" / "020-leads.sql"
    text = broken.read_text()
    broken.write_text(text + "\n\ncreate function api.broken() returns int\nlanguage sql as $$ select nope $$;\n")
    with pytest.raises(BuildError) as err:
        build(empty_url, source=source_copy, log=quiet)
    line = text.count("\n") + 4  # the line holding "select nope"
    assert f"020-leads.sql:{line}" in str(err.value)
    assert "nope" in str(err.value)
    assert schema_dump(empty_url) == before


def test_an_edited_applied_schema_file_is_refused_by_name(empty_url, source_copy):
    build(empty_url, source=source_copy, log=quiet)
    edited = source_copy.root / "schema" / "020-leads.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(BuildError, match=r"db/schema/020-leads\.sql was applied .* has changed"):
        build(empty_url, source=source_copy, log=quiet)
    assert status(empty_url, source_copy).changed == ["020-leads.sql"]


def test_a_new_schema_file_numbered_below_an_applied_one_is_refused(empty_url, source_copy):
    build(empty_url, source=source_copy, log=quiet)
    (source_copy.root / "schema" / "001-late.sql").write_text("-- late\ncreate table app.late (id int);\n")
    with pytest.raises(BuildError, match="sorts before"):
        build(empty_url, source=source_copy, log=quiet)


def test_a_function_that_left_the_source_leaves_the_database(empty_url, source_copy):
    extra = source_copy.root / "functions" / "990-extra.sql"
    extra.write_text("-- temporary\ncreate function api.extra_thing() returns int language sql immutable as $$ select 1 $$;\n")
    build(empty_url, source=source_copy, log=quiet)
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("select to_regproc('api.extra_thing')").fetchone()[0] is not None
    extra.unlink()
    result = build(empty_url, source=source_copy, log=quiet)
    assert result.declarative_applied
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("select to_regproc('api.extra_thing')").fetchone()[0] is None


def test_drift_is_empty_after_a_build_and_shows_a_hand_made_change(empty_url):
    build(empty_url, log=quiet)
    assert drift(empty_url) == ""
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("create index leads_by_hand_idx on app.leads (company_name)")
    diff = drift(empty_url)
    assert "leads_by_hand_idx" in diff


def test_a_team_address_set_is_data_not_drift_and_a_rebuild_keeps_its_trigger_enabled(empty_url):
    # The team-notification trigger is enabled only while a team address or webhook is set
    # (db/functions/300-outbox.sql); a fresh build has none, so its dump says DISABLE TRIGGER.
    build(empty_url, log=quiet)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("update app.settings set value = 'team@chorus.example' where key = 'team_notify_email'")
    assert drift(empty_url) == ""
    build(empty_url, log=quiet, force=True)
    with psycopg.connect(empty_url) as conn:
        (state,) = conn.execute(
            "select tgenabled from pg_trigger where tgrelid = 'app.leads'::regclass and tgname = 'leads_notify_team'"
        ).fetchone()
    assert state == "O"
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("alter table app.leads disable trigger leads_session")
    assert "DISABLE TRIGGER leads_session" in drift(empty_url)


def test_a_changed_spam_rule_is_data_not_drift_and_a_rebuild_compiles_it_again(empty_url):
    # app_logic.spam_rule is compiled from app.spam_rules by its trigger (db/functions/340-spam.sql).
    build(empty_url, log=quiet)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("update app.spam_rules set honeypot_field = 'homepage', proof_of_work = true where action = 'leads'")
    assert drift(empty_url) == ""
    build(empty_url, log=quiet, force=True)
    with psycopg.connect(empty_url) as conn:
        (rule,) = conn.execute("select app_logic.spam_rule('leads')::jsonb").fetchone()
    assert (rule["honeypot_field"], rule["proof_of_work"]) == ("homepage", True)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("create or replace function app_logic.spam_screen_needed(p_action text, p_body jsonb) returns boolean"
                     " language sql stable as $$ select false $$")
    assert "spam_screen_needed" in drift(empty_url)


def test_two_rule_changes_at_once_both_commit_and_both_reach_the_compiled_limits(empty_url):
    # Two transactions replacing one compiled function at once failed "tuple concurrently
    # updated"; app_logic.tg_compile makes them take turns (db/functions/000-foundation.sql).
    build(empty_url, log=quiet)
    update = "update app.rate_limit_rules set max_requests = %s where action = 'leads' and scope = %s"
    errors: list[BaseException] = []
    with psycopg.connect(empty_url) as one, psycopg.connect(empty_url) as two:
        one.execute(update, [701, "ip"])

        def other() -> None:
            try:
                two.execute(update, [702, "email"])
                two.commit()
            except psycopg.Error as exc:  # the failure this test is about
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the second compile should wait for the first transaction"
        one.commit()
        thread.join(30)
    assert not thread.is_alive() and errors == []
    with psycopg.connect(empty_url) as conn:
        limits = conn.execute("select app_logic.rate_limit_max('leads', 'ip'), app_logic.rate_limit_max('leads', 'email')")
        assert limits.fetchone() == ("701", "702")


def test_a_rule_change_under_repeatable_read_is_refused_and_changes_nothing(empty_url):
    # Its compile would read the transaction's first snapshot (db/functions/000-foundation.sql).
    build(empty_url, log=quiet)
    with psycopg.connect(empty_url) as conn:
        conn.execute("set transaction isolation level repeatable read")
        with pytest.raises(psycopg.Error, match="change app.rate_limit_rules under READ COMMITTED"):
            conn.execute("update app.rate_limit_rules set max_requests = 703 where action = 'leads' and scope = 'ip'")
    with psycopg.connect(empty_url) as conn:
        row = conn.execute(
            "select r.max_requests, app_logic.rate_limit_max('leads', 'ip') from app.rate_limit_rules as r"
            " where r.action = 'leads' and r.scope = 'ip'"
        ).fetchone()
    assert row[0] != 703 and row[1] == str(row[0])


def test_a_consent_text_added_is_data_not_drift_but_a_changed_lookup_is(empty_url):
    # app_logic.consent_text_at is compiled from app.consent_texts by a trigger (db/functions/030-consent.sql).
    build(empty_url, log=quiet)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(
            "insert into app.consent_texts (version, body, sha256, valid_from)"
            " values ('2027-01', 'New.', sha256(convert_to('New.', 'UTF8')), '2027-01-01T00:00:00Z')"
        )
        assert conn.execute("select app_logic.consent_text_at('2027-02-01T00:00:00Z')").fetchone()[0] == "2027-01"
    assert drift(empty_url) == ""
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(
            "create or replace function app_logic.consent_text_at(p_at timestamptz, p_extra integer) returns text"
            " language sql stable as $$ select null::text $$"
        )
    assert "consent_text_at(p_at timestamp with time zone, p_extra integer)" in drift(empty_url)


def test_status_reports_pending_files_before_the_first_build(empty_url):
    st = status(empty_url)
    assert st.pending == [p.name for p in Source().schema_files]
    assert not st.declarative_in_sync


def test_a_changed_rate_limit_is_data_not_drift_and_a_rebuild_compiles_it_again(empty_url):
    # The limits are compiled from app.rate_limit_rules into app_logic.rate_limit_max/window
    # (db/functions/040-rate-limits.sql): an operator's UPDATE changes those functions' bodies.
    build(empty_url, log=quiet)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("update app.rate_limit_rules set max_requests = 9 where action = 'leads' and scope = 'ip'")
    assert drift(empty_url) == ""
    build(empty_url, log=quiet, force=True)
    with psycopg.connect(empty_url) as conn:
        (compiled,) = conn.execute("select app_logic.rate_limit_max('leads', 'ip')").fetchone()
    assert compiled == "9"
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("create or replace function app_logic.rate_limit_max(p_action text, p_scope text) returns text"
                     " language sql stable as $$ select '7' $$")
    assert "rate_limit_max" in drift(empty_url)  # a hand-made body is still drift


def test_db_status_exits_0_when_in_sync_and_1_naming_the_drift(empty_url):
    from tests.support.invoke_cli import run_invoke

    build(empty_url, log=quiet)
    clean = run_invoke("db.status", database_url=empty_url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "pending schema files: none" in clean.stdout
    assert "drift: none" in clean.stdout
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("alter table app.leads add column shoe_size integer")
    drifted = run_invoke("db.status", database_url=empty_url)
    assert drifted.returncode == 1
    assert "shoe_size" in drifted.stdout
    assert "does not match the source" in drifted.stderr


def test_db_build_task_twice_reports_nothing_to_do(empty_url):
    from tests.support.invoke_cli import run_invoke

    first = run_invoke("db.build", database_url=empty_url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "applying db/schema/000-foundation.sql" in first.stdout
    second = run_invoke("db.build", database_url=empty_url)
    assert second.returncode == 0
    assert "nothing to do" in second.stdout
