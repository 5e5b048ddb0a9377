"""Backups: `invoke db.backup` writes a verified pg_dump archive, `invoke db.restore` puts it
into a database of the operator's choosing, and a restore drill gets the same data back with
the consent audit still verifying.
"""

from __future__ import annotations

import stat

import psycopg
import pytest
from psycopg import sql

from chorus_db import config
from chorus_db.backup import (
    BackupError, app_tables, backup, ensure_roles_sql, restore, row_counts, target_url, verify_dump,
)
from chorus_db.build import build
from chorus_db.gdpr import verify_chain
from tests.support.invoke_cli import run_invoke


@pytest.fixture
def populated(db):
    """Some rows in every kind of table, a page-view partition, and consent chains."""
    db.execute(
        "create table app.page_views_t2031_03 partition of app.page_views"
        " for values from ('2031-03-01 00:00:00+00') to ('2031-04-01 00:00:00+00')"
    )
    db.execute("alter table app.page_views_t2031_03 enable row level security")
    for i in range(3):
        lead_id = db.execute(
            "insert into app.leads (first_name, last_name, email, gdpr_consent, session_id)"
            " values ('F', 'L', %s, true, %s) returning id",
            (f"drill{i}@example.com", f"drill-{i}"),
        ).fetchone()[0]
        db.execute("insert into app.lead_interactions (lead_id, kind) values (%s, 'submission')", (lead_id,))
        db.execute("insert into app.accessibility_preferences (session_id, lead_id, accessibility_theme) values (%s, %s, 'default')",
                   (f"drill-{i}", lead_id))
        db.execute("insert into app.brand_engagement (session_id) values (%s)", (f"drill-{i}",))
        db.execute("insert into app.page_views (session_id, path, viewed_at) values (%s, '/', '2031-03-05')", (f"drill-{i}",))
        for kind in ("gdpr", "marketing"):
            db.execute(
                "select app_logic.append_consent(app_logic.person_pseudonym(%s), 'consent', %s, true, 'drill')",
                (f"drill{i}@example.com", kind),
            )
    db.execute("insert into app.rate_limit_counters (action, scope, subject, hits, expires_at)"
               " values ('leads', 'ip', '\\x01', array[now()], now() + interval '10 minutes')")
    db.execute("select count(*) from app_logic.apply_retention()")
    return db


@pytest.fixture
def scratch_names(pg_cluster):
    names: list[str] = []
    yield names
    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def test_restore_drill_gives_the_same_row_counts_and_a_verifying_audit(populated, db_url, tmp_path, scratch_names):
    dump = tmp_path / "drill.dump"
    made = run_invoke("db.backup", "--out", str(dump), database_url=db_url)
    assert made.returncode == 0, made.stderr
    assert "app tables verified" in made.stdout
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600

    target = config.DB_NAME + "_drill_restore"
    scratch_names.append(target)
    restored = run_invoke("db.restore", str(dump), "--target", target, database_url=db_url)
    assert restored.returncode == 0, restored.stderr
    restored_url = target_url(db_url, target)

    before = row_counts(db_url)
    assert before["leads"] == 3 and before["consent_audit"] == 6 and before["page_views"] == 3
    assert row_counts(restored_url) == before
    report = verify_chain(restored_url)
    assert report.intact and (report.rows, report.subjects) == (6, 3)
    # The pepper came along: pseudonyms computed after the restore still find the chains.
    with psycopg.connect(restored_url) as conn:
        assert conn.execute(
            "select count(*) from app.consent_audit where subject = app_logic.person_pseudonym('DRILL0@example.com')"
        ).fetchone()[0] == 2


def test_restore_refuses_a_non_empty_database_unless_told_to_replace_it(populated, db_url, tmp_path, scratch_names):
    dump = backup(db_url, tmp_path / "x.dump").path
    target = config.DB_NAME + "_drill_busy"
    scratch_names.append(target)
    restore(dump, target_url(db_url, target))
    with psycopg.connect(target_url(db_url, target), autocommit=True) as conn:
        conn.execute("delete from app.leads")

    refused = run_invoke("db.restore", str(dump), "--target", target, database_url=db_url)
    assert refused.returncode == 1
    assert f"database {target} exists and is not empty" in refused.stderr
    assert row_counts(target_url(db_url, target))["leads"] == 0

    replaced = run_invoke("db.restore", str(dump), "--target", target, "--yes", database_url=db_url)
    assert replaced.returncode == 0, replaced.stderr
    assert row_counts(target_url(db_url, target))["leads"] == 3


def test_a_dump_that_lacks_an_app_table_or_cannot_be_read_is_not_verified(populated, db_url, tmp_path):
    dump = backup(db_url, tmp_path / "ok.dump").path
    tables = app_tables(db_url)
    assert verify_dump(dump, tables)
    with pytest.raises(BackupError, match="lacks app tables: invoices"):
        verify_dump(dump, {**tables, "invoices": True})
    broken = tmp_path / "broken.dump"
    broken.write_bytes(dump.read_bytes()[:200])
    with pytest.raises(BackupError, match="not a readable pg_dump archive"):
        verify_dump(broken, tables)


def test_a_dump_of_pg_crons_database_restores_elsewhere_without_pg_cron(pg_cluster, tmp_path, scratch_names):
    cron_url = pg_cluster.url(config.DB_NAME)
    build(cron_url, log=lambda _m: None)
    dump = backup(cron_url, tmp_path / "cron.dump").path
    target = config.DB_NAME + "_drill_nocron"
    scratch_names.append(target)
    result = restore(dump, target_url(cron_url, target))
    assert "EXTENSION - pg_cron" in result.skipped
    assert any(s.startswith("TABLE DATA cron job") for s in result.skipped)
    assert row_counts(target_url(cron_url, target)) == row_counts(cron_url)


def test_restore_creates_the_roles_with_the_builds_own_statements_and_may_run_them_again(db):
    statements = ensure_roles_sql()
    for role in ("authenticator", "anon", "reader", "admin"):
        assert f"rolname = '{role}'" in statements
    assert "grant anon, reader, admin to authenticator" in statements
    db.execute(statements)
    db.execute(statements)
    assert db.execute(
        "select count(*) from pg_auth_members as m join pg_roles as r on r.oid = m.roleid"
        " where m.member = 'authenticator'::regrole and r.rolname in ('anon', 'reader', 'admin')"
    ).fetchone()[0] == 3


def test_backup_and_restore_report_their_progress_step_by_step_up_to_the_total(populated, db_url, tmp_path, scratch_names):
    steps: dict[str, list[tuple[int, int, str]]] = {"backup": [], "restore": []}
    dump = backup(db_url, tmp_path / "steps.dump", on_step=lambda *s: steps["backup"].append(s)).path
    target = config.DB_NAME + "_drill_steps"
    scratch_names.append(target)
    restore(dump, target_url(db_url, target), on_step=lambda *s: steps["restore"].append(s))
    for kind, seen in steps.items():
        assert seen, f"{kind} reported no step"
        (total,) = {t for _, t, _ in seen}
        assert [d for d, _, _ in seen] == [min(n, total) for n in range(1, len(seen) + 1)], kind
        assert seen[-1][0] == total, f"{kind} ends at its total"
    assert any(what.endswith("leads") for _, _, what in steps["backup"]), "a step names the table being dumped"
