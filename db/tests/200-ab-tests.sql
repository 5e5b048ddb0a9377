-- A/B tests: the create rule and its extra checks, deterministic weighted assignment with its
-- exposure, conversions once per session and kind, the lead trigger, the results view with
-- the z-test, and who may call what.
begin;
select plan(26);

select set_config('app.frozen_now', '2026-12-01T09:00:00Z', true);

create function pg_temp.bad_fields(p_body jsonb) returns text[]
language sql stable as $$
    select coalesce(array_agg(distinct p ->> 'field' order by p ->> 'field'), '{}')
    from jsonb_array_elements(app_logic.validate(p_body, app_logic.create_ab_test_rule())) as p
$$;

-- The rule
select is(
    pg_temp.bad_fields('{"name": "hero-logo", "goal": "lead", "variants": [{"name": "a", "design": {}, "weight": 1}]}'),
    '{}', 'rule: a well-shaped test passes the rule (the variant count is an extra check)'
);
select is(
    pg_temp.bad_fields('{"name": "-x", "goal": "1lead", "variants": {}, "startsAt": "tomorrow"}'),
    '{goal,name,startsAt,variants}', 'rule: a bad name, goal, variants and startsAt are each named'
);
select is(
    (select array_agg(p ->> 'field' order by p ->> 'field') from jsonb_array_elements(app_logic.ab_test_problems(
        '{"variants": [{"name": "a", "weight": 0}], "startsAt": "2026-02-30T00:00:00Z"}'
    )) as p),
    '{startsAt,variants,variants[0].weight}', 'extra checks: one variant, weight 0 and a non-existent day are named'
);

-- Creating, as admin only
select is(
    tap.call_with_query('admin', $$api.create_ab_test('{"name": "hero", "goal": "cta_click", "variants": [
        {"name": "control", "design": {"logo": "flat"}, "weight": 1},
        {"name": "glass", "design": {"logo": "glass"}, "weight": 3}]}')$$),
    '{"status": 201, "body": {"status": "created", "test": "hero"}}', 'an admin creates a test: 201'
);
select is(
    (select tap.call_with_query('admin', $$api.create_ab_test('{"name": "hero", "goal": "lead", "variants": [
        {"name": "a", "design": {}, "weight": 1}, {"name": "b", "design": {}, "weight": 1}]}')$$) -> 'body' ->> 'code'),
    'CHE02', 'a started test cannot be replaced: 409 CHE02'
);
select is(
    (select array_agg(weight order by position) from app.ab_test_variants),
    '{1,3}'::numeric[], 'the refused replacement changed no weight'
);
select throws_ok(
    $$select tap.call_with_query('anon', $q$api.create_ab_test('{}')$q$)$$, '42501', null, 'anon may not create tests'
);
select throws_ok(
    $$select tap.call_with_query('reader', $q$api.stop_ab_test('{"name": "hero"}')$q$)$$, '42501', null,
    'a reader may not stop tests'
);

-- Assignment
select is(
    tap.call_with_query('anon', 'api.assign_ab_test(''{}'')', 'test=hero&sessionId=sess-1') -> 'status',
    '200', 'anon is assigned a variant'
);
select is(
    (
        select count(*) from app.ab_test_exposures
        where session_id = 'sess-1'
    )::integer, 1,
    'the first assignment is recorded as an exposure'
);
create function pg_temp.exposed_variant(p_session text) returns text
language sql stable as $$
    select v.name
    from app.ab_test_variants as v
    inner join app.ab_test_exposures as e on v.test_id = e.test_id and v.position = e.position
    where e.session_id = p_session
$$;
select is(
    tap.call_with_query('anon', 'api.assign_ab_test(''{}'')', 'test=hero&sessionId=sess-1') -> 'body' ->> 'variant',
    pg_temp.exposed_variant('sess-1'),
    'a second assignment answers the exposed variant'
);
select is(
    (select count(*) from app.ab_test_exposures)::integer, 1, 'a second assignment records no second exposure'
);
select ok(
    (
        select
            abs(
                count(*) filter (where app_logic.ab_test_pick(t.id, app_logic.ab_test_bucket('hero', 's' || g)) = 2) / 10000.0
                - 0.75
            )
            < 0.02
        from app.ab_tests as t cross join generate_series(1, 10000) as g
    ),
    'weights 1:3 give the second variant 75% of 10,000 sessions (within 2 points)'
);
select is(
    tap.call_with_query('anon', 'api.assign_ab_test(''{}'')', 'test=nope&sessionId=s') -> 'body' ->> 'code',
    'CHE01', 'an unknown test is 404 CHE01'
);
select is(
    tap.call_with_query('anon', 'api.assign_ab_test(''{}'')', 'test=hero&sessionId=s&extra=1')
    -> 'body' -> 'errors' -> 0 ->> 'field',
    'extra', 'an unknown query parameter is named'
);

-- Conversions and the lead trigger
select is(
    tap.call_with_query(
        'anon', $$api.record_ab_test_conversion('{"test": "hero", "sessionId": "sess-1", "kind": "cta_click"}')$$
    ),
    '{"status": 201, "body": {"status": "recorded"}}', 'an exposed session converts: 201'
);
select is(
    tap.call_with_query('anon', $$api.record_ab_test_conversion('{"test": "hero", "sessionId": "sess-1", "kind": "cta_click"}')$$)
    -> 'status',
    '200', 'the same session and kind again is 200 and not counted twice'
);
select is(
    tap.call_with_query('anon', $$api.record_ab_test_conversion('{"test": "hero", "sessionId": "sess-9", "kind": "cta_click"}')$$)
    -> 'body' ->> 'code',
    'CHE03', 'a session never exposed cannot convert: 409 CHE03'
);
insert into app.leads (first_name, last_name, email, gdpr_consent, session_id)
values ('Ada', 'Lovelace', 'ada@example.org', true, 'sess-1');
select is(
    (
        select array_agg(kind order by kind) from app.ab_test_conversions
        where session_id = 'sess-1'
    ),
    '{cta_click,lead}', 'a lead with the exposed session id converts the lead kind by itself'
);
insert into app.leads (first_name, last_name, email, gdpr_consent, session_id)
values ('Bo', 'Never Shown', 'bo@example.org', true, 'sess-never-shown');
select is(
    (
        select count(*)::integer from app.ab_test_conversions
        where session_id = 'sess-never-shown'
    ),
    0, 'a lead whose session was shown no test converts nothing'
);
select ok(
    not exists (
        select from pg_proc
        where
            oid in (
                'app_logic.tg_leads__session()'::regprocedure, 'app_logic.claim_session(uuid, text)'::regprocedure
            )
            and (prosecdef or proconfig is not null)
    ),
    'the lead trigger and the claim run as the owner that writes app.leads: no definer, no pinned search path to switch per lead'
);

-- Results
select ok(
    abs(app_logic.two_proportion_p_value(20, 200, 40, 200) - 0.0051014) < 1e-6,
    'the two-proportion p-value of 20/200 against 40/200 is 0.0051014 (z = 2.80), within 1e-6'
);
select is(
    app_logic.normal_upper_tail(1.959964)::numeric(8, 5), 0.02500::numeric(8, 5), 'the normal upper tail at 1.96 is 0.025'
);
select is(
    (
        select count(*) from api.ab_test_results
        where test = 'hero'
    )::integer, 14,
    'the results have a row per variant and theme (all, five themes, unknown)'
);
select throws_ok(
    $$select tap.call_with_query('anon', 'count(*) from api.ab_test_results')$$, '42501', null, 'anon may not read the results'
);
select is(
    (
        select count(*) from information_schema.column_privileges
        where grantee in ('reader', 'admin', 'anon') and table_schema = 'app' and table_name like 'ab\_test%'
    )::integer,
    0, 'no API role holds a privilege on the A/B tables'
);

select * from finish();
rollback;
