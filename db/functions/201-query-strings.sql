-- Query strings of the GET endpoints that take parameters (A/B assignment, heatmaps,
-- benchmarks, logo materials). nginx hands the raw query string over in the X-Chorus-Query
-- header (it overwrites whatever a client sent there), so these endpoints see every parameter,
-- unknown ones included, and answer 400 naming each bad one, as a POST body would be answered:
-- PostgREST itself would turn each parameter into a function argument and answer an unknown
-- one with 404 (PGRST202). The parameters are then checked by the same rule objects as bodies.

-- Percent-decoding (and + as a space, as HTML forms send it); null when the bytes are not
-- UTF-8 or hold a NUL, which no text value may.
create function app_logic.url_decode(p_text text) returns text
language plpgsql immutable
as $$
declare
    v_bytes bytea;
begin
    select string_agg(
        case when char_length(m.part[1]) = 3 and left(m.part[1], 1) = '%'
            then decode(substr(m.part[1], 2), 'hex')
            else convert_to(m.part[1], 'UTF8')
        end, ''::bytea order by m.ord
    ) into v_bytes
    from regexp_matches(replace(p_text, '+', ' '), '(%[0-9A-Fa-f]{2}|[^%]+|%)', 'g') with ordinality as m (part, ord);
    return convert_from(coalesce(v_bytes, ''::bytea), 'UTF8');
exception when character_not_in_repertoire or untranslatable_character then
    return null;
end
$$;
comment on function app_logic.url_decode(text) is
'A percent-encoded query-string component decoded as UTF-8; null when it is not valid UTF-8 or holds NUL.';

-- The parameters of this request's query string as a JSON object of strings, and the problems
-- of the string itself (undecodable, a parameter given twice). A rule's integer, number and
-- boolean properties are turned into JSON numbers and booleans when they read as one, so
-- app_logic.validate checks their ranges; anything else stays a string it will refuse.
create function app_logic.query_parameters(p_rule jsonb, out params jsonb, out problems jsonb)
language plpgsql stable
as $$
declare
    v_raw text := app_logic.request_header('x-chorus-query');
    v_pair text;
    v_key text;
    v_value text;
    v_type text;
begin
    params := '{}'::jsonb;
    problems := '[]'::jsonb;
    if v_raw is null then
        return;
    end if;
    foreach v_pair in array string_to_array(v_raw, '&') loop
        continue when v_pair = '';
        v_key := app_logic.url_decode(split_part(v_pair, '=', 1));
        v_value := case when strpos(v_pair, '=') > 0 then app_logic.url_decode(substr(v_pair, strpos(v_pair, '=') + 1)) else '' end;
        if v_key is null or v_value is null then
            problems := problems || app_logic.problem(
                coalesce(left(v_key, 100), 'query'), 'The query string must be percent-encoded UTF-8 without NUL characters.'
            );
        elsif params ? v_key then
            problems := problems || app_logic.problem(left(v_key, 100), format('%s is given more than once.', left(v_key, 100)));
        else
            v_type := p_rule -> 'properties' -> v_key ->> 'type';
            params := params || jsonb_build_object(v_key, case
                when v_type in ('integer', 'number') and v_value ~ '^-?[0-9]{1,15}(\.[0-9]{1,15})?$' then to_jsonb(v_value::numeric)
                when v_type = 'boolean' and v_value in ('true', 'false') then to_jsonb(v_value::boolean)
                else to_jsonb(v_value)
            end);
        end if;
        exit when jsonb_array_length(problems) >= 20;
    end loop;
end
$$;
comment on function app_logic.query_parameters(jsonb) is
'This request''s query string (X-Chorus-Query, set by nginx) as a JSON object shaped for a rule, and its problems.';

-- The query parameters and their problems against a rule: the string's own problems, else the
-- rule's.
create function app_logic.query_problems(p_rule jsonb, out params jsonb, out problems jsonb)
language plpgsql stable
as $$
begin
    select q.params, q.problems into params, problems from app_logic.query_parameters(p_rule) as q;
    if jsonb_array_length(problems) = 0 then
        problems := app_logic.validate(params, p_rule);
    end if;
end
$$;
comment on function app_logic.query_problems(jsonb) is
'This request''s query parameters and every problem of them against a rule (an empty array when they pass).';

-- Validate the query string against a rule: the parameters, or the 400 answer naming every
-- bad one (like app_logic.screen_request, whose rate limit a read-only GET cannot take). A
-- parameter left out takes its rule's "default" (the one place a default is written; the
-- OpenAPI document shows it).
create function app_logic.screen_query(p_rule jsonb, out params jsonb, out refused jsonb)
language plpgsql volatile
as $$
declare
    v_problems jsonb;
begin
    select q.params, q.problems into params, v_problems from app_logic.query_problems(p_rule) as q;
    if jsonb_array_length(v_problems) > 0 then
        params := null;
        refused := app_logic.reject_invalid(v_problems);
        return;
    end if;
    params := coalesce((
        select jsonb_object_agg(e.key, e.value -> 'default')
        from jsonb_each(p_rule -> 'properties') as e
        where e.value ? 'default'
    ), '{}'::jsonb) || params;
end
$$;
comment on function app_logic.screen_query(jsonb) is
'The query parameters when they pass the rule (each one left out at its rule''s default), else refused: '
'the 400 answer naming every bad one.';

-- A read-only query-string GET is declared in one line: api.<endpoint>(jsonb) answers its
-- query's refusal (app_logic.screen_query against app_logic.<endpoint>_rule()) or p_answer of
-- the screened parameters, as the owner (SECURITY DEFINER, pinned search_path).
create function app_logic.declare_query_get(p_endpoint text, p_answer regproc, p_description text) returns void
language plpgsql volatile
-- Here a regproc prints schema-qualified (as in app_logic.declare_post): the body runs on the
-- pinned search_path.
set search_path = pg_catalog, pg_temp
as $$
begin
    execute format(
        'create function api.%I(jsonb) returns jsonb language sql stable security definer '
        'set search_path = pg_catalog, app, pg_temp as $body$ '
        'select coalesce(q.refused, %s(q.params)) from app_logic.screen_query(app_logic.%I()) as q $body$',
        p_endpoint, p_answer, p_endpoint || '_rule'
    );
    execute format('comment on function api.%I(jsonb) is %L', p_endpoint, p_description);
end
$$;
comment on function app_logic.declare_query_get(text, regproc, text) is
'Create api.<endpoint>(jsonb), a read-only query-string GET: the refusal of its query, or p_answer(parameters).';

-- A rate-limited GET that takes no parameters (GET /api/form-token, /api/challenge) is a POST
-- of nginx's {} so that it can count: app_logic.screen_request counts and screens that body,
-- and this hook of its (p_checks) refuses any query parameter.
create function app_logic.no_query_parameters_rule() returns jsonb
language sql immutable
as $$
    select app_logic.query_string_body_rule() || '{"description": "No parameters.", "properties": {}}'::jsonb
$$;
comment on function app_logic.no_query_parameters_rule() is 'The query-parameter rule of a GET that takes none.';

create function app_logic.no_query_parameters(p_body jsonb) returns jsonb
language sql stable
as $$
    select q.problems from app_logic.query_problems(app_logic.no_query_parameters_rule()) as q
$$;
comment on function app_logic.no_query_parameters(jsonb) is
'screen_request''s checks of a counted GET without parameters: a problem for each query parameter (the body is {}).';

-- The OpenAPI form of a query-string GET (api.<name>(jsonb) with a rule function p_rule, its
-- route's: app_logic.route_rule): its parameters from the rule and its responses (JSON, or the
-- media type its return domain names); null for any other function. Used by
-- app_logic.openapi_document.
create function app_logic.openapi_query_operation(p_proc regprocedure, p_rule text) returns jsonb
language plpgsql stable
as $$
declare
    v_name text;
    v_rule_fn regprocedure;
    v_rule jsonb;
    v_media text;
    v_required jsonb;
begin
    select p.proname, t.typname into v_name, v_media
    from pg_catalog.pg_proc as p
    join pg_catalog.pg_type as t on p.prorettype = t.oid
    where p.oid = p_proc and p.pronargs = 1 and p.proargtypes[0] = 'jsonb'::regtype;
    if v_name is null then
        return null;
    end if;
    v_rule_fn := to_regprocedure(p_rule);
    if v_rule_fn is null then
        return null;
    end if;
    execute format('select %s()', v_rule_fn::regproc) into v_rule;
    v_required := coalesce(v_rule -> 'required', '[]'::jsonb);
    v_media := case when v_media like '%/%' then v_media else 'application/json' end;
    return jsonb_build_object(
        'parameters', coalesce((
            select jsonb_agg(jsonb_build_object(
                'name', e.key, 'in', 'query', 'required', v_required ? e.key,
                'description', coalesce(e.value ->> 'description', ''),
                'schema', app_logic.openapi_schema_of_rule(e.value - 'description')
            ) order by e.key)
            from jsonb_each(v_rule -> 'properties') as e
        ), '[]'::jsonb),
        'responses', jsonb_build_object(
            '200', jsonb_build_object(
                'description', 'The answer.',
                'content', jsonb_build_object(v_media, jsonb_build_object(
                    'schema', case
                        -- An answer described by app_logic.<name>_response() (form token, challenge).
                        when to_regprocedure(format('app_logic.%I()', v_name || '_response')) is not null
                            then app_logic.openapi_function_response(v_name)
                        when v_media = 'application/json' then '{"type": "object"}'::jsonb
                        else '{"type": "string"}'::jsonb
                    end
                ))
            ),
            '400', '{"$ref": "#/components/responses/BadRequest"}'::jsonb
        )
    );
end
$$;
comment on function app_logic.openapi_query_operation(regprocedure, text) is
'The parameters and responses of a query-string GET endpoint for the OpenAPI document; null for other functions.';
