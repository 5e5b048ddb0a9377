-- The transactional outbox (issue 14): messages the database decided to send, written in the
-- same transaction as the change that calls for them, delivered afterwards by the mail worker
-- (chorus_db/mail.py, `invoke mail.worker`). A rolled-back submission leaves no message; a
-- committed one always has its message.

create table app.outbox (
    id bigint generated always as identity primary key,
    kind text not null check (kind in ('consent_confirmation', 'lead_notification')),
    channel text not null check (channel in ('email', 'webhook')),
    -- An email address, or the URL of a webhook.
    recipient text not null check (char_length(recipient) between 3 and 2000),
    -- The lead the message is about: erasing the lead removes its messages too.
    lead_id uuid references app.leads (id) on delete cascade,
    -- email: {subject, text, headers, attachments}; webhook: {payload}. Once sent, only the
    -- subject is kept: the links it carried (tokens) leave the database with the message.
    message jsonb not null check (jsonb_typeof(message) = 'object'),
    created_at timestamptz not null default now(),
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    sent_at timestamptz,
    -- Given up: a permanent refusal, or too many attempts (setting outbox_max_attempts).
    failed_at timestamptz,
    -- The SMTP server's (or webhook's) last answer, or the error of the last attempt.
    last_response text check (char_length(last_response) <= 2000)
);
comment on table app.outbox is
'Messages to send (consent confirmations, new-lead notifications), written in the transaction that calls for them.';
comment on column app.outbox.message is
'What to send; after delivery reduced to its subject, so no link or token stays in the database.';
-- The worker's queue: only what is still due, oldest first.
create index outbox_due_idx on app.outbox (next_attempt_at, id) where sent_at is null and failed_at is null;
create index outbox_lead_idx on app.outbox (lead_id) where lead_id is not null;
alter table app.outbox enable row level security;

insert into app.settings (key, value, description) values
(
    'public_base_url', 'http://127.0.0.1:8080',
    'Where people reach the API (scheme, host, port, no trailing slash): the base of the links in messages.'
),
(
    'mail_from', 'CHORUS <no-reply@chorus.invalid>',
    'The From address of every message the mail worker sends.'
),
(
    'team_notify_email', '',
    'Address told about every new lead (empty: none).'
),
(
    'team_notify_webhook', '',
    'URL that receives a JSON POST about every new lead (empty: none).'
),
(
    'outbox_max_attempts', '8',
    'Delivery attempts of a message before the worker gives up on it (waits double from 30 s, at most 1 h).'
);

-- The confirm and withdraw links are opened without a key: limited per IP like a form.
insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values
('consent_links', 'ip', 20, 600);

-- The mail worker's role: it reads and updates the outbox through three functions, nothing else.
do $roles$
begin
    if not exists (select from pg_roles where rolname = 'mail_worker') then
        create role mail_worker nologin;
    end if;
end
$roles$;
