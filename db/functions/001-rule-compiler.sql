-- The validation rules compiled into plain SQL: for an endpoint's rule, a PL/pgSQL function
-- that says whether a body passes, the fast path of every valid request. The interpreter
-- (app_logic.validate and check_value) stays the one that explains a refusal, so messages have
-- one source; the compiled function only answers yes or no, and a pgTAP test
-- (db/tests/001-rule-compiler.sql) proves the two agree on about a thousand hostile bodies.
--
-- Why: the interpreter walks the rule's JSON for every field of every request (a function call,
-- key lookups and format() per field), which cost more than the lead's INSERT. The compiled
-- function has the rule's constants written into its code, in as few statements as it can:
-- PL/pgSQL sets each of its expressions up again in every transaction (about half a
-- microsecond each), and only the statements a body reaches are set up, so a statement per field
-- beats both a statement per check and one expression for the whole rule (which measured
-- twice as slow: every branch of it is set up). Each value is first copied into a
-- variable so that the SQL helpers it is passed to (trim_text, has_control_characters) are
-- inlined: with an expression as argument, used twice in their body, they are not, and every
-- call ran as a query of its own.
--
-- A rule word the compiler does not know makes it call the interpreter for that value, so a
-- new word is safe before the compiler learns it; a change of what a known word means must
-- change both, which the agreement test catches.

-- Words of check_value the compiler writes out; 'description', 'patternText', 'title',
-- 'format', 'default', 'example' and 'batchMaxItems' do not change what passes.
create function app_logic.compiled_rule_words() returns text[]
language sql immutable
as $$
    select array[
        'type', 'trim', 'multiline', 'minLength', 'maxLength', 'enum', 'pattern', 'const', 'minimum', 'maximum',
        'maxBytes', 'maxItems', 'items', 'properties', 'required', 'additionalProperties',
        'description', 'patternText', 'title', 'format', 'default', 'example', 'batchMaxItems'
    ]
$$;
comment on function app_logic.compiled_rule_words() is 'The rule words app_logic.compile_rule writes out as code.';

-- PL/pgSQL statements that return false unless the jsonb in variable v_<depth> (never SQL or
-- JSON null) passes p_rule, exactly when app_logic.check_value would return []. Variables of a
-- depth: v_ (the value), t_ (its text), n_ (its number), i_ (an item's index).
create function app_logic.compile_value(p_rule jsonb, p_depth integer, p_indent text) returns text
language plpgsql immutable
as $$
declare
    v_type text := p_rule ->> 'type';
    v_var text := 'v_' || p_depth;
    v_text text := 't_' || p_depth;
    v_number text := 'n_' || p_depth;
    v_conds text[] := '{}';
    v_code text := '';
    v_fail text := ' then' || E'\n' || p_indent || '    return false;' || E'\n' || p_indent || 'end if;' || E'\n';
begin
    if exists (select from jsonb_object_keys(p_rule) as k where k <> all(app_logic.compiled_rule_words()))
        or (v_type = 'object' and jsonb_typeof(p_rule -> 'additionalProperties') = 'object') then
        -- Not (yet) compiled: the interpreter decides this value.
        return format('%sif jsonb_array_length(app_logic.check_value(''value'', %s, %L::jsonb)) > 0%s',
            p_indent, v_var, p_rule, v_fail);
    end if;
    if v_type in ('string', 'email', 'phone') then
        -- The text, or null when the value is no string (a string never trims to null).
        v_code := format('%s%s := case when jsonb_typeof(%s) = ''string'' then %s end;%s', p_indent, v_text, v_var,
            case when coalesce((p_rule ->> 'trim')::boolean, false)
                then format('app_logic.trim_text(%s #>> ''{}'')', v_var) else format('%s #>> ''{}''', v_var) end, E'\n');
        v_conds := array[format('%s is null', v_text)];
        if p_rule ? 'minLength' then
            v_conds := v_conds || format('char_length(%s) < %s', v_text, (p_rule ->> 'minLength')::integer);
        end if;
        if p_rule ? 'maxLength' then
            v_conds := v_conds || format('char_length(%s) > %s', v_text, (p_rule ->> 'maxLength')::integer);
        end if;
        v_conds := v_conds || format('app_logic.has_control_characters(%s, %s)', v_text,
            case when coalesce((p_rule ->> 'multiline')::boolean, false) then 'true' else 'false' end);
        if p_rule ? 'enum' then
            v_conds := v_conds || format('not %L::jsonb ? %s', p_rule -> 'enum', v_text);
        end if;
        if p_rule ? 'pattern' then
            v_conds := v_conds || format('%s !~ %L', v_text, p_rule ->> 'pattern');
        end if;
        if v_type = 'email' then
            v_conds := v_conds || format('not app_logic.is_valid_email(%s)', v_text);
        elsif v_type = 'phone' then
            v_conds := v_conds || format('(app_logic.phone_to_e164(%s)).problem is not null', v_text);
        end if;
        return v_code || format('%sif %s%s', p_indent, array_to_string(v_conds, ' or '), v_fail);
    elsif v_type = 'boolean' then
        return format('%sif jsonb_typeof(%s) <> ''boolean''%s%s', p_indent, v_var,
            case when p_rule ? 'const' then format(' or %s <> %L::jsonb', v_var, p_rule -> 'const') else '' end, v_fail);
    elsif v_type in ('integer', 'number') then
        v_code := format('%s%s := case when jsonb_typeof(%s) = ''number'' then %s::numeric end;%s',
            p_indent, v_number, v_var, v_var, E'\n');
        v_conds := array[format('%s is null', v_number)];
        if v_type = 'integer' then
            v_conds := v_conds || format('%s <> trunc(%s)', v_number, v_number);
        end if;
        v_conds := v_conds || format('scale(%s) > 32', v_number);
        if p_rule ? 'minimum' then
            v_conds := v_conds || format('%s < %s', v_number, (p_rule ->> 'minimum')::numeric);
        end if;
        if p_rule ? 'maximum' then
            v_conds := v_conds || format('%s > %s', v_number, (p_rule ->> 'maximum')::numeric);
        end if;
        return v_code || format('%sif %s%s', p_indent, array_to_string(v_conds, ' or '), v_fail);
    elsif v_type in ('object', 'array') then
        if v_type = 'array' and p_rule ? 'maxItems' then
            v_code := format('%sif (case when jsonb_typeof(%s) = ''array'' then jsonb_array_length(%s) > %s else true end)%s',
                p_indent, v_var, v_var, (p_rule ->> 'maxItems')::integer, v_fail);
        else
            v_code := format('%sif jsonb_typeof(%s) <> %L%s', p_indent, v_var, v_type, v_fail);
        end if;
        if p_rule ? 'maxBytes' then
            v_code := v_code || format(
                '%sif jsonb_array_length(app_logic.free_json_problem(''value'', %s)) > 0 or octet_length(%s::text) > %s%s',
                p_indent, v_var, v_var, (p_rule ->> 'maxBytes')::integer, v_fail
            );
        end if;
        if v_type = 'object' and (p_rule ? 'properties' or p_rule ? 'additionalProperties') then
            v_code := v_code || app_logic.compile_object(p_rule, p_depth, p_indent);
        elsif v_type = 'array' and p_rule ? 'items' then
            v_code := v_code
                || format('%sfor i_%s in 0..jsonb_array_length(%s) - 1 loop%s', p_indent, p_depth, v_var, E'\n')
                || format('%s    v_%s := %s -> i_%s;%s', p_indent, p_depth + 1, v_var, p_depth, E'\n')
                || app_logic.compile_value(p_rule -> 'items', p_depth + 1, p_indent || '    ')
                || format('%send loop;%s', p_indent, E'\n');
        end if;
        return v_code;
    elsif v_type is null then
        return ''; -- any JSON value
    end if;
    raise exception 'unknown rule type % cannot be compiled', v_type using errcode = 'CHX01';
end
$$;
comment on function app_logic.compile_value(jsonb, integer, text) is
'PL/pgSQL statements returning false unless v_<depth> passes the rule (app_logic.compile_rule''s parts).';

-- An object rule on v_<depth>: no unknown key (additionalProperties is never an object here),
-- every required key present and not null, every present non-null property passing its rule.
create function app_logic.compile_object(p_rule jsonb, p_depth integer, p_indent text) returns text
language plpgsql immutable
as $$
declare
    v_var text := 'v_' || p_depth;
    v_inner text := 'v_' || (p_depth + 1);
    v_fail text := ' then' || E'\n' || p_indent || '    return false;' || E'\n' || p_indent || 'end if;' || E'\n';
    v_code text;
    v_key text;
begin
    -- Unknown and missing keys in one statement: each statement costs its own set-up in every
    -- transaction.
    v_code := format('%sif (%s - %L::text[]) <> ''{}''::jsonb', p_indent, v_var,
        array(select k from jsonb_object_keys(coalesce(p_rule -> 'properties', '{}')) as k order by k));
    for v_key in select r from jsonb_array_elements_text(coalesce(p_rule -> 'required', '[]')) as r loop
        v_code := v_code || format(E'\n%s    or jsonb_typeof(coalesce(%s -> %L, ''null'')) = ''null''', p_indent, v_var, v_key);
    end loop;
    v_code := v_code || v_fail;
    for v_key in select k from jsonb_object_keys(coalesce(p_rule -> 'properties', '{}')) as k order by k loop
        v_code := v_code
            || format('%s%s := %s -> %L;%s', p_indent, v_inner, v_var, v_key, E'\n')
            || format('%sif jsonb_typeof(coalesce(%s, ''null'')) <> ''null'' then%s', p_indent, v_inner, E'\n')
            || app_logic.compile_value(p_rule -> 'properties' -> v_key, p_depth + 1, p_indent || '    ')
            || format('%send if;%s', p_indent, E'\n');
    end loop;
    return v_code;
end
$$;
comment on function app_logic.compile_object(jsonb, integer, text) is
'PL/pgSQL statements returning false unless v_<depth> passes the object rule (app_logic.compile_rule''s parts).';

-- Create app_logic.<p_name>(jsonb) returns boolean: whether a body passes the object rule.
-- Run by the db/functions file that defines the rule, at build time.
create function app_logic.compile_rule(p_name text, p_rule jsonb) returns void
language plpgsql volatile
as $$
declare
    v_code text := app_logic.compile_object(p_rule, 0, '    ');
    v_declare text;
begin
    -- Only the variables the code uses (an unused one would be a lint warning).
    v_declare := (
        select string_agg(format('    %s %s;', m[1], case left(m[1], 1) when 'v' then 'jsonb' when 't' then 'text'
            when 'n' then 'numeric' else 'integer' end), E'\n' order by m[1])
        from (select distinct regexp_matches(v_code, '\m([vtn]_[0-9]+)\M', 'g') as m) as s
        where m[1] <> 'v_0'
    );
    execute format($f$
create function app_logic.%I(p_body jsonb) returns boolean
language plpgsql stable
as $body$
declare
    v_0 jsonb := p_body;
%s
begin
    if jsonb_typeof(v_0) is distinct from 'object' then
        return false;
    end if;
%s    return true;
end
$body$
$f$, p_name, coalesce(v_declare, ''), v_code);
    execute format('comment on function app_logic.%I(jsonb) is %L', p_name,
        'Whether a body passes its rule (compiled by app_logic.compile_rule; app_logic.validate explains a refusal).');
end
$$;
comment on function app_logic.compile_rule(text, jsonb) is
'Create app_logic.<name>(jsonb) returns boolean: the object rule compiled into PL/pgSQL (the fast path).';
