-- The outbox (issue 14): enqueueing messages inside a transaction, and the three calls of the
-- mail worker (chorus_db/mail.py): claim one due message, then, in the same transaction,
-- record that it was delivered or why it was not.
--
-- Exactly once, as far as SMTP allows: the worker holds the row lock (FOR UPDATE SKIP LOCKED)
-- from the claim until the transaction that records the server's answer commits. A worker
-- that dies before that commit leaves the row unsent and unlocked, and the next claim sends
-- it; two workers never hold the same row. The only window for a duplicate is between the
-- server's final 250 and that commit.

create function app_logic.enqueue_message(
    p_kind text, p_channel text, p_recipient text, p_lead_id uuid, p_message jsonb
) returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_id bigint;
begin
    insert into app.outbox (kind, channel, recipient, lead_id, message, created_at, next_attempt_at)
    values (p_kind, p_channel, p_recipient, p_lead_id, p_message, app_logic.now(), app_logic.now())
    returning id into v_id;
    -- Delivered at commit only: a waiting worker wakes up without polling.
    perform pg_notify('chorus_outbox', v_id::text);
    return v_id;
end
$$;
comment on function app_logic.enqueue_message(text, text, text, uuid, jsonb) is
'Queue one message of a channel (email, webhook) in the outbox and wake the worker at commit.';

create function app_logic.enqueue_email(
    p_kind text, p_recipient text, p_lead_id uuid, p_subject text, p_text text,
    p_headers jsonb default '{}', p_attachments jsonb default '[]'
) returns bigint
language sql volatile
as $$
    select app_logic.enqueue_message(
        p_kind, 'email', p_recipient, p_lead_id,
        jsonb_build_object('subject', p_subject, 'text', p_text, 'headers', p_headers, 'attachments', p_attachments)
    )
$$;
comment on function app_logic.enqueue_email(text, text, uuid, text, text, jsonb, jsonb) is
'Queue an email (subject, plain text, extra headers, attachments [{filename, contentType, content}]) in the outbox.';

create function app_logic.enqueue_webhook(p_kind text, p_url text, p_lead_id uuid, p_payload jsonb) returns bigint
language sql volatile
as $$
    select app_logic.enqueue_message(p_kind, 'webhook', p_url, p_lead_id, jsonb_build_object('payload', p_payload))
$$;
comment on function app_logic.enqueue_webhook(text, text, uuid, jsonb) is 'Queue a JSON POST to a webhook URL in the outbox.';

-- The next due message, locked for this transaction; none when nothing is due or every due
-- message is held by another worker.
create function app_logic.claim_outbox_message()
returns table (id bigint, kind text, channel text, recipient text, message jsonb, attempts integer, from_address text)
language sql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
    with due as (
        select o.id
        from app.outbox as o
        where o.sent_at is null and o.failed_at is null and o.next_attempt_at <= app_logic.now()
        order by o.next_attempt_at, o.id
        limit 1
        for update skip locked
    )

    select o.id, o.kind, o.channel, o.recipient, o.message, o.attempts, app_logic.setting('mail_from')
    from app.outbox as o
    inner join due on o.id = due.id
$$;
comment on function app_logic.claim_outbox_message() is
'Lock and return the oldest due outbox message (FOR UPDATE SKIP LOCKED); the caller records the outcome before commit.';

create function app_logic.outbox_delivered(p_id bigint, p_response text) returns void
language sql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
    update app.outbox as o
    set
        sent_at = app_logic.now(),
        attempts = o.attempts + 1,
        last_response = left(p_response, 2000),
        -- The body held the confirm and withdraw tokens: once delivered, only the subject stays.
        message = jsonb_build_object('subject', o.message -> 'subject')
    where o.id = p_id and o.sent_at is null
$$;
comment on function app_logic.outbox_delivered(bigint, text) is
'Record the server''s answer to a delivered message and drop its body (and the links in it).';

-- Waits 30 s, 1 min, 2 min, ... at most 1 h between attempts; gives up after
-- outbox_max_attempts, or at once on a permanent refusal (SMTP 5xx, HTTP 4xx).
create function app_logic.outbox_attempt_failed(p_id bigint, p_error text, p_permanent boolean) returns void
language sql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
    update app.outbox as o
    set
        attempts = o.attempts + 1,
        last_response = left(p_error, 2000),
        failed_at = case
            when p_permanent or o.attempts + 1 >= app_logic.setting('outbox_max_attempts')::integer then app_logic.now()
        end,
        next_attempt_at = app_logic.now() + least(interval '30 seconds' * power(2, o.attempts), interval '1 hour')
    where o.id = p_id and o.sent_at is null
$$;
comment on function app_logic.outbox_attempt_failed(bigint, text, boolean) is
'Record a failed delivery attempt: retry later with backoff, or give up (permanent, or too many attempts).';

-- The team hears of every new lead through the same outbox, so none is missed when nobody
-- reads the CRM: by email and/or webhook, whichever settings are filled in. Both settings in
-- one query, read as the inserting function's owner (app.leads is written only by SECURITY
-- DEFINER functions): two calls of app_logic.setting, each a SECURITY DEFINER function with a
-- pinned search path, cost more per lead than the query.
create function app_logic.tg_leads__notify_team() returns trigger
language plpgsql
as $$
declare
    v_email text;
    v_webhook text;
begin
    select
        max(s.value) filter (where s.key = 'team_notify_email'),
        max(s.value) filter (where s.key = 'team_notify_webhook')
    into v_email, v_webhook
    from app.settings as s
    where s.key in ('team_notify_email', 'team_notify_webhook');
    if coalesce(v_email, '') <> '' then
        perform app_logic.enqueue_email(
            'lead_notification', v_email, new.id,
            format('New lead: %s %s%s', new.first_name, new.last_name, coalesce(' (' || new.company_name || ')', '')),
            concat_ws(
                E'\n',
                'A new lead arrived through the contact form.',
                '',
                format('Name:      %s %s', new.first_name, new.last_name),
                format('Email:     %s', new.email),
                format('Phone:     %s', coalesce(new.phone, '-')),
                format('Company:   %s', coalesce(new.company_name, '-')),
                format('Answer by: %s', new.preferred_communication),
                format('Received:  %s', to_char(new.created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
                format('Lead id:   %s', new.id),
                '',
                coalesce(new.inquiry_details, '(no message)')
            )
        );
    end if;
    if coalesce(v_webhook, '') <> '' then
        perform app_logic.enqueue_webhook('lead_notification', v_webhook, new.id, jsonb_build_object(
            'event', 'lead.created',
            'leadId', new.id,
            'createdAt', new.created_at,
            'firstName', new.first_name,
            'lastName', new.last_name,
            'email', new.email,
            'companyName', new.company_name,
            'preferredCommunication', new.preferred_communication
        ));
    end if;
    return null;
end
$$;

create trigger leads_notify_team
after insert on app.leads
for each row execute function app_logic.tg_leads__notify_team();

-- Most installations announce no lead (both settings empty): the trigger above is then
-- disabled, so a submission queues no trigger event, calls no function and reads no settings
-- (about 68k instructions, 1.9% of a submission). A WHEN clause cannot read app.settings, and
-- one calling a function would cost about what it saves. Whether it is enabled follows the two
-- settings, kept in step by the statement trigger on app.settings below and once per build:
-- in the same transaction as the change (DDL is transactional), so no lead falls between.
-- Changing whether it is enabled locks app.leads briefly (SHARE ROW EXCLUSIVE), only when a
-- team address or webhook is set or cleared. Drift and dumps treat that state as data
-- (chorus_db/drift.py).
create function app_logic.sync_team_notification() returns void
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_wanted boolean;
    v_enabled boolean;
begin
    v_wanted := exists (
        select from app.settings as s
        where s.key in ('team_notify_email', 'team_notify_webhook') and s.value <> ''
    );
    select t.tgenabled <> 'D' into v_enabled
    from pg_catalog.pg_trigger as t
    where t.tgrelid = 'app.leads'::regclass and t.tgname = 'leads_notify_team';
    if v_wanted and not v_enabled then
        alter table app.leads enable trigger leads_notify_team;
    elsif v_enabled and not v_wanted then
        alter table app.leads disable trigger leads_notify_team;
    end if;
end
$$;
comment on function app_logic.sync_team_notification() is
'Enable the team-notification trigger of app.leads while team_notify_email or team_notify_webhook is set, else disable it.';

create function app_logic.tg_settings__sync_team_notification() returns trigger
language plpgsql
as $$
begin
    perform app_logic.sync_team_notification();
    return null;
end
$$;
comment on function app_logic.tg_settings__sync_team_notification() is
'After any write to app.settings: enable or disable the team-notification trigger as the settings now say.';

create trigger settings_sync_team_notification
after insert or update or delete or truncate on app.settings
for each statement execute function app_logic.tg_settings__sync_team_notification();

select app_logic.sync_team_notification();
