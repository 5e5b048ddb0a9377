-- Where the project's pg_cron jobs run for this database, as the last build found it.
create table app.job_scheduler (
    singleton boolean primary key default true check (singleton),
    placement text not null check (placement in ('local', 'remote', 'none', 'not_applicable')),
    cron_database text,
    detail text check (char_length(detail) <= 1000),
    checked_at timestamptz not null default now()
);
alter table app.job_scheduler enable row level security;
