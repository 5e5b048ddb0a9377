-- Leads: every validation rule of POST /api/leads and POST /api/lead-interactions, the
-- known-email path, and what each role (anon, reader, admin) can and cannot do. Requests run
-- as PostgREST runs them: set local role + request.headers with set_config(..., true).
begin;
select plan(107);

-- Rate limits are tested in 040-rate-limits; here they would stop the sixth request.
delete from app.rate_limit_rules
where action = 'leads';

-- A valid body with some fields replaced; the errors of submitting it (as the current role).
create function pg_temp.lead(p_overrides jsonb default '{}') returns jsonb
language sql immutable
as $$
    select '{"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "gdprConsent": true}'::jsonb
        || p_overrides
$$;

-- Side-effect free: whatever the submission stored is rolled back with the savepoint.
create function pg_temp.errors_of(p_overrides jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_errors jsonb;
begin
    v_errors := api.submit_lead(pg_temp.lead(p_overrides)) -> 'errors';
    raise sqlstate 'TSTRB';
exception when sqlstate 'TSTRB' then
    return v_errors;
end
$$;

create function pg_temp.one_error(p_field text, p_message text) returns jsonb
language sql immutable
as $$
    select jsonb_build_array(jsonb_build_object('field', p_field, 'message', p_message))
$$;

-- pgTAP and these helpers must be usable by the roles the tests switch to (rolled back).
grant execute on all functions in schema public to anon, reader, admin;
grant execute on all functions in schema pg_temp to anon, reader, admin;
grant all on all tables in schema pg_temp to anon, reader, admin;
grant all on all sequences in schema pg_temp to anon, reader, admin;

select set_config('request.headers', '{"x-real-ip": "203.0.113.10", "user-agent": "pgtap"}', true);
set local role anon;

-- Each rule, one bad field at a time: 400, the field named with its message.
select
    is(
        pg_temp.errors_of('{"firstName": ""}'),
        pg_temp.one_error('firstName', 'firstName must be between 1 and 100 characters.'),
        'firstName: empty is refused'
    );
select
    is(
        pg_temp.errors_of('{"firstName": "   "}'),
        pg_temp.one_error('firstName', 'firstName must be between 1 and 100 characters.'),
        'firstName: blank after trimming is refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('firstName', repeat('x', 101))),
        pg_temp.one_error('firstName', 'firstName must be between 1 and 100 characters.'),
        'firstName: 101 characters are refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('firstName', ' ' || repeat('x', 100) || ' ')),
        null,
        'firstName: 100 characters with surrounding spaces pass'
    );
select
    is(
        pg_temp.errors_of('{"firstName": 7}'),
        pg_temp.one_error('firstName', 'firstName must be a string.'),
        'firstName: a number is refused'
    );
select
    is(
        pg_temp.errors_of('{"firstName": "A\u0007da"}'),
        pg_temp.one_error('firstName', 'firstName must be free of control characters.'),
        'firstName: a control character is refused'
    );
select
    is(
        pg_temp.errors_of('{"firstName": null}'),
        pg_temp.one_error('firstName', 'firstName is required.'),
        'firstName: null counts as missing'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('lastName', repeat('y', 101))),
        pg_temp.one_error('lastName', 'lastName must be between 1 and 100 characters.'),
        'lastName: 101 characters are refused'
    );
select
    is(
        pg_temp.errors_of('{"lastName": ""}'),
        pg_temp.one_error('lastName', 'lastName must be between 1 and 100 characters.'),
        'lastName: empty is refused'
    );
select
    is(
        pg_temp.errors_of('{"email": "not-an-address"}'),
        pg_temp.one_error('email', 'email must be a valid email address.'),
        'email: no @ is refused'
    );
select
    is(
        pg_temp.errors_of('{"email": "a@b"}'),
        pg_temp.one_error('email', 'email must be a valid email address.'),
        'email: an undotted domain is refused'
    );
select
    is(
        pg_temp.errors_of('{"email": "a..b@example.org"}'),
        pg_temp.one_error('email', 'email must be a valid email address.'),
        'email: two dots in a row are refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('email', 'a@' || repeat('b', 250) || '.com')),
        pg_temp.one_error('email', 'email must be at most 254 characters.'),
        'email: over 254 characters is refused'
    );
select
    is(
        pg_temp.errors_of('{"email": true}'), pg_temp.one_error('email', 'email must be a string.'), 'email: a boolean is refused'
    );
select
    is(
        pg_temp.errors_of('{"phone": "020 7946 0958"}'),
        pg_temp.one_error('phone', 'phone needs the country code: start with + or 00, e.g. +44 20 7946 0958.'),
        'phone: a national number is refused with the hint to add the country code'
    );
select
    is(
        pg_temp.errors_of('{"phone": "+999 1234 5678"}'),
        pg_temp.one_error('phone', 'phone starts with +999, which is not an ITU country code.'),
        'phone: an unassigned country code is refused'
    );
select
    is(
        pg_temp.errors_of('{"phone": "+44 20"}'),
        pg_temp.one_error('phone', 'phone must have 7 to 15 digits including the country code.'),
        'phone: too few digits are refused'
    );
select
    is(
        pg_temp.errors_of('{"phone": "+44 2079 4609 5812 345"}'),
        pg_temp.one_error('phone', 'phone must have 7 to 15 digits including the country code.'),
        'phone: more than 15 digits are refused'
    );
select
    is(
        pg_temp.errors_of('{"phone": "+1 415 555 267"}'),
        pg_temp.one_error('phone', 'phone with country code +1 must have 10 digits after it.'),
        'phone: a North American number needs 10 digits'
    );
select
    is(
        pg_temp.errors_of('{"phone": "+44 20 7946 0958 ext 1"}'),
        pg_temp.one_error(
            'phone', 'phone may contain only digits, spaces, dashes, dots, slashes and brackets, after a leading + or 00.'
        ),
        'phone: letters are refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('phone', '+' || repeat('1', 40))),
        pg_temp.one_error('phone', 'phone must be at most 40 characters.'),
        'phone: over 40 characters is refused'
    );
select
    is(
        pg_temp.errors_of('{"phone": 442079460958}'),
        pg_temp.one_error('phone', 'phone must be a string.'),
        'phone: a number is refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('companyName', repeat('c', 201))),
        pg_temp.one_error('companyName', 'companyName must be at most 200 characters.'),
        'companyName: 201 characters are refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('inquiryDetails', repeat('i', 5001))),
        pg_temp.one_error('inquiryDetails', 'inquiryDetails must be at most 5000 characters.'),
        'inquiryDetails: 5001 characters are refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('inquiryDetails', repeat('i', 4999) || E'\n')),
        null,
        'inquiryDetails: 5000 characters and a newline pass'
    );
select
    is(
        pg_temp.errors_of('{"leadSource": "Contact Form"}'),
        pg_temp.one_error('leadSource', 'leadSource must be 1 to 50 lower-case letters, digits or underscores.'),
        'leadSource: capitals and spaces are refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('leadSource', repeat('a', 51))),
        pg_temp.one_error('leadSource', 'leadSource must be 1 to 50 lower-case letters, digits or underscores.'),
        'leadSource: 51 characters are refused'
    );
select
    is(
        pg_temp.errors_of('{"gdprConsent": false}'),
        pg_temp.one_error('gdprConsent', 'gdprConsent must be true.'),
        'gdprConsent: false is refused'
    );
select
    is(
        pg_temp.errors_of('{"gdprConsent": "true"}'),
        pg_temp.one_error('gdprConsent', 'gdprConsent must be true or false.'),
        'gdprConsent: a string is refused'
    );
select
    is(
        pg_temp.errors_of('{"gdprConsent": null}'),
        pg_temp.one_error('gdprConsent', 'gdprConsent is required.'),
        'gdprConsent: missing is refused'
    );
select
    is(
        pg_temp.errors_of('{"marketingConsent": 1}'),
        pg_temp.one_error('marketingConsent', 'marketingConsent must be true or false.'),
        'marketingConsent: a number is refused'
    );
select
    is(
        pg_temp.errors_of('{"accessibilityTheme": "sepia"}'),
        pg_temp.one_error(
            'accessibilityTheme',
            'accessibilityTheme must be one of: default, protanopia, deuteranopia, tritanopia, achromatopsia.'
        ),
        'accessibilityTheme: an unknown theme is refused'
    );
select
    is(
        pg_temp.errors_of('{"preferredCommunication": "fax"}'),
        pg_temp.one_error('preferredCommunication', 'preferredCommunication must be one of: email, phone.'),
        'preferredCommunication: fax is refused'
    );
select
    is(
        pg_temp.errors_of('{"preferredCommunication": "phone"}'),
        pg_temp.one_error('preferredCommunication', 'preferredCommunication can be phone only when a phone number is given.'),
        'preferredCommunication: phone without a phone number is refused'
    );
select
    is(
        pg_temp.errors_of('{"preferredCommunication": "phone", "phone": " "}'),
        pg_temp.one_error('preferredCommunication', 'preferredCommunication can be phone only when a phone number is given.'),
        'preferredCommunication: phone with a blank phone is refused'
    );
select
    is(
        pg_temp.errors_of('{"preferredCommunication": "phone", "phone": "+44 20 7946 0958"}'),
        null,
        'preferredCommunication: phone with a phone number passes'
    );
select
    is(
        pg_temp.errors_of('{"deviceType": "watch"}'),
        pg_temp.one_error('deviceType', 'deviceType must be one of: mobile, tablet, desktop.'),
        'deviceType: an unknown device is refused'
    );
select
    is(
        pg_temp.errors_of('{"coreWebVitals": [1]}'),
        pg_temp.one_error('coreWebVitals', 'coreWebVitals must be an object.'),
        'coreWebVitals: an array is refused'
    );
select
    is(
        pg_temp.errors_of('{"coreWebVitals": {"lcp": -1}}'),
        pg_temp.one_error('coreWebVitals.lcp', 'coreWebVitals.lcp must be between 0 and 3600000.'),
        'coreWebVitals.lcp: negative is refused'
    );
select
    is(
        pg_temp.errors_of('{"coreWebVitals": {"inp": 1e400}}'),
        pg_temp.one_error('coreWebVitals.inp', 'coreWebVitals.inp must be between 0 and 3600000.'),
        'coreWebVitals.inp: 1e400 is refused'
    );
select
    is(
        pg_temp.errors_of('{"coreWebVitals": {"cls": "0.1"}}'),
        pg_temp.one_error('coreWebVitals.cls', 'coreWebVitals.cls must be a number.'),
        'coreWebVitals.cls: a string is refused'
    );
select
    is(
        pg_temp.errors_of('{"coreWebVitals": {"fcp": 1}}'),
        pg_temp.one_error('coreWebVitals.fcp', 'coreWebVitals.fcp is not a known field.'),
        'coreWebVitals: an unknown metric is refused'
    );
select
    is(
        pg_temp.errors_of('{"coreWebVitals": {"lcp": 0, "fid": 1.5, "cls": 0.08, "inp": 2, "ttfb": 3}}'),
        null,
        'coreWebVitals: all five metrics pass'
    );
select
    is(
        pg_temp.errors_of('{"logoInteractions": -1}'),
        pg_temp.one_error('logoInteractions', 'logoInteractions must be between 0 and 2147483647.'),
        'logoInteractions: negative is refused'
    );
select
    is(
        pg_temp.errors_of('{"logoInteractions": 2.5}'),
        pg_temp.one_error('logoInteractions', 'logoInteractions must be a whole number.'),
        'logoInteractions: a fraction is refused'
    );
select
    is(
        pg_temp.errors_of('{"timeOnSite": 2147483648}'),
        pg_temp.one_error('timeOnSite', 'timeOnSite must be between 0 and 2147483647.'),
        'timeOnSite: above the integer range is refused'
    );
select
    is(
        pg_temp.errors_of('{"timeOnSite": 1e400}'),
        pg_temp.one_error('timeOnSite', 'timeOnSite must be between 0 and 2147483647.'),
        'timeOnSite: 1e400 is refused'
    );
select
    is(
        pg_temp.errors_of('{"timeOnSite": "145000"}'),
        pg_temp.one_error('timeOnSite', 'timeOnSite must be a number.'),
        'timeOnSite: a string is refused'
    );
select
    is(
        pg_temp.errors_of('{"pagesViewed": "/"}'),
        pg_temp.one_error('pagesViewed', 'pagesViewed must be an array.'),
        'pagesViewed: a string is refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('pagesViewed', (select jsonb_agg('/'::text) from generate_series(1, 101)))),
        pg_temp.one_error('pagesViewed', 'pagesViewed must have at most 100 items.'),
        'pagesViewed: 101 paths are refused'
    );
select
    is(
        pg_temp.errors_of('{"pagesViewed": ["/", "contact"]}'),
        pg_temp.one_error('pagesViewed[1]', 'pagesViewed[1] must be a path that starts with / and has no spaces.'),
        'pagesViewed: a path without a leading / is refused'
    );
select
    is(
        pg_temp.errors_of('{"pagesViewed": ["/a b"]}'),
        pg_temp.one_error('pagesViewed[0]', 'pagesViewed[0] must be a path that starts with / and has no spaces.'),
        'pagesViewed: a path with a space is refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('pagesViewed', jsonb_build_array('/' || repeat('p', 200)))),
        pg_temp.one_error('pagesViewed[0]', 'pagesViewed[0] must be at most 200 characters.'),
        'pagesViewed: a path over 200 characters is refused'
    );
select
    is(
        pg_temp.errors_of('{"pagesViewed": [3]}'),
        pg_temp.one_error('pagesViewed[0]', 'pagesViewed[0] must be a string.'),
        'pagesViewed: a number is refused'
    );
select
    is(
        pg_temp.errors_of('{"browserInfo": "Firefox"}'),
        pg_temp.one_error('browserInfo', 'browserInfo must be an object.'),
        'browserInfo: a string is refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('browserInfo', jsonb_build_object('ua', repeat('x', 4100)))),
        pg_temp.one_error('browserInfo', 'browserInfo must be at most 4096 bytes of JSON.'),
        'browserInfo: over 4 KiB is refused'
    );
select
    is(
        pg_temp.errors_of(jsonb_build_object('sessionId', repeat('s', 101))),
        pg_temp.one_error('sessionId', 'sessionId must be at most 100 characters.'),
        'sessionId: 101 characters are refused'
    );
select
    is(
        pg_temp.errors_of('{"sessionId": "s\u0001"}'),
        pg_temp.one_error('sessionId', 'sessionId must be free of control characters.'),
        'sessionId: a control character is refused'
    );
select
    is(
        pg_temp.errors_of('{"referrer": "x"}'),
        pg_temp.one_error('referrer', 'referrer is not a known field.'),
        'an unknown field is refused'
    );
select
    is(
        api.submit_lead('[]') -> 'errors',
        pg_temp.one_error('body', 'The request body must be a JSON object.'),
        'a body that is not an object is refused'
    );

select is(
    (
        select jsonb_agg(e -> 'field' order by e ->> 'field')
        from jsonb_array_elements(api.submit_lead('{"email": "x", "deviceType": "tv", "colour": 1}') -> 'errors') as e
    ),
    '["colour", "deviceType", "email", "firstName", "gdprConsent", "lastName"]'::jsonb,
    'several bad fields are all named in one answer'
);
select is(current_setting('response.status'), '400', 'an invalid submission is answered 400');
select is(
    api.submit_lead('{"email": "x", "deviceType": "tv"}') ->> 'message',
    '5 fields are invalid: deviceType, email, firstName, gdprConsent, lastName.',
    'the message names every bad field'
);

reset role;
select is((select count(*)::integer from app.leads), 0, 'no rejected submission stored a lead');
select is((select count(*)::integer from app.consent_audit), 0, 'no rejected submission stored a consent');

-- Accepted submissions.
set local role anon;
select is(
    api.submit_lead(pg_temp.lead('{"phone": "0044 (0)20 7946-0958", "timeOnSite": 145000.0, "companyName": " Acme "}')),
    '{"status": "received"}',
    'a valid submission is answered {"status":"received"}'
);
select is(current_setting('response.status'), '201', 'a valid submission is answered 201');
select is(
    api.submit_lead(pg_temp.lead('{"email": "ADA@EXAMPLE.ORG", "firstName": "Mallory", "marketingConsent": true}')),
    '{"status": "received"}',
    'a known email gets the same answer as a new one'
);
select is(current_setting('response.status'), '201', 'a known email is answered 201 too');
reset role;

select results_eq(
    'select first_name, phone, company_name, time_on_site, marketing_consent from app.leads',
    $$ values ('Ada', '+442079460958', 'Acme', 145000, true) $$,
    'one lead: phone in E.164, trimmed text, the known email changed only the marketing consent'
);
select results_eq(
    'select kind, details ->> ''firstName'' from app.lead_interactions order by id',
    $$ values ('submission', null), ('resubmission', 'Mallory') $$,
    'the second submission is a resubmission carrying what was sent'
);

-- Phone spellings.
select is((app_logic.phone_to_e164('+1 (415) 555-2671')).e164, '+14155552671', 'phone: brackets and dashes');
select is((app_logic.phone_to_e164('+1.415.555.2671')).e164, '+14155552671', 'phone: dots');
select is((app_logic.phone_to_e164('0049 30/1234567')).e164, '+49301234567', 'phone: a leading 00 and a slash');
select is((app_logic.phone_to_e164('+44 (0) 20 7946 0958')).e164, '+442079460958', 'phone: the British (0) is dropped');
select is((app_logic.phone_to_e164(E'+33\u00a01\u201342 68 53 00')).e164, '+33142685300', 'phone: typographic spaces and dashes');
select is((app_logic.phone_to_e164('+683 4002')).e164, '+6834002', 'phone: a short number of Niue');
select
    is(
        (app_logic.phone_to_e164('+259 1234567')).problem,
        'starts with +259, which is not an ITU country code.',
        'phone: a spare code is refused'
    );
select is(app_logic.itu_country_code('4420'), '44', 'the country code of +4420... is 44');
select is(app_logic.itu_country_code('35312'), '353', 'the country code of +35312... is 353');

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
    pg_temp.one_error('leadId', 'leadId does not name a known lead.'),
    'an unknown leadId is refused naming leadId'
);
select is(
    api.add_lead_interaction(jsonb_build_object('leadId', (select id from api.leads), 'kind', 'note')) -> 'errors',
    pg_temp.one_error('note', 'note is required when kind is note.'),
    'a note without text is refused'
);
select is(
    api.add_lead_interaction(jsonb_build_object('leadId', (select id from api.leads), 'kind', 'resubmission')) -> 'errors',
    pg_temp.one_error('kind', 'kind must be one of: note, call, email, meeting, status_change.'),
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
