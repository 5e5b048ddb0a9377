-- Page views (the seed's website_analytics): the high-volume table, partitioned by month so
-- retention drops a whole month at once. No IP and no user agent are ever stored here.

create table app.page_views (
    id bigint generated always as identity,
    session_id text not null check (char_length(session_id) between 1 and 100),
    path text not null check (path ~ '^/' and char_length(path) <= 200),
    referrer_host text check (char_length(referrer_host) <= 253),
    device_type text check (device_type in ('mobile', 'tablet', 'desktop')),
    duration_ms integer check (duration_ms >= 0),
    viewed_at timestamptz not null default now(),
    primary key (id, viewed_at)
) partition by range (viewed_at);
comment on table app.page_views is
'Anonymous page views, one partition per month (made ahead by a pg_cron job).';
create index page_views_viewed_at_idx on app.page_views (viewed_at);
alter table app.page_views enable row level security;
