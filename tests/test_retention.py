"""Retention as pg_cron runs it: app_logic.run_retention() works through a backlog in
committed batches, one failing rule does not stop the others, and `invoke db.retention`
shows the rules and the runs. The rules themselves are pinned by db/tests/080-retention.sql.
"""

from __future__ import annotations

from tests.support.invoke_cli import run_invoke

FROZEN = "2030-06-15 12:00:00+00"


def test_run_retention_works_through_a_backlog_in_committed_batches(db):
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    db.execute(
        "insert into app.brand_engagement (session_id, created_at)"
        " select 'old-' || i, timestamptz '2020-01-01' + i * interval '1 day' from generate_series(1, 5) as i"
    )
    db.execute("insert into app.brand_engagement (session_id, created_at) values ('live-1', '2030-01-01'), ('live-2', '2030-06-01')")
    db.execute("call app_logic.run_retention('brand_engagement', 2)")
    runs = db.execute(
        "select rows_removed, complete from app.retention_runs where kind = 'brand_engagement' order by id"
    ).fetchall()
    assert runs == [(2, False), (2, False), (1, True)]
    # Each batch was its own transaction: the log rows were written by three of them.
    assert db.execute(
        "select count(distinct xmin::text) from app.retention_runs where kind = 'brand_engagement'"
    ).fetchone()[0] == 3
    assert [r[0] for r in db.execute("select session_id from app.brand_engagement order by 1")] == ["live-1", "live-2"]


def _seconds_to_purge_three_rows_one_at_a_time(db, call: str) -> float:
    """How long `call` (a run_retention of brand_engagement) takes over three expired rows."""
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    db.execute(
        "insert into app.brand_engagement (session_id, created_at)"
        " select 'old-' || i, timestamptz '2020-01-01' from generate_series(1, 3) as i"
    )
    started = db.execute("select clock_timestamp()").fetchone()[0]
    db.execute(call)
    ended = db.execute("select clock_timestamp()").fetchone()[0]
    assert db.execute("select count(*) from app.brand_engagement").fetchone()[0] == 0
    return (ended - started).total_seconds()


def test_the_job_pauses_between_batches_in_proportion_to_their_duration(db):
    """Throttled so that the requests served meanwhile keep their latency (measured by invoke bench)."""
    # Three batches of one row, each followed by a pause of 100 times its duration.
    seconds = _seconds_to_purge_three_rows_one_at_a_time(db, "call app_logic.run_retention('brand_engagement', 1, 100)")
    # Pauses follow each committed batch that left work (three of them: the fourth finds none and
    # is complete, so it is not counted: on a loaded machine its duration alone can be a third of
    # the others').
    batches = db.execute(
        "select sum(extract(epoch from duration)) from app.retention_runs"
        " where kind = 'brand_engagement' and not complete"
    ).fetchone()[0]
    assert db.execute(
        "select count(*) filter (where not complete), count(*) from app.retention_runs where kind = 'brand_engagement'"
    ).fetchone() == (3, 4)
    assert seconds >= 100 * float(batches) * 0.9


def test_with_a_wal_rate_the_job_pauses_at_least_as_long_as_its_wal_takes_at_that_rate(db):
    """A batch's WAL, not its rows or its time, is what the requests' commits flush with theirs."""
    # Three batches of one row (and a fourth that finds none), no pause by time: only the WAL's.
    # Each paused batch wrote at least its row's deletion, its log row with its index entries and
    # its commit (more than 300 bytes); WAL of other sessions meanwhile only lengthens the pauses.
    seconds = _seconds_to_purge_three_rows_one_at_a_time(db, "call app_logic.run_retention('brand_engagement', 1, 0, null, 4000)")
    assert seconds >= 3 * 300 / 4000


def test_a_wal_rate_that_is_not_positive_is_refused(db):
    import psycopg
    import pytest

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="WAL rate must be a positive number of bytes per second"):
        db.execute("call app_logic.run_retention(null, 100, 4, null, 0)")


def _engagement_batches(db, rows: int, call: str) -> list[int]:
    """The rows each batch of `call` (a run_retention of brand_engagement) removed from `rows` expired ones."""
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    db.execute(
        "insert into app.brand_engagement (session_id, created_at)"
        f" select 'old-' || i, timestamptz '2020-01-01' + i * interval '1 minute' from generate_series(1, {rows}) as i"
    )
    db.execute(call)
    assert db.execute("select count(*) from app.brand_engagement").fetchone()[0] == 0
    return [r[0] for r in db.execute(
        "select rows_removed from app.retention_runs where kind = 'brand_engagement' order by id"
    )]


def test_with_a_wal_budget_a_batch_that_wrote_more_makes_the_next_one_smaller(db):
    """After a checkpoint a batch's first deletion on each page writes the whole page: the next
    batch is cut to the rows that write about the budget at that rate (here a byte: one row)."""
    # Every batch writes far more than a byte (its deletions, its log row, its commit).
    batches = _engagement_batches(db, 5, "call app_logic.run_retention('brand_engagement', 2, 0, p_batch_wal => 1)")
    assert batches == [2, 1, 1, 1, 0]


def test_with_a_wal_budget_batches_grow_back_at_most_twice_the_last_up_to_the_batch_size(db):
    # The oldest row's deletion writes 1 MB of WAL (a message record), the others a few kB each.
    db.execute(
        "create function public.heavy_delete() returns trigger language plpgsql as $$ begin"
        " perform pg_logical_emit_message(false, 'test', repeat('x', 1000000)); return old; end $$"
    )
    db.execute(
        "create trigger heavy before delete on app.brand_engagement for each row"
        " when (old.session_id = 'old-1') execute function public.heavy_delete()"
    )
    batches = _engagement_batches(db, 20, "call app_logic.run_retention('brand_engagement', 8, 0, p_batch_wal => 500000)")
    # 8 rows wrote over 1 MB: 3 rows write about 500 kB at that rate; then twice the last, up to 8.
    assert batches == [8, 3, 6, 3]


def test_a_wal_budget_that_is_not_positive_is_refused(db):
    import psycopg
    import pytest

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="WAL per batch must be a positive number of bytes"):
        db.execute("call app_logic.run_retention(null, 100, 4, null, null, 0)")


def test_the_job_does_not_wait_for_wal_flushes_and_restores_the_setting(db):
    db.execute("set synchronous_commit = on")
    db.execute("call app_logic.run_retention('brand_engagement')")
    assert db.execute("show synchronous_commit").fetchone()[0] == "on"


def _commit_modes(db, call: str) -> list[str]:
    """synchronous_commit as each batch of `call` (a run_retention of brand_engagement over three
    expired rows, one a batch) deleted its row: the mode its commit then used."""
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    db.execute("create table public.commit_modes (id serial, mode text)")
    db.execute(
        "create function public.note_commit_mode() returns trigger language plpgsql as $$ begin"
        " insert into public.commit_modes (mode) values (current_setting('synchronous_commit')); return old; end $$"
    )
    db.execute("create trigger note before delete on app.brand_engagement for each row execute function public.note_commit_mode()")
    db.execute(
        "insert into app.brand_engagement (session_id, created_at)"
        " select 'old-' || i, timestamptz '2020-01-01' from generate_series(1, 3) as i"
    )
    db.execute("set synchronous_commit = local")
    db.execute(call)
    # The session's own setting is back after the job, whichever mode its batches used.
    assert db.execute("show synchronous_commit").fetchone()[0] == "local"
    return [r[0] for r in db.execute("select mode from public.commit_modes order by id")]


def test_by_default_every_batch_commits_without_waiting_for_the_wal_flush(db):
    assert _commit_modes(db, "call app_logic.run_retention('brand_engagement', 1, 0)") == ["off"] * 3


def test_with_synchronous_commit_every_batch_waits_for_its_wal_flush(db):
    """The job pays its own batches' flushes (opt-in, alternated in the retention bench)."""
    modes = _commit_modes(db, "call app_logic.run_retention('brand_engagement', 1, 0, p_synchronous_commit => true)")
    assert modes == ["on"] * 3


def test_a_synchronous_commit_choice_of_null_is_refused(db):
    import psycopg
    import pytest

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="must be true or false, not null"):
        db.execute("call app_logic.run_retention('brand_engagement', p_synchronous_commit => null)")


def test_a_pause_ratio_out_of_range_is_refused(db):
    import psycopg
    import pytest

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="pause ratio must be between 0 and 100"):
        db.execute("call app_logic.run_retention(null, 100, -1)")


def test_a_time_limit_stops_the_job_after_the_batch_that_reaches_it_and_the_next_run_goes_on(db):
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    db.execute(
        "insert into app.brand_engagement (session_id, created_at)"
        " select 'old-' || i, timestamptz '2020-01-01' + i * interval '1 day' from generate_series(1, 3) as i"
    )
    db.execute("call app_logic.run_retention('brand_engagement', 1, 0, 0.000001)")
    assert db.execute("select count(*) from app.brand_engagement").fetchone()[0] == 2
    assert db.execute(
        "select rows_removed, complete from app.retention_runs where kind = 'brand_engagement'"
    ).fetchall() == [(1, False)]
    db.execute("call app_logic.run_retention('brand_engagement', 1, 0)")
    assert db.execute("select count(*) from app.brand_engagement").fetchone()[0] == 0


def test_a_time_limit_that_is_not_positive_is_refused(db):
    import psycopg
    import pytest

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="time limit must be a positive number of seconds"):
        db.execute("call app_logic.run_retention(null, 100, 4, 0)")


def test_expired_leads_are_removed_at_most_a_thousand_per_transaction(db):
    """Each removed lead appends an erasure under a per-subject advisory lock held until
    commit; thousands in one transaction would exhaust the lock table."""
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    db.execute(
        "insert into app.leads (first_name, last_name, email, gdpr_consent, updated_at)"
        " select 'F', 'L', 'old' || i || '@example.com', true, '2020-01-01' from generate_series(1, 2500) as i"
    )
    db.execute("insert into app.leads (first_name, last_name, email, gdpr_consent) values ('F', 'L', 'new@example.com', true)")
    db.execute("call app_logic.run_retention('leads', 50000)")
    runs = db.execute("select rows_removed, complete from app.retention_runs where kind = 'leads' order by id").fetchall()
    assert runs == [(1000, False), (1000, False), (500, True)]
    assert [r[0] for r in db.execute("select email from app.leads")] == ["new@example.com"]
    assert db.execute(
        "select count(distinct subject) from app.consent_audit where event = 'erasure' and source = 'retention'"
    ).fetchone()[0] == 2500


def test_run_retention_applies_every_rule_when_no_kind_is_given(db):
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    db.execute(
        "insert into app.accessibility_preferences (session_id, accessibility_theme, last_updated)"
        " values ('old-prefs', 'default', '2020-01-01')"
    )
    db.execute("call app_logic.run_retention()")
    kinds = [r[0] for r in db.execute("select kind from app.retention_runs order by kind")]
    # Every enabled rule, each domain's included (the brand and consent tables add theirs).
    assert kinds == [r[0] for r in db.execute("select kind from app.retention_rules where enabled order by kind")]
    assert {"accessibility_preferences", "brand_engagement", "leads", "page_views", "rate_limit_counters",
            "retention_runs", "ab_test_exposures", "logo_interaction_heatmaps", "brand_audit", "outbox",
            "consent_tokens", "cron_job_run_details", "consent_chain_checks"} <= set(kinds)
    assert db.execute("select count(*) from app.retention_runs where error is not null").fetchone()[0] == 0
    assert db.execute("select count(*) from app.accessibility_preferences").fetchone()[0] == 0


def hold_engagement(db, body: str) -> None:
    """A BEFORE DELETE trigger on app.brand_engagement running this PL/pgSQL body: a rule that fails."""
    db.execute(f"create function public.refuse_delete() returns trigger language plpgsql as $$ begin {body} end $$")
    db.execute(
        "create trigger legal_hold before delete on app.brand_engagement for each row execute function public.refuse_delete()"
    )


def test_a_failing_rule_is_logged_and_the_other_rules_still_run(db):
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    hold_engagement(db, "raise exception 'engagement is on legal hold' using errcode = 'P0001';")
    db.execute("insert into app.brand_engagement (session_id, created_at) values ('held', '2020-01-01')")
    db.execute(
        "insert into app.accessibility_preferences (session_id, accessibility_theme, last_updated)"
        " values ('old-prefs', 'default', '2020-01-01')"
    )
    runs = dict(
        (kind, (rows, error))
        for kind, rows, error in db.execute(
            "select kind, rows_removed, error from app_logic.apply_retention()"
        ).fetchall()
    )
    assert runs["brand_engagement"] == (0, "engagement is on legal hold (SQLSTATE P0001)")
    assert runs["accessibility_preferences"] == (1, None)
    assert db.execute("select count(*) from app.brand_engagement where session_id = 'held'").fetchone()[0] == 1
    assert db.execute("select count(*) from app.retention_runs where error is not null").fetchone()[0] == 1


def test_a_failing_rule_logs_no_stored_value(db):
    db.execute(f"set app.frozen_now = '{FROZEN}'")
    # A failure whose PostgreSQL message quotes a stored value.
    hold_engagement(db, "perform old.session_id::uuid; return old;")
    db.execute("insert into app.brand_engagement (session_id, created_at) values ('ada@example.org', '2020-01-01')")
    error = db.execute(
        "select error from app_logic.apply_retention('brand_engagement')"
    ).fetchone()[0]
    assert error == "invalid input syntax for type uuid (SQLSTATE 22P02)"


def test_db_retention_shows_the_rules_and_applies_them_on_request(db, db_url):
    db.execute(
        "insert into app.accessibility_preferences (session_id, accessibility_theme, last_updated)"
        " values ('old-prefs', 'default', now() - interval '1 year')"
    )
    shown = run_invoke("db.retention", database_url=db_url)
    assert shown.returncode == 0, shown.stderr
    assert "leads                      keep 7 years" in shown.stdout
    assert db.execute("select count(*) from app.accessibility_preferences").fetchone()[0] == 1

    applied = run_invoke("db.retention", "--apply", database_url=db_url)
    assert applied.returncode == 0, applied.stderr
    assert db.execute("select count(*) from app.accessibility_preferences").fetchone()[0] == 0
    line = next(ln for ln in applied.stdout.splitlines() if "accessibility_preferences" in ln and "row(s)" in ln)
    assert "1 row(s)" in line


def test_no_role_but_the_owner_may_run_or_apply_retention(db):
    """Red team, session 11: the knob p_synchronous_commit is the job's, not a client's. No web,
    worker or key-holding role (nor PUBLIC) may call any overload of run_retention or
    apply_retention, so nobody else can make the job's commits skip (or wait for) the flush,
    delete early, or hold a core."""
    rows = db.execute(
        """
        select r.rolname, p.oid::regprocedure::text
        from pg_proc as p cross join pg_roles as r
        where p.pronamespace = 'app_logic'::regnamespace and p.proname in ('run_retention', 'apply_retention')
            and not r.rolsuper and r.oid <> p.proowner and r.rolname !~ '^pg_'
            and has_function_privilege(r.oid, p.oid, 'execute')
        """
    ).fetchall()
    assert rows == []
    assert db.execute(
        "select count(*) from pg_proc where pronamespace = 'app_logic'::regnamespace and proname = 'run_retention'"
    ).fetchone()[0] == 1
    for role in ("anon", "reader", "admin", "authenticator"):
        import psycopg
        import pytest

        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with db.transaction():
                db.execute(f"set local role {role}")
                db.execute("call app_logic.run_retention('brand_engagement', p_synchronous_commit => true)")


def test_inside_a_transaction_block_the_job_refuses_to_run_and_changes_nothing(db):
    """Red team, session 11: CALL inside BEGIN cannot commit its batches (2D000); the batch it
    deleted and the session's synchronous_commit go back with the rollback."""
    import psycopg
    import pytest

    db.execute(
        "insert into app.brand_engagement (session_id, created_at)"
        " select 'old-tx-' || i, timestamptz '2020-01-01' from generate_series(1, 3) as i"
    )
    db.execute("set synchronous_commit = local")
    for knob in ("false", "true"):
        with pytest.raises(psycopg.errors.InvalidTransactionTermination):
            with db.transaction():
                db.execute(f"call app_logic.run_retention('brand_engagement', 1, 0, p_synchronous_commit => {knob})")
        assert db.execute("show synchronous_commit").fetchone()[0] == "local"
        assert db.execute("select count(*) from app.brand_engagement where session_id like 'old-tx-%'").fetchone()[0] == 3
