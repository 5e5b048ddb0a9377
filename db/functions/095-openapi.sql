-- The OpenAPI 3.0 document of the public HTTP API, served at GET /api/ (PostgREST's db-root-spec).
--
-- It describes the public paths (chorus_db/routes.py, replicated below), not PostgREST's own
-- /rpc/... paths: request bodies come from the same rule objects the endpoints validate with
-- (app_logic.<function>_rule(), found by name when the document is built), GET responses from
-- the api views' columns and their comments. Only api objects are described; a route whose api
-- object does not exist (yet) is left out, so the document lists what this database serves.

-- The public route table. tests/test_openapi.py proves it equals chorus_db.routes.ROUTES.
-- success: the 2xx statuses the endpoint answers with (the contract, API.md).
create function app_logic.public_routes()
returns table (method text, path text, target text, auth text, success integer[])
language sql immutable
as $$
    select r.method, r.path, r.target, r.auth, r.success
    from (values
        ('POST', '/api/leads', '/rpc/submit_lead', 'public', array[201]),
        ('GET', '/api/leads', '/leads', 'reader', array[200, 206]),
        ('GET', '/api/leads/health', '/rpc/check_leads_health', 'public', array[200]),
        ('GET', '/api/lead-interactions', '/lead_interactions', 'reader', array[200, 206]),
        ('POST', '/api/lead-interactions', '/rpc/add_lead_interaction', 'admin', array[201]),
        ('POST', '/api/accessibility-preferences', '/rpc/save_accessibility_preferences', 'public', array[200, 201]),
        (
            'GET', '/api/accessibility-preferences/health', '/rpc/check_accessibility_preferences_health',
            'public', array[200]
        ),
        ('POST', '/api/brand-engagement', '/rpc/record_brand_engagement', 'public', array[201]),
        ('GET', '/api/brand-engagement/health', '/rpc/check_brand_engagement_health', 'public', array[200]),
        ('POST', '/api/page-views', '/rpc/record_page_view', 'public', array[201]),
        ('GET', '/api/page-views/health', '/rpc/check_page_views_health', 'public', array[200]),
        ('GET', '/api/brand-analytics/performance', '/brand_performance', 'reader', array[200, 206]),
        ('GET', '/api/brand-analytics/accessibility-usage', '/accessibility_usage', 'reader', array[200, 206]),
        ('GET', '/api/brand-analytics/design-effectiveness', '/design_effectiveness', 'reader', array[200, 206]),
        ('POST', '/api/gdpr/export', '/rpc/export_personal_data', 'admin', array[200]),
        ('POST', '/api/gdpr/erase', '/rpc/erase_personal_data', 'admin', array[200]),
        ('POST', '/api/gdpr/consent', '/rpc/record_consent', 'admin', array[201]),
        ('POST', '/api/ab-tests', '/rpc/create_ab_test', 'admin', array[200, 201]),
        ('GET', '/api/ab-tests/health', '/rpc/check_ab_tests_health', 'public', array[200]),
        ('POST', '/api/ab-tests/stop', '/rpc/stop_ab_test', 'admin', array[200]),
        ('GET', '/api/ab-tests/stop/health', '/rpc/check_ab_tests_stop_health', 'public', array[200]),
        ('GET', '/api/ab-tests/assignment', '/rpc/assign_ab_test', 'public', array[200]),
        ('POST', '/api/ab-tests/conversions', '/rpc/record_ab_test_conversion', 'public', array[200, 201]),
        (
            'GET', '/api/ab-tests/conversions/health', '/rpc/check_ab_test_conversions_health',
            'public', array[200]
        ),
        ('GET', '/api/brand-analytics/ab-tests', '/ab_test_results', 'reader', array[200, 206]),
        ('POST', '/api/logo-heatmaps', '/rpc/record_logo_heatmap', 'public', array[201]),
        ('GET', '/api/logo-heatmaps/health', '/rpc/check_logo_heatmaps_health', 'public', array[200]),
        ('GET', '/api/brand-analytics/logo-heatmap', '/rpc/logo_heatmap', 'reader', array[200]),
        ('GET', '/api/brand-analytics/logo-heatmap.svg', '/rpc/logo_heatmap_svg', 'reader', array[200])
    ) as r (method, path, target, auth, success)
$$;
comment on function app_logic.public_routes() is
'The public HTTP routes (method, path, PostgREST target, key needed, success statuses); mirrors chorus_db.routes.';

-- A validation rule (JSON Schema words plus the validator's extras) as an OpenAPI 3.0 Schema
-- Object. email -> string/email, phone -> string; const -> enum (3.0 has no const); trim,
-- patternText and maxBytes have no OpenAPI word: the last two become part of the description;
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

-- The document for a route table (rows shaped like app_logic.public_routes()); api.openapi()
-- passes the real one, the tests pass their own.
create function app_logic.openapi_document(p_routes jsonb) returns jsonb
language plpgsql stable
as $$
declare
    v_route record;
    v_name text;
    v_tag text;
    v_proc regprocedure;
    v_view regclass;
    v_rule_fn regprocedure;
    v_rule jsonb;
    v_operation jsonb;
    v_responses jsonb;
    v_status integer;
    v_schemas jsonb := '{}'::jsonb;
    v_paths jsonb := '{}'::jsonb;
    v_params jsonb;
    v_ok_description text;
begin
    v_schemas := jsonb_build_object(
        'Error', jsonb_build_object(
            'type', 'object',
            'description', 'An error, in PostgREST''s shape.',
            'required', jsonb_build_array('code', 'message'),
            'properties', jsonb_build_object(
                'code', jsonb_build_object('type', 'string', 'description', 'A PostgreSQL, PostgREST or project error code.'),
                'message', jsonb_build_object('type', 'string', 'description', 'One sentence naming what is wrong.'),
                'details', jsonb_build_object(
                    'type', 'string', 'nullable', true, 'description', 'More about the error; names every invalid field.'
                ),
                'hint', jsonb_build_object('type', 'string', 'nullable', true, 'description', 'What to do about it.'),
                'errors', jsonb_build_object(
                    'type', 'array',
                    'description', 'On 400 (CHV01): every invalid field with its problem.',
                    'items', jsonb_build_object(
                        'type', 'object',
                        'required', jsonb_build_array('field', 'message'),
                        'properties', jsonb_build_object(
                            'field', jsonb_build_object('type', 'string'),
                            'message', jsonb_build_object('type', 'string')
                        )
                    )
                )
            )
        )
    );
    for v_route in
        select r.method, r.path, r.target, r.auth, r.success
        from jsonb_to_recordset(p_routes) as r (method text, path text, target text, auth text, success integer[])
        order by r.path, r.method
    loop
        v_name := split_part(v_route.target, '/', -1);
        v_tag := split_part(v_route.path, '/', 3);
        v_proc := null;
        v_view := null;
        if v_route.target like '/rpc/%' then
            v_proc := to_regprocedure(format('api.%I(%s)', v_name, case v_route.method when 'POST' then 'jsonb' else '' end));
            -- A GET with query parameters is a jsonb function too (db/functions/201-query-strings.sql).
            if v_proc is null and v_route.method = 'GET' then
                v_proc := to_regprocedure(format('api.%I(jsonb)', v_name));
            end if;
            continue when v_proc is null;
        else
            v_view := to_regclass(format('api.%I', v_name));
            continue when v_view is null;
        end if;

        v_operation := jsonb_build_object(
            'operationId', case when v_view is null then v_name else 'list_' || v_name end,
            'tags', jsonb_build_array(v_tag),
            'summary', format('%s %s', v_route.method, v_route.path),
            'description', coalesce(
                case when v_view is null then obj_description(v_proc, 'pg_proc') else obj_description(v_view, 'pg_class') end,
                ''
            ) || case v_route.auth
                when 'reader' then ' Needs an API key of role reader or admin (X-API-Key).'
                when 'admin' then ' Needs an API key of role admin (X-API-Key).'
                else ''
            end
        );
        -- No key or a valid key both work on public routes; a wrong key is refused everywhere.
        v_operation := v_operation || jsonb_build_object(
            'security',
            case when v_route.auth = 'public' then '[{}, {"ApiKey": []}]'::jsonb else '[{"ApiKey": []}]'::jsonb end
        );

        v_ok_description := 'Success.';
        v_responses := '{}'::jsonb;
        if v_view is not null then
            v_schemas := v_schemas || jsonb_build_object(v_name, app_logic.openapi_schema_of_view(v_view));
            v_params := '[
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
                where a.attrelid = v_view and a.attnum > 0 and not a.attisdropped
                    and a.attname not in ('select', 'order', 'limit', 'offset')
            ), '[]'::jsonb);
            v_operation := v_operation || jsonb_build_object('parameters', v_params);
            foreach v_status in array v_route.success loop
                v_responses := v_responses || jsonb_build_object(v_status::text, jsonb_build_object(
                    'description', case v_status when 206 then 'Part of the rows (Range, limit or offset with a count).'
                        else 'The rows.' end,
                    'headers', jsonb_build_object('Content-Range', jsonb_build_object(
                        'description', 'Rows returned and, with Prefer: count=exact, the total.',
                        'schema', jsonb_build_object('type', 'string')
                    )),
                    'content', jsonb_build_object('application/json', jsonb_build_object('schema', jsonb_build_object(
                        'type', 'array', 'items', jsonb_build_object('$ref', '#/components/schemas/' || v_name)
                    )))
                ));
            end loop;
            v_responses := v_responses || '{"400": {"$ref": "#/components/responses/BadRequest"}}'::jsonb;
        elsif v_route.method = 'POST' then
            v_rule_fn := to_regprocedure(format('app_logic.%I()', v_name || '_rule'));
            v_rule := null;
            if v_rule_fn is not null then
                execute format('select %s()', v_rule_fn::regproc) into v_rule;
            end if;
            v_schemas := v_schemas || jsonb_build_object(
                v_name || '_body',
                coalesce(app_logic.openapi_schema_of_rule(v_rule), '{}'::jsonb)
                || case when v_rule is null then '{"type": "object"}'::jsonb else '{}'::jsonb end
            );
            v_operation := v_operation || jsonb_build_object('requestBody', jsonb_build_object(
                'required', true,
                'content', jsonb_build_object('application/json', jsonb_build_object(
                    'schema', jsonb_build_object('$ref', '#/components/schemas/' || v_name || '_body')
                ))
            ));
            foreach v_status in array v_route.success loop
                v_responses := v_responses || jsonb_build_object(v_status::text, jsonb_build_object(
                    'description', case v_status when 201 then 'Accepted and stored.' else 'Done.' end,
                    'content', '{"application/json": {"schema": {"type": "object"}}}'::jsonb
                ));
            end loop;
            v_responses := v_responses || '{
                "400": {"$ref": "#/components/responses/BadRequest"},
                "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                "429": {"$ref": "#/components/responses/TooManyRequests"}
            }'::jsonb;
        elsif app_logic.openapi_query_operation(v_proc) is not null then
            v_operation := v_operation || app_logic.openapi_query_operation(v_proc);
            v_responses := v_operation -> 'responses';
        else
            foreach v_status in array v_route.success loop
                v_responses := v_responses || jsonb_build_object(v_status::text, jsonb_build_object(
                    'description', 'The endpoint and the database are usable.',
                    'content', '{"application/json": {"schema": {
                        "type": "object", "required": ["status"],
                        "properties": {"status": {"type": "string", "enum": ["ok"]}}
                    }}}'::jsonb
                ));
            end loop;
        end if;
        v_responses := v_responses || '{"401": {"$ref": "#/components/responses/Unauthorized"}}'::jsonb;
        if v_route.auth <> 'public' then
            v_responses := v_responses || '{"403": {"$ref": "#/components/responses/Forbidden"}}'::jsonb;
        end if;
        v_responses := v_responses || '{"default": {"$ref": "#/components/responses/Error"}}'::jsonb;
        v_operation := v_operation || jsonb_build_object('responses', v_responses);

        v_paths := jsonb_set(
            v_paths || jsonb_build_object(v_route.path, coalesce(v_paths -> v_route.path, '{}'::jsonb)),
            array[v_route.path, lower(v_route.method)],
            v_operation
        );
    end loop;

    return jsonb_build_object(
        'openapi', '3.0.3',
        'info', jsonb_build_object(
            'title', 'CHORUS website API',
            'version', '1.0.0',
            'description', coalesce(obj_description('api'::regnamespace, 'pg_namespace'), '')
            || ' Request bodies are JSON with camelCase fields; errors have PostgREST''s shape.'
        ),
        'servers', '[{"url": "/"}]'::jsonb,
        'paths', v_paths,
        'components', jsonb_build_object(
            'schemas', v_schemas,
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
    );
end
$$;
comment on function app_logic.openapi_document(jsonb) is
'The OpenAPI 3.0 document of the given routes, for the api objects that exist.';

-- SECURITY DEFINER: anonymous callers read the rules and comments through it without being
-- granted the helper functions one by one. It reads only the catalog and the rule functions.
create function api.openapi() returns json
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
    -- json keeps the key order given here (jsonb would sort it): "openapi" first, for readers.
    select json_build_object(
        'openapi', d.doc -> 'openapi', 'info', d.doc -> 'info', 'servers', d.doc -> 'servers',
        'paths', d.doc -> 'paths', 'components', d.doc -> 'components'
    )
    from (
        select app_logic.openapi_document((select jsonb_agg(to_jsonb(r)) from app_logic.public_routes() as r)) as doc
    ) as d
$$;
comment on function api.openapi() is
'GET /api/: the OpenAPI 3.0 document of the public API (PostgREST db-root-spec).';
