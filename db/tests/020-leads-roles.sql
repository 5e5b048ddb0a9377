-- Leads: what each role (anon, reader, admin) can and cannot do with the leads, their
-- history and the CRM entries, and the RLS policies behind the grants.
begin;
select plan(27);

-- Rate limits are tested in 040-rate-limits; here they would stop the sixth request.
delete from app.rate_limit_rules
where action = 'leads';
select set_config('request.headers', '{"x-real-ip": "203.0.113.10", "user-agent": "pgtap"}', true);

-- Two submissions of one address: one lead, two history entries.
select api.submit_lead(tap.lead('{"phone": "+44 20 7946 0958"}'));
select api.submit_lead(tap.lead('{"email": "ADA@EXAMPLE.ORG"}'));

-- What each role can do.
set local role anon;
select throws_ok('select * from api.leads', '42501', 'permission denied for view leads', 'anon cannot read api.leads');
select
    throws_ok(
        'select * from api.lead_interactions',
        '42501',
        'permission denied for view lead_interactions',
        'anon cannot read api.lead_interactions'
    );
select throws_ok('select * from app.leads', '42501', 'permission denied for schema app', 'anon cannot reach the table schema');
select
    throws_ok(
        'select api.add_lead_interaction(''{}'')',
        '42501',
        'permission denied for function add_lead_interaction',
        'anon cannot add interactions'
    );
select
    throws_ok(
        'select * from app.consent_audit', '42501', 'permission denied for schema app', 'anon cannot reach the consent audit'
    );
reset role;

set local role reader;
select is((select count(*)::integer from api.leads), 1, 'reader reads the leads');
select is((select count(*)::integer from api.lead_interactions), 2, 'reader reads the history');
select
    throws_ok(
        'select api.add_lead_interaction(''{}'')',
        '42501',
        'permission denied for function add_lead_interaction',
        'reader cannot add interactions'
    );
select
    throws_ok(
        'insert into api.leads ("firstName") values (''x'')',
        '42501',
        'permission denied for view leads',
        'reader cannot insert through the view'
    );
select
    throws_ok(
        'update api.leads set "firstName" = ''x''',
        '42501',
        'permission denied for view leads',
        'reader cannot update through the view'
    );
select throws_ok('delete from api.leads', '42501', 'permission denied for view leads', 'reader cannot delete through the view');
select
    throws_ok(
        'select * from app.consent_audit',
        '42501',
        'permission denied for table consent_audit',
        'reader cannot read the consent audit'
    );
reset role;

set local role admin;
select is((select count(*)::integer from api.leads), 1, 'admin reads the leads');
select is(
    api.add_lead_interaction(jsonb_build_object('leadId', (select id from api.leads), 'kind', 'meeting')) ->> 'status',
    'recorded',
    'admin adds an interaction'
);
select is(current_setting('response.status'), '201', 'an added interaction is answered 201');
select is(
    api.add_lead_interaction('{"leadId": "00000000-0000-0000-0000-000000000000", "kind": "call"}') -> 'errors',
    tap.one_error('leadId', 'leadId does not name a known lead.'),
    'an unknown leadId is refused naming leadId'
);
select is(
    api.add_lead_interaction(jsonb_build_object('leadId', (select id from api.leads), 'kind', 'note')) -> 'errors',
    tap.one_error('note', 'note is required when kind is note.'),
    'a note without text is refused'
);
select is(
    api.add_lead_interaction(jsonb_build_object('leadId', (select id from api.leads), 'kind', 'resubmission')) -> 'errors',
    tap.one_error('kind', 'kind must be one of: note, call, email, meeting, status_change.'),
    'the system kinds cannot be added by hand'
);
select
    throws_ok(
        'delete from api.lead_interactions',
        '42501',
        'permission denied for view lead_interactions',
        'admin cannot delete history'
    );
select
    throws_ok(
        'select * from app.rate_limit_counters',
        '42501',
        'permission denied for table rate_limit_counters',
        'admin cannot read rate-limit counters'
    );
reset role;

-- RLS stands behind the grants: a role granted the table but given no policy sees nothing.
grant usage on schema app to anon;
grant select on app.leads to anon;
set local role anon;
select is((select count(*)::integer from app.leads), 0, 'without a policy a granted role still reads no lead');
reset role;

select policies_are('app', 'leads', array['leads_select_with_key'], 'app.leads has exactly the read policy');
select
    policy_roles_are(
        'app', 'leads', 'leads_select_with_key', array['reader', 'admin'], 'the read policy is for reader and admin'
    );
select policy_cmd_is('app', 'leads', 'leads_select_with_key', 'select', 'the read policy only reads');
select policies_are(
    'app', 'lead_interactions', array['lead_interactions_select_with_key'], 'app.lead_interactions has exactly the read policy'
);

select is_empty(
    $$ select c.relname || '.' || a.attname from pg_attribute as a join pg_class as c on c.oid = a.attrelid
       where c.relnamespace = 'api'::regnamespace and c.relname in ('leads', 'lead_interactions')
         and a.attnum > 0 and col_description(c.oid, a.attnum) is null $$,
    'every column of the lead views is documented'
);
select is_empty(
    $$ select p.oid::regprocedure::text from pg_proc as p
       where p.pronamespace = 'api'::regnamespace and obj_description(p.oid, 'pg_proc') is null $$,
    'every api function is documented'
);

select * from finish();
rollback;
