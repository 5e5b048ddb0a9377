"""Field-level encryption (issue 14; db/functions/045-field-encryption.sql): the fields of
accessibility preferences and brand engagement that profile a person are stored only encrypted,
under a key file outside the database that no web role can read by any route; dumps hold neither
the key nor the fields in clear; analytics, export and erasure answer as before; db.rotate-key
re-encrypts in committed batches and resumes."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chorus_db import config, fieldkeys, testing
from tests.conftest import AUTHENTICATOR_PASSWORD

PREFERENCES = "/api/accessibility-preferences"
ENGAGEMENT = "/api/brand-engagement"
WEB_ROLES = ("anon", "reader", "admin")
PREFERENCE_FIELDS = ("accessibility_theme", "dark_mode_preference", "reduced_motion", "high_contrast", "font_size_preference")
ENGAGEMENT_FIELDS = ("logo_interactions", "time_spent_per_section", "cta_clicks", "accessibility_features_used",
                     "keyboard_navigation_used")


def key_hexes(path: Path) -> list[str]:
    return [m[2].lower() for line in path.read_text().splitlines() if (m := fieldkeys.LINE.match(line))]


def marker() -> str:
    return f"marker{secrets.token_hex(6)}"


def post_profile(api, session: str, mark: str) -> None:
    assert api.post(PREFERENCES, {"sessionId": session, "accessibilityTheme": "protanopia", "reducedMotion": True,
                                  "highContrast": True, "fontSizePreference": "x-large"}).status == 201
    assert api.post(ENGAGEMENT, {
        "sessionId": session, "scrollDepthPercentage": 70, "keyboardNavigationUsed": True,
        "ctaClicks": [{"id": mark}, "demo"], "timeSpentPerSection": {mark: 1200},
        "accessibilityFeaturesUsed": ["screen-reader-" + mark],
        "logoInteractions": [{"timestamp": 1767225600000, "theme": "protanopia", "duration": 10}],
    }).status == 201


@pytest.fixture
def own_key_file(pg_cluster, db, tmp_path_factory):
    """A key file of this test's own, pinned on this test database's field_keys() as a server
    with that file would be built: rotations and removals leave the shared test key alone."""
    directory = Path(testing.TEST_PGDATA).parent
    path = directory / f"test-{secrets.token_hex(4)}.field-keys"
    fieldkeys.new_key_file(path, pg_cluster.os_user)
    db.execute(f"alter function app_logic.field_keys() set chorus.field_key_file = '{path}'")
    yield path
    path.unlink(missing_ok=True)


def pin(db, path: str) -> None:
    db.execute(f"alter function app_logic.field_keys() set chorus.field_key_file = '{path}'")


# -- what is stored ------------------------------------------------------------------------------


def test_the_profiling_fields_are_stored_only_encrypted_and_open_with_the_key(api, db):
    mark = marker()
    post_profile(api, "sess-enc", mark)
    clear = db.execute(
        f"select {', '.join(PREFERENCE_FIELDS)}, key_version, sealed from app.accessibility_preferences"
    ).fetchone()
    assert clear[:-2] == (None,) * len(PREFERENCE_FIELDS) and clear[-2] == 1
    assert b"protanopia" not in bytes(clear[-1])
    engagement = db.execute(f"select {', '.join(ENGAGEMENT_FIELDS)}, key_version, sealed, scroll_depth_percentage"
                            " from app.brand_engagement").fetchone()
    assert engagement[:5] == (None,) * 5 and engagement[5] == 1 and mark.encode() not in bytes(engagement[6])
    assert engagement[7] == 70, "the scroll depth stays in clear: the analytics average it"
    opened = db.execute("select accessibility_theme, reduced_motion, high_contrast, font_size_preference"
                        " from app_logic.accessibility_preferences_opened").fetchone()
    assert opened == ("protanopia", True, True, "x-large")
    (clicks, features) = db.execute("select cta_clicks, accessibility_features_used from app_logic.brand_engagement_opened").fetchone()
    assert clicks == [{"id": mark}, "demo"] and features == ["screen-reader-" + mark]


def test_a_later_post_keeps_the_sealed_values_it_leaves_out(api, db):
    assert api.post(PREFERENCES, {"sessionId": "s", "accessibilityTheme": "default", "highContrast": True}).status == 201
    assert api.post(PREFERENCES, {"sessionId": "s", "accessibilityTheme": "tritanopia"}).status == 200
    row = db.execute("select accessibility_theme, high_contrast, dark_mode_preference from app_logic.accessibility_preferences_opened").fetchone()
    assert row == ("tritanopia", True, True)


def test_every_ciphertext_is_different_even_for_equal_values(api, db):
    for n in range(3):
        assert api.post(PREFERENCES, {"sessionId": f"same-{n}", "accessibilityTheme": "protanopia"}).status == 201
    sealed = [bytes(r[0]) for r in db.execute("select sealed from app.accessibility_preferences").fetchall()]
    assert len(set(sealed)) == 3, "no deterministic encryption: equal themes must not be countable"


def test_an_altered_ciphertext_is_refused_not_decrypted_to_garbage(api, db):
    assert api.post(PREFERENCES, {"sessionId": "t", "accessibilityTheme": "protanopia"}).status == 201
    db.execute("alter table app.accessibility_preferences disable trigger seal_fields")
    db.execute("update app.accessibility_preferences set sealed = overlay(sealed placing '\\x00'::bytea from 60 for 1)")
    db.execute("alter table app.accessibility_preferences enable trigger seal_fields")
    with pytest.raises(psycopg.Error) as refused:
        db.execute("select * from app_logic.accessibility_preferences_opened").fetchall()
    assert "Wrong key or corrupt data" in str(refused.value)


# -- the key: no web role reads it by any route ---------------------------------------------------


def as_web_role(db_url: str, role: str | None):
    conn = psycopg.connect(make_conninfo(db_url, user="authenticator", password=AUTHENTICATOR_PASSWORD), autocommit=True)
    if role:
        conn.execute(f"set role {role}")
    return conn


@pytest.mark.parametrize("role", [*WEB_ROLES, None])
def test_no_web_role_reads_the_key_by_any_route(pg_cluster, db_url, db, api, role):
    post_profile(api, "sess-roles", marker())
    keys = key_hexes(pg_cluster.key_file)
    path = str(pg_cluster.key_file)
    refused_routes = [
        "select app_logic.field_keys()",
        f"select pg_read_file('{path}')",
        f"select pg_read_file('{path}', 0, 1000, true)",
        f"select pg_read_binary_file('{path}')",
        f"select pg_stat_file('{path}')",
        f"select pg_ls_dir('{Path(path).parent}')",
        "select app_logic.seal('{}'::jsonb)",
        "select app_logic.unseal(sealed, key_version) from app.accessibility_preferences",
        "select app_logic.reseal_batch('brand_engagement', 10)",
        "select * from app_logic.field_key_status()",
        "select * from app_logic.exposed_session_themes()",
        "select * from app_logic.accessibility_preferences_opened",
        f"create temporary table k (line text); copy k from '{path}'",
        f"select lo_import('{path}')",
    ]
    seen = []
    with as_web_role(db_url, role) as conn:
        for statement in refused_routes:
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(statement).fetchall()
            assert refused.value.diag.sqlstate in ("42501", "3F000", "42P01"), (statement, refused.value)
            seen.append(str(refused.value))
        # What a web role can read: every setting, the functions' settings, role and database settings.
        (settings,) = conn.execute("select string_agg(name || '=' || coalesce(setting, ''), ' ') from pg_settings").fetchone()
        (own,) = conn.execute("select coalesce(current_setting('chorus.field_key_file', true), '')").fetchone()
        (proconfig,) = conn.execute("select coalesce(string_agg(array_to_string(proconfig, ' '), ' '), '') from pg_proc").fetchone()
        (dbroles,) = conn.execute(
            "select coalesce(string_agg(array_to_string(setconfig, ' '), ' '), '') from pg_db_role_setting").fetchone()
        (sources,) = conn.execute("select coalesce(string_agg(prosrc, ' '), '') from pg_proc").fetchone()
        readable = " ".join([settings, own, proconfig, dbroles, sources, *seen])
    assert own == path, "the setting names a path, which is no secret"
    assert keys and not any(k in readable.lower() for k in keys)


@pytest.mark.parametrize("role", ["reader", "admin"])
def test_the_analytics_readers_web_roles_may_call_return_no_key_and_no_lead(pg_cluster, db_url, api, role):
    post_profile(api, "sess-ana", marker())
    with as_web_role(db_url, role) as conn:
        rows = conn.execute("select * from app_logic.opened_preference_themes('-infinity', 'infinity')").fetchall()
        counts = conn.execute("select * from app_logic.opened_engagement_counts('-infinity', 'infinity')").fetchall()
    assert [r[0] for r in rows] == ["protanopia"] and [(r[1], r[2]) for r in counts] == [(70, 2)]
    assert not any(k in str(rows + counts) for k in key_hexes(pg_cluster.key_file))


def test_a_key_file_path_a_session_sets_is_not_the_one_read(db, api, db_url):
    with as_web_role(db_url, "anon") as conn:
        conn.execute("set chorus.field_key_file = '/etc/passwd'")
        (answer,) = conn.execute(
            "select api.save_accessibility_preferences('{\"sessionId\": \"x\", \"accessibilityTheme\": \"tritanopia\"}')"
        ).fetchone()
    assert answer == {"status": "created"}
    assert db.execute("select accessibility_theme from app_logic.accessibility_preferences_opened").fetchone() == ("tritanopia",)


# -- a missing key: one sentence, nothing stored ----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, r"^The field-encryption key file /\S+ is missing or unreadable: restore it \(mode 600, owned by the server's user\) from where the keys are kept\.$"),
        ("", r"^The field-encryption key file /\S+ holds no key: add a line \"1 <64 hex digits>\" \(invoke db.rotate-key --new-key\)\.$"),
        ("1 " + "ab" * 32 + "\nsecret-looking garbage line\n", r"^Line 2 of the field-encryption key file /\S+ is not "),
    ],
)
def test_without_a_usable_key_file_a_write_is_a_503_with_one_sentence_and_stores_nothing(pg_cluster, db, api, content, expected):
    path = Path(testing.TEST_PGDATA).parent / f"test-{secrets.token_hex(4)}.field-keys"
    if content is not None:
        path.write_text(content)
        if pg_cluster.os_user:
            shutil.chown(path, user=pg_cluster.os_user)
    pin(db, str(path))
    try:
        for endpoint, body in ((PREFERENCES, {"sessionId": "m", "accessibilityTheme": "default"}), (ENGAGEMENT, {"sessionId": "m"})):
            answer = api.post(endpoint, body)
            assert answer.status == 503, answer.body
            assert re.match(expected, answer.json()["message"]), answer.json()["message"]
            assert "garbage" not in answer.json()["message"], "a key file's line is never quoted"
        assert db.execute("select (select count(*) from app.accessibility_preferences) + (select count(*) from app.brand_engagement)").fetchone() == (0,)
    finally:
        path.unlink(missing_ok=True)


# The key file's parser before it was made cheaper (bounded repetitions in its regular expression
# cost about 600k instructions a line, most of what sealing a row cost), as the changes to
# field_keys() today's source -> the source before: field_keys() must read every file exactly as
# this did, keys and refusals alike.
PARSER_BEFORE = (
    ("FUNCTION app_logic.field_keys()", "FUNCTION pg_temp.field_keys_before()"),
    ("string_to_array(v_text, E'\\n')", "regexp_split_to_array(v_text, '\\n')"),
    ("regexp_match(v_line, '^\\s*([0-9]+)\\s+([0-9a-fA-F]+)\\s*$')",
     "regexp_match(v_line, '^\\s*([0-9]{1,4})\\s+([0-9a-fA-F]{64})\\s*$')"),
    ("v_match is null or length(v_match[1]) > 4 or length(v_match[2]) <> 64 or ltrim(v_match[1], '0') = ''",
     "v_match is null or v_match[1]::integer not between 1 and 32767"),
)


def create_parser_before(db) -> None:
    (source,) = db.execute("select pg_get_functiondef('app_logic.field_keys()'::regprocedure)").fetchone()
    for now, before in PARSER_BEFORE:
        assert now in source, f"field_keys() changed: {now!r} is not in it; update PARSER_BEFORE"
        source = source.replace(now, before)
    db.execute(source)


HEX = "0123456789abcdef" * 4
KEY_FILES = [
    f"1 {HEX}\n", f"1 {HEX}", f"# keys\n1 {HEX}\n2 {HEX.upper()}\n", f"2 {HEX[::-1]}\n1 {HEX}\n", f"1 {HEX}\n1 {HEX[::-1]}\n",
    f"  \t3\t\t{HEX}  \r\n", f"1 {HEX}\r\n", f"\v\f1 {HEX}\f\n", f"0001 {HEX}\n", f"9999 {HEX}\n", f"0 {HEX}\n",
    f"0000 {HEX}\n", f"00000 {HEX}\n", f"12345 {HEX}\n", f"99999999999999999999 {HEX}\n", f"1 {HEX[:-1]}\n", f"1 {HEX}0\n",
    f"1 {HEX[:-1]}g\n", f"1{HEX}\n", f"1 {HEX} x\n", f"-1 {HEX}\n", f"+1 {HEX}\n", f"1.0 {HEX}\n", f"\u0661 {HEX}\n",
    f"1\u2003{HEX}\n", f"1\u00a0{HEX}\n", f"1 {HEX}\u3000\n", f"\u20281 {HEX}\n", "1 " + HEX.replace("a", "\uff41") + "\n",
    "", "\n", "\n\n\n", "# only a comment\n", "   # indented comment\n  \n", "#\n", " \t \n", f"x # 1 {HEX}\n",
    f"1 {HEX} # comment\n", f"# a\n\n1 {HEX}\n\ngarbage\n", f"1 {HEX}\n" * 40, f"{HEX} 1\n", "1 " + "f" * 10000 + "\n",
    "1 " + " " * 5000 + HEX + "\n",
]


def test_the_key_file_parser_reads_every_file_as_the_one_before_it(pg_cluster, db):
    path = Path(testing.TEST_PGDATA).parent / f"test-{secrets.token_hex(4)}.field-keys"
    pin(db, str(path))
    create_parser_before(db)  # after the pin: the copy reads the same file
    try:
        answers = []
        for content in KEY_FILES:
            path.write_bytes(content.encode())
            if pg_cluster.os_user:
                shutil.chown(path, user=pg_cluster.os_user)
            now, before = db.execute("select app_logic.field_keys(), pg_temp.field_keys_before()").fetchone()
            assert now == before, f"{content[:80]!r}: {now} != {before}"
            answers.append("error" in now)
        path.unlink()
        assert db.execute("select app_logic.field_keys() = pg_temp.field_keys_before()").fetchone() == (True,)
        assert 10 < answers.count(False) and 20 < answers.count(True), "both keys and refusals are compared"
    finally:
        path.unlink(missing_ok=True)


def test_sealing_a_row_runs_no_query_for_the_seal_and_no_bounded_repetition_over_the_key_file(db):
    """What made sealing cheap stays: the trigger assigns seal()'s result (a simple expression, no
    executor and tuplestore of SELECT ... FROM seal()), and the key file's regular expressions hold
    no {m,n} repetition (about 600k instructions a line in PostgreSQL's regex engine)."""
    trigger, keys = db.execute(
        "select prosrc from pg_proc where oid = any(array['app_logic.tg_seal_fields()'::regprocedure,"
        " 'app_logic.field_keys()'::regprocedure]) order by proname desc"
    ).fetchall()
    trigger, keys = (re.sub(r"--[^\n]*", "", body) for (body,) in (trigger, keys))  # the code, not its comments
    assert "v_sealed := app_logic.seal(v_fields);" in trigger and "from app_logic.seal" not in trigger.lower()
    assert "regexp_match(" in keys and not re.search(r"\{[0-9]+(,[0-9]*)?\}", keys)


def test_a_database_built_without_a_key_file_setting_says_how_to_configure_it(db, api):
    pin(db, "")
    answer = api.post(PREFERENCES, {"sessionId": "n", "accessibilityTheme": "default"})
    assert answer.status == 503
    assert answer.json()["message"] == (
        "No field-encryption key file was configured when the database was built: set chorus.field_key_file in the "
        "server configuration, reload, and run invoke db.build --force."
    )


def test_the_test_cluster_names_its_key_file_outside_the_data_directory_mode_600(pg_cluster, db):
    path = pg_cluster.key_file
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    assert Path(testing.TEST_PGDATA) not in path.parents
    (setting,) = db.execute("select current_setting('chorus.field_key_file')").fetchone()
    assert setting == str(path)


# -- dumps ---------------------------------------------------------------------------------------------


def dump(pg_cluster, dbname: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(config.pg_bindir() / "pg_dump"), *args, dbname], env=testing.psql_env(pg_cluster, dbname),
                          capture_output=True, check=True)


def test_a_dump_holds_neither_the_key_nor_the_encrypted_fields_in_clear(pg_cluster, db_url, db, api):
    mark = marker()
    post_profile(api, "sess-dump", mark)
    dbname = db_url.rsplit("/", 1)[1]
    text = dump(pg_cluster, dbname).stdout.decode()
    assert "app.accessibility_preferences" in text and "sess-dump" in text, "the dump holds the rows: the check is not vacuous"
    assert mark not in text and "screen-reader" not in text and "protanopia" not in text.split("COPY app.accessibility_preferences")[1].split("\\.")[0]
    assert not any(k in text.lower() for k in key_hexes(pg_cluster.key_file))


def test_a_dump_restored_without_the_key_shows_no_encrypted_field_in_clear(pg_cluster, db_url, api):
    mark = marker()
    post_profile(api, "sess-restore", mark)
    dbname = db_url.rsplit("/", 1)[1]
    archive = dump(pg_cluster, dbname, "-Fc").stdout
    target = f"{dbname}_restored"
    url = testing.recreate_database(pg_cluster, target)
    try:
        subprocess.run([str(config.pg_bindir() / "pg_restore"), "--no-owner", "--role=postgres", "-d", target],
                       input=archive, env=testing.psql_env(pg_cluster, target), capture_output=True)
        with psycopg.connect(url, autocommit=True) as conn:
            # A server without the key file: the path the dump names leads nowhere.
            conn.execute("alter function app_logic.field_keys() set chorus.field_key_file = '/nonexistent/field-keys'")
            rows = conn.execute(f"select {', '.join(PREFERENCE_FIELDS)} from app.accessibility_preferences").fetchall()
            engagement = conn.execute(f"select {', '.join(ENGAGEMENT_FIELDS)} from app.brand_engagement").fetchall()
            assert rows == [(None,) * 5] and engagement == [(None,) * 5]
            (audit,) = conn.execute("select string_agg(changes::text, ' ') from app.brand_audit").fetchone()
            assert mark not in audit and "protanopia" not in audit
            for reader in ("select * from app_logic.accessibility_preferences_opened", "select * from api.accessibility_usage",
                           "select * from api.design_effectiveness"):
                with pytest.raises(psycopg.Error) as refused:
                    conn.execute(reader).fetchall()
                assert "is missing or unreadable" in str(refused.value), "no wrong answer: the reader says the key is missing"
    finally:
        with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{target}" with (force)')


# -- analytics, export, erasure -------------------------------------------------------------------------


def analytics(api, key: str) -> dict:
    answers = {}
    for path in ("/api/brand-analytics/accessibility-usage", "/api/brand-analytics/design-effectiveness",
                 "/api/brand-analytics/performance", "/api/brand-analytics/ab-tests"):
        answer = api.get(path, api_key=key, frozen_now="2030-01-20T12:00:00Z")
        assert answer.status == 200, answer.body
        answers[path] = answer.json()
    return answers


def test_analytics_answers_are_the_same_before_and_after_encryption(api, db, make_key):
    key = make_key("reader")
    # Rows written before encryption: in clear, as an upgraded database holds them.
    for table in ("accessibility_preferences", "brand_engagement"):
        db.execute(f"alter table app.{table} disable trigger seal_fields")
    themes = ["protanopia", "default", "tritanopia", "protanopia", "achromatopsia", "deuteranopia"]
    for n, theme in enumerate(themes):
        db.execute(
            "insert into app.accessibility_preferences (session_id, accessibility_theme, session_duration, reduced_motion, created_at)"
            " values (%s, %s, %s, %s, timestamptz '2030-01-10' + %s * interval '1 hour')", (f"s{n}", theme, 1000 * n, n % 2 == 0, n))
        db.execute(
            "insert into app.brand_engagement (session_id, scroll_depth_percentage, cta_clicks, core_web_vitals, created_at)"
            " values (%s, %s, %s, %s, timestamptz '2030-01-19' + %s * interval '1 hour')",
            (f"s{n % 4}", 10 * n, psycopg.types.json.Jsonb(list(range(n))), psycopg.types.json.Jsonb({"lcp": 1000 + n}), n))
    db.execute("insert into app.ab_tests (name, goal, starts_at) values ('hero', 'lead', '2030-01-01')")
    db.execute("insert into app.ab_test_variants (test_id, position, name, design, weight)"
               " select id, p, 'v' || p, '{}', 1 from app.ab_tests, generate_series(1, 2) as p")
    db.execute("insert into app.ab_test_exposures (test_id, session_id, position, exposed_at)"
               " select t.id, 's' || n, 1 + n % 2, '2030-01-15' from app.ab_tests as t, generate_series(0, 5) as n")
    for table in ("accessibility_preferences", "brand_engagement"):
        db.execute(f"alter table app.{table} enable trigger seal_fields")
    before = analytics(api, key)
    assert before["/api/brand-analytics/accessibility-usage"][1] == {
        "accessibilityTheme": "protanopia", "sessions": 2, "meanSessionDuration": 1500.0}, "the check is not vacuous"
    done = {t: 0 for t in fieldkeys.TABLES}
    for table in fieldkeys.TABLES:
        while (rows := db.execute("select app_logic.reseal_batch(%s, 4)", (table,)).fetchone()[0]):
            done[table] += rows
    assert done == {"accessibility_preferences": 6, "brand_engagement": 6}
    assert db.execute("select count(*) from app.accessibility_preferences where accessibility_theme is not null"
                      " or key_version is null").fetchone() == (0,)
    assert db.execute("select count(*) from app.brand_engagement where cta_clicks is not null or key_version is null").fetchone() == (0,)
    assert analytics(api, key) == before


@pytest.mark.parametrize("reader", [
    "select count(*) from app_logic.opened_preference_themes('-infinity', 'infinity')",
    "select count(*) from app_logic.opened_engagement_counts('-infinity', 'infinity')",
    "select count(*) from app_logic.exposed_session_themes()",
])
def test_the_bulk_readers_read_the_key_file_once_per_call_not_per_row(api, db, reader):
    for n in range(5):
        post_profile(api, f"sess-bulk-{n}", marker())
    db.execute("insert into app.ab_tests (name, goal, starts_at) values ('hero', 'lead', '2030-01-01')")
    db.execute("insert into app.ab_test_variants (test_id, position, name, design, weight)"
               " select id, 1, 'v1', '{}', 1 from app.ab_tests")
    db.execute("insert into app.ab_test_exposures (test_id, session_id, position, exposed_at)"
               " select t.id, 'sess-bulk-' || n, 1, '2030-01-15' from app.ab_tests as t, generate_series(0, 4) as n")
    with db.transaction():
        db.execute("set local track_functions = 'all'")
        assert db.execute(reader).fetchone() == (5,)
        calls = db.execute("select pg_stat_get_xact_function_calls('app_logic.field_keys()'::regprocedure)").fetchone()
    assert calls == (1,), "five sealed rows, one read of the key file"


def test_gdpr_export_returns_the_persons_data_decrypted_and_erasure_removes_it(api, db, make_key):
    mark = marker()
    admin = make_key("admin")
    lead = {"firstName": "Ada", "lastName": "L", "email": "ada.enc@example.org", "gdprConsent": True, "sessionId": "sess-ada"}
    assert api.post("/api/leads", lead).status == 201
    post_profile(api, "sess-ada", mark)
    exported = api.post("/api/gdpr/export", {"email": "ada.enc@example.org"}, api_key=admin)
    assert exported.status == 200, exported.body
    (prefs,) = exported.json()["accessibilityPreferences"]
    (engagement,) = exported.json()["brandEngagement"]
    assert (prefs["accessibilityTheme"], prefs["reducedMotion"], prefs["fontSizePreference"]) == ("protanopia", True, "x-large")
    assert engagement["ctaClicks"] == [{"id": mark}, "demo"] and engagement["keyboardNavigationUsed"] is True
    assert "sealed" not in prefs and "keyVersion" not in prefs and "sealed" not in engagement
    erased = api.post("/api/gdpr/erase", {"email": "ada.enc@example.org"}, api_key=admin)
    assert erased.status == 200, erased.body
    assert db.execute("select (select count(*) from app.accessibility_preferences) + (select count(*) from app.brand_engagement)").fetchone() == (0,)


# -- rotation ------------------------------------------------------------------------------------------


def test_rotation_re_encrypts_in_committed_batches_resumes_and_keeps_every_value(api, db, db_url, own_key_file):
    for n in range(5):
        post_profile(api, f"sess-rot-{n}", f"m{n}")
    before = db.execute("select session_id, accessibility_theme, high_contrast from app_logic.accessibility_preferences_opened order by 1").fetchall()
    clicks_before = db.execute("select session_id, cta_clicks from app_logic.brand_engagement_opened order by 1").fetchall()
    assert fieldkeys.add_version(own_key_file) == 2
    # A first run stopped after one batch of 2: those rows stay under key 2, the rest under key 1.
    assert db.execute("select app_logic.reseal_batch('accessibility_preferences', 2)").fetchone() == (2,)
    assert db.execute("select key_version, count(*) from app.accessibility_preferences group by 1 order by 1").fetchall() == [(1, 3), (2, 2)]
    lines: list[str] = []
    done = fieldkeys.rotate(db_url, 2, log=lines.append)
    assert done == {"accessibility_preferences": 3, "brand_engagement": 5}
    assert lines[-1] == "every row is under key version 2; versions 1 may now leave the key file"
    assert "app.brand_engagement: 4 of 5 rows under key version 2" in lines, "batches of 2, committed one by one"
    # Key 1 retired: every row still opens.
    own_key_file.write_text("\n".join(line for line in own_key_file.read_text().splitlines() if not line.startswith("1 ")) + "\n")
    assert db.execute("select session_id, accessibility_theme, high_contrast from app_logic.accessibility_preferences_opened order by 1").fetchall() == before
    assert db.execute("select session_id, cta_clicks from app_logic.brand_engagement_opened order by 1").fetchall() == clicks_before
    assert fieldkeys.rotate(db_url, 2, log=lines.append) == {"accessibility_preferences": 0, "brand_engagement": 0}


def test_rotation_refuses_rows_whose_key_version_the_file_no_longer_holds(api, db, db_url, own_key_file):
    post_profile(api, "sess-lost", "m")
    fieldkeys.add_version(own_key_file)
    own_key_file.write_text("\n".join(line for line in own_key_file.read_text().splitlines() if not line.startswith("1 ")) + "\n")
    with pytest.raises(fieldkeys.FieldKeyError) as refused:
        fieldkeys.rotate(db_url, 10, log=lambda _line: None)
    assert str(refused.value) == ("rows of app.accessibility_preferences are encrypted with key version 1, which the key "
                                  "file does not hold: put that key back in the file and run again")


def test_rotation_names_a_key_that_does_not_open_its_rows(api, db, db_url, own_key_file):
    post_profile(api, "sess-wrong", "m")
    own_key_file.write_text(f"1 {secrets.token_hex(32)}\n2 {secrets.token_hex(32)}\n")
    with pytest.raises(fieldkeys.FieldKeyError) as refused:
        fieldkeys.rotate(db_url, 10, log=lambda _line: None)
    assert str(refused.value).startswith("a row does not decrypt with the key its version names: the key file holds another "
                                         "key under that version (restore the original line) or the row was altered")


def run_task(args: list[str], db_url: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=config.ROOT, capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": db_url, **env}, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db.rotate-key", "--batch", "0"], "--batch takes 1 to 100000 rows, not 0"),
        (["db.rotate-key", "--new-key", "--key-file", "/nonexistent/keys"],
         "/nonexistent/keys is not on this machine: add the new line to the server's key file there"),
    ],
)
def test_rotate_key_task_failures_are_one_sentence(db_url, args, message):
    result = run_task(args, db_url)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_rotate_key_task_adds_a_version_and_re_encrypts(api, db, db_url, own_key_file):
    post_profile(api, "sess-task", "m")
    result = run_task(["db.rotate-key", "--new-key", "--batch", "1"], db_url, CHORUS_FIELD_KEY_FILE=str(own_key_file))
    assert result.returncode == 0, result.stderr
    assert f"added key version 2 to {own_key_file}" in result.stdout
    assert "every row is under key version 2; versions 1 may now leave the key file" in result.stdout
    assert db.execute("select distinct key_version from app.brand_engagement union select distinct key_version"
                      " from app.accessibility_preferences").fetchall() == [(2,)]


# -- the server log --------------------------------------------------------------------------------------


def test_the_key_is_never_in_the_server_log_even_with_every_statement_logged(pg_cluster, db, db_url, api, make_key, own_key_file):
    start = pg_cluster.logfile.stat().st_size
    db.execute("alter database {} set log_statement = 'all'".format(db_url.rsplit("/", 1)[1]))
    db.execute("alter database {} set log_min_duration_statement = 0".format(db_url.rsplit("/", 1)[1]))
    try:
        reader = make_key("reader")
        mark = marker()
        post_profile(api, "sess-log", mark)
        analytics(api, reader)
        fieldkeys.add_version(own_key_file)
        fieldkeys.rotate(db_url, 1, log=lambda _line: None)
        with pytest.raises(psycopg.Error):
            db.execute("select app_logic.open_sealed(sealed, 1, '{\"1\": \"00\"}') from app.accessibility_preferences").fetchall()
    finally:
        db.execute("alter database {} reset all".format(db_url.rsplit("/", 1)[1]))
    db.execute("select pg_sleep(0)")
    log = pg_cluster.logfile.read_bytes()[start:].decode("utf-8", "replace")
    assert "record_brand_engagement" in log, "statements were logged: the check is not vacuous"
    assert not any(k in log.lower() for k in key_hexes(own_key_file) + key_hexes(pg_cluster.key_file))
