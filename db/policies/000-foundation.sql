-- Foundation grants: who may reach the api schema and the pre-request function.
-- Everything else is granted per object by the domain files.

-- The authenticator may switch to each API role (PostgREST and the pre-request function).
-- (Inside DO only because sqlfluff's postgres dialect cannot parse GRANT role TO role.)
do $membership$ begin
    execute 'grant anon, reader, admin to authenticator';
end $membership$;

grant usage on schema api to anon, reader, admin;
-- PostgREST answers Accept: text/csv through this aggregate, for every role (a function's
-- answer too). Its transition and final functions run with the aggregate owner's rights; what
-- the final function calls runs with the caller's: the two pure helpers.
grant execute on function api.csv_agg(anyelement) to anon, reader, admin;
grant execute on function app_logic.csv_line(json, boolean), app_logic.csv_cell(json) to anon, reader, admin;
-- app_logic holds no data, but its functions run only when granted one by one.
grant usage on schema app_logic to anon, reader, admin;
grant usage on schema extensions to anon, reader, admin;
grant execute on function app_logic.pre_request() to anon, reader, admin;
-- Helpers the pre-request function calls as the request's role.
grant execute on function app_logic.request_headers() to anon, reader, admin;
grant execute on function app_logic.request_header(text), app_logic.read_request_header(text) to anon, reader, admin;
grant execute on function app_logic.header_text_value(text, text) to anon, reader, admin;
grant execute on function app_logic.keep_request_headers(jsonb, text), app_logic.keep_parsed_address(text, text)
to anon, reader, admin;
grant execute on function app_logic.keep_quad_headers(jsonb, text), app_logic.keep_client_settings(text, text)
to anon, reader, admin;
grant execute on function app_logic.dotted_quad(text), app_logic.parse_client_ip(text), app_logic.parse_client_network(text)
to anon, reader, admin;
grant execute on function app_logic.api_key_lookup(text) to anon, reader, admin;
grant execute on function app_logic.role_may_use(text, text, text) to anon, reader, admin;
grant execute on function app_logic.hash_api_key(text) to anon, reader, admin;
grant execute on function app_logic.error_body(text, text, text, text) to anon, reader, admin;
grant execute on function app_logic.refuse_key(text, text) to anon, reader, admin;

-- No personal data in the server log. The errors of web requests are the client's, answered in
-- the response; PostgreSQL's own messages can quote what the client sent (`invalid input
-- syntax for type uuid: "ada@example.org"`), so PostgREST's login logs none of them (LOG,
-- FATAL and PANIC lines stay). The cluster itself logs no statement or parameters with an
-- error and no DETAIL (log_min_error_statement, log_parameter_max_length*, log_error_verbosity:
-- chorus_db/cluster.py and docker-compose.yml). Needs a superuser, like max_stack_depth.
do $log$
begin
    execute 'alter role authenticator set log_min_messages = ''log''';
exception when insufficient_privilege then
    raise notice 'log_min_messages of authenticator left as it was: the builder is no superuser';
end
$log$;
