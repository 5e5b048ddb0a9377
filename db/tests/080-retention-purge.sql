-- app_logic.purge_older_than, the one body behind every purge_<kind>: oldest first within a
-- limit, only unlinked rows when asked, identifiers quoted and never run as SQL; and a
-- retention rule's deletions leave no copy of the removed rows in the brand audit.
begin;
select plan(22);

create table app.purge_probe (
    id integer primary key, made_at timestamptz not null, owner_id integer, "odd "" name" timestamptz -- noqa: RF05
);
create function pg_temp.probe_ids() returns integer[] language sql as $$
    select array_agg(p.id order by p.id) from app.purge_probe as p
$$;
insert into app.purge_probe (id, made_at, owner_id, "odd "" name") values -- noqa: RF05
(1, '2020-01-03', null, '2020-01-01'),
(2, '2020-01-01', null, '2030-01-01'),
(3, '2020-01-02', 7, null),
(4, '2030-01-01', null, null);

select is(
    app_logic.purge_older_than('app.purge_probe', 'made_at', '2025-01-01', 1), 1::bigint,
    'a limit of one removes one due row'
);
select is(pg_temp.probe_ids(), array[1, 3, 4], 'the oldest due row goes first');
select is(
    app_logic.purge_older_than('app.purge_probe', 'made_at', '2025-01-01', 10, 'owner_id'), 1::bigint,
    'with p_only_null a row whose column is set (linked) is not due'
);
select is(pg_temp.probe_ids(), array[3, 4], 'the linked row stays');
select is(
    app_logic.purge_older_than('app.purge_probe', 'made_at', '2025-01-01'), 1::bigint,
    'without a limit every due row goes'
);
select is(pg_temp.probe_ids(), array[4], 'a row not yet due stays');
select is(
    app_logic.purge_older_than('app.purge_probe', 'made_at', '2035-01-01', 0), 0::bigint,
    'a limit of zero removes nothing'
);

-- Identifiers are quoted: a column name that is not a plain word still works, and a name that
-- reads as SQL is only ever a (missing) column or table.
insert into app.purge_probe (id, made_at, "odd "" name") values (5, '2030-01-01', '2020-01-01'); -- noqa: RF05
select is(
    app_logic.purge_older_than('app.purge_probe', 'odd " name', '2025-01-01', 10), 1::bigint,
    'a column name with a quote and a space is quoted, not refused'
);
select throws_ok(
    $$ select app_logic.purge_older_than('app.purge_probe', 'made_at < now() or true; --', '2025-01-01') $$,
    '42703', null, 'SQL in the column name is a column that does not exist'
);
select throws_ok(
    $$ select app_logic.purge_older_than('app.purge_probe', 'made_at', '2025-01-01', 1, 'owner_id is null or true') $$,
    '42703', null, 'SQL in the linked column''s name is a column that does not exist'
);
select throws_ok(
    $$ select app_logic.purge_older_than('app.purge_probe; drop table app.leads', 'made_at', '2035-01-01') $$,
    '42602', null, 'SQL in the table name is not a table name'
);
select is(pg_temp.probe_ids(), array[4], 'the refused calls removed nothing');
select ok(to_regclass('app.leads') is not null, 'and dropped nothing');

-- With p_else_column the age is the first column, or the other one where it is null.
insert into app.purge_probe (id, made_at, "odd "" name") values -- noqa: RF05
(6, '2020-01-01', null), (7, '2020-01-01', '2030-01-01');
select is(
    app_logic.purge_older_than('app.purge_probe', 'odd " name', '2025-01-01', null, null, 'made_at'), 1::bigint,
    'a row whose first column is null is aged by the other one'
);
select is(pg_temp.probe_ids(), array[4, 7], 'a row whose first column is set is aged by it');

-- A temporary table of the same name never stands in for the table named.
create temporary table purge_probe (id integer, made_at timestamptz);
insert into purge_probe values (9, '2020-01-01');
select is(
    app_logic.purge_older_than('app.purge_probe', 'made_at', '2035-01-01'), 2::bigint,
    'the table is the one named, with its schema'
);
select is((select count(*) from pg_temp.purge_probe), 1::bigint, 'the temporary table of the same name is untouched');

-- Retention's deletions are logged by the rule (app.retention_runs), not row by row in the
-- brand audit; any other delete of an audited table still is.
select set_config('app.frozen_now', '2030-06-15 12:00:00+00', true);
insert into app.brand_engagement (session_id, created_at) values ('audit-due', '2020-01-01'), ('audit-other', '2030-06-01');
select app_logic.apply_retention('brand_engagement');
delete from app.brand_engagement
where session_id = 'audit-other';
select is(
    array(
        select b.operation || ' ' || b.session_id from app.brand_audit as b
        where b.session_id like 'audit-%'
        order by b.id
    ),
    array['INSERT audit-due', 'INSERT audit-other', 'DELETE audit-other'],
    'the rule''s delete leaves no audit copy of the removed row; a plain delete is audited'
);
select is_empty(
    $$ select r from unnest(array['anon', 'reader', 'admin']) as r
       where has_function_privilege(r, 'app_logic.purge_older_than(regclass, name, timestamptz, integer, name, name)', 'execute') $$,
    'no API role can call the purge helper'
);

-- A batch costs by its size, not by its table's: the oldest due rows are found through an index
-- on the age column, never by reading and sorting the whole table (a rate_limit_counters batch of
-- 1.2M counters took 327 ms so, 2 ms through db/schema/590's index). Sequential scans and sorts
-- are switched off (not forbidden: a plan with no other way still shows them), so the plan shows
-- whether an index can serve the statement app_logic.purge_older_than runs.
create function pg_temp.batch_plan(p_table regclass, p_column name, p_only_null name default null) returns text
language plpgsql as $$
declare
    v_line text;
    v_plan text := '';
begin
    set local enable_seqscan = off;
    set local enable_sort = off;
    execute 'prepare batch_probe as ' || app_logic.purge_statement(p_table, p_column, true, p_only_null);
    for v_line in execute 'explain (costs off) execute batch_probe(now(), 2000)' loop
        v_plan := v_plan || v_line || E'\n';
    end loop;
    deallocate batch_probe;
    reset enable_seqscan;
    reset enable_sort;
    return v_plan;
end
$$;
select matches(
    pg_temp.batch_plan('app.rate_limit_counters', 'expires_at'), 'Index Scan using rate_limit_counters_expires_idx',
    'a rate_limit_counters batch finds its oldest due rows through the expiry index'
);
select doesnt_match(
    pg_temp.batch_plan('app.rate_limit_counters', 'expires_at'), '(Sort|Seq Scan)',
    'and neither reads nor sorts the whole table'
);
select doesnt_match(
    pg_temp.batch_plan('app.brand_engagement', 'created_at', 'lead_id'), '(Sort|Seq Scan)',
    'nor does a brand_engagement batch (the bulk of a backlog)'
);

select * from finish();
rollback;
