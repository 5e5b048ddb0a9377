-- The pre-request's compiled lookups: app_logic.protected_route_key and protected_route_target (from app_logic.routes) and
-- app_logic.role_statement_timeout (from the roles' settings) must answer what reading the table
-- and the catalog answers, for every route and every hostile path; both are inlined into the
-- pre-request's expression (a constant looked up, no function call, no table read); and a plan a connection keeps
-- (PostgREST prepares its call) follows a recompile: a route or a timeout changed by a build
-- applies at the next request of a connection that stays open.
begin;
select plan(10);

-- What the pre-request read before it was compiled: the route's row, by target and method.
create function pg_temp.key_by_table(p_method text, p_target text) returns text
language sql stable
as $$
    select nullif((
        select r.key from app_logic.routes as r
        where r.target = p_target and r.method = case upper(p_method) when 'HEAD' then 'GET' else upper(p_method) end
        limit 1
    ), 'none')
$$;

create temporary table requests (method text, target text) on commit drop;
insert into requests
select
    m.method,
    r.target
from app_logic.routes as r
cross join lateral unnest(array[r.method, lower(r.method), 'HEAD', 'head', 'PATCH', 'DELETE', 'OPTIONS', '']) as m (method);
insert into requests values
('GET', '/leads/'), ('GET', '/LEADS'), ('GET', ' /leads'), ('GET', '/leads '), ('GET', '/leads?select=id'),
('GET', E'/le\u0430ds'), ('GET', E'/leads\u200b'), ('GET', '//leads'),
('GET', '/rpc/leads'), ('POST', '/leads'), ('GET', ''), ('GET', null), (null, '/leads'), (null, null),
('G' || repeat('E', 100000) || 'T', '/leads'), ('GET', '/' || repeat('leads', 20000)),
(E'GET\n', '/leads'), ('GÉT', '/leads'), ('GET /leads', ''), ('GET', 'GET /leads');

select is_empty(
    $$ select q.method, q.target from requests as q
       where app_logic.protected_route_key(q.method, q.target) is distinct from pg_temp.key_by_table(q.method, q.target) $$,
    'the compiled route keys answer what the route table answers, for every route, method and hostile path'
);
select ok(
    (
        select count(*) from requests
        where pg_temp.key_by_table(method, target) is not null
    ) > 40,
    'the comparison covers the protected routes (and their HEAD)'
);

-- The pre-request's routing condition asks only whether any method of a path needs a key.
select is_empty(
    $$ select q.target from requests as q
       where (app_logic.protected_route_target(q.target) is not null) is distinct from exists (
           select from app_logic.routes as r where r.target = q.target and r.key <> 'none'
       ) $$,
    'the compiled protected targets are the paths of the routes that need a key, for every route and hostile path'
);
select is_empty(
    $$ select q.method, q.target from requests as q
       where app_logic.protected_route_key(q.method, q.target) is not null
         and app_logic.protected_route_target(q.target) is null $$,
    'every request that needs a key takes the pre-request''s full branch'
);

select is_empty(
    $$ select r.rolname from pg_roles as r
       where app_logic.role_statement_timeout(r.rolname) is distinct from (
           select substr(c.setting, length('statement_timeout=') + 1)
           from pg_db_role_setting as s cross join unnest(s.setconfig) as c (setting)
           where s.setdatabase = 0 and s.setrole = r.oid and c.setting like 'statement\_timeout=%'
       ) $$,
    'the compiled timeouts answer what the roles'' settings say, for every role'
);
select is(
    app_logic.role_statement_timeout('no_such_role') || app_logic.role_statement_timeout(null) || 'x', null,
    'a role without a setting has no timeout'
);

-- Inlined: a plan that calls them holds a JSON constant and no call of either.
select matches(
    tap.plan_of($$ select app_logic.protected_route_key(current_setting('x.m', true), current_setting('x.p', true)),
                              app_logic.role_statement_timeout(current_setting('x.r', true)),
                              app_logic.protected_route_target(current_setting('x.p', true)) $$),
    '^(?!.*(protected_route_key|role_statement_timeout|protected_route_target)).*::jsonb ->> .*::jsonb ->> .*::jsonb ->> ',
    'the compiled lookups are inlined into their caller: three constants looked up, no function called'
);

-- A connection that keeps its plan (a prepared statement, as PostgREST's) follows a recompile.
grant all on all tables in schema pg_temp to anon;
set local role anon;
select set_config('request.method', 'POST', true);
select set_config('request.path', '/rpc/submit_lead', true);
select set_config('request.headers', '{"x-real-ip": "203.0.113.5"}', true);
prepare pre_request as select app_logic.pre_request();
execute pre_request;
execute pre_request;
create temporary table route_reads on commit drop as
select
    t.seq_scan,
    t.idx_scan
from pg_stat_xact_user_tables as t
where t.relid = 'app_logic.routes'::regclass;
execute pre_request;
select is(
    (
        select row(t.seq_scan - r.seq_scan, coalesce(t.idx_scan, 0) - coalesce(r.idx_scan, 0))::text
        from pg_stat_xact_user_tables as t cross join route_reads as r
        where t.relid = 'app_logic.routes'::regclass
    ),
    '(0,0)',
    'a request without a key reads no route from the table'
);
reset role;

-- What a build does: it sets the roles' timeouts (db/policies compiles them) and fills the route
-- table again (the trigger compiles it). Each alone must reach the kept plan.
alter role anon set statement_timeout = '2500ms';
select app_logic.compile_role_timeouts();
set local role anon;
execute pre_request;
select is(current_setting('statement_timeout'), '2500ms', 'a changed timeout applies to the plan a connection kept');
reset role;
update app_logic.routes set key = 'admin'
where target = '/rpc/submit_lead';
set local role anon;
select throws_ok(
    'execute pre_request', 'PGRST',
    app_logic.error_body('CHK01', 'This endpoint needs an API key (X-API-Key).', null, 'Send an API key of role admin.')::text,
    'a route made protected applies to the plan a connection kept'
);
reset role;
set local statement_timeout = 0;

select * from finish();
rollback;
