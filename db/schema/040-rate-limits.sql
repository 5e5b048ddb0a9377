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
-- A sliding log per client: the times of the requests admitted within the window (at most
-- max_requests of them), so "5 per 10 minutes" holds over any 10 minutes, and Retry-After is
-- exactly when the oldest of them leaves the window. One row per client per action and scope.
create unlogged table app.rate_limit_counters (
    action text not null,
    scope text not null check (scope in ('ip', 'email')),
    -- HMAC of the client's network or email: no address is kept in clear.
    subject text not null,
    -- Arrival times of the admitted requests still inside the window, oldest first.
    hits timestamptz[] not null default '{}',
    -- When the newest hit leaves the window; after that the row is stale (retention job).
    expires_at timestamptz not null,
    primary key (action, scope, subject)
) with (fillfactor = 70);
comment on table app.rate_limit_counters is
'One row per client per action and scope: the admitted requests inside the window; stale rows are purged.';
alter table app.rate_limit_counters enable row level security;
