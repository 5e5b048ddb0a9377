-- Rate limiting: rules an operator can change, and fixed-window counters per client.

create table app.rate_limit_rules (
    action text not null check (action ~ '^[a-z_]{1,50}$'),
    scope text not null check (scope in ('ip', 'email')),
    max_requests integer not null check (max_requests > 0),
    window_seconds integer not null check (window_seconds between 1 and 86400),
    primary key (action, scope)
);
comment on table app.rate_limit_rules is 'How many requests per window each action admits, per client IP or email.';
alter table app.rate_limit_rules enable row level security;

insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values
('leads', 'ip', 5, 600),
('leads', 'email', 3, 3600),
('accessibility_preferences', 'ip', 120, 60),
('brand_engagement', 'ip', 120, 60),
('page_views', 'ip', 120, 60);

-- Unlogged: counters are short-lived by nature; a crash resets them, which only forgives.
create unlogged table app.rate_limit_counters (
    action text not null,
    scope text not null,
    -- HMAC of the client's network or email: no address is kept in clear.
    subject text not null,
    window_start timestamptz not null,
    window_seconds integer not null,
    hits integer not null default 1,
    primary key (action, scope, subject, window_start)
);
comment on table app.rate_limit_counters is 'One row per client per window; removed by the retention job.';
create index rate_limit_counters_expiry_idx on app.rate_limit_counters (window_start);
alter table app.rate_limit_counters enable row level security;
