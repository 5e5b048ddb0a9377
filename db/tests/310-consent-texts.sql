-- Double opt-in in SQL: the form's ask is a request, the link the consent; links are single
-- use, expire, reveal nothing; withdraw works at once; texts are immutable data with a hash.
begin;
select plan(10);

delete from app.rate_limit_rules
where action in ('leads', 'consent_links');
select set_config('app.frozen_now', '2026-03-01 10:00:00+00', true);
select set_config('request.headers', '{"x-real-ip": "198.51.100.20", "accept": "application/json"}', true);

select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "ren@example.org", "marketingConsent": true}'))$$);
create temporary table links on commit drop as
select
    substring(o.message ->> 'text' from 'confirm\?token=([A-Za-z0-9_-]{43})') as confirm_token,
    substring(o.message ->> 'text' from 'withdraw\?token=([A-Za-z0-9_-]{43})') as withdraw_token
from app.outbox as o
where o.kind = 'consent_confirmation';

select is(
    (select marketing_consent from app.leads), false,
    'the ticked form grants nothing by itself'
);
select is_empty(
    $$ select from app.consent_tokens as t, links as l
       where t.token_hash in (convert_to(l.confirm_token, 'UTF8'), convert_to(l.withdraw_token, 'UTF8')) $$,
    'the tokens are not stored, only their hashes'
);
select is(
    (
        select expires_at from app.consent_tokens
        where purpose = 'confirm'
    ),
    '2026-03-03 10:00:00+00'::timestamptz,
    'the confirm link expires after consent_confirmation_ttl (48 hours)'
);

select is(
    (tap.call_as('anon', format(
        'convert_from(api.confirm_consent(%L)::bytea, ''UTF8'')::jsonb',
        jsonb_build_object('token', (select confirm_token from links))
    )) -> 'body' ->> 'status'),
    'confirmed',
    'the confirm link grants the consent'
);
select is(
    (
        select (a.event::text, a.granted, a.source::text, a.ip_hash) from app.consent_audit as a
        where a.consent_type = 'marketing'
        order by a.seq desc limit 1
    ),
    ('consent'::text, true, 'email_confirmation'::text, app_logic.pseudonym('198.51.100.20')),
    'the audit records the confirmation with the hash of the confirmer''s IP'
);
select is(
    (tap.call_as('anon', format(
        'convert_from(api.confirm_consent(%L)::bytea, ''UTF8'')::jsonb',
        jsonb_build_object('token', (select confirm_token from links))
    )) -> 'status')::integer,
    404,
    'a used confirm link is 404'
);
select is(
    (tap.call_as('anon', format(
        'convert_from(api.withdraw_consent(%L)::bytea, ''UTF8'')::jsonb',
        jsonb_build_object('token', (select withdraw_token from links))
    )) -> 'body' ->> 'status'),
    'withdrawn',
    'the withdraw link withdraws'
);
select is(
    (select marketing_consent from app.leads), false,
    'the withdrawal takes effect at once'
);

select throws_ok(
    $$ insert into app.consent_texts (version, body, sha256, valid_from) values ('x', 'a', sha256('b'), now()) $$,
    '23514', null,
    'a text whose hash is not its own is refused'
);
select is(
    (
        select count(*)::integer from app.brand_audit
        where table_name = 'consent_texts'
    ), 0,
    'no text changed in this test (texts are audited like brand data)'
);

select * from finish();
rollback;
