-- API keys: never readable by an API role. The pre-request function looks a key up through
-- app_logic.api_key_lookup (SECURITY DEFINER, granted in 000-foundation), by its hash only.

-- Left out on purpose: no grant on app.api_keys to anon, reader or admin, and no RLS policy;
-- operators manage keys with invoke api.* as the database owner.
select 1 as api_keys_have_no_api_grants;

-- A key may learn its own name and role; anon has no key to ask about (401).
grant execute on function api.current_api_key() to reader, admin;
