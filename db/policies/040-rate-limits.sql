-- Rate limits: no API role reads or writes the rules or the counters; the limiter runs as the
-- owner inside the endpoints (SECURITY DEFINER), and operators change rules with SQL.

-- Left out on purpose: no grant on app.rate_limit_rules or app.rate_limit_counters to anon,
-- reader or admin, and no RLS policy, so row level security refuses every API role.

-- Counters expire: stale rows go every minute, so the table stays at one row per active client.
select app_logic.declare_job(
    'chorus_website:purge-rate-limit-counters', '* * * * *', 'select app_logic.purge_rate_limit_counters()'
);
