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
-- Before those statements runs the rule's sure test (app_logic.compile_sure, below): one
-- constant jsonpath and a few SQL conditions per field, true only for a body that passes, which leaves the
-- statements to the bodies it is not sure of and to the properties it has no test for. With a
-- sure test, the compiled function itself is SQL that the planner inlines into its caller's
-- statement (app_logic.compile_rule): a body the sure test passes costs no PL/pgSQL call.
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

-- The statements of one property p_key of an object rule on v_<depth>: a present, non-null
-- value passing the property's rule.
create function app_logic.compile_property(p_rule jsonb, p_key text, p_depth integer, p_indent text) returns text
language plpgsql immutable
as $$
declare
    v_var text := 'v_' || p_depth;
    v_inner text := 'v_' || (p_depth + 1);
begin
    return format('%s%s := %s -> %L;%s', p_indent, v_inner, v_var, p_key, E'\n')
        || format('%sif jsonb_typeof(coalesce(%s, ''null'')) <> ''null'' then%s', p_indent, v_inner, E'\n')
        || app_logic.compile_value(p_rule -> 'properties' -> p_key, p_depth + 1, p_indent || '    ')
        || format('%send if;%s', p_indent, E'\n');
end
$$;
comment on function app_logic.compile_property(jsonb, text, integer, text) is
'PL/pgSQL statements returning false unless property p_key of v_<depth> passes its rule (compile_object''s parts).';

-- An object rule on v_<depth>: no unknown key (additionalProperties is never an object here),
-- every required key present and not null, every present non-null property passing its rule.
create function app_logic.compile_object(p_rule jsonb, p_depth integer, p_indent text) returns text
language plpgsql immutable
as $$
declare
    v_var text := 'v_' || p_depth;
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
        v_code := v_code || app_logic.compile_property(p_rule, v_key, p_depth, p_indent);
    end loop;
    return v_code;
end
$$;
comment on function app_logic.compile_object(jsonb, integer, text) is
'PL/pgSQL statements returning false unless v_<depth> passes the object rule (app_logic.compile_rule''s parts).';

-- The SQL expression of the value at p_path of the body v_0 (its text with p_text): -> for one
-- key, #> with the path for more, which looks the value up once instead of copying every object
-- on the way (3.5k instructions against 3.9k for two keys).
create function app_logic.compile_path(p_path text[], p_text boolean default false) returns text
language sql immutable
as $$
    select case
        when coalesce(cardinality(p_path), 0) = 0 then 'v_0'
        when cardinality(p_path) = 1 then format('(v_0 %s %L)', case when p_text then '->>' else '->' end, p_path[1])
        else format('(v_0 %s %L)', case when p_text then '#>>' else '#>' end, p_path::text)
    end
$$;
comment on function app_logic.compile_path(text[], boolean) is
'The expression of the value (or its text) at p_path of v_0 (app_logic.compile_rule''s parts).';

-- A text as a jsonpath string literal: in double quotes, backslashes and quotes escaped.
create function app_logic.jsonpath_string(p_text text) returns text
language sql immutable
as $$
    select '"' || replace(replace(p_text, '\', '\\'), '"', '\"') || '"'
$$;
comment on function app_logic.jsonpath_string(text) is
'A text as a jsonpath string literal (app_logic.compile_rule''s parts).';

-- The check of an array property (p_value, an expression) in the compiled function, after its
-- sure test, or null when it has none: items that are strings of one line, without trim, enum or
-- minLength, and a maxLength. A value that is absent or small enough is decided exactly by one
-- strict jsonpath (JSON null passes; else an array whose items pass: type, control characters,
-- pattern), where a loop of statements per item ran; a larger one goes to the exact statements
-- (p_rest, a call). One jsonpath for the null, the type and the items: fewer nodes to set up in
-- each transaction than the CASE of jsonb_typeof tests it replaced (session 9: -13k a lead).
-- The items' lengths come from the array's size in bytes, which bounds every string's bytes and
-- so its characters (8 bytes of header, 4 per item); nothing is printed, and a number's text can
-- be far longer than its jsonb (1e131071 is 8 bytes). like_regex keeps "." and [^...] from
-- matching a newline, which `~` does not; the control-character test refuses a newline first, so
-- on what is left the two agree.
create function app_logic.compile_array_check(p_rule jsonb, p_value text, p_rest text) returns text
language plpgsql immutable
as $$
declare
    v_items jsonb := p_rule -> 'items';
    v_max integer := (v_items ->> 'maxLength')::integer;
    v_filter text;
    v_match text[];
begin
    if p_rule ->> 'type' is distinct from 'array' or p_rule ? 'maxBytes'
        or exists (select from jsonb_object_keys(p_rule) as k where k <> all(app_logic.compiled_rule_words()))
        or v_items ->> 'type' is distinct from 'string' or v_max is null
        or coalesce((v_items ->> 'multiline')::boolean, false)
        or exists (
            select from jsonb_object_keys(v_items) as k
            where k <> all(array['type', 'maxLength', 'pattern', 'patternText', 'multiline', 'description', 'title',
                'format', 'default', 'example'])
        ) then
        return null;
    end if;
    -- Strict mode: the item test is false, never unknown, for an item that is no string.
    -- A pattern of a literal start and \S* (a path: ^/\S*$) takes the control characters into
    -- its bracket, one regular expression where two ran for each item (issue 13, session 11,
    -- -8.5k instructions a lead for three paths, callgrind): \S is [^[:space:]], and the start,
    -- tested here, holds no control character (nor a metacharacter: it is matched as it is).
    v_match := regexp_match(v_items ->> 'pattern', '^\^([^][\\(){}|*+?.$^]*)\\S\*[$]$');
    if v_match is not null and v_match[1] !~ ('[' || app_logic.control_characters(false) || ']') then
        v_filter := format('@.type() == "string" && @ like_regex %s', app_logic.jsonpath_string(
            '^' || v_match[1] || '[^[:space:]' || app_logic.control_characters(false) || ']*$'));
    else
        v_filter := format('@.type() == "string" && !(@ like_regex %s)',
            app_logic.jsonpath_string('[' || app_logic.control_characters(false) || ']'));
        if v_items ? 'pattern' then
            v_filter := v_filter || format(' && @ like_regex %s', app_logic.jsonpath_string(v_items ->> 'pattern'));
        end if;
    end if;
    -- Absent (0 bytes) or JSON null passes; the type, the count and the items in one jsonpath.
    return format('case when coalesce(pg_column_size(%s), 0) <= %s then (coalesce(%s, ''null'') @@ %L) is true else %s end',
        p_value, v_max, p_value, format('strict $ == null || $.type() == "array"%s && !exists($[*] ? (!(%s)))',
            case when p_rule ? 'maxItems' and (p_rule ->> 'maxItems')::integer < (v_max - 8) / 4
                then format(' && $.size() <= %s', (p_rule ->> 'maxItems')::integer) else '' end, v_filter),
        p_rest);
end
$$;
comment on function app_logic.compile_array_check(jsonb, text, text) is
'The compiled function''s check of an array of one-line strings (one jsonpath over the items), or null '
'(app_logic.compile_rule''s parts).';

-- The jsonpath accessor of the value at p_path ($ for the body itself): each key quoted.
create function app_logic.jsonpath_accessor(p_path text[]) returns text
language sql immutable
as $$
    select '$' || coalesce((select string_agg('.' || app_logic.jsonpath_string(k), '' order by n)
        from unnest(p_path) with ordinality as p (k, n)), '')
$$;
comment on function app_logic.jsonpath_accessor(text[]) is
'The jsonpath accessor of the value at p_path of the body (app_logic.compile_rule''s parts).';

-- The sure test of one value: true only for a value that passes p_rule, and never for a value it
-- is not sure of (the exact statements above then decide). p_path is the value's place in the
-- body v_0. It comes in two parts: test, a strict-mode jsonpath condition on the value (@), and
-- conds, SQL conditions for what jsonpath cannot see (a string's length over 254, a number's
-- scale, the phone's check), true or null for an absent value. conds is null when the rule has no
-- sure test (arrays, free-form JSON, words the compiler does not know); test is null for "any
-- value".
-- app_logic.compile_rule joins the tests of all properties into ONE constant jsonpath
-- (v_0 @@ '...'), their conds after it.
--
-- Why: PostgreSQL sets every expression node up again in every transaction (about half a
-- microsecond each) and the sure test had three to four dozen nodes per field; a constant
-- jsonpath is one node, and its executor has no per-transaction set-up (session 9: the lead's
-- sure test 340k -> 200k instructions). Strict mode, because lax mode unwraps an array in
-- a filter and a comparison ("John" and ["John"] alike). In strict mode a test on a value of the
-- wrong type (like_regex on a number, a comparison of a string with a number, of an array with
-- anything) is unknown, never true, so `exists(A ? (test))` is true only for a value of the
-- right type that passes; the whole predicate is read with `is true`, so an unknown result is
-- not sure. like_regex takes the flag "s", so that its flags are those of `~` (no newline rule).
-- A number's scale is invisible to jsonpath (3.000 equals 3), and so is a string's length (no
-- length method): SQL tests the scale and lengths over 254, after the jsonpath (a number is
-- printed only once it is known to be in range); a shorter length is a regular expression. A
-- valid value it is not sure of (padded with spaces, a JSON null, a number written 3.0, a long
-- address) costs the exact statements as well.
create function app_logic.compile_sure(
    p_rule jsonb, p_path text[], p_scale_apart boolean default false, out test text, out conds text[]
)
language plpgsql immutable
as $$
declare
    v_type text := p_rule ->> 'type';
    -- In brackets (app_logic.compile_path): "-" and the comparisons bind otherwise.
    v_value text := app_logic.compile_path(p_path);
    v_text text := app_logic.compile_path(p_path, true);
    v_multiline boolean := coalesce((p_rule ->> 'multiline')::boolean, false);
    v_min numeric := (p_rule ->> 'minLength')::numeric;
    v_max numeric := (p_rule ->> 'maxLength')::numeric;
    v_checks text[] := '{}';
    v_middle text;
    v_end text;
    v_pattern text;
    v_match text[];
    v_cases text[] := '{}';
    v_key text;
    v_sub record;
    v_numbers boolean;
begin
    if exists (select from jsonb_object_keys(p_rule) as k where k <> all(app_logic.compiled_rule_words())) then
        return;
    end if;
    conds := '{}';
    if v_type is null then
        return; -- any JSON value
    elsif v_type in ('string', 'email', 'phone') and p_rule ? 'enum' then
        -- The listed values that pass the whole rule (check_value says which, at build time);
        -- none: never sure (type() is never "none").
        test := coalesce((
            select string_agg(format('@ == %s', app_logic.jsonpath_string(e.value #>> '{}')), ' || ')
            from jsonb_array_elements(p_rule -> 'enum') as e (value)
            where jsonb_typeof(e.value) = 'string'
                and jsonb_array_length(app_logic.check_value('value', e.value, p_rule)) = 0
        ), '@.type() == "none"');
    elsif v_type in ('string', 'email', 'phone') then
        -- No control character; a trimmed text has none of the trimmed characters at its ends
        -- (it is its own trimmed form, so its lengths are exact).
        v_middle := format('[^%s]', app_logic.control_characters(v_multiline));
        v_end := case when coalesce((p_rule ->> 'trim')::boolean, false)
            then format('[^%s%s]', app_logic.control_characters(v_multiline), (
                select string_agg('\u' || lpad(to_hex(ascii(c)), 4, '0'), '')
                from regexp_split_to_table(app_logic.trim_characters(), '') as c
            ))
            else v_middle end;
        v_pattern := format('%s(?:%s*%s)?', v_end, v_middle, v_end);
        if coalesce(v_min, 0) < 1 then
            v_pattern := format('(?:%s)?', v_pattern);
        end if;
        if v_type = 'email' then
            -- An address's characters are neither controls nor trimmed; at most 64 of them keep
            -- the local part, every label and the whole within their limits.
            v_pattern := app_logic.email_pattern();
            if left(v_pattern, 1) <> '^' or right(v_pattern, 1) <> '$' then
                raise exception 'app_logic.email_pattern() must be anchored' using errcode = 'CHX01';
            end if;
            v_pattern := substr(v_pattern, 2, char_length(v_pattern) - 2);
            v_max := least(coalesce(v_max, 64), 64);
        end if;
        v_checks := array[format('@ like_regex %s flag "s"', app_logic.jsonpath_string('^' || v_pattern || '$'))];
        -- ^[...]{m,n}$ is ^[...]*$ and a length from m to n: a bounded repeat is the slow case of
        -- PostgreSQL's regular expressions (45k instructions for leadSource's, 5k without).
        v_match := regexp_match(p_rule ->> 'pattern', '^\^(\[[^]\\]+\])\{([0-9]+),([0-9]+)\}[$]$');
        if v_match is not null and v_type = 'string'
            and v_match[1] ~ '^\[(?:[A-Za-z0-9_]|[a-z]-[a-z]|[A-Z]-[A-Z]|[0-9]-[0-9])+\]$' then
            -- Letters, digits and _ only: none is trimmed or a control character, so one
            -- regular expression says it all (+ for a least length of 1).
            v_checks := array[format('@ like_regex %s flag "s"', app_logic.jsonpath_string(
                '^' || v_match[1] || case when v_match[2]::integer = 1 then '+' else '*' end || '$'))];
            if v_match[2]::integer = 1 then
                v_match[2] := '0';
            end if;
        elsif v_match is not null then
            v_checks := v_checks || format('@ like_regex %s flag "s"', app_logic.jsonpath_string('^' || v_match[1] || '*$'));
        end if;
        if v_match is not null then
            v_min := greatest(v_min, v_match[2]::integer);
            v_max := least(v_max, v_match[3]::integer);
        elsif p_rule ? 'pattern' then
            v_checks := v_checks || format('@ like_regex %s flag "s"', app_logic.jsonpath_string(p_rule ->> 'pattern'));
        end if;
        -- The lengths (exact: the text is its own trimmed form). Up to 254 characters in the
        -- jsonpath, as a search for one character more (or for the least number), which runs
        -- only for a value that is there: a char_length bound set up its three nodes in every
        -- transaction, present value or not (issue 13, session 11: -11k instructions a lead,
        -- callgrind, for eight bounds of which three on absent keys; a present one costs about
        -- as much either way). Unanchored: "^.{101}" measured ten times slower, a lookahead in
        -- the value's own pattern thirty times. A repeat takes at most 255 (PostgreSQL's
        -- DUPMAX), and a nested one for 5,000 costs a hundred thousand instructions a value:
        -- longer bounds stay SQL.
        if v_min > 1 and v_min <= 255 then
            v_checks := v_checks || format('@ like_regex ".{%s}" flag "s"', ceil(v_min));
        elsif v_min > 1 then
            conds := conds || format('char_length(%s) >= %s', v_text, v_min);
        end if;
        if v_max < 255 then
            v_checks := v_checks || format('!(@ like_regex ".{%s}" flag "s")', floor(v_max) + 1);
        elsif v_max is not null then
            conds := conds || format('char_length(%s) <= %s', v_text, v_max);
        end if;
        if v_type = 'email' then
            v_checks := v_checks || format('!(@ like_regex %s flag "s")', app_logic.jsonpath_string(app_logic.email_dots_pattern()));
        elsif v_type = 'phone' then
            -- Only for a phone that is there: the function is PL/pgSQL.
            conds := conds || format(
                'case when %s is not null then (app_logic.phone_to_e164(%s)).problem is null end', v_value, v_text
            );
        end if;
        test := nullif(array_to_string(v_checks, ' && '), '');
    elsif v_type = 'boolean' then
        test := case when not p_rule ? 'const' then '@.type() == "boolean"'
            when jsonb_typeof(p_rule -> 'const') = 'boolean' then format('@ == %s', p_rule -> 'const')
            else '@.type() == "none"' end; -- no value passes: never sure
    elsif v_type in ('integer', 'number') then
        -- Comparisons say the type too: a number compared with anything else is unknown.
        test := coalesce(nullif(concat_ws(' && ',
            case when p_rule ? 'minimum' then format('@ >= %s', (p_rule ->> 'minimum')::numeric) end,
            case when p_rule ? 'maximum' then format('@ <= %s', (p_rule ->> 'maximum')::numeric) end
        ), ''), '@.type() == "number"');
        -- A number's text shows every digit of its scale: none after the point for an integer,
        -- at most 32 in at most 34 characters (unless the caller tests all numbers of the object
        -- at once).
        if v_type = 'integer' then
            conds := conds || format('strpos(%s, ''.'') = 0', v_text);
        elsif not p_scale_apart then
            conds := conds || format('char_length(%s) <= 34', v_text);
        end if;
    elsif v_type = 'object' then
        if p_rule ? 'maxBytes' or jsonb_typeof(p_rule -> 'additionalProperties') = 'object'
            or jsonb_array_length(coalesce(p_rule -> 'required', '[]')) > 0 then
            conds := null; -- required keys of a nested object: the exact statements
            return;
        end if;
        if not (p_rule ? 'properties' or p_rule ? 'additionalProperties') then
            test := '@.type() == "object"';
            return;
        end if;
        -- An object whose known members pass their tests, as the body's: a key lookup and a test
        -- per known member (an optional one may be absent: strict mode's unknown), and no unknown
        -- key, by SQL after the jsonpath, which is false for anything but an object or no value
        -- at all (jsonb - text[] refuses a scalar; AND stops at the false). One keyvalue() pass
        -- over the members with a test per key built a JSON object per member and compared keys
        -- one by one: 37k instructions of coreWebVitals' three metrics (issue 13, session 10,
        -- -10k a lead, callgrind). The numbers' scales at once: their printed array, [a, b, c],
        -- at most 36 characters long, holds none longer than 34 (one test where each number had
        -- its own: 5 metrics, 26k instructions).
        v_numbers := (
            select count(*) from jsonb_each(p_rule -> 'properties') as p (k, r) where p.r ->> 'type' = 'number'
        ) > 1;
        for v_key in select k from jsonb_object_keys(coalesce(p_rule -> 'properties', '{}')) as k order by k loop
            v_sub := app_logic.compile_sure(p_rule -> 'properties' -> v_key, p_path || v_key, v_numbers);
            if v_sub.conds is null then
                conds := null;
                return;
            end if;
            if v_sub.test is not null then
                v_cases := v_cases || format('(exists(@.%1$s ? (%2$s)) || (exists(@.%1$s)) is unknown)',
                    app_logic.jsonpath_string(v_key), v_sub.test);
            end if;
            conds := conds || v_sub.conds;
        end loop;
        conds := format('(%s - %L::text[]) = ''{}''::jsonb', v_value,
            array(select k from jsonb_object_keys(coalesce(p_rule -> 'properties', '{}')) as k order by k)) || conds;
        -- Every member when all are numbers (the jsonpath has seen their types; a JSON null's
        -- text only counts against a valid body), in bytes (a number's text is ASCII): no filter
        -- to run, no characters to count (issue 13, session 11, -6k to -9k instructions a lead,
        -- callgrind). Silent: an absent object is an empty array.
        if v_numbers then
            conds := conds || format('octet_length(jsonb_path_query_array(v_0, %L, ''{}'', true)::text) <= 36',
                format('strict %s.*%s', app_logic.jsonpath_accessor(p_path), case when exists (
                    select from jsonb_each(p_rule -> 'properties') as p (k, r) where p.r ->> 'type' is distinct from 'number'
                ) then ' ? (@.type() == "number")' else '' end));
        end if;
        test := array_to_string(array['@.type() == "object"'] || v_cases, ' && ');
    else
        conds := null; -- an array: app_logic.compile_array_check or the exact statements
    end if;
end
$$;
comment on function app_logic.compile_sure(jsonb, text[], boolean) is
'The sure test of a value at p_path of v_0: a strict jsonpath test of the value (@) and SQL conditions (conds); '
'conds null when the rule has none (app_logic.compile_rule''s parts).';

-- The sure test of the body: no unknown key, the required ones there, and each property's sure
-- test; null when a property has none, unless p_exact lists it: then the caller runs its exact
-- statements. paths are jsonpath predicates: a required property's value passes its test, an
-- optional one's too or is absent (strict mode's error for a missing key, unknown, and only
-- then: nothing inside the filter can make exists() unknown).
create function app_logic.compile_sure_properties(
    p_rule jsonb, p_exact text[] default null, out paths text[], out conds text[]
)
language plpgsql immutable
as $$
declare
    v_keys text[] := array(select k from jsonb_object_keys(coalesce(p_rule -> 'properties', '{}')) as k order by k);
    v_required text[] := array(select r from jsonb_array_elements_text(coalesce(p_rule -> 'required', '[]')) as r order by r);
    v_untested text[] := '{}';
    v_key text;
    v_at text;
    v_sub record;
begin
    paths := '{}';
    conds := array[format('(v_0 - %L::text[]) = ''{}''::jsonb', v_keys)];
    foreach v_key in array v_keys loop
        v_sub := app_logic.compile_sure(p_rule -> 'properties' -> v_key, array[v_key]);
        if v_sub.conds is null and not v_key = any(coalesce(p_exact, '{}')) then
            paths := null;
            conds := null;
            return;
        end if;
        v_at := app_logic.jsonpath_accessor(array[v_key]);
        if v_sub.test is not null then
            paths := paths || case when v_key = any(v_required) then format('exists(%s ? (%s))', v_at, v_sub.test)
                else format('(exists(%1$s ? (%2$s)) || (exists(%1$s)) is unknown)', v_at, v_sub.test) end;
        elsif v_key = any(v_required) then
            -- A required key without a test ("any value", or its exact statements): there and
            -- not JSON null (a test says so for the others: strict mode's unknown).
            v_untested := v_untested || v_key;
            conds := conds || format('v_0 -> %L <> ''null''::jsonb', v_key);
        end if;
        conds := conds || v_sub.conds;
    end loop;
    if cardinality(v_untested) > 0 then
        conds := conds[1:1] || format('v_0 ?& %L::text[]', v_untested) || conds[2:];
    end if;
end
$$;
comment on function app_logic.compile_sure_properties(jsonb, text[]) is
'The sure test of a body (no unknown key, required ones present, each property''s test) as jsonpath predicates and '
'SQL conditions; null when a property not in p_exact has none (app_logic.compile_rule''s parts).';

-- Create app_logic.<p_name>(p_body jsonb) returns boolean in PL/pgSQL: p_code (statements that
-- return false for a body that fails) on v_0, then true.
create function app_logic.compile_plpgsql(p_name text, p_code text, p_comment text) returns void
language plpgsql volatile
as $$
declare
    -- Only the variables the code uses (an unused one would be a lint warning).
    v_declare text := (
        select string_agg(format('    %s %s;', m[1], case left(m[1], 1) when 'v' then 'jsonb' when 't' then 'text'
            when 'n' then 'numeric' else 'integer' end), E'\n' order by m[1])
        from (select distinct regexp_matches(p_code, '\m([vtn]_[0-9]+)\M', 'g') as m) as s
        where m[1] <> 'v_0'
    );
begin
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
$f$, p_name, coalesce(v_declare, ''), p_code);
    execute format('comment on function app_logic.%I(jsonb) is %L', p_name, p_comment);
end
$$;
comment on function app_logic.compile_plpgsql(text, text, text) is
'Create app_logic.<name>(jsonb) returns boolean from PL/pgSQL statements on v_0 (app_logic.compile_rule''s parts).';

-- Create app_logic.<p_name>(jsonb) returns boolean: whether a body passes the object rule.
-- Run by the db/functions file that defines the rule, at build time.
--
-- With a sure test (a property has one), app_logic.<p_name> is an SQL function the planner
-- inlines into the statement that calls it, so a body the sure test passes costs no PL/pgSQL
-- call (a call and its few statements were about 15k instructions per lead): the sure test
-- (app_logic.<p_name>_sure, tests call it alone), the arrays' checks (compile_array_check), then,
-- only when the body has one of the other properties without a sure test, their exact
-- statements (app_logic.<p_name>_rest; an array too large for its check, _large); a body
-- the sure test is not sure of goes to the exact statements of every property
-- (app_logic.<p_name>_exact).
create function app_logic.compile_rule(p_name text, p_rule jsonb) returns void
language plpgsql volatile
as $$
declare
    v_exact text[] := array(
        select k from jsonb_object_keys(coalesce(p_rule -> 'properties', '{}')) as k
        where (app_logic.compile_sure(p_rule -> 'properties' -> k, array[k])).conds is null order by k
    );
    v_code text := app_logic.compile_object(p_rule, 0, '    ');
    v_rest text := '';
    v_large text := '';
    v_after text[] := '{}';
    v_slow text[] := '{}';
    v_check text;
    v_key text;
    v_sure record;
    v_comment text := 'Whether a body passes its rule (compiled by app_logic.compile_rule; app_logic.validate explains '
        || 'a refusal).';
begin
    if cardinality(v_exact) = (select count(*) from jsonb_object_keys(coalesce(p_rule -> 'properties', '{}')))
        or jsonb_typeof(p_rule -> 'additionalProperties') = 'object' then
        perform app_logic.compile_plpgsql(p_name, v_code, v_comment);
        return;
    end if;
    -- The jsonpath first: the SQL conditions print a number only once it is known to be in range.
    v_sure := app_logic.compile_sure_properties(p_rule, v_exact);
    execute format(E'create function app_logic.%I(v_0 jsonb) returns boolean\nlanguage sql stable\nas $sure$\n'
        || E'    select %s\n$sure$', p_name || '_sure', coalesce(nullif(array_to_string(
            case when cardinality(v_sure.paths) > 0
                then array[format('(v_0 @@ %L::jsonpath) is true', 'strict ' || array_to_string(v_sure.paths, E'\n        && '))] else '{}' end
            || v_sure.conds, E'\n        and '), ''), 'true'));
    execute format('comment on function app_logic.%I(jsonb) is %L', p_name || '_sure',
        format('True only for a body that passes its rule, false for one it is not sure of, apart from the '
            || 'properties %s (compiled by app_logic.compile_rule; app_logic.%s decides).', v_exact, p_name));
    perform app_logic.compile_plpgsql(p_name || '_exact', v_code, format(
        'Whether a body passes its rule, by the exact statements of every property (app_logic.%s''s answer '
        || 'for a body its sure test is not sure of).', p_name));
    -- After the sure test: each array with a check of its own (too large for it: its exact
    -- statements, app_logic.<p_name>_large), then the other properties without a sure test, by
    -- their exact statements when the body has one (app_logic.<p_name>_rest).
    foreach v_key in array v_exact loop
        v_check := app_logic.compile_array_check(
            p_rule -> 'properties' -> v_key, app_logic.compile_path(array[v_key]), format('app_logic.%I(v_0)', p_name || '_large')
        );
        if v_check is null then
            v_slow := v_slow || v_key;
            v_rest := v_rest || app_logic.compile_property(p_rule, v_key, 0, '    ');
        else
            v_after := v_after || v_check;
            v_large := v_large || app_logic.compile_property(p_rule, v_key, 0, '    ');
        end if;
    end loop;
    if cardinality(v_slow) > 0 then
        perform app_logic.compile_plpgsql(p_name || '_rest', v_rest, format(
            'Whether the properties %s of a body pass their rules (app_logic.%s, after its sure test).', v_slow, p_name));
        v_after := v_after || format('(not v_0 ?| %L::text[] or app_logic.%I(v_0))', v_slow, p_name || '_rest');
    end if;
    if v_large <> '' then
        perform app_logic.compile_plpgsql(p_name || '_large', v_large, format(
            'Whether the arrays of a body pass their rules, by their exact statements (app_logic.%s, for an array too '
            || 'large for its check).', p_name));
    end if;
    execute format(E'create function app_logic.%I(v_0 jsonb) returns boolean\nlanguage sql stable\nas $passes$\n'
        || E'    select case when jsonb_typeof(v_0) is distinct from ''object'' then false\n'
        || E'        when app_logic.%I(v_0) is not false then %s\n'
        || E'        else app_logic.%I(v_0) end\n$passes$',
        p_name, p_name || '_sure', coalesce(nullif(array_to_string(v_after, E'\n            and '), ''), 'true'),
        p_name || '_exact');
    execute format('comment on function app_logic.%I(jsonb) is %L', p_name, v_comment);
end
$$;
comment on function app_logic.compile_rule(text, jsonb) is
'Create app_logic.<name>(jsonb) returns boolean: the object rule compiled into SQL and PL/pgSQL (the fast path).';
