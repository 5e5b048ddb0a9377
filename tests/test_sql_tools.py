"""The field tools of `invoke lint` find the problems they are there for (Squawk: lock safety of
migrations; pgspot: SECURITY DEFINER and object-hijacking hazards), the tree passes them, and
what pgspot's left-out PS004 would guard is checked on a live build instead."""

from __future__ import annotations

import psycopg
import pytest

from chorus_db import build as build_module
from chorus_db import config, sql_tools, testing


def test_the_tree_passes_squawk_and_pgspot():
    assert sql_tools.run_squawk() == []
    assert sql_tools.run_pgspot() == []


def test_squawk_finds_an_upgrade_that_would_lock_a_populated_table(tmp_path):
    migration = tmp_path / "130-risky.sql"
    migration.write_text(
        "-- A migration as a newcomer might write it.\n"
        "alter table app.leads add constraint leads_email_short check (char_length(email) < 200);\n"
        "alter table app.leads alter column company_name type varchar(300);\n"
    )
    findings = "\n".join(sql_tools.run_squawk([migration]))
    assert "constraint-missing-not-valid" in findings
    assert "changing-column-type" in findings


def test_pgspot_finds_a_security_definer_without_search_path_and_a_hijackable_create(tmp_path):
    functions = tmp_path / "130-risky.sql"
    functions.write_text(
        "create or replace function app_logic.risky() returns int language sql security definer as $$ select 1 $$;\n"
        "create table if not exists app.risky (id int);\n"
    )
    findings = "\n".join(sql_tools.run_pgspot([functions]))
    assert "PS003" in findings  # SECURITY DEFINER without search_path
    assert "PS002" in findings  # CREATE OR REPLACE of a function someone else may own
    assert "PS012" in findings  # CREATE TABLE IF NOT EXISTS adopts someone else's table


def test_pgspot_names_each_finding_by_its_file_and_exempts_only_the_file_named_for_a_code(tmp_path):
    """One pgspot process checks many files: each finding must still carry its own file, and a
    per-file exemption (PGSPOT_FILE_IGNORED) must not reach another file of the same run."""
    exempt = config.ROOT / "db" / "schema" / "000-foundation.sql"
    assert sql_tools.PGSPOT_FILE_IGNORED[str(exempt.relative_to(config.ROOT))] == ("PS010",)
    copy = tmp_path / "copy-of-000.sql"
    copy.write_text(exempt.read_text())
    risky = tmp_path / "130-risky.sql"
    risky.write_text("create or replace function app_logic.risky() returns int language sql security definer as $$ select 1 $$;\n")
    findings = sql_tools.run_pgspot([exempt, risky, *sql_tools.sql_files()[1:4], copy])
    assert {f.split(": ", 1)[0] for f in findings} == {str(risky), str(copy)}
    assert any(f.startswith(f"{copy}: PS010: ") for f in findings)
    assert any(f.startswith(f"{risky}: PS003: ") for f in findings)


def test_no_other_role_may_create_objects_in_a_schema_on_a_security_definer_search_path(template_url):
    """What makes `set search_path = pg_catalog, app, pg_temp` safe (pgspot's PS004, left out)."""
    with psycopg.connect(template_url, autocommit=True) as conn:
        schemas = {
            schema.strip()
            for (config,) in conn.execute(
                """
                select c from pg_proc as p cross join unnest(p.proconfig) as c
                where p.prosecdef and c like 'search\\_path=%'
                """
            )
            for schema in config.split("=", 1)[1].split(",")
        } - {"pg_temp"}
        assert schemas >= {"pg_catalog", "app"}
        roles = ["public", "anon", "reader", "admin", "authenticator"]
        writable = conn.execute(
            """
            select r, s from unnest(%s::text[]) as r, unnest(%s::text[]) as s
            where has_schema_privilege(r, s, 'create')
            """,
            (roles, sorted(schemas)),
        ).fetchall()
    assert writable == []


def test_the_build_refuses_a_schema_another_role_made(pg_cluster):
    url = testing.recreate_database(pg_cluster, "chorus_foreign_schema")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("drop role if exists chorus_squatter")
            conn.execute("create role chorus_squatter")
            conn.execute("create schema app authorization chorus_squatter")
        with pytest.raises(build_module.BuildError, match=r"^schema app is owned by role chorus_squatter, not by postgres"):
            build_module.build(url, log=lambda _m: None)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("select to_regclass('app.leads')").fetchone()[0] is None, "nothing was built"
    finally:
        testing.recreate_database(pg_cluster, "chorus_foreign_schema")
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("drop database if exists chorus_foreign_schema with (force)")
            conn.execute("drop role if exists chorus_squatter")
