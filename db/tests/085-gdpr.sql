-- Data protection endpoints: only admin may call them; export, consent and erasure work by
-- email in any letter case; bad input is answered 400, an unknown person 404 (erasure: 200).
begin;
select plan(33);

select set_config('app.frozen_now', '2030-06-15 12:00:00+00', true);
-- pgTAP's own functions, for the assertions made under the API roles (rolled back).
grant execute on all functions in schema public to anon, reader, admin;

insert into app.leads (id, first_name, last_name, email, phone, gdpr_consent, session_id) values
('00000000-0000-0000-0000-0000000000d1', 'Dora', 'Datum', 'Dora.Datum@Example.org', '+4930123456', true, 's-dora'),
('00000000-0000-0000-0000-0000000000e1', 'Emil', 'Else', 'emil@example.org', null, true, 's-emil'),
('00000000-0000-0000-0000-0000000000f1', 'Fritz', 'Flat', 'fritz@example.org', null, true, 's-fritz');
insert into app.lead_interactions (lead_id, kind, note) values
('00000000-0000-0000-0000-0000000000d1', 'submission', null),
('00000000-0000-0000-0000-0000000000e1', 'submission', null);
insert into app.accessibility_preferences (session_id, lead_id, accessibility_theme) values
('s-dora', '00000000-0000-0000-0000-0000000000d1', 'tritanopia'),
('s-emil', '00000000-0000-0000-0000-0000000000e1', 'default');
-- Engagement of Dora's session that was never linked by lead_id: found through the session.
insert into app.brand_engagement (session_id, lead_id) values
('s-dora', null),
('s-emil', '00000000-0000-0000-0000-0000000000e1'),
-- Fritz used Dora's browser: that engagement is linked to him, so it is his, not hers.
('s-dora', '00000000-0000-0000-0000-0000000000f1');
insert into app.rate_limit_counters (action, scope, subject, hits, expires_at) values
(
    'leads', 'email', app_logic.rate_limit_subject('leads', 'email', 'dora.datum@example.org'),
    array['2030-06-15 11:00:00+00'::timestamptz], '2030-06-15 12:00:00+00'
),
(
    'leads', 'email', app_logic.rate_limit_subject('leads', 'email', 'emil@example.org'),
    array['2030-06-15 11:00:00+00'::timestamptz], '2030-06-15 12:00:00+00'
);
select app_logic.append_consent(app_logic.person_pseudonym('dora.datum@example.org'), 'consent', 'gdpr', true, 'web_form');

-- Who may call what: anon and reader are refused each data protection endpoint.
select
    throws_ok(
        format('select tap.call_as(%L, %L)', r.name, e.call), '42501', format('permission denied for function %s', e.fn),
        format('%s cannot %s', r.who, e.what)
    )
from (values (1, 'anon', 'anon'), (2, 'reader', 'a reader')) as r (position, name, who)
cross join (
    values
    (1, 'export_personal_data', $$api.export_personal_data('{"email": "dora.datum@example.org"}')$$, 'export personal data'),
    (2, 'erase_personal_data', $$api.erase_personal_data('{"email": "dora.datum@example.org"}')$$, 'erase personal data'),
    (
        3, 'record_consent', $$api.record_consent('{"email": "dora.datum@example.org", "marketingConsent": true}')$$,
        'record consent'
    )
) as e (position, fn, call, what)
order by r.position, e.position;
select ok(
    has_function_privilege('admin', 'api.export_personal_data(jsonb)', 'execute')
    and has_function_privilege('admin', 'api.erase_personal_data(jsonb)', 'execute')
    and has_function_privilege('admin', 'api.record_consent(jsonb)', 'execute'),
    'admin may call the three data protection endpoints'
);
select is_empty(
    $$ select p.oid::regprocedure::text from pg_proc as p
       where p.pronamespace = 'app_logic'::regnamespace
         and p.proname in ('export_personal_data', 'erase_personal_data', 'record_consent', 'apply_retention',
                           'verify_consent_chain', 'run_retention')
         and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('reader', p.oid, 'execute')
              or has_function_privilege('admin', p.oid, 'execute')) $$,
    'the internal data protection functions are granted to no API role'
);

-- Export, as admin.
set local role admin;
create temporary table exported on commit drop as
select api.export_personal_data('{"email": "  DORA.datum@EXAMPLE.org "}') as doc;
reset role;
select is(
    (select doc -> 'lead' ->> 'email' from exported), 'Dora.Datum@Example.org',
    'export finds the lead by email in any letter case'
);
select is(
    (
        select array[
            jsonb_array_length(doc -> 'leadInteractions'), jsonb_array_length(doc -> 'accessibilityPreferences'),
            jsonb_array_length(doc -> 'brandEngagement'), jsonb_array_length(doc -> 'consentAudit'),
            jsonb_array_length(doc -> 'rateLimitCounters')
        ] from exported
    ),
    array[1, 1, 1, 1, 1],
    'export holds the interactions, the preferences and engagement of the lead''s session, audit rows and counters'
);
select is(
    (select doc -> 'lead' ->> 'firstName' from exported), 'Dora',
    'export uses the API''s camelCase field names'
);
select is(current_setting('response.status'), '200', 'export answers 200');

set local role admin;
select is(
    api.export_personal_data('{"email": "nobody@example.org"}') ->> 'code', 'CHG01',
    'export of an address on which nothing is held answers CHG01'
);
reset role;
select is(current_setting('response.status'), '404', '... with status 404');

-- Input is validated like every endpoint's.
set local role admin;
select is(
    api.export_personal_data('{"email": "dora.datum@example.org", "name": "Dora"}') -> 'errors' -> 0 ->> 'field', 'name',
    'an unknown field is named'
);
select is(current_setting('response.status'), '400', '... and answered 400');
select is(
    api.erase_personal_data('{}') ->> 'message', 'email is required.',
    'erasure without an email is refused'
);
select is(
    api.erase_personal_data('{"email": "not-an-address"}') ->> 'message', 'email must be a valid email address.',
    'erasure with an invalid email is refused'
);
select is(
    api.record_consent('{"email": "dora.datum@example.org", "marketingConsent": "yes"}') ->> 'message',
    'marketingConsent must be true or false.',
    'consent must be a boolean'
);
reset role;
select is(
    (select count(*)::integer from app.leads), 3,
    'rejected requests changed nothing'
);

-- Consent
set local role admin;
select is(
    api.record_consent('{"email": "DORA.DATUM@example.org", "marketingConsent": true}') ->> 'status', 'recorded',
    'a consent change is recorded'
);
reset role;
select is(current_setting('response.status'), '201', '... with 201');
select results_eq(
    $$ select l.marketing_consent, a.event::text, a.consent_type::text, a.granted, a.source::text
       from app.leads as l, app.consent_audit as a
       where l.email = 'Dora.Datum@Example.org' and a.subject = app_logic.person_pseudonym('dora.datum@example.org')
         and a.seq = 2 $$,
    $$ values (true, 'consent', 'marketing', true, 'gdpr_endpoint') $$,
    'the lead''s marketing consent changed and the audit got a marketing consent row'
);
set local role admin;
select is(
    api.record_consent('{"email": "nobody@example.org", "marketingConsent": false}') ->> 'code', 'CHG01',
    'consent for an unknown address answers CHG01'
);
reset role;
select is(current_setting('response.status'), '404', '... with status 404');

-- Erasure
set local role admin;
create temporary table erased on commit drop as
select api.erase_personal_data('{"email": "dora.DATUM@example.org"}') as answer;
reset role;
select is(
    (select answer -> 'removed' from erased),
    '{"leads": 1, "pageViews": 0, "brandEngagement": 1, "leadInteractions": 2,
      "rateLimitCounters": 1, "accessibilityPreferences": 1,
      "abTestExposures": 0, "abTestConversions": 0, "logoInteractionHeatmaps": 0}'::jsonb,
    'erasure reports what it removed, kind by kind'
);
select ok(
    not exists (
        select from app.leads
        where lower(email) = 'dora.datum@example.org'
    )
    and not exists (
        select from app.lead_interactions
        where lead_id = '00000000-0000-0000-0000-0000000000d1'
    )
    and not exists (
        select from app.accessibility_preferences
        where session_id = 's-dora'
    )
    and not exists (
        select from app.brand_engagement
        where session_id = 's-dora' and lead_id is distinct from '00000000-0000-0000-0000-0000000000f1'
    )
    and not exists (
        select from app.rate_limit_counters
        where subject = app_logic.rate_limit_subject('leads', 'email', 'dora.datum@example.org')
    ),
    'the lead, its interactions, its sessions'' preferences and engagement and its email counters are gone'
);
select is(
    (
        select count(*)::integer from app.leads as l
        inner join app.lead_interactions as i on l.id = i.lead_id
        inner join app.accessibility_preferences as p on l.id = p.lead_id
        inner join app.brand_engagement as e on l.id = e.lead_id
        inner join app.rate_limit_counters as c on c.subject = app_logic.rate_limit_subject('leads', 'email', 'emil@example.org')
        where l.email = 'emil@example.org'
    ), 1,
    'another person''s data is untouched'
);
select ok(
    exists (
        select from app.brand_engagement
        where session_id = 's-dora' and lead_id = '00000000-0000-0000-0000-0000000000f1'
    ),
    'engagement of the same session linked to another lead stays: it is that lead''s'
);
select results_eq(
    $$ select seq::integer, event::text, source::text from app.consent_audit
       where subject = app_logic.person_pseudonym('dora.datum@example.org') order by seq $$,
    $$ values (1, 'consent', 'web_form'), (2, 'consent', 'gdpr_endpoint'), (3, 'erasure', 'gdpr_endpoint') $$,
    'the consent audit keeps its pseudonymous rows and records the erasure'
);
select is_empty(
    'select * from app_logic.verify_consent_chain()',
    'the consent chain verifies after erasure'
);

set local role admin;
select is(
    api.erase_personal_data('{"email": "dora.datum@example.org"}') -> 'removed' ->> 'leads', '0',
    'a second erasure answers the same way and removes nothing'
);
reset role;
select is(current_setting('response.status'), '200', '... with 200, like for a known address');

select * from finish();
rollback;
