-- Sessions: the first lead whose submission names a session owns it. Its preferences and
-- engagement are that lead's whether they arrive before or after; a resubmission from a new
-- session claims that one too; another person naming an owned session (a shared browser, or
-- someone who learnt the id) takes nothing from the owner.
begin;
select plan(17);

-- The id of the lead with that email (every check below asks whose a session's data is).
create function pg_temp.lead_id(p_email text) returns uuid
language sql stable as $$
    select l.id from app.leads as l where l.email = p_email
$$;

-- The lead a session's preferences belong to (null: none yet).
create function pg_temp.preferences_owner(p_session_id text) returns uuid
language sql stable as $$
    select p.lead_id from app.accessibility_preferences as p where p.session_id = p_session_id
$$;

delete from app.rate_limit_rules;
select set_config('request.headers', '{"x-real-ip": "198.51.100.7"}', true);

-- Ada's browser posts before she submits the form.
select tap.call_as('anon', $$api.save_accessibility_preferences('{"sessionId": "sess-a", "accessibilityTheme": "tritanopia"}')$$);
select tap.call_as('anon', $$api.record_brand_engagement('{"sessionId": "sess-a", "scrollDepthPercentage": 40}')$$);
select tap.call_as('anon', $$api.save_accessibility_preferences('{"sessionId": "sess-x", "accessibilityTheme": "default"}')$$);

select tap.call_as('anon', format('api.submit_lead(%L)', tap.lead('{"email": "ada@example.org", "sessionId": " sess-a "}')));
select is(
    pg_temp.preferences_owner('sess-a'),
    pg_temp.lead_id('ada@example.org'),
    'a lead arriving after the preferences links them'
);
select is(
    (
        select e.lead_id from app.brand_engagement as e
        where e.session_id = 'sess-a'
    ),
    pg_temp.lead_id('ada@example.org'),
    'a lead arriving after the engagement links it'
);
select is(
    pg_temp.preferences_owner('sess-x'), null,
    'another session''s preferences stay unlinked'
);

select tap.call_as('anon', $$api.record_brand_engagement('{"sessionId": "sess-a", "scrollDepthPercentage": 80}')$$);
select is(
    (
        select count(*)::integer from app.brand_engagement as e
        where e.session_id = 'sess-a' and e.lead_id = pg_temp.lead_id('ada@example.org')
    ),
    2, 'engagement posted after the lead links to it'
);

-- Mallory submits a lead of her own with Ada's session id.
select is(
    tap.call_as('anon', format('api.submit_lead(%L)', tap.lead('{"email": "mallory@example.net", "sessionId": "sess-a"}'))),
    '{"status": 201, "body": {"status": "received"}}',
    'a lead naming a session another lead owns is stored like any other'
);
select is(
    app_logic.session_lead(
        'sess-a'
    ), pg_temp.lead_id('ada@example.org'),
    'the session stays with the first lead that named it'
);
select is(
    (select array_agg(distinct p.lead_id) from (
        select lead_id from app.accessibility_preferences
        where session_id = 'sess-a'
        union all
        select lead_id from app.brand_engagement
        where session_id = 'sess-a'
    ) as p),
    array[pg_temp.lead_id('ada@example.org')],
    'none of the session''s preferences or engagement moved to the second lead'
);
select tap.call_as('anon', $$api.save_accessibility_preferences('{"sessionId": "sess-a", "accessibilityTheme": "default"}')$$);
select is(
    pg_temp.preferences_owner('sess-a'),
    pg_temp.lead_id('ada@example.org'),
    'a later update of the session''s preferences keeps them the owner''s'
);

-- Ada submits again from her phone: a resubmission claims that session for her.
select
    tap.call_as(
        'anon', $$api.save_accessibility_preferences('{"sessionId": "sess-phone", "accessibilityTheme": "protanopia"}')$$
    );
select tap.call_as('anon', format('api.submit_lead(%L)', tap.lead('{"email": "ADA@example.org", "sessionId": "sess-phone"}')));
select is(
    pg_temp.preferences_owner('sess-phone'),
    pg_temp.lead_id('ada@example.org'),
    'a resubmission from a new session claims it and links its data'
);
select results_eq(
    $$ select s.session_id::text from app.lead_sessions as s
       where s.lead_id = pg_temp.lead_id('ada@example.org') order by 1 $$,
    $$ values ('sess-a'), ('sess-phone') $$,
    'the lead owns both sessions its submissions named'
);
-- Mallory resubmits naming Ada's phone session: nothing moves.
select tap.call_as(
    'anon', format('api.submit_lead(%L)', tap.lead('{"email": "mallory@example.net", "sessionId": "sess-phone"}'))
);
select is(
    app_logic.session_lead(
        'sess-phone'
    ), pg_temp.lead_id('ada@example.org'),
    'a resubmission naming an owned session does not take it'
);
select is_empty(
    $$ select s.session_id from app.lead_sessions as s
       where s.lead_id = pg_temp.lead_id('mallory@example.net') $$,
    'the second person owns none of the sessions she named after their owner'
);

-- An operator moving a lead to another session: the new, unowned session is claimed.
update app.leads set session_id = 'sess-x'
where email = 'mallory@example.net';
select is(
    pg_temp.preferences_owner('sess-x'),
    pg_temp.lead_id('mallory@example.net'),
    'a lead whose session id changes to an unowned session claims it'
);

select has_trigger('app', 'leads', 'leads_session', 'app.leads has the session-claiming trigger');
-- One row trigger claims the session and converts its A/B tests (db/functions/200-ab-tests.sql):
-- each trigger fired sets up its own call and NEW row for every lead naming a session.
select is(
    (
        select array_agg(t.tgname::text order by t.tgname) from pg_trigger as t
        where t.tgrelid = 'app.leads'::regclass and not t.tgisinternal and pg_get_triggerdef(t.oid) like '%session_id%'
    ),
    array['leads_session'],
    'app.leads has one trigger for a lead''s session (claim and A/B conversion)'
);
select ok(
    not exists (
        select from unnest(array['anon', 'reader', 'admin']) as r
        where has_table_privilege(r, 'app.lead_sessions', 'select,insert,update,delete,truncate')
    ),
    'no API role may read or write the session claims'
);
select ok(
    (
        select c.relrowsecurity from pg_class as c
        where c.oid = 'app.lead_sessions'::regclass
    ),
    'app.lead_sessions has row level security on'
);

select * from finish();
rollback;
