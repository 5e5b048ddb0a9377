-- Leads: accepted submissions, stored normalised; a known email (any letter case) changes
-- nothing of the lead, never grants marketing consent (a withdrawal takes effect), and the
-- consent audit says which submission asked for what.
begin;
select plan(17);

-- Rate limits are tested in 040-rate-limits; here they would stop the sixth request.
delete from app.rate_limit_rules
where action = 'leads';
select set_config('request.headers', '{"x-real-ip": "203.0.113.10", "user-agent": "pgtap"}', true);

set local role anon;
select is(
    api.submit_lead(tap.lead('{"phone": "0044 (0)20 7946-0958", "timeOnSite": 145000.0, "companyName": " Acme "}')),
    '{"status": "received"}',
    'a valid submission is answered {"status":"received"}'
);
select is(current_setting('response.status'), '201', 'a valid submission is answered 201');
-- A stranger who knows Ada's address asks for marketing in her name.
select is(
    api.submit_lead(tap.lead('{"email": "ADA@EXAMPLE.ORG", "firstName": "Mallory", "marketingConsent": true}')),
    '{"status": "received"}',
    'a known email gets the same answer as a new one'
);
select is(current_setting('response.status'), '201', 'a known email is answered 201 too');
reset role;

select results_eq(
    'select first_name::text, phone::text, company_name::text, time_on_site::integer, marketing_consent from app.leads',
    $$ values ('Ada', '+442079460958', 'Acme', 145000, false) $$,
    'one lead: phone in E.164, trimmed text; the known email''s marketingConsent: true granted nothing'
);
select results_eq(
    'select kind::text, details ->> ''firstName'' from app.lead_interactions order by id',
    $$ values ('submission', null), ('resubmission', 'Mallory') $$,
    'the second submission is a resubmission carrying what was sent'
);
select results_eq(
    $$ select a.event::text, a.consent_type::text, a.granted, i.kind::text
       from app.consent_audit as a join app.lead_interactions as i on i.id = a.submission_id
       order by a.seq $$,
    $$ values ('consent', 'gdpr', true, 'submission'), ('consent', 'marketing', false, 'submission'),
              ('consent', 'gdpr', true, 'resubmission'), ('request', 'marketing', true, 'resubmission') $$,
    'the audit names the submission of each row: the known email''s marketing ask is a request, not a consent'
);
select ok(
    app_logic.consent_chain_is_intact(app_logic.person_pseudonym('ada@example.org')),
    'the chain with submission ids verifies'
);
select is_empty(
    'select * from app_logic.verify_consent_chain()', 'the audit verifies as a whole with submission ids in it'
);
-- Time-ordered ids (schema 360): version 7, RFC 9562's variant, the first 48 bits the time of
-- the insert in ms (the clock's, not the frozen app_logic.now()).
select ok(
    (select bool_and(
        substr(l.id::text, 15, 1) = '7' and substr(l.id::text, 20, 1) in ('8', '9', 'a', 'b')
        and abs(
            ('x' || substr(replace(l.id::text, '-', ''), 1, 12))::bit(48)::bigint
            - floor(extract(epoch from clock_timestamp()) * 1000)::bigint
        ) < 60000
    ) from app.leads as l),
    'a new lead''s id is a UUID v7 whose first 48 bits are the insert''s time in ms'
);

-- Bea ticks marketing on her first submission: a request, until she opens the link in the
-- confirmation mail (double opt-in); a later submission without the tick withdraws it.
set local role anon;
select api.submit_lead(tap.lead('{"email": "bea@example.org", "marketingConsent": true}'));
reset role;
select is(
    (
        select marketing_consent from app.leads
        where email = 'bea@example.org'
    ), false,
    'a new address''s ticked marketing consent waits for the confirmation link'
);
select api.confirm_consent(jsonb_build_object('token', substring(
    (
        select o.message ->> 'text' from app.outbox as o
        where o.kind = 'consent_confirmation' and o.recipient = 'bea@example.org'
    )
    from 'confirm\?token=([A-Za-z0-9_-]{43})'
)));
set local role anon;
select api.submit_lead(tap.lead('{"email": "Bea@Example.org", "marketingConsent": true}'));
reset role;
select results_eq(
    $$ select a.event::text, a.granted from app.consent_audit as a
       where a.subject = app_logic.person_pseudonym('bea@example.org') and a.consent_type = 'marketing'
       order by a.seq $$,
    $$ values ('request', true), ('consent', true), ('request', true) $$,
    'the form''s ask is a request, the link the consent; asking again while consent is given is a request'
);
set local role anon;
select api.submit_lead(tap.lead('{"email": "BEA@example.org"}'));
reset role;
select is(
    (
        select marketing_consent from app.leads
        where email = 'bea@example.org'
    ), false,
    'a known address''s submission without marketing withdraws it: it errs on the safe side'
);
select is(
    (
        select updated_at from app.leads
        where email = 'bea@example.org'
    ), app_logic.now(),
    'the withdrawal marks the lead updated'
);
select results_eq(
    $$ select a.event::text, a.granted from app.consent_audit as a
       where a.subject = app_logic.person_pseudonym('bea@example.org') and a.consent_type = 'marketing'
       order by a.seq $$,
    $$ values ('request', true), ('consent', true), ('request', true), ('consent', false) $$,
    'the withdrawal is a consent row that took effect'
);
select is(
    (
        select count(distinct submission_id)::integer from app.consent_audit
        where subject = app_logic.person_pseudonym('bea@example.org')
    ),
    3, 'each of the three submissions wrote its own pair of rows'
);
select is(
    (
        select count(*)::integer from app.leads
        where lower(email) = 'bea@example.org'
    ), 1,
    'three submissions of one address in any case are one lead'
);

select * from finish();
rollback;
