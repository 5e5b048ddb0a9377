-- Retention as data: how long each kind of data is kept, and a log of every cleanup run.
-- app_logic.apply_retention() (db/functions/080-retention.sql) reads the rules; pg_cron runs it
-- (db/policies/080-retention.sql). An operator changes a period with one UPDATE, no deploy.

create table app.retention_rules (
    -- What the rule removes; the cleanup function knows exactly these kinds.
    kind text primary key check (
        kind in (
            'accessibility_preferences', 'brand_engagement', 'leads', 'page_views',
            'rate_limit_counters', 'retention_runs'
        )
    ),
    keep_for interval not null check (keep_for >= interval '0 seconds'),
    -- The condition in words, for the operator; the function implements it.
    condition text not null check (char_length(condition) between 1 and 1000),
    enabled boolean not null default true,
    updated_at timestamptz not null default now()
);
comment on table app.retention_rules is
'How long each kind of data is kept and under which condition; applied by the retention job.';
comment on column app.retention_rules.keep_for is 'Age after which data of this kind is removed.';
comment on column app.retention_rules.condition is 'What "age" means for this kind and what survives, in words.';
alter table app.retention_rules enable row level security;

-- The seed's periods. Leads: the seed's `gdpr_consent = false` can never hold (consent is
-- required to store a lead), so the clock is the lead's last activity instead.
insert into app.retention_rules (kind, keep_for, condition) values
(
    'accessibility_preferences', interval '90 days',
    'Preferences of a session never linked to a lead (lead_id is null) whose last update is older than keep_for. '
    'Linked preferences live as long as their lead.'
),
(
    'brand_engagement', interval '2 years',
    'Engagement of a session never linked to a lead (lead_id is null) created longer ago than keep_for. '
    'Linked engagement lives as long as its lead.'
),
(
    'leads', interval '7 years',
    'Leads whose last activity (updated_at, and their newest interaction) is older than keep_for. '
    'Their interactions and linked preferences and engagement go with them; the consent audit keeps '
    'its pseudonymous rows and gains an erasure record.'
),
(
    'page_views', interval '13 months',
    'Whole monthly partitions whose range ends before now minus keep_for are dropped (never row by row). '
    '13 months keeps a full year plus the same month of the previous year for comparison.'
),
(
    'rate_limit_counters', interval '0 seconds',
    'Counters whose window ended more than keep_for ago: they can no longer limit anything.'
),
(
    'retention_runs', interval '400 days',
    'Entries of this log older than keep_for.'
);

create table app.retention_runs (
    id bigint generated always as identity primary key,
    -- app_logic.now() when the rule ran (frozen in tests).
    started_at timestamptz not null,
    kind text not null,
    -- Data older than this was due.
    cutoff timestamptz not null,
    rows_removed bigint not null default 0 check (rows_removed >= 0),
    partitions_dropped text[] not null default '{}',
    duration interval not null,
    -- False when the run stopped at its batch size and more data is due (the job continues).
    complete boolean not null default true,
    -- Why the rule failed; the other rules of the run still ran.
    error text
);
comment on table app.retention_runs is 'One row per retention rule applied: when, what, how much was removed.';
create index retention_runs_started_idx on app.retention_runs (started_at);
create index retention_runs_kind_idx on app.retention_runs (kind, started_at);
alter table app.retention_runs enable row level security;
