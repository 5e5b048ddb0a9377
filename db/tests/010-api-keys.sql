-- API keys: the pre-request function switches the role for a valid key, refuses a wrong,
-- revoked or absurd one with 401 and a valid one without the endpoint's privilege with 403,
-- and no API role can see the keys.
begin;
select plan(27);

create function pg_temp.bad_key_message() returns text
language sql immutable
as $$
    select app_logic.error_body(
        'CHK01', 'The X-API-Key header holds no valid API key.', null,
        'Ask an operator for a key (invoke api.key-create) or leave the header out.'
    )::text
$$;

create temporary table keys on commit drop as
select
    app_logic.create_api_key('crm-reader', 'reader') as reader_key,
    app_logic.create_api_key('crm-admin', 'admin') as admin_key,
    app_logic.create_api_key('old', 'reader') as revoked_key;
select app_logic.revoke_api_key('old');
select set_config('test.reader_key_id', (
    select id::text from app.api_keys
    where name = 'crm-reader'
), true);

grant execute on all functions in schema public to anon, reader, admin;
grant execute on all functions in schema pg_temp to anon, reader, admin;
grant all on all tables in schema pg_temp to anon, reader, admin;
grant all on all sequences in schema pg_temp to anon, reader, admin;

select is(
    (
        select key_hash from app.api_keys
        where name = 'crm-reader'
    ),
    (select sha256(convert_to(reader_key, 'UTF8')) from keys),
    'a key is stored as its SHA-256'
);
select is_empty(
    $$ select 1 from app.api_keys as k, keys where k::text like '%' || substr(keys.reader_key, 11) || '%' $$,
    'the secret part of a key is stored nowhere'
);
select throws_ok(
    $$ select app_logic.create_api_key('x', 'owner') $$, '22023', 'role must be reader or admin',
    'only reader and admin keys exist'
);
select is(app_logic.revoke_api_key('nobody'), 0, 'revoking an unknown name revokes nothing');

-- As PostgREST: the request starts as anon, the headers set, then the pre-request function.
set local role anon;
select set_config('request.headers', '{}', true);
select lives_ok('select app_logic.pre_request()', 'no key: the request goes on');
select is(current_user::text, 'anon', 'no key: the request stays anon');

select set_config('request.headers', jsonb_build_object('x-api-key', (select reader_key from keys))::text, true);
select app_logic.pre_request();
select is(current_user::text, 'reader', 'a reader key switches to reader');
select is(
    current_setting('app.api_key_id'), current_setting('test.reader_key_id'),
    'the key that authorised the request is known'
);
reset role;

set local role anon;
select set_config('request.headers', jsonb_build_object('x-api-key', (select admin_key from keys))::text, true);
select app_logic.pre_request();
select is(current_user::text, 'admin', 'an admin key switches to admin');
reset role;

set local role anon;
select set_config('request.headers', jsonb_build_object('x-api-key', (select revoked_key from keys))::text, true);
select throws_ok('select app_logic.pre_request()', 'PGRST', pg_temp.bad_key_message(), 'a revoked key is refused');
select set_config('request.headers', '{"x-api-key": "chk_0000"}', true);
select throws_ok('select app_logic.pre_request()', 'PGRST', pg_temp.bad_key_message(), 'a wrong key is refused');
select set_config('request.headers', jsonb_build_object('x-api-key', repeat('k', 5000))::text, true);
select throws_ok('select app_logic.pre_request()', 'PGRST', pg_temp.bad_key_message(), 'an absurdly long key is refused');
select throws_ok(
    'select * from app.api_keys', '42501', 'permission denied for schema app', 'anon cannot reach the keys'
);
reset role;

set local role reader;
select throws_ok(
    'select * from app.api_keys', '42501', 'permission denied for table api_keys', 'reader cannot read the keys'
);
reset role;
set local role admin;
select throws_ok(
    'select * from app.api_keys', '42501', 'permission denied for table api_keys', 'admin cannot read the keys'
);
reset role;

-- A valid key whose role lacks the privilege: 403 from the pre-request function, because
-- PostgREST would answer the privilege error itself with 401 (no JWT), as for a bad key.
set local role anon;
select set_config('request.method', 'POST', true);
select set_config('request.path', '/rpc/add_lead_interaction', true);
select set_config('request.headers', jsonb_build_object('x-api-key', (select reader_key from keys))::text, true);
select throws_ok(
    'select app_logic.pre_request()', 'PGRST',
    app_logic.error_body(
        'CHK02', 'An API key of role reader may not use this endpoint.', null,
        'Use a key of a role that may (invoke api.keys lists the keys and their roles).'
    )::text,
    'a reader key on an admin endpoint is refused with 403'
);
select set_config('request.headers', jsonb_build_object('x-api-key', (select admin_key from keys))::text, true);
select lives_ok('select app_logic.pre_request()', 'an admin key may use an admin endpoint');
reset role;

set local role anon;
select set_config('request.method', 'GET', true);
select set_config('request.path', '/leads', true);
select set_config('request.headers', jsonb_build_object('x-api-key', (select reader_key from keys))::text, true);
select lives_ok('select app_logic.pre_request()', 'a reader key may read the leads view');
reset role;

set local role anon;
select set_config('request.path', '/no_such_view', true);
select lives_ok('select app_logic.pre_request()', 'a path naming no api object is left to PostgREST (404)');
reset role;

-- No key on a protected endpoint: 401 naming no database object (not "permission denied").
set local role anon;
select set_config('request.headers', '{}', true);
select set_config('request.method', 'GET', true);
select set_config('request.path', '/leads', true);
select throws_ok(
    'select app_logic.pre_request()', 'PGRST',
    app_logic.error_body(
        'CHK01', 'This endpoint needs an API key (X-API-Key).', null, 'Send an API key of role reader or admin.'
    )::text,
    'no key on a reader endpoint is 401 CHK01, naming no view'
);
select set_config('request.method', 'POST', true);
select set_config('request.path', '/rpc/export_personal_data', true);
select throws_ok(
    'select app_logic.pre_request()', 'PGRST',
    app_logic.error_body('CHK01', 'This endpoint needs an API key (X-API-Key).', null, 'Send an API key of role admin.')::text,
    'no key on an admin endpoint is 401 CHK01, naming no function'
);
select set_config('request.path', '/rpc/submit_lead', true);
select lives_ok('select app_logic.pre_request()', 'no key on a public endpoint goes on');
select is(current_setting('statement_timeout'), '3s', 'an anonymous request runs under anon''s statement_timeout');
reset role;

-- A role that did not come from a key (a JWT's, had one reached PostgREST) is refused.
set local role reader;
select throws_ok(
    'select app_logic.pre_request()', 'PGRST',
    app_logic.error_body(
        'CHK01', 'Requests are authorised by an API key in X-API-Key only.', null,
        'Send the key in X-API-Key and no Authorization header.'
    )::text,
    'a request in a role no key gave is refused'
);
reset role;

set local role anon;
select set_config('request.method', 'GET', true);
select set_config('request.path', '/leads', true);
select set_config('request.headers', jsonb_build_object('x-api-key', (select reader_key from keys))::text, true);
select app_logic.pre_request();
select is(current_setting('statement_timeout'), '5s', 'a reader key''s request runs under reader''s statement_timeout');
reset role;
set local role anon;
select set_config('request.method', 'POST', true);
select set_config('request.path', '/rpc/export_personal_data', true);
select set_config('request.headers', jsonb_build_object('x-api-key', (select admin_key from keys))::text, true);
select app_logic.pre_request();
select is(current_setting('statement_timeout'), '10s', 'an admin key''s request runs under admin''s statement_timeout');
reset role;
set local statement_timeout = 0;

select is_empty(
    $$ select r from unnest(array['anon', 'reader', 'admin']) as r
       where has_function_privilege(r, 'app_logic.create_api_key(text, text)', 'execute')
          or has_function_privilege(r, 'app_logic.revoke_api_key(text)', 'execute') $$,
    'no API role can create or revoke keys'
);

select * from finish();
rollback;
