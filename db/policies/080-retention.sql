-- Retention: the pg_cron jobs that apply app.retention_rules, and who may see the rules.
--
-- app.retention_rules and app.retention_runs have RLS on and no policy or grant on purpose:
-- only the database owner (the operator, the pg_cron jobs) reads or changes them; the API
-- roles never do. Jobs are reconciled by the build (chorus_db/build.py) by name.

-- Daily, at a quiet hour (cron.timezone is UTC): every rule, in committed batches.
select app_logic.declare_job(
    'chorus_website:retention', '30 3 * * *', 'call app_logic.run_retention()'
);

-- Counters expire within minutes; removing them every minute keeps the table at about one
-- row per client active within its window, however long the traffic lasts.
select app_logic.declare_job(
    'chorus_website:rate-limit-counters', '* * * * *', $$call app_logic.run_retention('rate_limit_counters')$$
);
