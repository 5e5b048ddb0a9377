-- Spam protection beyond rate limits (issue 14), per endpoint, as data: a honeypot field, a
-- minimum time between fetching the form and sending it (a signed form token), and an
-- optional ALTCHA proof of work (db/functions/340-spam.sql).

create table app.spam_rules (
    action text primary key check (action ~ '^[a-z_]{1,50}$'),
    -- A field people never see and bots fill in; a body with it non-empty is dropped quietly.
    honeypot_field text check (honeypot_field ~ '^[a-zA-Z][a-zA-Z0-9]{0,49}$'),
    -- A form token (GET /api/form-token) younger than this is dropped quietly.
    min_seconds integer not null default 0 check (min_seconds between 0 and 3600),
    form_token_max_age interval not null default interval '1 day' check (form_token_max_age > interval '0 seconds'),
    -- Without a form token a body is dropped quietly too (switch on once the site sends one).
    form_token_required boolean not null default false,
    -- An ALTCHA solution (GET /api/challenge) is required; a missing or wrong one is a 400.
    proof_of_work boolean not null default false,
    pow_max_number integer not null default 100000 check (pow_max_number between 1000 and 10000000),
    challenge_ttl interval not null default interval '10 minutes' check (challenge_ttl > interval '0 seconds')
);
comment on table app.spam_rules is
'Spam checks per endpoint (honeypot, minimum time to submit, proof of work); an UPDATE changes them.';
alter table app.spam_rules enable row level security;

insert into app.spam_rules (action, honeypot_field, min_seconds, form_token_required, proof_of_work)
values ('leads', 'website', 3, false, false);

-- Solved challenges, so a solution is accepted once; kept until the challenge expires.
create table app.used_challenges (
    challenge_hash bytea primary key check (octet_length(challenge_hash) = 32),
    expires_at timestamptz not null
);
comment on table app.used_challenges is 'ALTCHA challenges already solved (their SHA-256), until they expire.';
alter table app.used_challenges enable row level security;

insert into app.settings (key, value, description) values (
    'spam_hmac_key', encode(extensions.gen_random_bytes(32), 'hex'),
    'Signs form tokens and ALTCHA challenges; a new value invalidates every token and challenge out there.'
);

-- The kind check is a pattern since 200-ab-tests.sql: a new kind needs no change to it.

insert into app.retention_rules (kind, keep_for, condition) values (
    'used_challenges', interval '0 seconds',
    'Solved ALTCHA challenges whose expiry passed more than keep_for ago: they can no longer be replayed.'
);
