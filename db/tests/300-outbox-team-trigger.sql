-- The team-notification trigger of app.leads runs only while a team address or webhook is set
-- (db/functions/300-outbox.sql): disabled otherwise, so a submission pays nothing for it, and
-- enabled in the same transaction as the setting that needs it, whichever way it is written.
begin;
select plan(16);

delete from app.rate_limit_rules
where action = 'leads';
select set_config('app.frozen_now', '2026-03-01 10:00:00+00', true);

create function pg_temp.trigger_state() returns text
language sql stable
as $$
    select t.tgenabled::text from pg_trigger as t
    where t.tgrelid = 'app.leads'::regclass and t.tgname = 'leads_notify_team'
$$;

create function pg_temp.notices() returns text[]
language sql stable
as $$
    select coalesce(array_agg(o.channel || ' ' || o.recipient order by o.id), '{}')
    from app.outbox as o
    where o.kind = 'lead_notification'
$$;

select is(pg_temp.trigger_state(), 'D', 'with no team address or webhook the trigger is disabled');
select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "none@example.org"}'))$$);
select is(pg_temp.notices(), '{}'::text[], 'a lead then announces nothing');

update app.settings set value = 'team@chorus.example'
where key = 'team_notify_email';
select is(pg_temp.trigger_state(), 'O', 'setting a team address enables the trigger in the same transaction');
select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "one@example.org"}'))$$);
select is(pg_temp.notices(), '{"email team@chorus.example"}', 'a new lead is then announced to that address');
select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "ONE@example.org"}'))$$);
select is(pg_temp.notices(), '{"email team@chorus.example"}', 'a known address is not announced again');

update app.settings set value = 'http://127.0.0.1:9/hook'
where key = 'team_notify_webhook';
update app.settings set value = ''
where key = 'team_notify_email';
select is(pg_temp.trigger_state(), 'O', 'a webhook alone keeps the trigger enabled');
select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "two@example.org"}'))$$);
select is(
    pg_temp.notices(), '{"email team@chorus.example","webhook http://127.0.0.1:9/hook"}',
    'a new lead is then announced to the webhook only'
);

update app.settings set value = ''
where key = 'team_notify_webhook';
select is(pg_temp.trigger_state(), 'D', 'clearing the last of the two disables the trigger');
select tap.call_as('anon', $$api.submit_lead(tap.lead('{"email": "three@example.org"}'))$$);
select is(pg_temp.notices(), '{"email team@chorus.example","webhook http://127.0.0.1:9/hook"}', 'and nothing more is announced');

-- A value of blanks is a value: the trigger queues it as it did before it could be disabled.
update app.settings set value = ' '
where key = 'team_notify_email';
select is(pg_temp.trigger_state(), 'O', 'a blank but non-empty address enables the trigger, as the trigger reads it');

-- Deleting the row and writing it again, in one statement each.
delete from app.settings
where key = 'team_notify_email';
select is(pg_temp.trigger_state(), 'D', 'deleting the set address disables the trigger');
insert into app.settings (key, value, description)
values ('team_notify_email', 'sales@chorus.example', 'Where new leads are announced.');
select is(pg_temp.trigger_state(), 'O', 'inserting an address enables it');

-- The owner's own writes are announced too: the trigger, not the endpoint, does it.
insert into app.leads (first_name, last_name, email, gdpr_consent) values ('Dir', 'Ect', 'direct@example.org', true);
select is(
    (
        select count(*)::integer from app.outbox
        where kind = 'lead_notification' and recipient = 'sales@chorus.example'
    ),
    1,
    'a lead inserted directly is announced as well'
);

-- A change rolled back takes the trigger's state back with it.
create function pg_temp.state_while_cleared() returns text
language plpgsql volatile
as $$
declare
    v_state text;
begin
    update app.settings set value = ''
    where key = 'team_notify_email';
    v_state := pg_temp.trigger_state();
    raise sqlstate 'TSTRB';
exception when sqlstate 'TSTRB' then
    return v_state;
end
$$;
select is(pg_temp.state_while_cleared(), 'D', 'clearing the address disables the trigger ...');
select is(pg_temp.trigger_state(), 'O', '... and rolling the change back enables it again');

-- A build in a database whose settings name a team finds the trigger enabled.
select app_logic.sync_team_notification();
select is(pg_temp.trigger_state(), 'O', 'syncing again changes nothing that is right');

select * from finish();
rollback;
