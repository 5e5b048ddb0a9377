-- The rules of a lead's, an interaction's and a rate-limit counter's values are domains since
-- db/schema/471 and 472 (a table CHECK is prepared again for every INSERT, a domain's once per
-- session); the load times are plain columns the submission fills (db/schema/470). Every rule
-- still refuses what it refused, with the same SQLSTATE, and the lists read the base types.
begin;
select plan(52);

-- No table checks itself: every single-column rule is a domain's (email and session_id since
-- db/schema/540), and the rule across two columns the always empty index leads_phone_needed_idx
-- (db/schema/670), whose predicate is kept parsed where a CHECK is parsed again for every INSERT.
select is(
    (
        select array_agg(format('%s %s', conrelid::regclass, conname) order by conrelid::regclass::text, conname)
        from pg_constraint
        where
            conrelid in ('app.leads'::regclass, 'app.lead_interactions'::regclass, 'app.rate_limit_counters'::regclass)
            and contype = 'c'
    ),
    null,
    'app.leads, the interactions and the counters have no table check to parse for every INSERT'
);
select is(
    (
        select count(*)::integer from pg_attribute
        where attrelid = 'app.leads'::regclass and attgenerated <> ''
    ),
    0,
    'app.leads has no generated column to compile for every INSERT'
);

-- A lead inserted as the owner with one column's value (an SQL expression) changed.
create function pg_temp.lead_with(p_column text, p_value text) returns void
language plpgsql volatile
as $$
declare
    v_values jsonb := jsonb_build_object(
        'first_name', '''A''', 'last_name', '''B''', 'gdpr_consent', 'true',
        'email', quote_literal('rule-' || md5(random()::text) || '@example.org')
    ) || jsonb_build_object(p_column, p_value);
begin
    execute format(
        'insert into app.leads (%s) values (%s)',
        (select string_agg(quote_ident(e.key), ', ' order by e.key) from jsonb_each_text(v_values) as e),
        (select string_agg(e.value, ', ' order by e.key) from jsonb_each_text(v_values) as e)
    );
end
$$;

select throws_ok($$ select pg_temp.lead_with('first_name', '''''') $$, '23514', null, 'an empty first name is refused');
select throws_ok(
    $$ select pg_temp.lead_with('last_name', quote_literal(repeat('x', 101))) $$, '23514', null,
    'a last name of 101 characters is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('phone', '''020 7946 0958''') $$, '23514', null, 'a phone number not in E.164 is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('company_name', quote_literal(repeat('c', 201))) $$, '23514', null,
    'a company of 201 characters is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('inquiry_details', quote_literal(repeat('i', 5001))) $$, '23514', null,
    'an inquiry of 5001 characters is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('lead_source', '''Trade Fair''') $$, '23514', null, 'a source that is not a slug is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('accessibility_theme', '''sepia''') $$, '23514', null, 'an unknown theme is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('preferred_communication', '''fax''') $$, '23514', null,
    'an unknown way of answering is refused'
);
select throws_ok(
    $$ insert into app.leads (first_name, last_name, email, gdpr_consent) values ('A', 'B', 'no-gdpr@example.org', false) $$,
    '23514', null, 'a lead without GDPR consent is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('logo_interactions', '-1') $$, '23514', null, 'a negative logo interaction count is refused'
);
select throws_ok($$ select pg_temp.lead_with('time_on_site', '-1') $$, '23514', null, 'a negative time on site is refused');
select throws_ok(
    $$ select pg_temp.lead_with('pages_viewed', '''{}''') $$, '23514', null, 'pages viewed that are not an array are refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('core_web_vitals', '''[]''') $$, '23514', null, 'vitals that are not an object are refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('device_type', '''watch''') $$, '23514', null, 'an unknown device type is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('browser_info', quote_literal(jsonb_build_object('ua', repeat('u', 4100)))) $$,
    '23514', null, 'browser info over 4096 bytes is refused'
);
select throws_ok($$ select pg_temp.lead_with('email', '''a@''') $$, '23514', null, 'an email under 3 characters is refused');
select throws_ok(
    $$ select pg_temp.lead_with('email', quote_literal(repeat('e', 243) || '@example.org')) $$, '23514', null,
    'an email of 255 characters is refused'
);
select lives_ok(
    $$ select pg_temp.lead_with('email', quote_literal(repeat('f', 242) || '@example.org')) $$,
    'an email of 254 characters is stored'
);
select throws_ok($$ select pg_temp.lead_with('session_id', '''''') $$, '23514', null, 'an empty session id is refused');
select throws_ok(
    $$ select pg_temp.lead_with('session_id', quote_literal(repeat('s', 101))) $$, '23514', null,
    'a session id of 101 characters is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('preferred_communication', '''phone''') $$, '23514',
    'value for domain app.lead_phone_needed violates check constraint "leads_phone_needed"',
    'answering by phone without a phone number is refused, naming leads_phone_needed'
);
select lives_ok(
    $$ insert into app.leads (first_name, last_name, email, gdpr_consent, preferred_communication, phone)
       values ('P', 'Q', 'by-phone@example.org', true, 'phone', '+442079460958') $$,
    'a lead answered by phone with a phone number is stored'
);
select throws_ok(
    $$ update app.leads set phone = null where email = 'by-phone@example.org' $$, '23514', null,
    'removing the phone number of a lead answered by phone is refused'
);
select lives_ok(
    $$ update app.leads set phone = '+14155552671' where email = 'by-phone@example.org' $$,
    'changing the phone number of a lead answered by phone is stored'
);
select lives_ok(
    $$ update app.leads set preferred_communication = 'email', phone = null where email = 'by-phone@example.org' $$,
    'answering by email, a lead may drop its phone number'
);
select throws_ok(
    $$ update app.leads set preferred_communication = 'phone' where email = 'by-phone@example.org' $$, '23514', null,
    'answering by phone without a phone number is refused in an update too'
);
select throws_ok(
    $$ insert into app.leads (first_name, last_name, email, gdpr_consent, preferred_communication)
       values ('P', 'Q', 'by-phone-2@example.org', true, 'phone') on conflict do nothing $$, '23514', null,
    'answering by phone without a phone number is refused by an INSERT ... ON CONFLICT DO NOTHING'
);
select is(
    (
        select pg_get_expr(i.indpred, i.indrelid) from pg_index as i
        where i.indexrelid = 'app.leads_phone_needed_idx'::regclass
    ),
    '(((preferred_communication)::text = ''phone''::text) AND (phone IS NULL))',
    'leads_phone_needed_idx covers exactly the leads answered by phone without a number'
);
select lives_ok(
    $$ select pg_temp.lead_with('phone', '''+442079460958''') $$, 'a lead within every rule is stored'
);

-- The source's check has no bounded repeat since db/schema/600 (its '{1,50}' cost about 36k
-- instructions per submission) and refuses exactly what '^[a-z0-9_]{1,50}$' refused.
select unalike(
    (
        select pg_get_constraintdef(c.oid) from pg_constraint as c
        where c.conname = 'lead_source_check'
    ),
    '%{%',
    'the source''s check runs no bounded repeat'
);
create function pg_temp.accepts(p_domain regtype, p_value text) returns boolean
language plpgsql volatile
as $$
begin
    execute format('select %L::%s', p_value, p_domain);
    return true;
exception when check_violation then
    return false;
end
$$;
select is(
    (
        select array_agg(v order by v)
        from (
            select chr(c) as v from generate_series(1, 1000) as c
            union all
            select unnest(array[
                '', 'contact_form', repeat('a', 49), repeat('a', 50), repeat('a', 51), repeat('_', 50) || 'A',
                'Trade Fair', E'trade_fair\n', E'\ntrade_fair', E'a\nb', 'a-b', 'a.b', ' a', 'a ', E'a\t',
                'caf' || chr(233), chr(65345), chr(1635), chr(8232), 'x' || chr(8203), chr(65279) || 'x',
                repeat(chr(233), 10), '0', '9_z', 'ABC', 'abc'
            ])
        ) as t
        where pg_temp.accepts('app.lead_source', v) is distinct from (v ~ '^[a-z0-9_]{1,50}$')
    ),
    null,
    'the source''s check accepts and refuses what the bounded pattern did, on 1,026 values'
);
select throws_ok(
    $$ select pg_temp.lead_with('lead_source', quote_literal(repeat('s', 51))) $$, '23514',
    'value for domain app.lead_source violates check constraint "lead_source_check"',
    'a source of 51 characters inserted directly is refused with the domain''s message'
);

-- The name, email and session id lengths are one range test each since db/schema/601 (two
-- function calls where BETWEEN made four) and accept the lengths BETWEEN accepted.
select is(
    (
        select array_agg(c.conname::text order by c.conname)
        from pg_constraint as c
        where
            c.contypid in ('app.lead_name'::regtype, 'app.lead_email'::regtype, 'app.lead_session_id'::regtype)
            and pg_get_constraintdef(c.oid) like '%<@%' and pg_get_constraintdef(c.oid) not like '%>=%'
    ),
    array['lead_email_check', 'lead_name_check', 'lead_session_id_check'],
    'the name, email and session id checks test their length against one range'
);
select is(
    (
        select array_agg(format('%s %s', d.domain, n) order by d.domain, n)
        from
            (values ('app.lead_name'::regtype, 1, 100), ('app.lead_email', 3, 254), ('app.lead_session_id', 1, 100))
                as d (domain, low, high),
            generate_series(0, 300) as n
        where pg_temp.accepts(d.domain, repeat(chr(233), n)) is distinct from (n between d.low and d.high)
    ),
    null,
    'each accepts the lengths between its bounds and refuses the others (0 to 300 characters)'
);
select throws_ok(
    $$ select pg_temp.lead_with('first_name', quote_literal(repeat('x', 101))) $$, '23514',
    'value for domain app.lead_name violates check constraint "lead_name_check"',
    'a first name of 101 characters inserted directly is refused with the domain''s message'
);

insert into app.leads (first_name, last_name, email, gdpr_consent) values ('I', 'J', 'interactions@example.org', true);
select throws_ok(
    $$ insert into app.lead_interactions (lead_id, kind)
       select l.id, 'gossip' from app.leads as l where l.email = 'interactions@example.org' $$,
    '23514', null, 'an unknown interaction kind is refused'
);
select throws_ok(
    $$ insert into app.lead_interactions (lead_id, kind, note)
       select l.id, 'note', repeat('n', 5001) from app.leads as l where l.email = 'interactions@example.org' $$,
    '23514', null, 'a note of 5001 characters is refused'
);
select throws_ok(
    $$ insert into app.rate_limit_counters (action, scope, subject, expires_at) values ('leads', 'cookie', 's', now()) $$,
    '23514', null, 'a counter of an unknown scope is refused'
);
select throws_ok(
    $$ insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values ('x', 'cookie', 1, 1) $$,
    '23514', null, 'a rule of an unknown scope is refused'
);
select is(
    (
        select count(*)::integer from pg_constraint
        where conrelid = 'app.lead_sessions'::regclass and contype = 'c'
    ),
    0,
    'app.lead_sessions checks its session id through the domain, with no table check'
);
select throws_ok(
    $$ insert into app.lead_sessions (session_id, lead_id, claimed_at)
       select '', l.id, now() from app.leads as l where l.email = 'interactions@example.org' $$,
    '23514', null, 'a session claim with an empty session id is refused'
);
select throws_ok(
    $$ insert into app.lead_sessions (session_id, lead_id, claimed_at)
       select repeat('s', 101), l.id, now() from app.leads as l where l.email = 'interactions@example.org' $$,
    '23514', null, 'a session claim with a session id of 101 characters is refused'
);

-- The submission fills the load times from the vitals it stores, as the generated columns did.
delete from app.rate_limit_rules
where action = 'leads';
select set_config('request.headers', '{"x-real-ip": "203.0.113.30", "user-agent": "pgtap"}', true);
set local role anon;
select api.submit_lead(tap.lead('{"email": "vitals@example.org", "coreWebVitals": {"lcp": 1200.5, "fid": 0, "cls": 0.1}}'));
select api.submit_lead(tap.lead('{"email": "no-vitals@example.org"}'));
reset role;
select results_eq(
    $$ select email::text, load_time_lcp, load_time_fid, (core_web_vitals ->> 'lcp')::numeric from app.leads
       where email in ('vitals@example.org', 'no-vitals@example.org') order by email $$,
    $$ values ('no-vitals@example.org', null::numeric, null::numeric, null::numeric),
              ('vitals@example.org', 1200.5, 0, 1200.5) $$,
    'a submission stores lcp and fid of its vitals as the load times, none without vitals'
);

-- The lists read a domain as its base type: its messages name no domain, and a value the base
-- type reads is a value to compare with (PostgreSQL compares a filter's value as the base type).
select is(
    app_logic.list_fields('api.leads') -> 'timeOnSite', '{"name": "int4", "type": "integer", "category": "N"}',
    'timeOnSite is an integer field of the list'
);
select is(
    app_logic.list_fields('api.leads') -> 'email', '{"name": "text", "type": "text", "category": "S"}',
    'email is a text field of the list'
);
select is(
    app_logic.list_fields('api.leads') -> 'sessionId', '{"name": "text", "type": "text", "category": "S"}',
    'sessionId is a text field of the list'
);
select is(
    app_logic.list_fields('api.leads') -> 'pagesViewed', '{"name": "jsonb", "type": "jsonb", "category": "U"}',
    'pagesViewed is a JSON field of the list'
);
select is(
    app_logic.condition_problems('logoInteractions', 'logoInteractions', 'gte.-1', app_logic.list_fields('api.leads')),
    null,
    'a negative number is a valid integer to compare logoInteractions with'
);
select is(
    app_logic.condition_problems('timeOnSite', 'timeOnSite', 'eq.soon', app_logic.list_fields('api.leads')),
    app_logic.problem('timeOnSite', 'timeOnSite: the value is not a valid integer.'),
    'a value that is not an integer is named as such'
);
select is(
    app_logic.condition_problems('pagesViewed', 'pagesViewed', 'cs.["/"]', app_logic.list_fields('api.leads')),
    null,
    'cs applies to pagesViewed, a JSON field'
);

select * from finish();
rollback;
