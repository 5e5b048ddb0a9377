-- The OpenAPI 3.0 document of the public HTTP API, served at GET /api/ (PostgREST's db-root-spec).
--
-- It describes the public paths of app_logic.routes (the build copies them from db/routes.toml),
-- not PostgREST's own /rpc/... paths: request bodies come from the same rule objects the
-- endpoints validate with (the rule function of the route, app_logic.route_rule: the one its
-- row names, else app_logic.<function>_rule()), GET responses from the api views' columns and
-- their comments. The build refuses a
-- route whose api object is missing, so every route is documented; a route table given by a
-- test that names a missing object is an error (CHX03), never a silently shorter document.

-- A validation rule (JSON Schema words plus the validator's extras) as an OpenAPI 3.0 Schema
-- Object. email -> string/email, phone -> string; const -> enum (3.0 has no const); trim,
-- patternText and maxBytes have no OpenAPI word: the last two become part of the description;
-- batchMaxItems makes the schema a oneOf of the object and a batch {"events": [...]} of them;
-- any other unknown word is dropped. Optional properties are nullable: the validator treats
-- null as "left out".
create function app_logic.openapi_schema_of_rule(p_rule jsonb) returns jsonb
language plpgsql immutable
as $$
declare
    v_type text;
    v_out jsonb := '{}'::jsonb;
    v_key text;
    v_value jsonb;
    v_required jsonb;
    v_properties jsonb := '{}'::jsonb;
    v_child jsonb;
    v_notes text[] := '{}';
begin
    if p_rule is null or jsonb_typeof(p_rule) <> 'object' then
        return '{}'::jsonb;
    end if;
    v_type := case when jsonb_typeof(p_rule -> 'type') = 'string' then p_rule ->> 'type' end;
    v_out := case v_type
        when 'email' then '{"type": "string", "format": "email"}'::jsonb
        when 'phone' then '{"type": "string"}'::jsonb
        when 'string' then '{"type": "string"}'::jsonb
        when 'integer' then '{"type": "integer"}'::jsonb
        when 'number' then '{"type": "number"}'::jsonb
        when 'boolean' then '{"type": "boolean"}'::jsonb
        when 'array' then '{"type": "array"}'::jsonb
        when 'object' then '{"type": "object"}'::jsonb
        else '{}'::jsonb
    end;
    -- Words OpenAPI 3.0 shares with JSON Schema, copied when their value has the right shape.
    for v_key, v_value in select e.key, e.value from jsonb_each(p_rule) as e loop
        if v_key in ('minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties')
            and jsonb_typeof(v_value) = 'number' then
            v_out := v_out || jsonb_build_object(v_key, v_value);
        elsif v_key in ('minimum', 'maximum', 'multipleOf') and jsonb_typeof(v_value) = 'number' then
            v_out := v_out || jsonb_build_object(v_key, v_value);
        elsif v_key in ('exclusiveMinimum', 'exclusiveMaximum') and jsonb_typeof(v_value) = 'number' then
            -- JSON Schema's number form; OpenAPI 3.0 has a bound plus a boolean.
            v_out := v_out || jsonb_build_object(
                case v_key when 'exclusiveMinimum' then 'minimum' else 'maximum' end, v_value, v_key, true
            );
        elsif v_key in ('pattern', 'description', 'title') and jsonb_typeof(v_value) = 'string' then
            v_out := v_out || jsonb_build_object(v_key, v_value);
        elsif v_key = 'format' and jsonb_typeof(v_value) = 'string' and v_type is distinct from 'email' then
            v_out := v_out || jsonb_build_object(v_key, v_value);
        elsif v_key = 'uniqueItems' and jsonb_typeof(v_value) = 'boolean' then
            v_out := v_out || jsonb_build_object(v_key, v_value);
        elsif v_key = 'enum' and jsonb_typeof(v_value) = 'array' and jsonb_array_length(v_value) > 0 then
            v_out := v_out || jsonb_build_object(v_key, v_value);
        elsif v_key = 'const' then
            v_out := v_out || jsonb_build_object('enum', jsonb_build_array(v_value));
        elsif v_key in ('default', 'example') then
            v_out := v_out || jsonb_build_object(v_key, v_value);
        elsif v_key = 'items' and jsonb_typeof(v_value) = 'object' then
            v_out := v_out || jsonb_build_object('items', app_logic.openapi_schema_of_rule(v_value));
        elsif v_key = 'additionalProperties' and jsonb_typeof(v_value) = 'boolean' then
            v_out := v_out || jsonb_build_object(v_key, v_value);
        elsif v_key = 'additionalProperties' and jsonb_typeof(v_value) = 'object' then
            v_out := v_out || jsonb_build_object(v_key, app_logic.openapi_schema_of_rule(v_value));
        elsif v_key = 'patternText' and jsonb_typeof(v_value) = 'string' then
            v_notes := v_notes || format('Must be %s.', v_value #>> '{}');
        elsif v_key = 'maxBytes' and jsonb_typeof(v_value) = 'number' then
            v_notes := v_notes || format('At most %s bytes of JSON.', v_value #>> '{}');
        end if;
    end loop;
    -- OpenAPI 3.0 requires items for arrays.
    if v_type = 'array' and not v_out ? 'items' then
        v_out := v_out || '{"items": {}}'::jsonb;
    end if;
    v_required := case when jsonb_typeof(p_rule -> 'required') = 'array' then p_rule -> 'required' else '[]' end;
    if jsonb_typeof(p_rule -> 'properties') = 'object' then
        for v_key, v_value in select e.key, e.value from jsonb_each(p_rule -> 'properties') as e loop
            v_child := app_logic.openapi_schema_of_rule(v_value);
            if not v_required ? v_key and v_child ? 'type' then
                v_child := v_child || '{"nullable": true}'::jsonb;
            end if;
            v_properties := v_properties || jsonb_build_object(v_key, v_child);
        end loop;
        v_out := v_out || jsonb_build_object('properties', v_properties);
    end if;
    -- OpenAPI 3.0: when present, required is a non-empty array.
    if jsonb_array_length(v_required) > 0 then
        v_out := v_out || jsonb_build_object('required', v_required);
    end if;
    if cardinality(v_notes) > 0 then
        v_out := v_out || jsonb_build_object(
            'description', concat_ws(' ', v_out ->> 'description', array_to_string(v_notes, ' '))
        );
    end if;
    -- batchMaxItems: the body is one such object or a batch {"events": [1 to that many]}.
    if jsonb_typeof(p_rule -> 'batchMaxItems') = 'number' then
        v_out := jsonb_build_object('oneOf', jsonb_build_array(v_out, jsonb_build_object(
            'type', 'object', 'required', jsonb_build_array('events'), 'additionalProperties', false,
            'description', format('A batch of 1 to %s of them, stored all or nothing.', p_rule ->> 'batchMaxItems'),
            'properties', jsonb_build_object('events', jsonb_build_object(
                'type', 'array', 'minItems', 1, 'maxItems', p_rule -> 'batchMaxItems', 'items', v_out,
                'description', format('The events, 1 to %s, each as a single one is sent.', p_rule ->> 'batchMaxItems')
            ))
        )));
    end if;
    return v_out;
end
$$;
comment on function app_logic.openapi_schema_of_rule(jsonb) is
'A validation rule translated to an OpenAPI 3.0 Schema Object (unknown words dropped).';

-- The OpenAPI schema of a column type: domains by their base type, arrays by their element.
create function app_logic.openapi_schema_of_type(p_type oid) returns jsonb
language plpgsql stable
as $$
declare
    v_t record;
begin
    select t.oid, t.typname, t.typtype, t.typcategory, t.typelem, t.typbasetype
    into v_t
    from pg_catalog.pg_type as t where t.oid = p_type;
    if not found then
        return '{}'::jsonb;
    end if;
    if v_t.typtype = 'd' then
        return app_logic.openapi_schema_of_type(v_t.typbasetype);
    end if;
    if v_t.typtype = 'e' then
        return jsonb_build_object('type', 'string', 'enum', (
            select jsonb_agg(e.enumlabel order by e.enumsortorder) from pg_catalog.pg_enum as e where e.enumtypid = v_t.oid
        ));
    end if;
    if v_t.typcategory = 'A' and v_t.typelem <> 0 then
        return jsonb_build_object('type', 'array', 'items', app_logic.openapi_schema_of_type(v_t.typelem));
    end if;
    return case v_t.typname
        when 'bool' then '{"type": "boolean"}'
        when 'int2' then '{"type": "integer", "format": "int32"}'
        when 'int4' then '{"type": "integer", "format": "int32"}'
        when 'int8' then '{"type": "integer", "format": "int64"}'
        when 'float4' then '{"type": "number", "format": "float"}'
        when 'float8' then '{"type": "number", "format": "double"}'
        when 'numeric' then '{"type": "number"}'
        when 'uuid' then '{"type": "string", "format": "uuid"}'
        when 'timestamptz' then '{"type": "string", "format": "date-time"}'
        when 'timestamp' then '{"type": "string", "format": "date-time"}'
        when 'date' then '{"type": "string", "format": "date"}'
        -- Any JSON value: no type.
        when 'json' then '{}'
        when 'jsonb' then '{}'
        else '{"type": "string"}'
    end::jsonb;
end
$$;
comment on function app_logic.openapi_schema_of_type(oid) is 'The OpenAPI 3.0 schema of a PostgreSQL type.';

-- A view's rows as an OpenAPI object schema, described by the view's and columns' comments.
create function app_logic.openapi_schema_of_view(p_view regclass) returns jsonb
language sql stable
as $$
    select jsonb_strip_nulls(jsonb_build_object(
        'type', 'object',
        'description', obj_description(p_view, 'pg_class'),
        'properties', coalesce((
            select jsonb_object_agg(
                a.attname,
                s.schema
                || case when s.schema ? 'type' then '{"nullable": true}'::jsonb else '{}'::jsonb end
                || coalesce(jsonb_build_object('description', col_description(a.attrelid, a.attnum)), '{}'::jsonb)
                order by a.attnum
            )
            from pg_catalog.pg_attribute as a
            cross join lateral (select app_logic.openapi_schema_of_type(a.atttypid) as schema) as s
            where a.attrelid = p_view and a.attnum > 0 and not a.attisdropped
        ), '{}'::jsonb)
    ))
$$;
comment on function app_logic.openapi_schema_of_view(regclass) is 'The rows of a view as an OpenAPI object schema.';

create function app_logic.openapi_error_response(p_description text) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'description', p_description,
        'content', jsonb_build_object('application/json', jsonb_build_object(
            'schema', jsonb_build_object('$ref', '#/components/schemas/Error')
        ))
    )
$$;
comment on function app_logic.openapi_error_response(text) is 'An OpenAPI response whose body is the Error schema.';

-- The error body every endpoint and nginx answer with.
create function app_logic.openapi_error_schema() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object",
        "description": "An error, in PostgREST''s shape.",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "A PostgreSQL, PostgREST or project error code."},
            "message": {"type": "string", "description": "One sentence naming what is wrong."},
            "details": {"type": "string", "nullable": true, "description": "More about the error; names every invalid field."},
            "hint": {"type": "string", "nullable": true, "description": "What to do about it."},
            "errors": {
                "type": "array",
                "description": "On 400 (CHV01): every invalid field with its problem.",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}}
                }
            }
        }
    }'::jsonb
$$;
comment on function app_logic.openapi_error_schema() is 'The OpenAPI schema of the error body.';

-- What every operation shares: id, tag, summary, the description from the object's comment plus
-- the key it needs, and the security requirement.
create function app_logic.openapi_operation_head(p_route jsonb, p_operation_id text, p_comment text) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'operationId', p_operation_id,
        'tags', jsonb_build_array(split_part(p_route ->> 'path', '/', 3)),
        'summary', format('%s %s', p_route ->> 'method', p_route ->> 'path'),
        'description', coalesce(p_comment, '') || case p_route ->> 'key'
            when 'reader' then ' Needs an API key of role reader or admin (X-API-Key).'
            when 'admin' then ' Needs an API key of role admin (X-API-Key).'
            else ''
        end,
        -- No key or a valid key both work on public routes; a wrong key is refused everywhere.
        'security', case when p_route ->> 'key' = 'none' then '[{}, {"ApiKey": []}]'::jsonb else '[{"ApiKey": []}]'::jsonb end
    )
$$;
comment on function app_logic.openapi_operation_head(jsonb, text, text) is
'The fields every OpenAPI operation of a route has (id, tag, summary, description, security).';

-- The error responses of a route: 401 everywhere (a wrong key), 403 where a key is needed.
create function app_logic.openapi_common_responses(p_route jsonb) returns jsonb
language sql immutable
as $$
    select '{"401": {"$ref": "#/components/responses/Unauthorized"}}'::jsonb
    || case when p_route ->> 'key' <> 'none' then '{"403": {"$ref": "#/components/responses/Forbidden"}}'::jsonb
        else '{}'::jsonb end
    || '{"default": {"$ref": "#/components/responses/Error"}}'::jsonb
$$;
comment on function app_logic.openapi_common_responses(jsonb) is 'The 401/403/default responses of a route.';

-- GET on a view: PostgREST's query parameters, one filter per column, the rows.
create function app_logic.openapi_view_operation(p_route jsonb, p_view regclass) returns jsonb
language sql stable
as $$
    select app_logic.openapi_operation_head(p_route, 'list_' || n.name, obj_description(p_view, 'pg_class'))
    || jsonb_build_object(
        'parameters', '[
            {"$ref": "#/components/parameters/select"}, {"$ref": "#/components/parameters/order"},
            {"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/offset"},
            {"$ref": "#/components/parameters/Prefer"}, {"$ref": "#/components/parameters/Range"}
        ]'::jsonb || coalesce((
            select jsonb_agg(jsonb_build_object(
                'name', a.attname, 'in', 'query', 'required', false,
                'description', format('PostgREST filter on %s, e.g. eq.<value>, in.(a,b), gt.<value>.', a.attname),
                'schema', jsonb_build_object('type', 'string')
            ) order by a.attnum)
            from pg_catalog.pg_attribute as a
            where a.attrelid = p_view and a.attnum > 0 and not a.attisdropped
                and a.attname not in ('select', 'order', 'limit', 'offset')
        ), '[]'::jsonb),
        'responses', (
            select jsonb_object_agg(s.status::text, jsonb_build_object(
                'description', case s.status when '206' then 'Part of the rows (Range, limit or offset with a count).'
                    else 'The rows.' end,
                'headers', jsonb_build_object('Content-Range', jsonb_build_object(
                    'description', 'Rows returned and, with Prefer: count=exact, the total.',
                    'schema', jsonb_build_object('type', 'string')
                )),
                'content', jsonb_build_object('application/json', jsonb_build_object('schema', jsonb_build_object(
                    'type', 'array', 'items', jsonb_build_object('$ref', '#/components/schemas/' || n.name)
                )))
            ))
            from jsonb_array_elements_text(p_route -> 'success') as s (status)
        ) || '{"400": {"$ref": "#/components/responses/BadRequest"}}'::jsonb
        || app_logic.openapi_common_responses(p_route)
    )
    from (select split_part(p_route ->> 'target', '/', -1) as name) as n
$$;
comment on function app_logic.openapi_view_operation(jsonb, regclass) is 'The OpenAPI operation of a GET route on a view.';

-- POST to a function: the body schema from its rule (by name), the 2xx and the refusals.
create function app_logic.openapi_post_operation(p_route jsonb, p_proc regprocedure) returns jsonb
language sql stable
as $$
    select app_logic.openapi_operation_head(p_route, n.name, obj_description(p_proc, 'pg_proc'))
    || jsonb_build_object(
        'requestBody', jsonb_build_object(
            'required', true,
            'content', jsonb_build_object('application/json', jsonb_build_object(
                'schema', jsonb_build_object('$ref', '#/components/schemas/' || n.name || '_body')
            ))
        ),
        'responses', (
            select jsonb_object_agg(s.status::text, jsonb_build_object(
                'description', case s.status when '201' then 'Accepted and stored.' else 'Done.' end,
                'content', '{"application/json": {"schema": {"type": "object"}}}'::jsonb
            ))
            from jsonb_array_elements_text(p_route -> 'success') as s (status)
        ) || '{
            "400": {"$ref": "#/components/responses/BadRequest"},
            "413": {"$ref": "#/components/responses/PayloadTooLarge"}
        }'::jsonb
        || case when coalesce(p_route ->> 'rate_limit', '') <> ''
            then '{"429": {"$ref": "#/components/responses/TooManyRequests"}}'::jsonb else '{}'::jsonb end
        || app_logic.openapi_common_responses(p_route)
    )
    from (select split_part(p_route ->> 'target', '/', -1) as name) as n
$$;
comment on function app_logic.openapi_post_operation(jsonb, regprocedure) is 'The OpenAPI operation of a POST route.';

-- The request body schema of a POST function: its rule (app_logic.route_rule) translated, or any
-- object without one.
create function app_logic.openapi_body_schema(p_rule text) returns jsonb
language plpgsql stable
as $$
declare
    v_rule_fn regprocedure := to_regprocedure(p_rule);
    v_rule jsonb;
begin
    if v_rule_fn is null then
        return '{"type": "object"}'::jsonb;
    end if;
    execute format('select %s()', v_rule_fn::regproc) into v_rule;
    return app_logic.openapi_schema_of_rule(v_rule);
end
$$;
comment on function app_logic.openapi_body_schema(text) is
'The OpenAPI schema of a POST body: its rule function (a signature) translated, or any object.';

-- What a GET function answers: the schema app_logic.<name>_response() gives, or, for the health
-- endpoints (which have none), {"status": "ok"}.
create function app_logic.openapi_function_response(p_name text) returns jsonb
language plpgsql stable
as $$
declare
    v_schema_fn regprocedure := to_regprocedure(format('app_logic.%I()', p_name || '_response'));
    v_schema jsonb;
begin
    if v_schema_fn is null then
        return '{
            "type": "object", "description": "The endpoint and the database are usable.",
            "required": ["status", "endpoint"],
            "properties": {
                "status": {"type": "string", "enum": ["ok"]},
                "endpoint": {"type": "string", "description": "The endpoint this health check is for."},
                "jobs": {
                    "type": "string",
                    "description": "Only when pg_cron runs no job for this database: what has stopped and why (db.status says the same)."
                }
            }
        }'::jsonb;
    end if;
    execute format('select %s()', v_schema_fn::regproc) into v_schema;
    return v_schema;
end
$$;
comment on function app_logic.openapi_function_response(text) is
'The OpenAPI schema of what a GET function answers: app_logic.<name>_response(), or a health answer.';

-- GET on a function: the health endpoints, GET /api/api-key, GET /api/consent-text.
create function app_logic.openapi_health_operation(p_route jsonb, p_proc regprocedure) returns jsonb
language sql stable
as $$
    select app_logic.openapi_operation_head(p_route, n.name, obj_description(p_proc, 'pg_proc'))
    || jsonb_build_object('responses', (
        select jsonb_object_agg(s.status::text, jsonb_build_object(
            'description', r.schema ->> 'description',
            'content', jsonb_build_object('application/json', jsonb_build_object('schema', r.schema))
        ))
        from jsonb_array_elements_text(p_route -> 'success') as s (status)
    ) || app_logic.openapi_common_responses(p_route))
    from (select split_part(p_route ->> 'target', '/', -1) as name) as n
    cross join lateral (select app_logic.openapi_function_response(n.name) as schema) as r
$$;
comment on function app_logic.openapi_health_operation(jsonb, regprocedure) is
'The OpenAPI operation of a GET route on a function.';

-- A link of a mail (db/functions/310-consent-texts.sql): the token in the query, HTML or JSON
-- by Accept. The GET is the page the link opens (it changes nothing: mail scanners fetch
-- links); the POST is its button, and RFC 8058 one-click, with a form body that is not read.
create function app_logic.openapi_link_operation(p_route jsonb, p_proc regprocedure) returns jsonb
language sql stable
as $$
    select app_logic.openapi_operation_head(p_route, n.name, obj_description(p_proc, 'pg_proc'))
    || jsonb_build_object('parameters', jsonb_build_array(jsonb_build_object(
        'name', 'token', 'in', 'query', 'required', true,
        'description', 'The token of the link, as the mail carried it (43 characters).',
        'schema', '{"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}'::jsonb
    )))
    || case when n.acts then jsonb_build_object('requestBody', jsonb_build_object(
        'required', false,
        'description', 'The page''s button sends an empty form; RFC 8058 one-click sends List-Unsubscribe=One-Click. '
            'The body is not read: the token in the query is what counts.',
        'content', '{"application/x-www-form-urlencoded": {"schema": {"type": "object",
            "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}}}}}'::jsonb
    )) else '{}'::jsonb end
    || jsonb_build_object('responses', (
        select jsonb_object_agg(s.status::text, case when n.acts then jsonb_build_object(
            'description', 'Done: an HTML page with Accept: text/html, JSON otherwise.',
            'content', '{"application/json": {"schema": {"type": "object", "required": ["status"],
                "properties": {"status": {"type": "string", "enum": ["confirmed", "withdrawn"],
                    "description": "What the link did."},
                "marketingConsent": {"type": "boolean", "description": "The marketing consent now."},
                "message": {"type": "string", "description": "One sentence for the person."}}}},
                "text/html": {"schema": {"type": "string", "description": "The same as a page."}}}'::jsonb
        ) else jsonb_build_object(
            'description', 'The link works; nothing changed. With Accept: text/html, a page whose button POSTs the '
                'token to the same link; JSON otherwise.',
            'content', '{"application/json": {"schema": {"type": "object", "required": ["status", "action", "method"],
                "properties": {"status": {"type": "string", "enum": ["valid"], "description": "The link works."},
                "action": {"type": "string", "enum": ["confirm", "withdraw"],
                    "description": "What a POST of the same link does."},
                "method": {"type": "string", "enum": ["POST"], "description": "The method that acts."},
                "message": {"type": "string", "description": "One sentence for the person."}}}},
                "text/html": {"schema": {"type": "string", "description": "The page with the button."}}}'::jsonb
        ) end)
        from jsonb_array_elements_text(p_route -> 'success') as s (status)
    ) || '{
        "400": {"$ref": "#/components/responses/BadRequest"},
        "404": {"$ref": "#/components/responses/InvalidLink"}
    }'::jsonb
    || case when n.acts then '{"413": {"$ref": "#/components/responses/PayloadTooLarge"},
        "429": {"$ref": "#/components/responses/TooManyRequests"}}'::jsonb else '{}'::jsonb end
    || app_logic.openapi_common_responses(p_route))
    from (select split_part(p_route ->> 'target', '/', -1) as name, p_route ->> 'method' = 'POST' as acts) as n
$$;
comment on function app_logic.openapi_link_operation(jsonb, regprocedure) is
'The OpenAPI operation of a mail link (confirm, withdraw): token in the query, HTML or JSON.';

-- One route's operation and the component schemas it adds; CHX03 when its api object is missing.
create function app_logic.openapi_route(p_route jsonb, out operation jsonb, out schemas jsonb)
language plpgsql stable
as $$
declare
    v_name text := split_part(p_route ->> 'target', '/', -1);
    v_proc regprocedure;
    v_view regclass;
begin
    schemas := '{}'::jsonb;
    if p_route ->> 'target' like '/rpc/%' then
        v_proc := to_regprocedure(format('api.%I(%s)', v_name, case p_route ->> 'method' when 'POST' then 'jsonb' else '' end));
        -- A GET reading its query string takes one jsonb too (db/functions/201-query-strings.sql),
        -- and so does a link of a mail: nginx turns the query's token into a JSON body.
        if v_proc is null and p_route ->> 'method' = 'GET' then
            v_proc := to_regprocedure(format('api.%I(jsonb)', v_name));
        end if;
    else
        v_view := to_regclass(format('api.%I', v_name));
    end if;
    if v_proc is null and v_view is null then
        raise exception 'route % % names api.%, which does not exist', p_route ->> 'method', p_route ->> 'path', v_name
            using errcode = 'CHX03', hint = 'The build refuses such a route (db/routes.toml).';
    end if;
    if v_proc is not null and (select p.prorettype from pg_catalog.pg_proc as p where p.oid = v_proc) = to_regtype('api."*/*"') then
        operation := app_logic.openapi_link_operation(p_route, v_proc);
    elsif v_view is not null then
        operation := app_logic.openapi_view_operation(p_route, v_view);
        schemas := jsonb_build_object(v_name, app_logic.openapi_schema_of_view(v_view));
    elsif p_route ->> 'method' = 'POST' then
        operation := app_logic.openapi_post_operation(p_route, v_proc);
        schemas := jsonb_build_object(v_name || '_body', app_logic.openapi_body_schema(app_logic.route_rule(p_route)));
    elsif app_logic.openapi_query_operation(v_proc, app_logic.route_rule(p_route)) is not null then
        operation := app_logic.openapi_operation_head(p_route, v_name, obj_description(v_proc, 'pg_proc'))
            || app_logic.openapi_query_operation(v_proc, app_logic.route_rule(p_route));
        operation := jsonb_set(
            operation, '{responses}', (operation -> 'responses') || app_logic.openapi_common_responses(p_route)
            || case when coalesce(p_route ->> 'rate_limit', '') <> ''
                then '{"429": {"$ref": "#/components/responses/TooManyRequests"}}'::jsonb else '{}'::jsonb end
        );
    elsif app_logic.openapi_media_operation(p_route, v_proc) is not null then
        -- A stream (db/functions/230-live-metrics.sql).
        operation := app_logic.openapi_media_operation(p_route, v_proc);
    else
        operation := app_logic.openapi_health_operation(p_route, v_proc);
    end if;
end
$$;
comment on function app_logic.openapi_route(jsonb) is
'The OpenAPI operation of one route and the component schemas it needs.';

-- Parameters, responses and the key scheme every operation refers to.
create function app_logic.openapi_components(p_schemas jsonb) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'schemas', jsonb_build_object('Error', app_logic.openapi_error_schema()) || p_schemas,
        'securitySchemes', '{"ApiKey": {
            "type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "An API key of role reader or admin (invoke api.key-create)."
        }}'::jsonb,
        'parameters', '{
            "select": {"name": "select", "in": "query", "required": false, "schema": {"type": "string"},
                       "description": "Columns to return, comma-separated (PostgREST select)."},
            "order": {"name": "order", "in": "query", "required": false, "schema": {"type": "string"},
                      "description": "Sort order, e.g. createdAt.desc (PostgREST order)."},
            "limit": {"name": "limit", "in": "query", "required": false,
                      "schema": {"type": "integer", "minimum": 0}, "description": "At most this many rows."},
            "offset": {"name": "offset", "in": "query", "required": false,
                       "schema": {"type": "integer", "minimum": 0}, "description": "Skip this many rows."},
            "Prefer": {"name": "Prefer", "in": "header", "required": false,
                       "schema": {"type": "string", "enum": ["count=exact", "count=planned", "count=estimated"]},
                       "description": "count=exact puts the total number of rows in Content-Range."},
            "Range": {"name": "Range", "in": "header", "required": false, "schema": {"type": "string"},
                      "description": "Rows to return, e.g. 0-24 (alternative to limit and offset)."}
        }'::jsonb,
        'responses', jsonb_build_object(
            'BadRequest', app_logic.openapi_error_response('The request is invalid; details names every bad field.'),
            'Unauthorized', app_logic.openapi_error_response(
                'No API key where one is needed, or a wrong or revoked one (CHK01).'
            ),
            'Forbidden', app_logic.openapi_error_response('The API key''s role may not use this endpoint.'),
            'InvalidLink', app_logic.openapi_error_response(
                'The link has expired, was used already, or was never issued (CHC01); the same answer for all three.'
            ),
            'PayloadTooLarge', app_logic.openapi_error_response('The body is larger than 64 KiB.'),
            'TooManyRequests', app_logic.openapi_error_response('A rate limit was reached (CHR01).') || jsonb_build_object(
                'headers', jsonb_build_object('Retry-After', jsonb_build_object(
                    'description', 'Seconds to wait before trying again.',
                    'schema', jsonb_build_object('type', 'integer', 'minimum', 1)
                ))
            ),
            'Error', app_logic.openapi_error_response('Another error, in the same shape.')
        )
    )
$$;
comment on function app_logic.openapi_components(jsonb) is
'The components of the OpenAPI document: the given schemas plus the shared ones.';

-- The document for a route table (rows shaped like app_logic.routes, as JSON); api.openapi()
-- passes the real one, the tests pass their own.
create function app_logic.openapi_document(p_routes jsonb) returns jsonb
language sql stable
as $$
    with ops as materialized (
        select r.value as route, d.operation, d.schemas
        from jsonb_array_elements(coalesce(p_routes, '[]'::jsonb)) as r (value)
        cross join lateral app_logic.openapi_route(r.value) as d
    ),

    paths as (
        select o.route ->> 'path' as path, jsonb_object_agg(lower(o.route ->> 'method'), o.operation) as operations
        from ops as o
        group by o.route ->> 'path'
    )

    select jsonb_build_object(
        'openapi', '3.0.3',
        'info', jsonb_build_object(
            'title', 'CHORUS website API',
            'version', '1.0.0',
            'description', coalesce(obj_description('api'::regnamespace, 'pg_namespace'), '')
            || ' Request bodies are JSON with camelCase fields; errors have PostgREST''s shape.'
        ),
        'servers', '[{"url": "/"}]'::jsonb,
        'paths', coalesce((select jsonb_object_agg(p.path, p.operations) from paths as p), '{}'::jsonb),
        'components', app_logic.openapi_components(coalesce(
            (select jsonb_object_agg(s.key, s.value) from ops as o cross join jsonb_each(o.schemas) as s), '{}'::jsonb
        ))
    )
$$;
comment on function app_logic.openapi_document(jsonb) is
'The OpenAPI 3.0 document of the given routes (shaped like app_logic.routes); CHX03 for a missing api object.';

-- SECURITY DEFINER: anonymous callers read the rules and comments through it without being
-- granted the helper functions one by one. It reads only the catalog, the rule functions and
-- app_logic.routes. The ETag (the document's MD5) lets nginx keep the document and answer
-- If-None-Match with 304 (GET /api/ is cached there for a minute: api.conf.template).
create function api.openapi() returns json
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_doc jsonb := app_logic.openapi_document(
        (select jsonb_agg(to_jsonb(r) order by r.path, r.method) from app_logic.routes as r)
    );
    v_out json;
begin
    -- json keeps the key order given here (jsonb would sort it): "openapi" first, for readers.
    v_out := json_build_object(
        'openapi', v_doc -> 'openapi', 'info', v_doc -> 'info', 'servers', v_doc -> 'servers',
        'paths', v_doc -> 'paths', 'components', v_doc -> 'components'
    );
    perform set_config('response.headers', jsonb_build_array(
        jsonb_build_object('ETag', format('"%s"', md5(v_out::text))),
        jsonb_build_object('Cache-Control', 'public, max-age=60')
    )::text, true);
    return v_out;
end
$$;
comment on function api.openapi() is
'GET /api/: the OpenAPI 3.0 document of the public API (PostgREST db-root-spec), with an ETag.';
