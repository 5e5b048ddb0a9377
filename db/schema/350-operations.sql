-- Operations (issue 16): the replica's staleness limit, consent-chain checks for monitoring,
-- and pg_cron's run history under retention.

-- The monitoring login (prometheus-postgres-exporter): it may call the metric functions of
-- db/functions/350-operations.sql and read the statistics views (pg_monitor), nothing else.
-- Roles are cluster-wide, so it is created only when missing.
do $roles$
begin
    if not exists (select from pg_roles where rolname = 'chorus_monitor') then
        create role chorus_monitor login noinherit;
    end if;
end
$roles$;

-- Reads on the replica are refused (and nginx retries them on the primary) once the replica
-- is further behind than this; an operator changes it with one UPDATE.
insert into app.settings (key, value, description) values
(
    'replica_max_lag_seconds', '30',
    'How far (seconds) the read replica may lag behind the primary before its reads go to the primary.'
);

-- One row per verification of the consent audit's hash chains, written by a pg_cron job
-- (not per request), so monitoring reads the state without walking every chain per scrape.
create table app.consent_chain_checks (
    id bigint generated always as identity primary key,
    checked_at timestamptz not null default now(),
    rows_checked bigint not null check (rows_checked >= 0),
    -- Rows verify_consent_chain named as broken; 0 means every chain verified.
    broken_rows bigint not null check (broken_rows >= 0),
    first_broken_id bigint,
    duration interval not null
);
comment on table app.consent_chain_checks is
'Results of the scheduled consent-chain verification: when, how many rows, how many broken.';
create index consent_chain_checks_checked_idx on app.consent_chain_checks (checked_at);
alter table app.consent_chain_checks enable row level security;

-- pg_cron logs every run in cron.job_run_details and never removes them (one row per minute
-- from the counters job alone): the retention rules cover that log, and the check log above.
-- The kind check is a pattern since 200-ab-tests.sql: a new kind needs no change to it.
insert into app.retention_rules (kind, keep_for, condition) values
(
    'cron_job_run_details', interval '30 days',
    'pg_cron''s run log (cron.job_run_details) of this project''s jobs, for runs that ended longer ago than keep_for.'
),
(
    'consent_chain_checks', interval '400 days',
    'Results of the scheduled consent-chain verification older than keep_for.'
);
