-- Foundation grants: who may reach the api schema and the pre-request function.
-- Everything else is granted per object by the domain files.

-- The authenticator may switch to each API role (PostgREST and the pre-request function).
-- (Inside DO only because sqlfluff's postgres dialect cannot parse GRANT role TO role.)
do $membership$ begin
    execute 'grant anon, reader, admin to authenticator';
end $membership$;

grant usage on schema api to anon, reader, admin;
-- app_logic holds no data, but its functions run only when granted one by one.
grant usage on schema app_logic to anon, reader, admin;
grant usage on schema extensions to anon, reader, admin;
grant execute on function app_logic.pre_request() to anon, reader, admin;
-- Helpers the pre-request function calls as the request's role.
grant execute on function app_logic.request_headers() to anon, reader, admin;
grant execute on function app_logic.request_header(text) to anon, reader, admin;
grant execute on function app_logic.api_key_lookup(text) to anon, reader, admin;
grant execute on function app_logic.role_may_use(text, text, text) to anon, reader, admin;
grant execute on function app_logic.hash_api_key(text) to anon, reader, admin;
grant execute on function app_logic.error_body(text, text, text, text) to anon, reader, admin;
