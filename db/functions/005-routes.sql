-- The public HTTP routes, as the build copied them from db/routes.toml (their one source).
-- The OpenAPI document and the health checks read them here; nginx's route maps are rendered
-- from the same file (chorus_db.routes). A table, not a function with literal rows, so adding
-- an endpoint is one row of db/routes.toml and no SQL; the build fills it after every file of
-- db/functions and db/policies ran, and refuses a row whose objects are missing.

create table app_logic.routes (
    method text not null check (method in ('GET', 'POST')),
    path text not null check (path like '/api/%'),
    target text not null check (target ~ '^/(rpc/)?[a-z0-9_]+$'),
    key text not null check (key in ('none', 'reader', 'admin')),
    success integer[] not null check (cardinality(success) > 0 and 200 <= all(success) and 300 > all(success)),
    rate_limit text,
    health text[] not null default '{}',
    rule text check (rule ~ '^[a-z0-9_]+$'),
    primary key (path, method)
);
-- No policy and no grant on purpose: only the owner (the build, SECURITY DEFINER readers) reads it.
alter table app_logic.routes enable row level security;
comment on table app_logic.routes is
'The public HTTP routes, copied by the build from db/routes.toml; never edited by hand.';
comment on column app_logic.routes.method is 'The public method (a GET route answers HEAD too).';
comment on column app_logic.routes.path is 'The public path, under /api.';
comment on column app_logic.routes.target is 'The PostgREST path nginx forwards to: /rpc/<api function> or /<api view>.';
comment on column app_logic.routes.key is 'The API key needed: none, reader (reader or admin) or admin.';
comment on column app_logic.routes.success is 'The 2xx statuses the endpoint answers with.';
comment on column app_logic.routes.rate_limit is 'The app.rate_limit_rules action the endpoint counts against; null for none.';
comment on column app_logic.routes.health is 'The tables the endpoint needs; its health check probes them.';
comment on column app_logic.routes.rule is
'The app_logic function (no arguments) holding the rule of the endpoint''s input; null: <function>_rule.';

-- The rule function of a route (a row of app_logic.routes as JSON): the one its row names, else
-- app_logic.<function>_rule(). The OpenAPI document and the health checks read rules by it.
create function app_logic.route_rule(p_route jsonb) returns text
language sql immutable
as $$
    select format('app_logic.%I()', coalesce(p_route ->> 'rule', split_part(p_route ->> 'target', '/', -1) || '_rule'))
$$;
comment on function app_logic.route_rule(jsonb) is
'The signature of a route''s rule function: its row''s rule, else app_logic.<function>_rule().';

-- The key a request needs, compiled from this table into one constant, so the pre-request reads
-- no table: a JSON object from "METHOD target" to the key (a GET route under HEAD too), looked up
-- by one operator (a binary search of the object's sorted keys). A lookup in the table, even by
-- index, is a query with its own executor start in every transaction; one WHEN per route was an
-- expression of 50 comparisons, each set up again in every transaction (callgrind: 94k
-- instructions). Inlined into the pre-request's expression, whose plan PL/pgSQL keeps; the build
-- fills the table after every file ran, and the trigger below compiles the function again then:
-- CREATE OR REPLACE of an inlined function invalidates every cached plan that inlined it, so a
-- connection PostgREST keeps open follows a build at its next request. A (method, target) named
-- by two rows needs the stricter key.
create function app_logic.compile_route_keys() returns void
language plpgsql volatile
as $$
declare
    v_keys jsonb;
    v_targets jsonb;
begin
    select coalesce(jsonb_object_agg(r.request, r.key), '{}')
    into v_keys
    from (
        select
            m.method || ' ' || g.target as request,
            (array_agg(g.key order by array_position(array['admin', 'reader', 'none'], g.key)))[1] as key
        from app_logic.routes as g
        cross join lateral unnest(case g.method when 'GET' then array['GET', 'HEAD'] else array[g.method] end) as m (method)
        group by m.method, g.target
    ) as r
    where r.key <> 'none';
    -- The targets of those keys alone, each with its keys: what the pre-request's routing
    -- condition asks (does any method of this path need a key?), without the method's
    -- upper() and the two concatenations of the full key (callgrind: 9k instructions a public
    -- request). A path outside it needs no key under any method; one in it goes to the
    -- pre-request's full branch, which asks protected_route_key.
    select coalesce(jsonb_object_agg(t.target, t.keys), '{}')
    into v_targets
    from (
        select split_part(k.request, ' ', 2) as target, string_agg(distinct k.key, ' ' order by k.key) as keys
        from jsonb_each_text(v_keys) as k (request, key)
        group by split_part(k.request, ' ', 2)
    ) as t;
    perform app_logic.compile_json_lookup(
        'protected_route_key(p_method text, p_target text)', $k$upper(p_method) || ' ' || p_target$k$, v_keys
    );
    perform app_logic.compile_json_lookup('protected_route_target(p_target text)', 'p_target', v_targets);
    comment on function app_logic.protected_route_key(text, text) is
    'The key (reader or admin) a request needs by PostgREST method and path, compiled from app_logic.routes; '
    'null for a route any client may use or a path no route names.';
    comment on function app_logic.protected_route_target(text) is
    'The keys (reader, admin) some method of a PostgREST path needs, compiled from app_logic.routes; '
    'null for a path no method of which needs a key.';
end
$$;
comment on function app_logic.compile_route_keys() is
'Compile app_logic.routes'' keys into app_logic.protected_route_key and protected_route_target (run by the trigger '
'on every change of the table).';

create trigger routes_compile
after insert or update or delete or truncate on app_logic.routes
for each statement execute function app_logic.tg_compile('compile_route_keys');

-- The first version, from the empty table: the pre-request's definition needs the function.
select app_logic.compile_route_keys();
