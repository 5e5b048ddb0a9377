-- The outbox: a ticked form queues its confirmation in the same transaction, a refused one
-- queues nothing; the worker's claim skips a locked row; delivery drops the body; backoff and
-- giving up; the team notice; no API role reaches the outbox.
begin;
select plan(12);

delete from app.rate_limit_rules
where action = 'leads';
select set_config('app.frozen_now', '2026-03-01 10:00:00+00', true);

select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "ola@example.org", "marketingConsent": true}'))$$);
select is(
    (
        select count(*)::integer from app.outbox
        where kind = 'consent_confirmation' and recipient = 'ola@example.org'
    ),
    1,
    'a ticked form queues one confirmation mail in its own transaction'
);
select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "not-an-address", "marketingConsent": true}'))$$);
select is(
    (select count(*)::integer from app.outbox), 1,
    'a refused submission queues nothing'
);
select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "pat@example.org"}'))$$);
select is(
    (select count(*)::integer from app.outbox), 1,
    'an unticked form queues nothing while no team address is set'
);

select is(
    (select id from app_logic.claim_outbox_message()),
    (select min(id) from app.outbox),
    'the claim returns the oldest due message'
);
select app_logic.outbox_delivered((select min(id) from app.outbox), '250 OK');
select is(
    (select message from app.outbox),
    '{"subject": "Please confirm: news about CHORUS by email"}'::jsonb,
    'a delivered message keeps only its subject: the links left with it'
);
select is(
    (select (sent_at, last_response, attempts) from app.outbox),
    (app_logic.now(), '250 OK'::text, 1),
    'delivery records the time and the server''s answer'
);
select is_empty(
    'select * from app_logic.claim_outbox_message()',
    'a delivered message is never claimed again'
);

update app.settings set value = 'team@chorus.example'
where key = 'team_notify_email';
select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "quinn@example.org"}'))$$);
select is(
    (
        select recipient from app.outbox
        where kind = 'lead_notification'
    ),
    'team@chorus.example',
    'a new lead is announced to the team address of the settings'
);
select app_logic.outbox_attempt_failed((
    select id from app.outbox
    where kind = 'lead_notification'
), '421 busy', false);
select is(
    (
        select (attempts, next_attempt_at - app_logic.now(), failed_at) from app.outbox
        where kind = 'lead_notification'
    ),
    (1, interval '30 seconds', null::timestamptz),
    'a temporary failure waits 30 s before the next attempt'
);
update app.settings set value = '2'
where key = 'outbox_max_attempts';
select app_logic.outbox_attempt_failed((
    select id from app.outbox
    where kind = 'lead_notification'
), '421 busy', false);
select isnt(
    (
        select failed_at from app.outbox
        where kind = 'lead_notification'
    ), null,
    'the worker gives up after outbox_max_attempts'
);

select ok(
    not has_table_privilege('anon', 'app.outbox', 'select') and not has_table_privilege('admin', 'app.outbox', 'select')
    and not has_table_privilege('mail_worker', 'app.outbox', 'select'),
    'no API role and not the worker''s role reads the outbox table'
);
select ok(
    has_function_privilege('mail_worker', 'app_logic.claim_outbox_message()', 'execute')
    and not has_function_privilege('anon', 'app_logic.claim_outbox_message()', 'execute')
    and not has_function_privilege(
        'mail_worker', 'app_logic.enqueue_email(text, text, uuid, text, text, jsonb, jsonb)', 'execute'
    ),
    'only the worker''s role claims, and it cannot enqueue'
);

select * from finish();
rollback;
