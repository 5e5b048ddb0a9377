-- Foundation advisor: the security rules every object must follow, checked on the built
-- schema. Each query lists offenders, so a failure names them.
begin;
select plan(21);

select is_empty(
    $$ select c.oid::regclass::text from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
       where c.relkind in ('r', 'p') and n.nspname in ('app', 'public', 'api', 'app_logic')
         and not c.relrowsecurity $$,
    'every table (partitions included) has row level security enabled'
);

select is_empty(
    $$ select p.oid::regprocedure::text from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
       where p.prosecdef and n.nspname in ('api', 'app_logic')
         and not exists (select from unnest(p.proconfig) as c where c like 'search_path=%') $$,
    'every SECURITY DEFINER function pins its search_path'
);

select is_empty(
    $$ select p.oid::regprocedure::text from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
       where n.nspname in ('api', 'app_logic') and has_function_privilege('public', p.oid, 'execute')
         and exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) as a where a.grantee = 0) $$,
    'no function of api or app_logic is executable by PUBLIC'
);

select is_empty(
    $$ select c.oid::regclass::text from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
       where n.nspname in ('api', 'app', 'app_logic') and c.relkind in ('r', 'v', 'm', 'p', 'f')
         and exists (select from aclexplode(c.relacl) as a where a.grantee = 0) $$,
    'no table or view of api, app or app_logic is readable by PUBLIC'
);

select is_empty(
    $$ select c.oid::regclass::text from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
       where n.nspname = 'api' and c.relkind in ('r', 'p', 'f', 'm') $$,
    'the api schema holds no table: only views and functions'
);

select is_empty(
    $$ select c.oid::regclass::text from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
       where n.nspname = 'api' and c.relkind = 'v'
         and not coalesce('security_invoker=true' = any(c.reloptions), false) $$,
    'every api view runs with the caller''s rights (security_invoker), so RLS applies'
);

select ok(
    (
        select rolcanlogin and not rolinherit from pg_roles
        where rolname = 'authenticator'
    ),
    'authenticator logs in and inherits nothing (NOINHERIT)'
);

select ok(
    (
        select bool_and(not rolcanlogin) from pg_roles
        where rolname in ('anon', 'reader', 'admin')
    ),
    'anon, reader and admin cannot log in'
);

select ok(
    not has_schema_privilege('anon', 'app', 'usage'),
    'anon has no usage on the table schema app'
);

select is(
    (
        select count(*)::integer
        from pg_roles
        where
            rolname in ('anon', 'reader', 'admin')
            and pg_has_role('authenticator', rolname, 'member')
    ),
    3,
    'authenticator may switch to anon, reader and admin'
);

-- The email check's length rules, at their edges (the lengths are checked apart from the pattern).
select ok(
    app_logic.is_valid_email(repeat('a', 64) || '@example.org'),
    'email: a local part of 64 characters is valid'
);

select ok(
    not app_logic.is_valid_email(repeat('a', 65) || '@example.org'),
    'email: a local part of 65 characters is refused'
);

select ok(
    app_logic.is_valid_email('ada@' || repeat('b', 63) || '.' || repeat('c', 63) || '.org'),
    'email: domain labels of 63 characters are valid'
);

select ok(
    not app_logic.is_valid_email('ada@example.' || repeat('c', 64)),
    'email: a domain label of 64 characters is refused, even the last one'
);

select ok(
    not app_logic.is_valid_email('ada@-example.org') and not app_logic.is_valid_email('ada@example-.org')
    and not app_logic.is_valid_email('ada@example..org') and not app_logic.is_valid_email('ada@example.org.'),
    'email: a label starting or ending with a dash, an empty label or a trailing dot is refused'
);

select ok(
    not app_logic.is_valid_email('.ada@example.org') and not app_logic.is_valid_email('ada.@example.org')
    and not app_logic.is_valid_email('a@da@example.org') and not app_logic.is_valid_email('a' || repeat('b', 250) || '@x.org'),
    'email: a leading dot, a dot before @, a second @ or over 254 characters is refused'
);

-- Every public POST (an api function of one jsonb body) opens the same way: the body is
-- p_body, the screening result v_refusal, and app_logic.screen_request comes first (only a
-- normalisation of the body itself may precede it).
select is_empty(
    $$ select p.oid::regprocedure::text from pg_proc as p
       where p.pronamespace = 'api'::regnamespace and p.proargtypes = '3802'::oidvector and p.provolatile = 'v'
         and (p.prosrc !~ 'p_body alias for \$1;'
              or p.prosrc !~ '\mbegin\s+(--[^\n]*\n\s*|if p_body [^;]*then\s+p_body := [^;]*;\s+end if;\s+)*v_refusal := app_logic\.screen_request\(') $$,
    'every public POST opens with v_refusal := app_logic.screen_request(...) on p_body'
);

-- app_logic.declare_post comments a handler that has no comment of its own.
select is_empty(
    $$ select p.oid::regprocedure::text from pg_proc as p
       where p.pronamespace = 'app_logic'::regnamespace and p.proname like '%\_handler'
         and obj_description(p.oid, 'pg_proc') is null $$,
    'every handler of a declared POST has a comment'
);
-- A handler runs only as its endpoint (after the screening): no web role may call it directly.
select is_empty(
    $$ select p.oid::regprocedure::text || ' ' || r from pg_proc as p cross join unnest(array['anon', 'reader', 'admin']) as r
       where p.pronamespace = 'app_logic'::regnamespace and p.proname like '%\_handler'
         and (has_function_privilege(r, p.oid, 'execute') or p.prosecdef) $$,
    'no web role may call a handler of a declared POST, and no handler is SECURITY DEFINER'
);
select is(
    obj_description('app_logic.stop_ab_test_handler(jsonb)'::regprocedure, 'pg_proc'),
    'What api.stop_ab_test does with a body that passed its screening (app_logic.declare_post).',
    'a handler without a comment of its own gets declare_post''s'
);

-- Every endpoint rule bounds what its fields can hold: numbers have a minimum and a maximum
-- under 10^15 in magnitude, strings a maxLength or an enum, arrays maxItems, objects keyed by
-- the client maxProperties, and a container whose children the rule does not type (free-form
-- JSON) maxBytes, which bounds its shape first (app_logic.free_json_problem).
create function pg_temp.endpoint_rules() returns table (name text, rule jsonb)
language plpgsql stable as $$
declare
    v_name text;
begin
    for v_name in
        select p.proname::text from pg_proc as p
        where p.pronamespace = 'app_logic'::regnamespace and p.proname like '%\_rule' and p.pronargs = 0
            and p.prorettype = 'jsonb'::regtype
    loop
        name := v_name;
        execute format('select app_logic.%I()', v_name) into rule;
        return next;
    end loop;
end
$$;
select is_empty(
    $$ with recursive node (path, rule) as (
           select r.name, r.rule from pg_temp.endpoint_rules() as r
           union all
           select c.path, c.rule
           from node as n
           cross join lateral (
               select n.path || '.' || e.key, e.value from jsonb_each(
                   case when jsonb_typeof(n.rule -> 'properties') = 'object' then n.rule -> 'properties' else '{}' end
               ) as e
               union all
               select n.path || '[]', n.rule -> 'items' where jsonb_typeof(n.rule -> 'items') = 'object'
               union all
               select n.path || '.*', n.rule -> 'additionalProperties'
               where jsonb_typeof(n.rule -> 'additionalProperties') = 'object'
           ) as c (path, rule)
       )
       select n.path from node as n
       where (n.rule ->> 'type' in ('number', 'integer') and not (
                 n.rule ? 'minimum' and n.rule ? 'maximum'
                 and (n.rule ->> 'maximum')::numeric < 1e15 and (n.rule ->> 'minimum')::numeric > -1e15))
          or (n.rule ->> 'type' in ('string', 'email', 'phone') and not (n.rule ? 'maxLength' or n.rule ? 'enum'))
          or (n.rule ->> 'type' = 'array' and not n.rule ? 'maxItems')
          or (jsonb_typeof(n.rule -> 'additionalProperties') = 'object' and not n.rule ? 'maxProperties')
          or (n.rule ->> 'type' = 'object' and jsonb_typeof(n.rule -> 'additionalProperties') = 'boolean'
              and (n.rule ->> 'additionalProperties')::boolean and not n.rule ? 'maxBytes')
          or (n.rule ->> 'type' = 'object' and not n.rule ? 'additionalProperties' and not n.rule ? 'maxBytes')
          or (n.rule ->> 'type' = 'array' and not n.rule ? 'items' and not n.rule ? 'maxBytes')
          or (n.rule ->> 'type' is null) $$,
    'every field of every endpoint rule is bounded'
);

select * from finish();
rollback;
