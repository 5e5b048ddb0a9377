-- Foundation: the roles, schemas, extensions and default privileges every other file uses.
--
-- Schemas: `app` holds the tables (never exposed), `app_logic` the functions and internal
-- views (declarative, rebuilt by db/functions), `api` the HTTP surface (declarative, views and
-- functions only). Roles are cluster-wide, so they are created only when missing.

do $roles$
begin
    if not exists (select from pg_roles where rolname = 'authenticator') then
        -- PostgREST logs in as this role and switches to one of the three below per request.
        create role authenticator login noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'reader') then
        create role reader nologin;
    end if;
    if not exists (select from pg_roles where rolname = 'admin') then
        create role admin nologin;
    end if;
end
$roles$;

create schema if not exists app;
comment on schema app is 'Tables of the lead-capture backend; never exposed over HTTP.';
revoke all on schema app from public;

create schema if not exists extensions;
comment on schema extensions is 'Extensions used by the project (pgcrypto).';
create extension if not exists pgcrypto with schema extensions;

-- pg_cron can only be created in the database named by cron.database_name.
do $cron$
begin
    if current_setting('cron.database_name', true) = current_database() then
        create extension if not exists pg_cron;
    end if;
end
$cron$;

-- Functions are executable by PUBLIC by default; every function is granted one by one.
alter default privileges revoke execute on functions from public;
revoke create on schema public from public;

create table app.settings (
    key text primary key check (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    value text not null,
    description text not null
);
comment on table app.settings is
'Operator-tunable settings read by the SQL logic, changeable without a deploy.';
alter table app.settings enable row level security;

insert into app.settings (key, value, description) values
(
    'consent_text_version', '2026-01',
    'Version of the consent text shown next to the form; recorded with every consent.'
),
(
    'hash_pepper', encode(extensions.gen_random_bytes(32), 'hex'),
    'Secret mixed into every pseudonymising hash (IPs, emails) so they cannot be brute-forced.'
);
