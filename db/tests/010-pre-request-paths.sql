-- The pre-request's two paths (issue 13): a public request (no key, anon, a route without a key)
-- is answered by its own branch, so that PL/pgSQL sets up neither the key lookup nor the
-- refusals for it; every other request goes through the full branch. The public branch must
-- answer exactly what the full branch answers: the full branch is pre_request itself with its
-- routing condition made true (built from its own source), compared on every route, method,
-- role and a set of hostile headers (the kept address, network and user agent, the role, the
-- timeout, the key, or the error raised). plpgsql_check's profiler shows which branch ran.
-- Since session 11 the public branch reads X-Real-IP and User-Agent from the text PostgREST
-- writes (app_logic.header_text_value), the full branch from the parsed JSON: the headers
-- compared include that text with values built to mislead a text search (issue 13).
begin;
select plan(10);

-- Loaded before any function runs in this session (its profiler sees only functions set up after).
create extension plpgsql_check;

create temporary table keys (role text, secret text) on commit drop;
insert into keys
select
    r,
    app_logic.create_api_key('paths-' || r, r) as secret
from unnest(array['reader', 'admin']) as r;

-- The reference: the same body, always the full branch.
select
    set_config(
        'tap.full_branch',
        regexp_replace(p.prosrc, '\mif\M.*?\mthen\M', 'if true then'),
        true
    ) is not null as built
from pg_proc as p
where p.oid = 'app_logic.pre_request()'::regprocedure;
select ok(
    current_setting('tap.full_branch') ~ 'if true then'
    and current_setting('tap.full_branch') <> (
        select p.prosrc from pg_proc as p
        where p.oid = 'app_logic.pre_request()'::regprocedure
    ),
    'the reference is the pre-request with its routing condition replaced'
);
do $build$
begin
    execute format(
        'create function pg_temp.pre_request_full() returns void language plpgsql volatile as %L',
        current_setting('tap.full_branch')
    );
end
$build$;
-- As PostgREST runs it: as the request's role.
grant execute on function pg_temp.pre_request_full() to anon, reader, admin;

-- What a pre-request leaves behind for the rest of the request, or the error it raised.
create function pg_temp.outcome(p_function text, p_role text, p_method text, p_path text, p_headers text)
returns jsonb
language plpgsql volatile
as $$
declare
    v_out jsonb;
    v_state text;
    v_message text;
    v_detail text;
begin
    perform set_config('request.method', p_method, true);
    perform set_config('request.path', p_path, true);
    perform set_config('request.headers', p_headers, true);
    perform set_config('app.request_client_ip', '', true);
    perform set_config('app.request_client_network', '', true);
    perform set_config('app.request_user_agent', '', true);
    perform set_config('app.api_key_id', '', true);
    perform set_config('statement_timeout', '0', true);
    begin
        execute format('set local role %I', p_role);
        execute format('select %s()', p_function);
        v_out := jsonb_build_object(
            'role', current_user::text,
            'timeout', current_setting('statement_timeout'),
            'key', current_setting('app.api_key_id', true),
            'ip', current_setting('app.request_client_ip', true),
            'network', current_setting('app.request_client_network', true),
            'agent', current_setting('app.request_user_agent', true)
        );
        reset role;
    exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail;
        v_out := jsonb_build_object('error', v_state, 'message', v_message, 'detail', v_detail);
    end;
    perform set_config('statement_timeout', '0', true);
    return v_out;
end
$$;

-- Which branch ran: a public request runs the public one only, a request with a key the full one.
select set_config('plpgsql_check.profiler', 'on', true);
create function pg_temp.assignments_run(p_headers text, p_path text) returns integer[]
language plpgsql volatile
as $$
begin
    perform plpgsql_profiler_reset('app_logic.pre_request()'::regprocedure);
    perform pg_temp.outcome('app_logic.pre_request', 'anon', 'POST', p_path, p_headers);
    return array(
        select coalesce(p.exec_stmts, 0)::integer from plpgsql_profiler_function_tb('app_logic.pre_request()') as p
        where p.source ~ '^\s*v_done :=' order by p.lineno
    );
end
$$;
select is(
    pg_temp.assignments_run('{"x-real-ip":"203.0.113.8","user-agent":"Agent/1"}', '/rpc/submit_lead'),
    array[0, 0, 1],
    'a public request runs the public branch only: the key lookup and the refusals are not set up, no JSON is parsed'
);
select is(
    pg_temp.assignments_run('{"x-real-ip": "203.0.113.8"}', '/rpc/submit_lead'),
    array[0, 1, 0],
    'headers written otherwise than PostgREST writes them are parsed as JSON in the public branch'
);
select is(
    pg_temp.assignments_run('{"x-real-ip":"203.0.113.8","user-agent":"say \"hi\""}', '/rpc/submit_lead'),
    array[1, 0, 0],
    'headers holding a backslash (an escape) are read from the parsed JSON, in the full branch'
);
select is(
    pg_temp.assignments_run('{"x-real-ip": "2001:db8:1:2::9"}', '/rpc/submit_lead'),
    array[0, 1, 0],
    'a public request from an address that is no dotted quad runs the public branch''s full address check'
);
select is(
    pg_temp.assignments_run(
        (
            select jsonb_build_object('x-api-key', k.secret)::text from keys as k
            where k.role = 'admin'
        ), '/leads'
    ),
    array[1, 0, 0],
    'a request with a key runs the full branch'
);

select set_config('plpgsql_check.profiler', 'off', true);

-- A JSON object's text as PostgREST writes request.headers: members in order, no spaces.
create function pg_temp.as_postgrest_writes(p_headers text) returns text
language sql immutable
as $$
    select '{' || coalesce(string_agg(to_json(e.key)::text || ':' || to_json(e.value)::text, ',' order by e.n), '') || '}'
    from json_each_text(p_headers::json) with ordinality as e (key, value, n)
$$;
select is(
    pg_temp.as_postgrest_writes('{"x-real-ip": "203.0.113.9", "user-agent": "a \"b\" \\ c"}'),
    '{"x-real-ip":"203.0.113.9","user-agent":"a \"b\" \\ c"}',
    'the headers are written as PostgREST writes them'
);

create temporary table requests (role text, method text, path text, headers text) on commit drop;
insert into requests
with pa as (
    select distinct r.target as path from app_logic.routes as r
    union
    select unnest(array['/leads/', '/LEADS', '', '/rpc/', '/rpc/no_such_function', '/leads?select=id', E'/le\u0430ds']) as path
),

h as (
    select
        unnest(array[
            '{}', '', '[]', '["x-api-key"]', '"x-api-key"',
            '{"x-real-ip": "203.0.113.5", "user-agent": "Agent/1"}',
            '{"x-real-ip": "2001:db8:1:2::7", "user-agent": ""}',
            '{"x-real-ip": "::ffff:192.0.2.1"}',
            '{"x-real-ip": "1.2.3.256", "user-agent": "=1.2.3.4"}',
            '{"x-real-ip": "010.1.2.3", "x-forwarded-for": "198.51.100.1"}',
            '{"x-real-ip": "203.0.113.6", "x-api-key": ""}',
            '{"x-real-ip": "203.0.113.6", "x-api-key": null}',
            '{"x-real-ip": "203.0.113.6", "x-api-key": "chk_not_a_key"}',
            '{"x-api-key": "' || repeat('k', 300) || '"}',
            '{"X-API-Key": "chk_spelled_otherwise"}'
        ]) as headers
    union all
    -- As PostgREST writes request.headers: no spaces, names in its order, values JSON-escaped.
    select pg_temp.as_postgrest_writes(w.headers)
    from
        unnest(array[
            '{"x-forwarded-for": "203.0.113.9", "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0",'
            ' "content-length": "478", "x-real-ip": "203.0.113.9", "content-type": "application/json", "host": "localhost",'
            ' "accept": "*/*"}',
            '{"x-real-ip": "203.0.113.9"}',
            '{"user-agent": "Agent/2"}',
            '{"x-real-ip": "203.0.113.9", "user-agent": ""}',
            '{"x-real-ip": "", "user-agent": "Agent/3"}',
            '{"user-agent": "x\",\"x-real-ip\":\"198.51.100.66", "x-real-ip": "203.0.113.9"}',
            '{"x-real-ip": "203.0.113.9", "user-agent": "x\",\"x-real-ip\":\"198.51.100.66"}',
            '{"user-agent": "x\",\"x-real-ip\":\"198.51.100.66"}',
            '{"x-real-ip": "203.0.113.9", "user-agent": "back\\slash"}',
            '{"user-agent": "ends in a backslash\\", "x-real-ip": "203.0.113.9"}',
            '{"x-real-ip": "203.0.113.9", "user-agent": "say \"x-api-key\""}',
            '{"x-real-ip": "203.0.113.9", "user-agent": "say \"x-api-key"}',
            '{"x-real-ip": "203.0.113.9", "user-agent": "\"x-api-key\":\"chk_x"}',
            '{"x-real-ip": "203.0.113.9", "user-agent": "tab\there\u0001"}',
            '{"x-real-ip": "203.0.113.9", "user-agent": "M\u00f6zilla \u2603 \u2028"}',
            '{"user-agent": "x-real-ip", "x-real-ip": "203.0.113.9", "x-forwarded-for": "x-real-ip"}',
            '{"a-x-real-ip": "198.51.100.67", "x-real-ip-2": "198.51.100.68", "x-real-ip": "203.0.113.9"}',
            '{"x-real-ip": "2001:db8::5", "user-agent": "Agent/4"}',
            '{"x-real-ip": "::ffff:203.0.113.9", "user-agent": "Agent/5"}',
            '{"x-real-ip": "203.0.113.09", "user-agent": "Agent/6"}',
            '{"x-real-ip": "203.0.113.9 ", "user-agent": "Agent/7"}',
            '{"x-real-ip": "203.0.113.9\"", "user-agent": "Agent/8"}',
            '{"x-real-ip": "203.0.113.9", "x-api-key": ""}',
            '{"x-real-ip": "203.0.113.9", "x-api-key": "chk_not_a_key"}'
        ]) as w (headers)
    union all
    select jsonb_build_object('x-real-ip', '203.0.113.7', 'x-api-key', k.secret)::text from keys as k
    union all
    select pg_temp.as_postgrest_writes(json_build_object('x-real-ip', '203.0.113.7', 'x-api-key', k.secret)::text)
    from keys as k
)

select
    ro.role,
    m.method,
    pa.path,
    h.headers
from unnest(array['anon', 'reader', 'admin']) as ro (role)
cross join unnest(array['GET', 'POST', '']) as m (method)
cross join pa
cross join h;

select ok((select count(*) from requests) > 5000, 'the comparison covers every route, method, role and header set');

create temporary table outcomes on commit drop as
select
    q.*,
    pg_temp.outcome('app_logic.pre_request', q.role, q.method, q.path, q.headers) as public_branch,
    pg_temp.outcome('pg_temp.pre_request_full', q.role, q.method, q.path, q.headers) as full_branch
from requests as q;

select is_empty(
    $$ select o.role, o.method, o.path, o.headers from outcomes as o where o.public_branch is distinct from o.full_branch $$,
    'the public branch answers what the full branch answers, for every request'
);
select ok(
    (
        select
            count(*) filter (where o.public_branch ? 'error') > 1000
            and count(*) filter (where o.public_branch ->> 'role' = 'anon' and o.public_branch ->> 'timeout' <> '0') > 500
            and count(*) filter (where o.public_branch ->> 'role' in ('reader', 'admin') and o.public_branch ->> 'key' <> '')
            > 100
        from outcomes as o
    ),
    'the requests compared include refusals, public requests and requests with a valid key'
);

select * from finish();
rollback;
