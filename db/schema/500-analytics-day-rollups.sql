-- Per-day rollups of the two analytics that read sealed fields (issue 13: encrypted analytics).
--
-- accessibility-usage and design-effectiveness decrypted every row of their 30-day window on
-- every read (db/functions/045-field-encryption.sql): 7 times the cost of the same rows in
-- clear. A UTC day that has ended is rolled up once (app_logic.refresh_analytics_rollups, the
-- hourly job) into the decrypted aggregate counts of that day, and a read decrypts only the rows
-- of the days inside its window that have no rollup (the two partial days at its ends, a day
-- changed since): the answers stay exactly those computed from the rows.
--
-- What a rollup holds is no more than what the endpoints answer, per day: per theme the number
-- of sessions and their summed duration; over a day's sessions the summed deepest scroll and
-- CTA clicks. No session id, no sealed field, nothing free-form. A change to a rolled-up day
-- (a late or back-dated row, an update, a deletion) removes that day's rollup in the same
-- transaction (db/functions/070-analytics.sql), so no read ever combines a stale rollup.

create table app.preference_theme_days (
    day date not null,
    -- {"<theme>": [sessions, summed session_duration, sessions with a duration], ...}
    themes jsonb not null,
    rolled_at timestamptz not null default now(),
    constraint preference_theme_days_pkey primary key (day)
);
comment on table app.preference_theme_days is
'Accessibility preferences per UTC day that has ended, rolled up: per theme the sessions, their summed duration '
'and how many had one.';
comment on column app.preference_theme_days.day is 'The UTC day the sessions started (created_at).';
comment on column app.preference_theme_days.themes is
'{"<theme>": [sessions, sum of session_duration, sessions with a session_duration]} over the day''s rows, '
'decrypted.';
comment on column app.preference_theme_days.rolled_at is 'When the day was rolled up.';
alter table app.preference_theme_days enable row level security;

create table app.engagement_days (
    day date not null,
    -- Over the sessions that posted that day, each counted once with its day's maxima.
    sessions bigint not null,
    scroll_sum bigint not null,
    scroll_count bigint not null,
    cta_sum bigint not null,
    cta_count bigint not null,
    rolled_at timestamptz not null default now(),
    constraint engagement_days_pkey primary key (day)
);
comment on table app.engagement_days is
'Brand engagement per UTC day that has ended, rolled up over the sessions that posted that day (each once, with its deepest '
'scroll and most CTA clicks of the day).';
comment on column app.engagement_days.day is 'The UTC day of the posts (created_at).';
comment on column app.engagement_days.sessions is 'Sessions that posted that day.';
comment on column app.engagement_days.scroll_sum is 'Sum over those sessions of the deepest scroll each reported that day.';
comment on column app.engagement_days.scroll_count is 'Sessions that reported a scroll depth that day.';
comment on column app.engagement_days.cta_sum is
'Sum over those sessions of the most CTA clicks each reported that day (decrypted).';
comment on column app.engagement_days.cta_count is 'Sessions whose CTA clicks were known that day.';
comment on column app.engagement_days.rolled_at is 'When the day was rolled up.';
alter table app.engagement_days enable row level security;
