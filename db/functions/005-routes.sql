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
-- The pre-request looks every request's route up by what PostgREST was asked for (target and
-- method, app_logic.route_key): without this index that lookup read every row, or every entry
-- of the primary key for the method (its second column), about 50k CPU instructions of each
-- request (callgrind); with it, one index probe.
create index routes_target_method_idx on app_logic.routes (target, method);
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
