-- The compiled rules agree with the interpreter: every body a compiled function passes is one
-- app_logic.validate finds no problem in, and every body it refuses is one validate explains.
-- Bodies: each endpoint's valid example with every field set to each of ~50 hostile values,
-- every field left out, an unknown field added, and the values themselves as the whole body.
begin;
select plan(8);

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
        ('1e-16000'), ('-1e-16'), ('1e-15'), ('0e-16000'), ('{"lcp": 1e-16000}')
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
select ok(
    (select count(*) from pg_temp.corpus(pg_temp.lead_example())) > 1000,
    'the corpus holds more than a thousand bodies'
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
            "any": {}
        }
    }'::jsonb
$$;
select app_logic.compile_rule('tap_every_word', pg_temp.every_word_rule());
select is_empty(
    $$ select * from pg_temp.disagreements('app_logic.tap_every_word', pg_temp.every_word_rule(),
        '{"s": " abc ", "m": "line\nline", "e": "x", "n": 1.5, "i": 3, "b": true, "o": {"deep": [{"k": 1}, {}]},
          "f": {"a": 1}, "a": [1, 2], "u": "x", "any": [1, {"x": null}]}') $$,
    'a rule using every word compiles to the interpreter''s answers'
);
select matches(
    (
        select p.prosrc from pg_proc as p
        where p.oid = 'app_logic.tap_every_word(jsonb)'::regprocedure
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
