-- Operations: who may call the metric functions, the replica's pre-request function, and the
-- scheduled consent-chain check.
--
-- app.consent_chain_checks has RLS on and no policy or grant on purpose: only the owner (the
-- job) writes it; monitoring reads it through app_logic.metrics_consent_chain().

grant usage on schema app_logic to chorus_monitor;
grant execute on function app_logic.metrics_submissions() to chorus_monitor;
grant execute on function app_logic.metrics_rate_limits() to chorus_monitor;
grant execute on function app_logic.metrics_rows() to chorus_monitor;
grant execute on function app_logic.metrics_consent_chain() to chorus_monitor;
grant execute on function app_logic.metrics_retention() to chorus_monitor;
grant execute on function app_logic.metrics_page_view_partitions() to chorus_monitor;
grant execute on function app_logic.metrics_cron_jobs() to chorus_monitor;
grant execute on function app_logic.metrics_replication() to chorus_monitor;
grant execute on function app_logic.metrics_connections() to chorus_monitor;

-- The replica's PostgREST (db-pre-request) runs this as the request's role.
grant execute on function app_logic.pre_request_replica() to anon, reader, admin;
grant execute on function app_logic.replica_lag_seconds() to anon, reader, admin, chorus_monitor;
grant execute on function app_logic.replica_lag_limit() to anon, reader, admin, chorus_monitor;

-- pg_monitor gives the exporter's built-in collectors (pg_stat_*, pg_settings) their views.
-- (Inside DO only because sqlfluff's postgres dialect cannot parse GRANT role TO role.)
do $membership$ begin
    execute 'grant pg_monitor to chorus_monitor';
end $membership$;

-- Hourly: walking every chain costs a full read of the audit, so monitoring reads the latest
-- result instead of verifying on every scrape.
select app_logic.declare_job(
    'chorus_website:consent-chain-check', '7 * * * *', 'select app_logic.check_consent_chains()'
);

-- GET /api/replication/health is public like the other health endpoints: numbers only.
grant execute on function api.check_replication_health() to anon, reader, admin;
