-- API keys: never readable by an API role. The pre-request function looks a key up through
-- app_logic.api_key_lookup (SECURITY DEFINER, granted in 000-foundation), by its hash only.

-- Left out on purpose: no grant on app.api_keys to anon, reader or admin, and no RLS policy;
-- operators manage keys with invoke api.* as the database owner.
select 1 as api_keys_have_no_api_grants;

-- Every web role's statements are bounded, so no request holds a database connection for long:
-- anon's (submissions, health, the OpenAPI document) briefly, the key roles' reads a little
-- longer. A query over the limit is stopped (57014) and nginx answers 503 CHQ02. PostgREST
-- applies anon's setting itself; app_logic.pre_request applies the key roles'. The owner, which
-- runs the pg_cron jobs and the build, has none.
alter role anon set statement_timeout = '3s';
alter role reader set statement_timeout = '5s';
alter role admin set statement_timeout = '10s';
-- The pre-request reads these through app_logic.role_statement_timeout, compiled from them here.
select app_logic.compile_role_timeouts();

-- The pre-request function (run as the request's role, which needs EXECUTE on what it inlines
-- too) finds the key a route needs and the role's timeout through these.
grant execute on function app_logic.protected_route_key(text, text), app_logic.protected_route_target(text)
to anon, reader, admin;
grant execute on function app_logic.pre_request_with_key() to anon, reader, admin;
grant execute on function app_logic.role_statement_timeout(text), app_logic.apply_statement_timeout(text) to anon, reader, admin;

-- A key may learn its own name and role; anon has no key to ask about (401).
grant execute on function api.current_api_key() to reader, admin;
