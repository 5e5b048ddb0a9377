-- Retention rules with frozen time: what is due goes, what is not stays, linked data survives
-- its unlinked twin's deadline, page views leave by whole partitions, every run is logged.
-- The clock is frozen at 2030-06-15 12:00 UTC; the cutoffs are then:
--   preferences 2030-03-17, engagement 2028-06-15, leads 2023-06-15,
--   page views 2029-05-15 (13 months), counters 12:00 itself, the log 2029-05-11.
begin;
select plan(34);

select set_config('app.frozen_now', '2030-06-15 12:00:00+00', true);

-- Leads: expired (A, with everything linked to it), kept by a recent interaction (B), fresh (C).
insert into app.leads (id, first_name, last_name, email, gdpr_consent, session_id, created_at, updated_at) values
('00000000-0000-0000-0000-00000000000a', 'Ann', 'Old', 'ann@example.com', true, 's-ann', '2020-01-01', '2023-01-01'),
('00000000-0000-0000-0000-00000000000b', 'Ben', 'Busy', 'ben@example.com', true, 's-ben', '2020-01-01', '2023-01-01'),
('00000000-0000-0000-0000-00000000000c', 'Cy', 'New', 'cy@example.com', true, 's-cy', '2029-01-01', '2029-01-01');
insert into app.lead_interactions (lead_id, kind, note, created_at) values
('00000000-0000-0000-0000-00000000000a', 'note', 'old note', '2023-01-01'),
('00000000-0000-0000-0000-00000000000b', 'call', 'called back', '2024-01-01');
select app_logic.append_consent(app_logic.person_pseudonym('ann@example.com'), 'consent', 'gdpr', true, 'test');

-- Preferences: unlinked and due, unlinked and not due, linked (to C) and far older than 90 days,
-- linked to the expiring lead A.
insert into app.accessibility_preferences (session_id, lead_id, accessibility_theme, created_at, last_updated) values
('p-due', null, 'default', '2030-01-01', '2030-03-01'),
('p-fresh', null, 'default', '2030-01-01', '2030-04-01'),
('p-linked', '00000000-0000-0000-0000-00000000000c', 'protanopia', '2029-01-01', '2029-01-01'),
('s-ann', '00000000-0000-0000-0000-00000000000a', 'default', '2022-01-01', '2022-01-01');

-- Engagement: likewise, with the two-year period.
insert into app.brand_engagement (session_id, lead_id, created_at) values
('e-due', null, '2028-06-01'),
('e-fresh', null, '2028-07-01'),
('e-linked', '00000000-0000-0000-0000-00000000000c', '2021-01-01'),
('s-ann', '00000000-0000-0000-0000-00000000000a', '2022-01-01');

-- Counters: a window that ended at 11:59 (due) and one that ends at 12:00:30 (still limiting).
insert into app.rate_limit_counters (action, scope, subject, hits, expires_at) values
('leads', 'ip', 'ended', array['2030-06-15 11:58:00+00'::timestamptz], '2030-06-15 11:59:00+00'),
('leads', 'ip', 'running', array['2030-06-15 11:59:30+00'::timestamptz], '2030-06-15 12:00:30+00');

-- Page views: April 2029 ends before the cutoff, May 2029 only partly, so it stays whole.
-- The partitions every build makes (this month and the next ones) would be due too at the
-- frozen time: they are dropped first, so the test sees only its own.
do $$
declare
    r record;
begin
    for r in select c.oid::regclass as part from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
             where i.inhparent = 'app.page_views'::regclass
    loop
        execute format('drop table %s', r.part);
    end loop;
end
$$;
create table app.page_views_t2029_04 partition of app.page_views
for values from ('2029-04-01 00:00:00+00') to ('2029-05-01 00:00:00+00');
create table app.page_views_t2029_05 partition of app.page_views
for values from ('2029-05-01 00:00:00+00') to ('2029-06-01 00:00:00+00');
alter table app.page_views_t2029_04 enable row level security;
alter table app.page_views_t2029_05 enable row level security;
insert into app.page_views (session_id, path, viewed_at) values
('v-1', '/', '2029-04-10'),
('v-1', '/about', '2029-05-02'),
('v-2', '/', '2029-05-20');

-- An old entry of the log itself.
insert into app.retention_runs (started_at, kind, cutoff, duration) values
('2029-01-01', 'leads', '2022-01-01', interval '1 second');

create temporary table runs on commit drop as
select * from app_logic.apply_retention();

select is(
    (select count(*)::integer from runs),
    (
        select count(*)::integer from app.retention_rules
        where enabled
    ),
    'apply_retention logs one run per enabled rule'
);
select ok(
    (select bool_and(r.error is null and r.complete) from runs as r),
    'every rule ran without error and completed'
);
select ok(
    (select bool_and(r.started_at = '2030-06-15 12:00:00+00') from runs as r),
    'runs are stamped with the (frozen) application clock'
);
select is(
    (
        select count(*)::integer from app.retention_runs
        where started_at = '2030-06-15 12:00:00+00'
    ),
    (
        select count(*)::integer from app.retention_rules
        where enabled
    ),
    'the runs are stored in app.retention_runs for the operator'
);

-- Preferences
select ok(
    not exists (
        select from app.accessibility_preferences
        where session_id = 'p-due'
    ),
    'unlinked preferences last updated more than 90 days ago are removed'
);
select ok(
    exists (
        select from app.accessibility_preferences
        where session_id = 'p-fresh'
    ),
    'unlinked preferences updated within 90 days stay'
);
select ok(
    exists (
        select from app.accessibility_preferences
        where session_id = 'p-linked'
    ),
    'preferences linked to a live lead survive the 90-day deadline'
);

-- Engagement
select ok(
    not exists (
        select from app.brand_engagement
        where session_id = 'e-due'
    ),
    'unlinked engagement older than two years is removed'
);
select ok(
    exists (
        select from app.brand_engagement
        where session_id = 'e-fresh'
    ),
    'unlinked engagement younger than two years stays'
);
select ok(
    exists (
        select from app.brand_engagement
        where session_id = 'e-linked'
    ),
    'engagement linked to a live lead survives the two-year deadline'
);

-- Leads
select ok(
    not exists (
        select from app.leads
        where email = 'ann@example.com'
    ),
    'a lead inactive for more than seven years is removed'
);
select ok(
    exists (
        select from app.leads
        where email = 'ben@example.com'
    ),
    'a lead with an interaction within seven years stays'
);
select ok(
    exists (
        select from app.leads
        where email = 'cy@example.com'
    ),
    'a recently active lead stays'
);
select is(
    (
        select count(*)::integer from app.lead_interactions
        where lead_id = '00000000-0000-0000-0000-00000000000a'
    ), 0,
    'the removed lead''s interactions go with it'
);
select ok(
    not exists (
        select from app.accessibility_preferences
        where session_id = 's-ann'
    )
    and not exists (
        select from app.brand_engagement
        where session_id = 's-ann'
    ),
    'the removed lead''s linked preferences and engagement go with it'
);
select results_eq(
    $$ select seq::integer, event::text, source::text from app.consent_audit
       where subject = app_logic.person_pseudonym('ann@example.com') order by seq $$,
    $$ values (1, 'consent', 'test'), (2, 'erasure', 'retention') $$,
    'the consent audit keeps the removed lead''s rows and gains an erasure record'
);
select is_empty(
    'select * from app_logic.verify_consent_chain()',
    'the consent chain still verifies after retention'
);

-- Counters
select ok(
    not exists (
        select from app.rate_limit_counters
        where subject = 'ended'
    ),
    'a rate-limit counter whose window ended is removed'
);
select ok(
    exists (
        select from app.rate_limit_counters
        where subject = 'running'
    ),
    'a rate-limit counter whose window is still running stays'
);

-- Page views
select is(
    to_regclass('app.page_views_t2029_04'), null,
    'a monthly partition whose range ends before the 13-month cutoff is dropped'
);
select isnt(
    to_regclass('app.page_views_t2029_05'), null,
    'a partition that straddles the cutoff stays'
);
select is(
    (
        select count(*)::integer from app.page_views
        where viewed_at >= '2029-05-01' and viewed_at < '2029-06-01'
    ), 2,
    'page views are never deleted row by row: the straddling month keeps its rows older than the cutoff'
);
select is(
    (
        select partitions_dropped from runs
        where kind = 'page_views'
    ), array['app.page_views_t2029_04'
    ],
    'the run names the partitions it dropped'
);

-- The log
select ok(
    not exists (
        select from app.retention_runs
        where started_at = '2029-01-01'
    ),
    'entries of the retention log older than 400 days are removed'
);
select is(
    (
        select rows_removed from runs
        where kind = 'leads'
    ), 1::bigint,
    'the leads run counts the lead it removed'
);

-- A second run finds nothing due.
select is(
    (select sum(rows_removed)::integer from app_logic.apply_retention()), 0,
    'a second run removes nothing'
);

-- Batches: at most p_max_rows per rule, oldest first, and "complete" tells whether more is due.
insert into app.brand_engagement (session_id, created_at) values
('b-1', '2020-01-01'), ('b-2', '2020-01-02'), ('b-3', '2020-01-03');
select results_eq(
    $$ select rows_removed, complete from app_logic.apply_retention('brand_engagement', 2) $$,
    $$ values (2::bigint, false) $$,
    'a batch stops at p_max_rows and reports that more is due'
);
select results_eq(
    $$ select session_id from app.brand_engagement where session_id in ('b-1', 'b-2', 'b-3') $$,
    $$ values ('b-3') $$,
    'the oldest rows go first'
);
select results_eq(
    $$ select rows_removed, complete from app_logic.apply_retention('brand_engagement', 2) $$,
    $$ values (1::bigint, true) $$,
    'the next batch takes the rest and reports completion'
);

-- Rules are data: a disabled rule is skipped, a changed period applies at once.
update app.retention_rules set enabled = false
where kind = 'accessibility_preferences';
insert into app.accessibility_preferences (session_id, accessibility_theme, last_updated) values
('p-off', 'default', '2020-01-01');
select is(
    (
        select count(*)::integer from app_logic.apply_retention()
        where kind = 'accessibility_preferences'
    ), 0,
    'a disabled rule does not run'
);
select ok(
    exists (
        select from app.accessibility_preferences
        where session_id = 'p-off'
    ),
    'data of a disabled rule stays'
);
update app.retention_rules set keep_for = interval '30 days'
where kind = 'brand_engagement';
insert into app.brand_engagement (session_id, created_at) values
('e-40-days', '2030-05-06'), ('e-20-days', '2030-05-26');
select results_eq(
    $$ select rows_removed, complete from app_logic.apply_retention('brand_engagement') $$,
    $$ values (2::bigint, true) $$,
    'a period changed in app.retention_rules applies on the next run (e-fresh and e-40-days)'
);
select results_eq(
    $$ select session_id from app.brand_engagement where session_id in ('e-20-days', 'e-40-days', 'e-fresh') $$,
    $$ values ('e-20-days') $$,
    'with a 30-day period, 40-day-old engagement goes and 20-day-old stays'
);

select throws_ok(
    $$ select * from app_logic.apply_retention('everything') $$,
    '22023', 'there is no retention rule for everything',
    'an unknown kind is refused'
);

select * from finish();
rollback;
