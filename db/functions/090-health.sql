-- Health endpoints: 200 {"status":"ok"} when the database and the endpoint's objects are usable.

-- The jobs sentence of every health answer (app.job_scheduler is db/schema/120-jobs.sql).
create function app_logic.jobs_problem() returns text
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select case
        when to_regclass('app.job_scheduler') is null then null
        else (select format('pg_cron runs no job for this database (%s): retention, rate-limit counter purges '
                            'and new page-view partitions have stopped', s.detail)
              from app.job_scheduler as s where s.placement = 'none')
    end
$$;
comment on function app_logic.jobs_problem() is
'A sentence when pg_cron runs none of the project''s jobs for this database (health answers carry it), else null.';

create function api.check_leads_health() returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    -- Touches the objects the endpoint needs without reading any row's content.
    select jsonb_strip_nulls(jsonb_build_object('status', 'ok', 'endpoint', 'leads', 'jobs', app_logic.jobs_problem()))
    from (select 1 from app.leads limit 0) as probe
    right join (select 1) as one on true
$$;
comment on function api.check_leads_health() is
'GET /api/leads/health: 200 {"status":"ok"} when the database and the leads objects are usable.';

-- What keeps an endpoint from working, as sentences without personal data: a missing or
-- unreadable table, a missing function, a function anon may not call, a read-only database.
-- Everything is looked up by name at run time, so a dropped object is reported, not a 404.
create function app_logic.endpoint_problems(p_tables text[], p_functions text[], p_public_function text)
returns text[]
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_problems text[] := '{}';
    v_name text;
    v_table regclass;
begin
    if pg_is_in_recovery() then
        v_problems := v_problems || 'the database is a read-only standby'::text;
    end if;
    foreach v_name in array p_tables loop
        v_table := to_regclass(v_name);
        if v_table is null then
            v_problems := v_problems || format('table %s is missing', v_name);
            continue;
        end if;
        begin
            execute format('select from %s limit 0', v_table);
        exception when others then
            v_problems := v_problems || format('table %s cannot be read (%s)', v_name, sqlstate);
        end;
    end loop;
    foreach v_name in array p_functions || p_public_function loop
        if to_regprocedure(v_name) is null then
            v_problems := v_problems || format('function %s is missing', v_name);
        end if;
    end loop;
    if not has_schema_privilege('anon', 'api', 'usage') then
        v_problems := v_problems || 'the anon role has no usage on schema api'::text;
    elsif to_regprocedure(p_public_function) is not null
        and not has_function_privilege('anon', to_regprocedure(p_public_function), 'execute') then
        v_problems := v_problems || format('the anon role may not execute %s', p_public_function);
    end if;
    return v_problems;
end
$$;
comment on function app_logic.endpoint_problems(text[], text[], text) is
'Why an endpoint cannot work (tables, functions, anon''s privilege); empty when it can.';

-- endpoint_problems checks that anon may call the endpoint; an admin endpoint needs admin.
create function app_logic.admin_endpoint_problems(p_tables text[], p_functions text[], p_admin_function text)
returns text[]
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select array_remove(
        app_logic.endpoint_problems(p_tables, p_functions, p_admin_function),
        format('the anon role may not execute %s', p_admin_function)
    ) || case
        when to_regprocedure(p_admin_function) is not null
            and not has_function_privilege('admin', to_regprocedure(p_admin_function), 'execute')
            then array[format('the admin role may not execute %s', p_admin_function)]
        else '{}'::text[]
    end
$$;
comment on function app_logic.admin_endpoint_problems(text[], text[], text) is
'Why an admin endpoint cannot work (tables, functions, admin''s privilege); empty when it can.';

-- 200 {"status":"ok","endpoint":...}, or 503 with an error body naming every problem.
create function app_logic.health_response(p_endpoint text, p_problems text[]) returns jsonb
language plpgsql volatile
as $$
begin
    if cardinality(p_problems) = 0 then
        -- Usable now; the jobs sentence says what will stop working if pg_cron runs none of them.
        return app_logic.respond(200, jsonb_strip_nulls(jsonb_build_object(
            'status', 'ok', 'endpoint', p_endpoint, 'jobs', app_logic.jobs_problem()
        )));
    end if;
    return app_logic.respond(
        503,
        app_logic.error_body(
            'CHU01',
            format('The %s endpoint is unavailable: %s.', p_endpoint, array_to_string(p_problems, '; ')),
            (select string_agg(upper(left(p, 1)) || substr(p, 2) || '.', ' ') from unnest(p_problems) as p),
            'Operators: invoke db.status shows drift; invoke db.build --force restores functions, grants and partitions.'
        ) || jsonb_build_object('status', 'unavailable', 'endpoint', p_endpoint)
    );
end
$$;
comment on function app_logic.health_response(text, text[]) is
'The answer of a health endpoint: 200 ok (with a jobs sentence when pg_cron runs no job for this database), '
'or 503 CHU01 naming what is missing.';

-- The tables the routes of a public path need (their health column in db/routes.toml).
create function app_logic.route_health_tables(p_path text) returns text[]
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(array_agg(distinct t.name order by t.name), '{}')
    from app_logic.routes as r cross join unnest(r.health) as t (name)
    where r.path = p_path
$$;
comment on function app_logic.route_health_tables(text) is
'The tables the routes of a public path need, from app_logic.routes (db/routes.toml).';

-- Objects every rate-limited POST endpoint needs before its own.
create function app_logic.rate_limit_objects(out tables text[], out functions text[])
language sql immutable
as $$
    select
        array['app.rate_limit_rules', 'app.rate_limit_counters'],
        array['app_logic.enforce_rate_limits(text,text,integer)', 'app_logic.validate(jsonb,jsonb,text)']
$$;

-- The health answer of POST /api/<endpoint>, everything read from its route (db/routes.toml): the
-- tables its routes need, its function api.<name>(jsonb) and its rule (app_logic.route_rule,
-- which the OpenAPI document reads too), and who calls it (an admin
-- route needs admin's privilege, any other anon's). p_more names problems of the endpoint's own.
create function app_logic.post_endpoint_health(p_endpoint text, p_more text[] default '{}') returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select app_logic.health_response(p_endpoint, case r.key
        when 'admin' then app_logic.admin_endpoint_problems(r.tables, r.functions, r.endpoint_function)
        else app_logic.endpoint_problems(r.tables, r.functions, r.endpoint_function)
    end || p_more)
    from (
        select
            x.key,
            o.tables || app_logic.route_health_tables(x.path) as tables,
            o.functions || app_logic.route_rule(to_jsonb(x)) as functions,
            format('api.%s(jsonb)', substr(x.target, length('/rpc/') + 1)) as endpoint_function
        from app_logic.routes as x
        cross join app_logic.rate_limit_objects() as o
        where x.path = '/api/' || p_endpoint and x.method = 'POST'
    ) as r
$$;
comment on function app_logic.post_endpoint_health(text, text[]) is
'The health answer of POST /api/<endpoint> from its route: 200 ok, or 503 CHU01 naming what is missing.';

-- The health GET of a POST endpoint, declared in one line: api.<p_function>() answering
-- app_logic.post_endpoint_health(p_endpoint), with the comment every such GET has.
create function app_logic.declare_post_health(p_function text, p_endpoint text) returns void
language plpgsql volatile
as $$
begin
    execute format(
        'create function api.%I() returns jsonb language sql stable security definer '
        'set search_path = pg_catalog, app, pg_temp as $body$ select app_logic.post_endpoint_health(%L) $body$',
        p_function, p_endpoint
    );
    execute format('comment on function api.%I() is %L', p_function, format(
        'GET /api/%1$s/health: 200 {"status":"ok"} when the database and the objects of POST /api/%1$s are usable, '
        'else 503 (code CHU01) naming what is missing.', p_endpoint
    ));
end
$$;
comment on function app_logic.declare_post_health(text, text) is
'Create api.<p_function>(), the health GET of POST /api/<p_endpoint> (app_logic.post_endpoint_health).';

select app_logic.declare_post_health('check_accessibility_preferences_health', 'accessibility-preferences');
select app_logic.declare_post_health('check_brand_engagement_health', 'brand-engagement');

-- Page views also need the partition of the current month (the job makes them ahead).
create function api.check_page_views_health() returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select app_logic.post_endpoint_health('page-views', case
        when to_regclass('app.page_views') is not null and app_logic.page_view_partition(app_logic.now()) is null
            then array[format('partition app.%s of the current month is missing',
                app_logic.page_view_partition_name(app_logic.now()))]
        else '{}'::text[]
    end)
$$;
comment on function api.check_page_views_health() is
'GET /api/page-views/health: 200 {"status":"ok"} when the database, the objects of POST /api/page-views '
'and the current month''s partition are usable, else 503 (code CHU01) naming what is missing.';
