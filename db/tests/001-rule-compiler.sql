-- The compiled rules agree with the interpreter: every body a compiled function passes is one
-- app_logic.validate finds no problem in, and every body it refuses is one validate explains.
-- Bodies: each endpoint's valid example with every field set to each of ~50 hostile values,
-- every field left out, an unknown field added, and the values themselves as the whole body.
begin;
select plan(24);

create function pg_temp.corpus(p_example jsonb) returns setof jsonb
language sql stable as $$
    with keys as (
        select k from jsonb_object_keys(p_example) as k
        union select 'unknownKey'
        union select 'events'
    ),
    vals (v) as (
        values
        ('null'::jsonb), ('true'), ('false'), ('0'), ('-1'), ('1.5'), ('1e20'), ('2147483648'), ('""'), ('" "'),
        ('"a"'), (to_jsonb(repeat('a', 100))), (to_jsonb(repeat('a', 101))), (to_jsonb(repeat('a', 201))),
        (to_jsonb(repeat('a', 255))), (to_jsonb(repeat('a', 5001))), ('"\u0007"'), ('"a\u202eb"'),
        ('"\u00a0John\u00a0"'), ('"x@y"'), ('"john@example.com"'), ('"+44 20 7946 0958"'), ('"0044 20"'),
        ('"+1 415 555 2671"'), ('"/"'), ('"contact"'), ('"mobile"'), ('"protanopia"'), ('[]'), ('["/"]'),
        ('["/a b"]'), ('[1]'), (to_jsonb(array_fill('/'::text, array[101]))), ('{}'), ('{"lcp": 1}'),
        ('{"lcp": -1}'), ('{"x": 1}'), ('{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":1}}}}}}}}}}}'),
        ('{"a":"\u0001"}'), (jsonb_build_object('big', repeat('x', 5000))), ('"phone"'), ('"email"'),
        ('"contact_form"'), ('"Bad Source"'), ('"a\tb"'), ('"a\nb"'), ('"\u200b"'), ('{"lcp": 1e400}'),
        ('"john..doe@example.com"'), ('"abc@def"'), ('"https://www.example.com/x"'), ('"ftp://x"'), ('12.0'),
        ('1e-16000'), ('-1e-16'), ('1e-15'), ('0e-16000'), ('{"lcp": 1e-16000}'),
        -- What the sure test reads (a value's JSON text): padding, escapes, invisible and bidi
        -- characters at either end, numbers written with a scale, long addresses, bounded patterns.
        ('" John"'), ('"John "'), ('"\u00a0"'), ('"\u202eJohn"'), ('"John\u200b"'), ('"\ufeffJohn"'),
        ('"a\"b"'), ('"a\\b"'), ('"\n"'), ('"a\n"'), ('"\ta"'), ('"a\r\nb"'), ('"\u0085x"'), ('"x\u0085"'),
        ('"\u007f"'), ('"a\u2028b"'), ('"Zoë"'), ('"José "'), ('"日本"'), ('"\u3000日本"'), ('"\u1160"'),
        ('3.0'), ('3.0000000000000000000000000000000000000'), ('1.0e-40'), ('1e-33'), ('-0'), ('0.5'),
        ('0.12345678901234567890123456789012'), ('0.123456789012345678901234567890123'), ('2147483647'),
        ('3600000'), ('3600000.5'), ('100'), ('100.0000000000000000000000000000001'), ('-0.0'),
        ('"b1@example.com"'), ('"b1@example.com "'), (to_jsonb(repeat('a', 57) || '@ex.com')),
        (to_jsonb(repeat('a', 58) || '@ex.com')), ('"a.@example.com"'), ('"a@b..com"'), ('"contact-form"'),
        (to_jsonb(repeat('a', 50))), (to_jsonb(repeat('a', 51))), ('"+44 20 7946 0958 "'), ('"+7 123"'),
        ('{"lcp": 1.5, "cls": 0.1}'), ('{"lcp": "1"}'), ('{"lcp": null}'), ('{"cls": 100.5}'), ('{"lcp": true}'),
        ('{"lcp": [1]}'), ('{"lcp": {}}'),
        -- A nested object's unknown keys (SQL after the jsonpath) and members by key (session 10).
        ('{"lcp": 1, "x": null}'), ('{"LCP": 1}'), ('{"": 1}'), ('{"cls": 1, "fid": 2, "inp": 3, "lcp": 4, "ttfb": 5}'),
        ('{"cls": 1, "fid": 2, "inp": 3, "lcp": 4, "ttfb": 5, "tbt": 6}'), ('{"cls": null, "lcp": 1}'),
        ('{"cls": 100, "ttfb": 3600000}'), ('{"cls": 101}'), ('{"fid": -0.5}'), ('{"lcp": {"lcp": 1}}'),
        -- Paths against the one regular expression of start, spaces and control characters.
        ('["/\u0007"]'), ('["/a\u2028"]'), ('["/\u00a0x"]'), ('["/a\tb"]'), ('["/\u202e"]'), ('["/\u0085"]'),
        ('["//", "/x"]'), ('["a/"]'), ('["/é\u3000"]'), ('["\u0001/"]'), ('["/\u000b"]'), ('["/\u000c"]'),
        ('["/\r"]'), ('["/\u001f"]'), ('["/\u009f"]'), ('["/\u2066"]'), ('["/\u2069"]'), ('["/\u2029"]'),
        ('["/\u00ad"]'), ('["/\u2027"]'), ('["/\u202f"]'), ('["/\u2065"]'), ('["/\u206a"]'), ('["/[x]^$\\S*"]'),
        ('[" /"]'), ('["\/x"]'), ('["/x", "/y\u0007"]'), ('["/\u00a0"]'), ('["/%20"]'), ('["/a\u0085b"]'), ('["\u0007x"]'),
        ('[[]]'), ('["/", "/a b"]'), ('"ab"'), ('"abcd"'), ('"abcde"'),
        -- Arrays the sure test reads with one jsonpath and its size in bytes: Unicode spaces,
        -- controls and bidi characters in an item, escapes, lengths at the limit in characters
        -- and in bytes, items of every type, nesting, 100 and 101 items.
        ('["/", "/\u0085"]'), ('["/\u2028"]'), ('["/a\nb"]'), ('["/\n"]'), ('["/\u00a0"]'), ('["/\u3000"]'),
        ('["/\u200b"]'), ('["/\u202e"]'), ('["/\t"]'), ('["/\u007f"]'), ('["/ "]'), ('["/ü", "/日本"]'),
        ('["/a\"b"]'), ('["/a\\b"]'), ('[null]'), ('["/", null]'), ('[1e131071]'), ('["/", 1]'), ('[true]'),
        ('[[["/"]]]'), ('[{"a": "/"}]'), ('["/", "x"]'), ('["", "/"]'), ('["/", "/"]'), ('"/"'), ('{"0": "/"}'),
        (to_jsonb(array['/' || repeat('a', 199)])), (to_jsonb(array['/' || repeat('a', 200)])),
        (to_jsonb(array['/' || repeat('日', 66)])), (to_jsonb(array['/' || repeat('日', 199)])),
        (to_jsonb(array['/' || repeat('日', 200)])), (to_jsonb(array_fill('/'::text, array[100]))),
        (to_jsonb(array_fill('/a'::text, array[48]))), (to_jsonb(array_fill('/'::text, array[49]))),
        -- Unicode tricks, huge and tiny numbers, deep JSON.
        ('"\ud83d\ude00"'), ('"e\u0301"'), ('"\u061cJohn"'), ('"\u2066x\u2069"'), ('"ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"'),
        ('"john@exаmple.com"'), ('"+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨"'), ('1e131071'), ('-1e131071'),
        ('1e-16383'), ('123456789012345678901234567890'), ('2147483647.0'), ('4e9'), ('[1e-16383]'),
        ((repeat('[', 300) || '"/"' || repeat(']', 300))::jsonb), ((repeat('{"a": ', 300) || '1' || repeat('}', 300))::jsonb),
        -- What the sure test's strict jsonpath reads: values in arrays (lax mode would unwrap
        -- ["John"] into "John"), JSON nulls and wrong types inside a filter (unknown, never true),
        -- nested scales by the printed array of an object's numbers (at most 36 characters), valid
        -- metrics too long for that test.
        ('["John"]'), ('[true]'), ('[3]'), ('["mobile"]'), ('["email"]'), ('[{"lcp": 1}]'),
        ('["b1@example.com"]'), ('[null, "x"]'), ('{"lcp": [1]}'), ('{"lcp": [1, 2]}'), ('{"lcp": 1, "x": null}'),
        ('{"lcp": 0.100000000000000000000000000000000}'), ('{"lcp": 1.000000000000000000000000000000000, "cls": 1}'),
        ('{"cls": 0.1234, "inp": 120, "lcp": 2300, "ttfb": 300}'),
        ('{"lcp": 3599999.5, "fid": 3599999.5, "inp": 3599999.5, "ttfb": 3599999.5, "cls": 99.5}'),
        ('{"lcp": 1.00000000000000000000000000000000}'), ('{"cls": 100.000000000000000000000000000000000}'),
        -- Lengths by a search for one character more (session 11): at and over each bound up to
        -- 254, in characters of one to four bytes, combining marks, newlines, padding that trims.
        (to_jsonb(repeat('a', 40))), (to_jsonb(repeat('a', 41))), (to_jsonb(repeat('a', 64))), (to_jsonb(repeat('a', 65))),
        (to_jsonb(repeat('a', 99))), (to_jsonb(repeat('a', 199))), (to_jsonb(repeat('a', 200))), (to_jsonb(repeat('a', 254))),
        (to_jsonb(repeat('日', 100))), (to_jsonb(repeat('日', 101))), (to_jsonb(repeat('😀', 100))),
        (to_jsonb(repeat('😀', 101))), (to_jsonb(repeat('e' || chr(769), 50))), (to_jsonb(repeat('e' || chr(769), 51))),
        (to_jsonb(repeat('ü', 200))), (to_jsonb(repeat('ü', 201))), (to_jsonb('a' || repeat(chr(10), 98) || 'a')),
        (to_jsonb('a' || repeat(chr(10), 99) || 'a')), (to_jsonb(' ' || repeat('a', 100) || ' ')),
        (to_jsonb(repeat('a', 99) || ' ')), (to_jsonb(repeat('a', 42) || '@example.com')),
        (to_jsonb(repeat('a', 52) || '@example.com')), (to_jsonb(repeat('a', 53) || '@example.com')),
        (to_jsonb(repeat('a', 49) || chr(8203))), (to_jsonb(repeat('ab', 25))), (to_jsonb('contact_' || repeat('x', 43))),
        -- Nested scales by the printed array of every member (session 11): nulls, four-letter keys.
        ('{"cls": null, "lcp": 0.100000000000000000000000000000000}'), ('{"ttfb": 0.100000000000000000000000000000000}'),
        ('{"cls": 1e-33}'), ('{"cls": null, "fid": null, "inp": null, "lcp": null, "ttfb": null}'),
        ('{"cls": null, "lcp": 0.12345678901234567890123456789012}'), ('{"lcp": "0.1000000000000000000000000000000000"}')
    )
    select jsonb_set(p_example, array[k], v) from keys, vals
    union all
    select p_example - k from keys
    union all
    select v from vals
$$;

-- A valid lead using every field.
create function pg_temp.lead_example() returns jsonb
language sql immutable as $$
    select '{"firstName": "John", "lastName": "Doe", "email": "john.doe@example.com", "leadSource": "contact_form",
        "gdprConsent": true, "companyName": "Acme Corp", "inquiryDetails": "Interested in a deep dive",
        "accessibilityTheme": "protanopia", "deviceType": "desktop", "coreWebVitals": {"lcp": 2300, "cls": 0.08},
        "logoInteractions": 3, "timeOnSite": 145000, "pagesViewed": ["/", "/ecosystem"], "phone": "+44 20 7946 0958",
        "preferredCommunication": "phone", "marketingConsent": true, "sessionId": "s-1", "browserInfo": {"ua": "x"}}'::jsonb
$$;

-- Bodies on which a compiled rule and the interpreter disagree.
create function pg_temp.disagreements(p_passes regproc, p_rule jsonb, p_example jsonb) returns setof jsonb
language plpgsql stable as $$
declare
    v_body jsonb;
    v_passes boolean;
begin
    for v_body in select b from pg_temp.corpus(p_example) as b loop
        execute format('select %s($1)', p_passes) using v_body into v_passes;
        if v_passes is distinct from (jsonb_array_length(app_logic.validate(v_body, p_rule)) = 0) then
            return next v_body;
        end if;
    end loop;
end
$$;

select is_empty(
    $$ select * from pg_temp.disagreements('app_logic.submit_lead_passes', app_logic.submit_lead_rule(),
        pg_temp.lead_example()) $$,
    'the compiled lead rule passes exactly the bodies the interpreter finds no problem in'
);
-- The same at run time: EXECUTE ... USING folds the body into the plan as a constant, a
-- column is read row by row, as submit_lead reads its variable. A nested object's unknown keys
-- are read by jsonb - text[], which refuses a scalar: only the jsonpath before it (false for
-- anything but an object) keeps a scalar coreWebVitals from an error (session 10).
select is_empty(
    $$ select b from pg_temp.corpus(pg_temp.lead_example()) as b
       where app_logic.submit_lead_passes(b)
           is distinct from (jsonb_array_length(app_logic.validate(b, app_logic.submit_lead_rule())) = 0) $$,
    'the compiled lead rule, run on a column (no constant folding), errs on no body and agrees with the interpreter'
);
select ok(
    (select count(*) from pg_temp.corpus(pg_temp.lead_example())) > 1000,
    'the corpus holds more than a thousand bodies'
);
-- The sure test (app_logic.compile_sure): never true for a body the interpreter refuses (apart
-- from the properties it leaves to the exact statements), true for the bodies forms send, false
-- for a valid body it is not sure of, which the exact statements then pass.
select is_empty(
    $$ select b from pg_temp.corpus(pg_temp.lead_example()) as b
       where jsonb_typeof(b) = 'object' and app_logic.submit_lead_passes_sure(b) is not false
           and jsonb_array_length(app_logic.validate(b - '{browserInfo,pagesViewed}'::text[], app_logic.submit_lead_rule())) > 0 $$,
    'the lead rule''s sure test is true for no body the interpreter refuses'
);
select ok(
    (
        select 2 * count(*) filter (where app_logic.submit_lead_passes_sure(b) is not false) > count(*)
        from pg_temp.corpus(pg_temp.lead_example()) as b
        where app_logic.submit_lead_passes(b)
    ),
    'the lead rule''s sure test is true for most bodies of the corpus that pass'
);
select ok(
    app_logic.submit_lead_passes_sure(pg_temp.lead_example()) is not false
    and app_logic.submit_lead_passes_sure('{"firstName": "John", "lastName": "Doe", "email": "b1@example.com",
        "leadSource": "contact_form", "gdprConsent": true, "companyName": "Acme Corp",
        "inquiryDetails": "Interested in technical deep dive\nand more", "accessibilityTheme": "protanopia",
        "deviceType": "desktop", "coreWebVitals": {"lcp": 2300, "fid": 85, "cls": 0.08}, "logoInteractions": 3,
        "timeOnSite": 145000, "pagesViewed": ["/", "/ecosystem", "/contact"]}') is not false,
    'the lead rule''s sure test is true for the bodies the form sends'
);
select ok(
    app_logic.submit_lead_passes_sure(jsonb_set(pg_temp.lead_example(), '{firstName}', '" John\u00a0"')) = false
    and app_logic.submit_lead_passes(jsonb_set(pg_temp.lead_example(), '{firstName}', '" John\u00a0"')),
    'a padded name is not sure, and the exact statements pass it'
);
select ok(
    (
        select
            p.prosrc ~ '\$\."coreWebVitals" \? \(@\.type\(\) == "object" && \(exists\(@\."cls" \? '
            and p.prosrc ~ '\(exists\(@\."lcp" \? \(@ >= 0 && @ <= 3600000\)\) \|\| \(exists\(@\."lcp"\)\) is unknown\)'
            and p.prosrc !~ 'keyvalue'
            and p.prosrc ~ '\(\(v_0 -> ''coreWebVitals''\) - ''\{cls,fid,inp,lcp,ttfb\}''::text\[\]\) = ''\{\}''::jsonb'
            and p.prosrc !~ '-> ''coreWebVitals'' ->'
            and p.prosrc !~ '#> ''\{coreWebVitals,'
            and p.prosrc ~ 'octet_length\(jsonb_path_query_array\(v_0, ''strict \$\."coreWebVitals"\.\*'', '
            and p.prosrc ~ '"leadSource" \? \(@ like_regex "\^\[a-z0-9_\]\+\$" flag "s" && !\(@ like_regex "\.\{51\}"'
            and p.prosrc !~ '\(v_0 ->> ''leadSource''\) ~'
            and p.prosrc !~ '\(v_0 -> ''leadSource''\)::text ~'
        from pg_proc as p
        where p.oid = 'app_logic.submit_lead_passes_sure(jsonb)'::regprocedure
    ),
    'the sure test reads a nested object''s known members by key in its jsonpath, its unknown keys by one SQL '
    'condition (no keyvalue() pass, no SQL lookup per member), their scales by the bytes of all of them printed, '
    'and tests leadSource with one regular expression and its length'
);
select ok(
    (
        select
            p.prosrc ~ '@\.type\(\) == "string" && @ like_regex "\^/\[\^\[:space:\]\\\\\\\\u0001-'
            and p.prosrc !~ '!\(@ like_regex "\['
        from pg_proc as p
        where p.oid = 'app_logic.submit_lead_passes(jsonb)'::regprocedure
    ),
    'a path viewed is tested by one regular expression (its start, no space, no control character)'
);
-- One constant jsonpath holds every type, character, enum and range test (one expression node
-- where each field had several); SQL keeps only what jsonpath cannot see.
select ok(
    (
        select
            (select count(*) from regexp_matches(p.prosrc, '@@', 'g')) = 1
            and p.prosrc ~ '\(v_0 @@ E?''strict \(exists\(\$\."accessibilityTheme" \? \(@ == "default" \|\| '
            and p.prosrc ~ '::jsonpath\) is true'
            and p.prosrc ~ '"firstName" \? \(@ like_regex "[^"]*" flag "s" && !\(@ like_regex "\.\{101\}" flag "s"\)\)'
            and (select count(*) from regexp_matches(p.prosrc, 'char_length\(\(v_0 ->> ', 'g')) = 3
            and p.prosrc !~ '[^@] ~ '
            and p.prosrc !~ 'jsonb_typeof'
        from pg_proc as p
        where p.oid = 'app_logic.submit_lead_passes_sure(jsonb)'::regprocedure
    ),
    'the lead rule''s sure test is one jsonpath (read with is true, lengths up to 254 in it) and SQL for longer '
    'lengths, scales and the phone'
);
select is_empty(
    $$ select b from pg_temp.corpus('{"sessionId": "s-1", "path": "/ecosystem", "referrer": "https://www.example.com/",
           "deviceType": "mobile", "durationMs": 5300}') as b
       where jsonb_typeof(b) = 'object' and app_logic.page_view_passes_sure(b) is not false
           and jsonb_array_length(app_logic.validate(b, app_logic.record_page_view_rule())) > 0 $$,
    'the page-view rule''s sure test is true for no body the interpreter refuses'
);
-- Inlined: an SQL function the planner could not inline would be called, and counted.
set local track_functions = 'all';
-- A small pagesViewed is decided by one jsonpath in the inlined function, a large one (more bytes
-- than an item's maxLength) by the exact statements.
select ok(
    app_logic.submit_lead_passes(jsonb_set(pg_temp.lead_example() - 'browserInfo', '{pagesViewed}', '["/", "/contact"]'))
    and not app_logic.submit_lead_passes(
        jsonb_set(pg_temp.lead_example() - 'browserInfo', '{pagesViewed}', '["/", "/a b"]')
    ),
    'a lead with a few paths viewed is decided by the compiled rule'
);
select is(
    (
        select array_agg(f.funcname::text order by f.funcname) from pg_stat_xact_user_functions as f
        where f.funcname like 'submit\_lead\_passes%'
    ),
    null,
    'a lead without browserInfo and with a few paths viewed calls no compiled function: all of it is inlined SQL'
);
select ok(
    app_logic.submit_lead_passes(
        jsonb_set(pg_temp.lead_example() - 'browserInfo', '{pagesViewed}', to_jsonb(array_fill('/ecosystem'::text, array[30])))
    ),
    'a lead with 30 paths viewed passes (by the exact statements)'
);
select ok(app_logic.submit_lead_passes(pg_temp.lead_example()), 'the example lead passes');
select is(
    (
        select array_agg(f.funcname::text order by f.funcname) from pg_stat_xact_user_functions as f
        where f.funcname like 'submit\_lead\_passes%'
    ),
    '{submit_lead_passes_large,submit_lead_passes_rest}'::text[],
    'the compiled rule and its sure test are inlined (SQL): of the compiled functions only the exact statements '
    'of 30 paths viewed and of browserInfo ran'
);
select is_empty(
    $$ select * from pg_temp.disagreements('app_logic.page_view_passes', app_logic.record_page_view_rule(),
        '{"sessionId": "s-1", "path": "/ecosystem", "referrer": "https://www.example.com/", "deviceType": "mobile",
          "durationMs": 5300}') $$,
    'the compiled page-view rule passes exactly the bodies the interpreter finds no problem in'
);

select is_empty(
    $$ select * from pg_temp.disagreements('app_logic.page_view_batch_passes', app_logic.record_page_view_batch_rule(),
        '{"events": [{"sessionId": "s-1", "path": "/"}, {"sessionId": "s-1", "path": "/x", "durationMs": 5}]}') $$,
    'the compiled batch rule passes exactly the batches the interpreter finds no problem in'
);
select is_empty(
    $$ select b from pg_temp.corpus('{"sessionId": "s-1", "path": "/", "referrer": "https://e.com/"}') as e,
           lateral (select jsonb_build_object('events', jsonb_build_array('{"sessionId": "s", "path": "/"}'::jsonb, e)) as b) as s
       where app_logic.page_view_batch_passes(b)
           is distinct from (jsonb_array_length(app_logic.validate(b, app_logic.record_page_view_batch_rule())) = 0) $$,
    'the compiled batch rule agrees with the interpreter when a batch''s second event is hostile'
);

-- A rule with every word, and one the compiler does not know.
create function pg_temp.every_word_rule() returns jsonb
language sql immutable as $$
    select '{
        "type": "object", "required": ["s"], "properties": {
            "s": {"type": "string", "trim": true, "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
            "m": {"type": "string", "multiline": true, "maxLength": 20},
            "e": {"type": "string", "enum": ["x", "y"]},
            "n": {"type": "number", "minimum": -1.5, "maximum": 2.5},
            "i": {"type": "integer", "minimum": 0},
            "b": {"type": "boolean", "const": true},
            "o": {"type": "object", "properties": {"deep": {"type": "array", "maxItems": 2,
                "items": {"type": "object", "properties": {"k": {"type": "integer"}}}}}},
            "f": {"type": "object", "maxBytes": 40},
            "a": {"type": "array", "maxBytes": 30},
            "u": {"type": "string", "futureWord": 3},
            "p": {"type": "string", "maxLength": 3, "pattern": "^[a-c]{2,4}$"},
            "t": {"type": "string", "trim": true, "minLength": 3, "multiline": true},
            "en": {"type": "string", "trim": true, "enum": [" x", "y", "zz"], "maxLength": 1},
            "any": {},
            "pa": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 40, "pattern": "^(?!x)[a-z]*$"}},
            "pm": {"type": "array", "items": {"type": "string", "maxLength": 50, "multiline": true}},
            "pn": {"type": "array", "maxItems": 2},
            "ps": {"type": "array", "items": {"type": "string", "maxLength": 40, "pattern": "^ab\\S*$"}},
            "pc": {"type": "array", "items": {"type": "string", "maxLength": 40, "pattern": "^\u0007\\S*$"}},
            "pd": {"type": "array", "items": {"type": "string", "maxLength": 40, "pattern": "^a.\\S*$"}},
            "mo": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number", "maximum": 9},
                "z": {"type": "string", "maxLength": 60}}}
        }
    }'::jsonb
$$;
select app_logic.compile_rule('tap_every_word', pg_temp.every_word_rule());
select is_empty(
    $$ select * from pg_temp.disagreements('app_logic.tap_every_word', pg_temp.every_word_rule(),
        '{"s": " abc ", "m": "line\nline", "e": "x", "n": 1.5, "i": 3, "b": true, "o": {"deep": [{"k": 1}, {}]},
          "f": {"a": 1}, "a": [1, 2], "u": "x", "any": [1, {"x": null}], "p": "ab", "t": "abc", "en": "y",
          "pa": ["ab", "c"], "pm": ["a\nb"], "pn": [1, "x"],
          "ps": ["ab", "abc/d"], "pc": [], "pd": ["a\u00a0x"]}') $$,
    'a rule using every word compiles to the interpreter''s answers'
);
-- The same on a body the sure test passes, so that its lengths and the arrays' own checks decide
-- (the example above, padded, goes to the exact statements).
select ok(
    app_logic.tap_every_word_sure('{"s": "abc", "m": "line\nline", "p": "abc", "t": "ab\nc", "ps": ["ab"], "pc": [],
        "pd": ["a x"], "mo": {"x": 1.5, "y": 2, "z": "a string longer than the numbers'' 36 characters"}}') is not false
    and not exists (
        select from pg_temp.disagreements(
            'app_logic.tap_every_word', pg_temp.every_word_rule(),
            '{"s": "abc", "m": "line\nline", "p": "abc", "t": "ab\nc", "ps": ["ab"], "pc": [], "pd": ["a x"],
              "mo": {"x": 1.5, "y": 2, "z": "a string longer than the numbers'' 36 characters"}}'
        )
    ),
    'the sure test''s lengths, the scales of an object''s numbers beside a string, and the arrays'' checks after it '
    'agree with the interpreter'
);
-- A pattern of a literal start and \S* is one regular expression with the control characters;
-- a start with a control character or a metacharacter keeps the two.
select ok(
    (
        select
            p.prosrc ~ '\(v_0 -> ''ps''\).*@ like_regex "\^ab\[\^\[:space:\]\\\\\\\\u0001-[^"]*\]\*\$"\)'
            and p.prosrc ~ '\(v_0 -> ''pc''\)[^\n]*!\(@ like_regex "\['
            and p.prosrc ~ '\(v_0 -> ''pd''\)[^\n]*!\(@ like_regex "\['
        from pg_proc as p
        where p.oid = 'app_logic.tap_every_word(jsonb)'::regprocedure
    ),
    'an array''s pattern of a literal start and \S* takes the control characters into one regular expression, '
    'any other pattern keeps its own beside the control-character test'
);
select matches(
    (
        select p.prosrc from pg_proc as p
        where p.oid = 'app_logic.tap_every_word_exact(jsonb)'::regprocedure
    ),
    'app_logic\.check_value\(''value'', v_1, ''\{[^'']*futureWord',
    'a word the compiler does not know is left to the interpreter'
);
select throws_ok(
    $$ select app_logic.compile_rule('tap_bad', '{"type": "object", "properties": {"x": {"type": "date"}}}') $$,
    'CHX01', 'unknown rule type date cannot be compiled', 'an unknown type fails the build, not a request'
);

select * from finish();
rollback;
