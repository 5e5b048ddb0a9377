-- PostgREST's query grammar on the lists (GETs of the api views), answered in our own shape.
--
-- A malformed select, order, filter, logic tree, embed, limit or offset makes PostgREST answer
-- with its own error JSON, which names internal objects: "column brand_performance.x does not
-- exist", "Could not find a relationship between 'leads' and 'x'", hints "Perhaps you meant
-- ...", "operator does not exist: uuid ~~ unknown". nginx sends the GETs of views to PostgREST
-- with proxy_intercept_errors; a 400, 404 or 416 there is handed to api.explain_query_error
-- (deploy/nginx/api.conf.template, @view_error), which reads the same query string
-- (X-Chorus-Query) and the public path (X-Chorus-Path) and answers 400 CHV01 naming each bad
-- parameter with the public field names only (the view's columns, which GET /api/ documents).
-- It runs only after PostgREST refused, so a good request pays nothing for it.

-- Split at the commas outside parentheses and double quotes: the items of select, order and
-- a logic tree. Bounded by the query string's length (nginx refuses a request line over 8 KiB).
create function app_logic.split_top_level(p_text text) returns text[]
language plpgsql immutable
as $$
declare
    v_items text[] := '{}';
    v_depth integer := 0;
    v_quoted boolean := false;
    v_start integer := 1;
    v_char text;
begin
    for i in 1..char_length(p_text) loop
        v_char := substr(p_text, i, 1);
        if v_char = '"' then
            v_quoted := not v_quoted;
        elsif not v_quoted and v_char = '(' then
            v_depth := v_depth + 1;
        elsif not v_quoted and v_char = ')' then
            v_depth := v_depth - 1;
        elsif not v_quoted and v_depth = 0 and v_char = ',' then
            v_items := v_items || substr(p_text, v_start, i - v_start);
            v_start := i + 1;
        end if;
    end loop;
    return v_items || substr(p_text, v_start);
end
$$;
comment on function app_logic.split_top_level(text) is
'The comma-separated items of a select, order or logic tree, commas inside parentheses or quotes kept.';

-- The fields of a list as the API names them (the view's columns) with their type: the names
-- GET /api/ documents, nothing else of the schema. A domain (the table rules of app.leads, db/schema/471)
-- counts as its base type, as PostgreSQL reads a filter's value: `timeOnSite=eq.-1` is a valid integer to
-- compare with, and no message names a domain. No domain of ours is over another domain.
create function app_logic.list_fields(p_view regclass) returns jsonb
language sql stable
as $$
    select coalesce(jsonb_object_agg(a.attname, jsonb_build_object(
        'type', format_type(t.oid, case when d.typtype = 'd' then d.typtypmod else a.atttypmod end),
        'category', t.typcategory, 'name', t.typname
    )), '{}'::jsonb)
    from pg_catalog.pg_attribute as a
    join pg_catalog.pg_type as d on d.oid = a.atttypid
    join pg_catalog.pg_type as t on t.oid = case when d.typtype = 'd' then d.typbasetype else d.oid end
    where a.attrelid = p_view and a.attnum > 0 and not a.attisdropped
$$;
comment on function app_logic.list_fields(regclass) is 'The fields (columns) of a list''s view with their types.';

-- The problem of one field reference (select, order, a filter's name): a JSON path (->, ->>)
-- is allowed on any field; the field itself must be one of the list's. Null when fine.
create function app_logic.field_problem(p_param text, p_field text, p_fields jsonb) returns jsonb
language sql immutable
as $$
    select case when not p_fields ? split_part(split_part(p_field, '->', 1), '!', 1) then app_logic.problem(
        p_param, case when p_param = p_field then format('This list has no field %s.', left(p_field, 64))
            else format('%s: this list has no field %s.', p_param, left(split_part(p_field, '->', 1), 64)) end
    ) end
$$;
comment on function app_logic.field_problem(text, text, jsonb) is
'A problem naming the parameter when a field reference names no field of the list; null when it does.';

-- Whether a value reads as a type: PostgreSQL's own input function, its error caught and never
-- printed (it would quote the value). The type comes from the catalog, never from the request.
create function app_logic.value_fits(p_value text, p_type text) returns boolean
language plpgsql stable
as $$
begin
    execute format('select %L::%s', p_value, p_type);
    return true;
exception when others then
    return false;
end
$$;
comment on function app_logic.value_fits(text, text) is 'Whether a text value is valid input for a type (by its name).';

-- One condition, field.[not.]operator[(any|all)].value (a filter's name and value, or an
-- item of a logic tree): the field, the operator (those the README lists), the value's shape
-- for is and in, the operator against the field's type, and the value against the type.
create function app_logic.condition_problems(p_param text, p_field text, p_expr text, p_fields jsonb) returns jsonb
language plpgsql stable
as $$
declare
    v_ops constant text[] := array[
        'eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'in', 'is', 'isdistinct',
        'cs', 'cd', 'ov', 'sl', 'sr', 'nxl', 'nxr', 'adj'
    ];
    v_match text[] := regexp_match(p_expr, '^(not\.)?([a-z]+)(\((any|all)\))?\.(.*)$', 's');
    v_problem jsonb := app_logic.field_problem(p_param, p_field, p_fields);
    v_field jsonb;
    v_op text;
    v_value text;
begin
    if v_problem is not null then
        return v_problem;
    end if;
    if v_match is null or not v_match[2] = any(v_ops) then
        return app_logic.problem(p_param, format(
            '%s: a filter is operator.value (eq.1, in.(a,b), is.null; operators: %s).', p_param, array_to_string(v_ops, ', ')
        ));
    end if;
    v_op := v_match[2];
    v_value := v_match[5];
    if v_op = 'is' and lower(v_value) not in ('null', 'not_null', 'true', 'false', 'unknown') then
        return app_logic.problem(p_param, format('%s: is takes null, not_null, true, false or unknown.', p_param));
    elsif v_op = 'in' and v_value !~ '^\(.*\)$' then
        return app_logic.problem(p_param, format('%s: in takes a list in parentheses, in.(a,b).', p_param));
    elsif strpos(p_field, '->') > 0 then
        return null; -- a JSON path: its values are JSON, PostgreSQL decides
    end if;
    v_field := p_fields -> split_part(p_field, '!', 1);
    if v_op in ('like', 'ilike') and v_field ->> 'category' <> 'S' then
        return app_logic.problem(p_param, format('%s: like and ilike apply to text fields; this one is %s.', p_param, v_field ->> 'type'));
    elsif v_op in ('cs', 'cd', 'ov') and v_field ->> 'category' not in ('A', 'R') and v_field ->> 'name' <> 'jsonb' then
        return app_logic.problem(p_param, format('%s: %s applies to list, range or JSON fields; this one is %s.', p_param, v_op, v_field ->> 'type'));
    elsif v_op in ('sl', 'sr', 'nxl', 'nxr', 'adj') and v_field ->> 'category' <> 'R' then
        return app_logic.problem(p_param, format('%s: %s applies to range fields; this one is %s.', p_param, v_op, v_field ->> 'type'));
    elsif v_op in ('eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'isdistinct') and v_match[4] is null
        and v_field ->> 'category' <> 'S' and not app_logic.value_fits(v_value, v_field ->> 'type') then
        return app_logic.problem(p_param, format('%s: the value is not a valid %s.', p_param, v_field ->> 'type'));
    end if;
    return null;
end
$$;
comment on function app_logic.condition_problems(text, text, text, jsonb) is
'The problem of one filter condition (field, operator, value against the field''s type); null when none is found.';

-- A logic tree, (condition,condition,...) with nested [not.]and(...) / [not.]or(...).
create function app_logic.logic_tree_problems(p_param text, p_tree text, p_fields jsonb, p_depth integer default 0)
returns jsonb
language plpgsql stable
as $$
declare
    v_item text;
    v_nested text[];
    v_problems jsonb := '[]';
begin
    if p_tree !~ '^\(.*\)$' or p_depth > 10 then
        return app_logic.problem(p_param, format('%s: a logic tree is (field.operator.value,...), e.g. or=(a.eq.1,b.is.null).', p_param));
    end if;
    foreach v_item in array app_logic.split_top_level(substr(p_tree, 2, char_length(p_tree) - 2)) loop
        v_nested := regexp_match(v_item, '^(not\.)?(and|or)(\(.*\))$', 's');
        if v_nested is not null then
            v_problems := v_problems || app_logic.logic_tree_problems(p_param, v_nested[3], p_fields, p_depth + 1);
        elsif strpos(v_item, '.') = 0 then
            v_problems := v_problems || app_logic.problem(p_param, format('%s: each condition is field.operator.value.', p_param));
        else
            v_problems := v_problems || coalesce(app_logic.condition_problems(
                p_param, split_part(v_item, '.', 1), substr(v_item, strpos(v_item, '.') + 1), p_fields
            ), '[]');
        end if;
    end loop;
    -- At most as many as the tree has conditions: bounded by the 8 KiB request line.
    return v_problems;
end
$$;
comment on function app_logic.logic_tree_problems(text, text, jsonb, integer) is
'The problems of an and/or logic tree of a list''s query string.';

-- Every problem of a list's query string: select, order, limit, offset, logic trees and
-- filters; an empty array when none is found.
create function app_logic.list_query_problems(p_view regclass, p_query text) returns jsonb
language plpgsql stable
as $$
declare
    v_fields jsonb := app_logic.list_fields(p_view);
    v_problems jsonb := '[]';
    v_embeds jsonb := '[]';
    v_pair text;
    v_name text;
    v_value text;
    v_item text;
    v_parts text[];
begin
    foreach v_pair in array string_to_array(coalesce(p_query, ''), '&') loop
        continue when v_pair = '';
        v_name := coalesce(app_logic.url_decode(split_part(v_pair, '=', 1)), '');
        v_value := coalesce(app_logic.url_decode(substr(v_pair, strpos(v_pair, '=') + 1)), '');
        if strpos(v_pair, '=') = 0 then
            v_problems := v_problems || app_logic.problem(left(v_name, 64), format('%s: a parameter needs a value.', left(v_name, 64)));
        elsif v_name = 'select' then
            foreach v_item in array app_logic.split_top_level(v_value) loop
                if v_item ~ '\(\)$' then
                    v_problems := v_problems || app_logic.problem('select', 'select: aggregates (count() and the like) are not offered.');
                elsif strpos(v_item, '(') > 0 then
                    -- Some lists embed others (lead-interactions embeds leads): named only when
                    -- nothing else explains the refusal, and never telling which names exist.
                    v_embeds := v_embeds || app_logic.problem('select', format(
                        'select: %s(...) cannot be embedded in this list.', left(split_part(v_item, '(', 1), 64)
                    ));
                elsif v_item <> '*' then
                    -- alias:field
                    v_problems := v_problems || coalesce(app_logic.field_problem(
                        'select', regexp_replace(v_item, '^[^:]*:', ''), v_fields
                    ), '[]');
                end if;
            end loop;
        elsif v_name = 'order' then
            foreach v_item in array app_logic.split_top_level(v_value) loop
                v_parts := string_to_array(v_item, '.');
                v_problems := v_problems || coalesce(app_logic.field_problem('order', v_parts[1], v_fields), '[]');
                if exists (select from unnest(v_parts[2:]) as m where m not in ('asc', 'desc', 'nullsfirst', 'nullslast')) then
                    v_problems := v_problems || app_logic.problem('order', 'order: field.asc or field.desc, optionally .nullsfirst or .nullslast.');
                end if;
            end loop;
        elsif v_name in ('limit', 'offset') then
            if v_value !~ '^[0-9]{1,18}$' then
                v_problems := v_problems || app_logic.problem(v_name, format('%s must be a whole number, 0 or more.', v_name));
            end if;
        elsif v_name ~ '^(not\.)?(and|or)$' then
            v_problems := v_problems || app_logic.logic_tree_problems(v_name, v_value, v_fields);
        elsif v_name not in ('columns', 'on_conflict') then
            v_problems := v_problems || coalesce(app_logic.condition_problems(left(v_name, 64), v_name, v_value, v_fields), '[]');
        end if;
        exit when jsonb_array_length(v_problems) >= 20;
    end loop;
    return case when jsonb_array_length(v_problems) > 0 then v_problems else v_embeds end;
end
$$;
comment on function app_logic.list_query_problems(regclass, text) is
'The problems of a list''s query string in the API''s words (parameter and public field names).';

-- nginx's error path for the GETs of views (@view_error): the request PostgREST refused, told
-- again in the API's shape. The key is checked as for the list itself: PostgREST parses the
-- query before the pre-request runs, so a malformed query without a key reached it.
create function api.explain_query_error(jsonb) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_path text := app_logic.request_header('x-chorus-path');
    v_target text;
    v_key text;
    v_view regclass;
    v_role text;
    v_problems jsonb;
begin
    select r.target, r.key into v_target, v_key
    from app_logic.routes as r
    where r.method = 'GET' and r.path = v_path and r.target not like '/rpc/%';
    v_view := to_regclass('api.' || quote_ident(substr(v_target, 2)));
    if v_view is null then
        return app_logic.respond(400, app_logic.error_body('CHQ03', 'The query string could not be used.', null, null));
    end if;
    -- The role PostgREST and the pre-request set (anon, reader, admin): the invoker's, not ours.
    v_role := current_setting('role', true);
    if v_role = 'anon' and v_key <> 'none' then
        perform app_logic.refuse_key(
            'This endpoint needs an API key (X-API-Key).',
            case v_key when 'admin' then 'Send an API key of role admin.' else 'Send an API key of role reader or admin.' end
        );
    elsif not has_table_privilege(v_role, v_view, 'select') then
        return app_logic.respond(403, app_logic.error_body(
            'CHK02', format('An API key of role %s may not use this endpoint.', v_role), null,
            'Use a key of a role that may (invoke api.keys lists the keys and their roles).'
        ));
    end if;
    -- Content negotiation comes first in PostgREST: an Accept it cannot serve (text/html), or an
    -- object asked of a list that is not one row.
    if app_logic.request_header('x-chorus-status') = '406' then
        return app_logic.respond(406, app_logic.error_body(
            'CHT02', 'The list cannot be answered in this media type.',
            'A list is JSON or CSV; application/vnd.pgrst.object+json needs exactly one row.',
            'Accept application/json (or text/csv).'
        ));
    end if;
    v_problems := app_logic.list_query_problems(v_view, app_logic.request_header('x-chorus-query'));
    if jsonb_array_length(v_problems) > 0 then
        return app_logic.reject_invalid(v_problems);
    end if;
    if app_logic.request_header('x-chorus-status') = '416' then
        return app_logic.respond(416, app_logic.error_body(
            'CHQ04', 'The rows asked for lie outside the list.', 'Range, offset or limit ask for rows that are not there.',
            'Ask for a range within the list (Prefer: count=exact tells its size).'
        ));
    end if;
    return app_logic.respond(400, app_logic.error_body(
        'CHQ03', 'The query string could not be used with this list.', null,
        'Filters are field=operator.value with the fields GET /api/ documents; select, order, limit and offset as PostgREST writes them.'
    ));
end
$$;
comment on function api.explain_query_error(jsonb) is
'Internal (nginx''s error path of the lists, no public route): why PostgREST refused a list''s query string, '
'as 400 CHV01 naming each bad parameter and only the API''s own field names; 416 CHQ04 for rows outside the list; '
'406 CHT02 for a media type it cannot have; 401 CHK01 without the key the list needs.';
