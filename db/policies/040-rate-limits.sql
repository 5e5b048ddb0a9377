-- Rate limits: no API role reads or writes the rules or the counters; the limiter runs as the
-- owner inside the endpoints (SECURITY DEFINER), and operators change rules with SQL.

-- Left out on purpose: no grant on app.rate_limit_rules or app.rate_limit_counters to anon,
-- reader or admin, and no RLS policy, so row level security refuses every API role.

-- Counters expire: the job chorus_website:rate-limit-counters (db/policies/080-retention.sql)
-- removes stale rows every minute.
