-- The cheaper checks of db/schema/850 (issue 13, session 11) against the rules they replace: JSON
-- arrays and objects by containment, the source's length in bytes, upper bounds of characters as
-- a cast to varchar(N), and the audit's user agent cut by that cast. Each accepts and refuses
-- exactly what the rule before did (app_logic.value_fits: whether the domain takes a value), and
-- a refusal keeps its SQLSTATE and constraint name.
begin;
select plan(22);

-- No check of these domains counts characters or names a JSON type (what 850 took out).
select is(
    (
        select array_agg(c.conname::text order by c.conname) from pg_constraint as c
        where
            c.contypid in (
                'app.lead_pages'::regtype, 'app.lead_web_vitals'::regtype, 'app.lead_browser_info'::regtype,
                'app.lead_source'::regtype, 'app.lead_company'::regtype, 'app.lead_inquiry'::regtype,
                'app.lead_note'::regtype, 'app.consent_source'::regtype, 'app.consent_user_agent'::regtype
            )
            and (pg_get_constraintdef(c.oid) like '%char_length%' or pg_get_constraintdef(c.oid) like '%jsonb_typeof%')
    ),
    null,
    'the checks of 850 count no characters and name no JSON type'
);

-- Text of 1- to 4-byte characters around each bound, with spaces (varchar keeps them), and null.
create function pg_temp.lengths_around(p_bound integer) returns setof text
language sql immutable
as $$
    select repeat(ch, n) || tail
    from
        unnest(array['a', chr(233), chr(28450), chr(128512)]) as ch,
        unnest(array[0, 1, p_bound / 4 - 1, p_bound / 4, p_bound / 4 + 1, p_bound / 2, p_bound - 1, p_bound, p_bound + 1])
            as n,
        unnest(array['', ' ', '  ']) as tail
    where n >= 0
    union all
    select null
$$;
select is(
    (
        select array_agg(format('%s %s', d.domain, coalesce(char_length(v), -1)) order by d.domain, v)
        from
            (
                values ('app.lead_company'::regtype, 200), ('app.lead_inquiry', 5000), ('app.lead_note', 5000),
                ('app.consent_source', 50), ('app.consent_user_agent', 512)
            ) as d (domain, bound)
        cross join lateral pg_temp.lengths_around(d.bound) as v
        where app_logic.value_fits(v, d.domain::text) is distinct from (v is null or char_length(v) <= d.bound)
    ),
    null,
    'each bound accepts up to its number of characters, however many bytes, and refuses one more'
);
select ok(
    app_logic.value_fits(repeat(chr(28450), 5000), 'app.lead_inquiry')
    and app_logic.value_fits(repeat(chr(128512), 512), 'app.consent_user_agent'),
    'a value of more bytes than its bound but as many characters is accepted (15,000 and 2,048 bytes)'
);

-- JSON of every type, nested and empty, as arrays, objects and scalars (strings that look like them).
select is(
    (
        select array_agg(format('%s %s', d.domain, v) order by d.domain, v)
        from
            (values ('app.lead_pages'::regtype, 'array'), ('app.lead_web_vitals', 'object'), ('app.lead_browser_info', 'object'))
                as d (domain, kind),
            unnest(array[
                '[]', '[1]', '[[]]', '[{}]', '["/", "/contact"]', '{}', '{"a": 1}', '{"a": []}', '{"": {}}',
                '1', '-0.5', '"a"', '"[]"', '"{}"', '""', 'null', 'true', 'false', null
            ]) as v
        where app_logic.value_fits(v, d.domain::text) is distinct from (v is null or jsonb_typeof(v::jsonb) = d.kind)
    ),
    null,
    'pages accept exactly the JSON arrays, vitals and browser info exactly the objects'
);
select is(
    (
        select array_agg(n order by n) from generate_series(4090, 4100) as n
        where
            app_logic.value_fits(jsonb_build_object('ua', repeat('u', n - 10))::text, 'app.lead_browser_info')
            is distinct from (n <= 4096)
    ),
    null,
    'browser info is accepted up to 4096 bytes of JSON text and refused above'
);

-- A source's bytes are its characters whenever the pattern holds (the 1,026 values of
-- 020-leads-domains, and multibyte ones around the bound here).
select is(
    (
        select array_agg(v order by v)
        from
            unnest(array[
                repeat('a', 50), repeat('a', 51), repeat(chr(233), 25), repeat(chr(233), 26), repeat('a', 49) || chr(233),
                repeat('_', 50), repeat('9', 51), '', null
            ]) as v
        where
            app_logic.value_fits(v, 'app.lead_source')
            is distinct from coalesce(v ~ '^[a-z0-9_]+$' and char_length(v) <= 50, true)
    ),
    null,
    'the source accepts what its pattern and 50 characters accepted'
);

-- Each refusal inserted directly: SQLSTATE 23514 and the constraint's name, as before 850.
create function pg_temp.lead_with(p_column text, p_value text) returns void
language plpgsql volatile
as $$
begin
    execute format(
        'insert into app.leads (first_name, last_name, email, gdpr_consent, %I) values (''A'', ''B'', %L, true, %s)',
        p_column, 'checks-' || md5(random()::text) || '@example.org', p_value
    );
end
$$;
select throws_ok(
    $$ select pg_temp.lead_with('pages_viewed', '''{"a": 1}''') $$, '23514',
    'value for domain app.lead_pages violates check constraint "lead_pages_check"', 'pages that are an object are refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('pages_viewed', '''"[]"''') $$, '23514',
    'value for domain app.lead_pages violates check constraint "lead_pages_check"', 'pages that are a string are refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('core_web_vitals', '''[{}]''') $$, '23514',
    'value for domain app.lead_web_vitals violates check constraint "lead_web_vitals_check"',
    'vitals that are an array are refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('browser_info', '''1''') $$, '23514',
    'value for domain app.lead_browser_info violates check constraint "lead_browser_info_check"',
    'browser info that is a number is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('lead_source', quote_literal(repeat('s', 51))) $$, '23514',
    'value for domain app.lead_source violates check constraint "lead_source_check"', 'a source of 51 characters is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('company_name', quote_literal(repeat(chr(28450), 201))) $$, '23514',
    'value for domain app.lead_company violates check constraint "lead_company_check"',
    'a company of 201 characters is refused'
);
select throws_ok(
    $$ select pg_temp.lead_with('inquiry_details', quote_literal(repeat('i', 5000) || ' ')) $$, '23514',
    'value for domain app.lead_inquiry violates check constraint "lead_inquiry_check"',
    'an inquiry of 5000 characters and a space is refused'
);
select lives_ok(
    $$ select pg_temp.lead_with('inquiry_details', quote_literal(repeat(chr(233), 5000))) $$,
    'an inquiry of 5000 two-byte characters is stored'
);
insert into app.leads (first_name, last_name, email, gdpr_consent) values ('N', 'O', 'checks-note@example.org', true);
select throws_ok(
    $$ insert into app.lead_interactions (lead_id, kind, note)
       select l.id, 'note', repeat(chr(128512), 5001) from app.leads as l where l.email = 'checks-note@example.org' $$,
    '23514', 'value for domain app.lead_note violates check constraint "lead_note_check"',
    'a note of 5001 characters is refused'
);
select throws_ok(
    $$ insert into app.consent_audit (subject, seq, event, source, row_hash)
       values ('checks-s', 1, 'erasure', repeat('s', 51), '\x00') $$,
    '23514', 'value for domain app.consent_source violates check constraint "consent_source_check"',
    'an audit source of 51 characters is refused'
);
select throws_ok(
    $$ insert into app.consent_audit (subject, seq, event, source, user_agent, row_hash)
       values ('checks-u', 1, 'erasure', 't', repeat(chr(233), 513), '\x00') $$,
    '23514', 'value for domain app.consent_user_agent violates check constraint "consent_user_agent_check"',
    'an audit user agent of 513 characters is refused'
);
select lives_ok(
    $$ insert into app.consent_audit (subject, seq, event, source, user_agent, row_hash)
       values ('checks-v', 1, 'erasure', 't', repeat(chr(233), 512), '\x00') $$,
    'an audit user agent of 512 two-byte characters is stored'
);

-- The append cuts a user agent to its first 512 characters, as left(..., 512) did, whatever
-- their bytes: a cut inside multibyte text, and one of 512 characters in 2,048 bytes kept whole.
select app_logic.append_consent('checks-a', 'consent', 'gdpr', true, 'test', null, repeat(chr(28450), 513));
select app_logic.append_consent('checks-b', 'consent', 'gdpr', true, 'test', null, repeat(chr(128512), 512));
select app_logic.append_consent('checks-c', 'consent', 'gdpr', true, 'test', null, repeat('u', 511) || ' é ');
select app_logic.append_consent('checks-d', 'consent', 'gdpr', true, 'test', null, null);
select is(
    (
        select user_agent::text from app.consent_audit
        where subject = 'checks-a'
    ),
    left(repeat(chr(28450), 513), 512),
    'a user agent of 513 three-byte characters is kept to its first 512'
);
select is(
    (
        select user_agent::text from app.consent_audit
        where subject = 'checks-b'
    ),
    repeat(chr(128512), 512),
    'a user agent of 512 four-byte characters is kept whole'
);
select is(
    (
        select user_agent::text from app.consent_audit
        where subject = 'checks-c'
    ),
    repeat('u', 511) || ' ',
    'a cut keeps the space before it, as left did'
);
select is(
    (
        select user_agent::text from app.consent_audit
        where subject = 'checks-d'
    ),
    null::text,
    'no user agent stays none'
);

select * from finish();
rollback;
