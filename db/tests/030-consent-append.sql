-- The chain's append (app_logic.append_consent_rows, issue 13) against the code it replaced:
-- the recursive INSERT over arrays of append_consents and the jsonb_build_array serialisation
-- of consent_row_hash, kept here verbatim as pg_temp.old_* (the reference). The same appends,
-- run once through each, must store the same rows: every column, every hash, in the same order.
begin;
select plan(18);
-- From the start: PL/pgSQL sets up a condition's expression once per transaction, and counts
-- the calls in it only when track_functions was on then (the append is called in an IF).
set local track_functions = 'all';

-- The reference: the functions as they were before the non-recursive append.
create function pg_temp.old_consent_row_hash(
    o_subject text, o_seq integer, o_event text, o_consent_type text, o_granted boolean,
    o_source text, o_ip_hash text, o_user_agent text, o_text_version text,
    o_recorded_at timestamptz, o_prev_hash bytea, o_submission_id bigint default null
) returns bytea
language sql stable
as $$
    select sha256(convert_to((jsonb_build_array(
        o_subject, o_seq, o_event, o_consent_type, o_granted, o_source, o_ip_hash, o_user_agent,
        o_text_version, to_char(o_recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        encode(o_prev_hash, 'hex')
    ) || case when o_submission_id is null then '[]'::jsonb else jsonb_build_array(o_submission_id) end)::text, 'UTF8'))
$$;

create function pg_temp.old_append_consents(
    o_subject text, o_events text[], o_consent_types text[], o_granted boolean[], o_source text,
    o_ip_hash text default null, o_user_agent text default null, o_submission_id bigint default null
) returns void
language plpgsql volatile
as $$
begin
    if cardinality(o_events) is distinct from cardinality(o_consent_types)
        or cardinality(o_events) is distinct from cardinality(o_granted) then
        raise exception 'events, consent types and granted must have one entry per row' using errcode = '22023';
    end if;
    perform pg_advisory_xact_lock(hashtextextended('consent_audit:' || o_subject, 0));
    insert into app.consent_audit (
        subject, seq, event, consent_type, granted, source, ip_hash, user_agent,
        consent_text_version, recorded_at, prev_hash, row_hash, submission_id
    )
    with recursive fixed as materialized (
        select
            app_logic.now() as recorded_at,
            left(o_user_agent, 512) as user_agent,
            (
                select t.version from app.consent_texts as t
                where t.valid_from <= app_logic.now()
                order by t.valid_from desc limit 1
            ) as text_version
    ),

    chain (i, seq, text_version, prev_hash, row_hash) as (
        select 0, coalesce(e.seq, 0), null::text, null::bytea, e.row_hash
        from (select) as one
        left join lateral (
            select a.seq, a.row_hash from app.consent_audit as a
            where a.subject = o_subject
            order by a.seq desc limit 1
        ) as e on true
        union all
        select
            c.i + 1, c.seq + 1, v.text_version, c.row_hash,
            pg_temp.old_consent_row_hash(
                o_subject, c.seq + 1, o_events[c.i + 1], o_consent_types[c.i + 1], o_granted[c.i + 1], o_source,
                o_ip_hash, f.user_agent, v.text_version, f.recorded_at, c.row_hash, o_submission_id
            )
        from chain as c
        cross join fixed as f
        cross join lateral (
            select case when o_events[c.i + 1] in ('consent', 'request') then f.text_version end as text_version
        ) as v
        where c.i < cardinality(o_events)
    )

    select
        o_subject, c.seq, o_events[c.i], o_consent_types[c.i], o_granted[c.i], o_source, o_ip_hash, f.user_agent,
        c.text_version, f.recorded_at, c.prev_hash, c.row_hash, o_submission_id
    from chain as c
    cross join fixed as f
    where c.i > 0
    order by c.seq;
end
$$;

create function pg_temp.old_record_form_consent(
    o_email text, o_marketing boolean, o_submission_id bigint, o_marketing_is_request boolean default false
) returns void
language plpgsql volatile
as $$
begin
    perform pg_temp.old_append_consents(
        app_logic.pseudonym(lower(o_email), k.pepper),
        array['consent', case when o_marketing_is_request then 'request' else 'consent' end],
        array['gdpr', 'marketing'], array[true, o_marketing], 'web_form',
        app_logic.pseudonym(host(app_logic.client_ip()), k.pepper), app_logic.request_header('user-agent'),
        o_submission_id
    )
    from (select (select s.value from app.settings as s where s.key = 'hash_pepper') as pepper offset 0) as k;
end
$$;

-- Values that serialise awkwardly: quotes, backslashes, every control character, the JSON
-- line separators, a byte-order mark, combining marks, astral characters, the last code point.
create function pg_temp.awkward(p_i integer) returns text
language sql immutable
as $$
    select (array[
        '', ' ', '"', '\', '\"', '\u0041', '/', '</script>', e'\t\n\r\b\f', e'\x01\x1f\x7f',
        'é漢字😀', u&'\2028\2029\FEFF\200B\202E', u&'e\0301', u&'\+10FFFF', '[1, 2]", "x', 'null', 'true', '1e2'
    ])[1 + p_i % 18]
$$;

-- The appends a day of traffic makes: form submissions (new and known addresses, marketing
-- asked or not, no headers, IPv6, a user agent cut at 512 characters inside multibyte text),
-- confirmations, erasures, batches of 1 to 4 rows, a new consent text taking effect.
create function pg_temp.scenario(p_old boolean) returns void
language plpgsql volatile
as $$
declare
    v_agents text[] := array[
        'Mozilla/5.0 "quoted" \ back', repeat('ü漢', 300), e'ctl\x01\x02\x7f\n' || u&'\2028', null
    ];
    v_ips text[] := array['203.0.113.7', '2001:db8::1', '::ffff:198.51.100.9', null];
    v_emails text[] := array['Ann.Example@Example.org', 'zoë@exämple.org', 'ann.example@example.org', e'q"\\@x.org'];
    v_subject text;
    v_events text[];
    v_types text[];
    v_granted boolean[];
    v_source text;
    v_agent text;
    v_batch bigint;
begin
    for i in 0 .. 11 loop
        perform set_config('app.frozen_now', (timestamptz '2026-03-01 10:00:00.123456+00' + i * interval '7 minutes 3.000001 seconds')::text, true);
        if i = 6 then
            insert into app.consent_texts (version, body, sha256, valid_from)
            values ('2026-03-test', 'A newer wording.', sha256(convert_to('A newer wording.', 'UTF8')), app_logic.now());
        end if;
        perform set_config('request.headers', jsonb_strip_nulls(jsonb_build_object(
            'x-real-ip', v_ips[1 + i % 4], 'user-agent', v_agents[1 + i % 4] || pg_temp.awkward(i)
        ))::text, true);
        if p_old then
            perform pg_temp.old_record_form_consent(v_emails[1 + i % 4], i % 3 = 0, nullif(i, 5)::bigint * 1000000007, i % 2 = 0);
        else
            perform app_logic.record_form_consent(v_emails[1 + i % 4], i % 3 = 0, nullif(i, 5)::bigint * 1000000007, i % 2 = 0);
        end if;
        v_subject := 'subject ' || pg_temp.awkward(i);
        for n in 1 .. 1 + i % 4 loop
            v_events := array(select (array['consent', 'request', 'erasure'])[1 + (i + k) % 3] from generate_series(1, n) as k);
            v_types := array(select case when e <> 'erasure' then (array['gdpr', 'marketing'])[1 + k % 2] end
                from unnest(v_events) with ordinality as u (e, k));
            v_granted := array(select case when e <> 'erasure' then k % 2 = 0 end from unnest(v_events) with ordinality as u (e, k));
            v_source := 'src ' || pg_temp.awkward(i + n);
            v_agent := v_agents[1 + (i + n) % 4];
            v_batch := case when n % 2 = 0 then 9223372036854775807 end;
            if p_old then
                perform pg_temp.old_append_consents(
                    v_subject, v_events, v_types, v_granted, v_source, pg_temp.awkward(i + 7), v_agent, v_batch
                );
            else
                perform app_logic.append_consents(
                    v_subject, v_events, v_types, v_granted, v_source, pg_temp.awkward(i + 7), v_agent, v_batch
                );
            end if;
        end loop;
        if p_old then
            perform pg_temp.old_append_consents(
                app_logic.person_pseudonym(v_emails[1 + i % 4]), array[(array['consent', 'erasure'])[1 + i % 2]],
                array[case when i % 2 = 0 then 'marketing' end], array[case when i % 2 = 0 then true end],
                'email_confirmation'
            );
        else
            perform app_logic.append_consent(
                app_logic.person_pseudonym(v_emails[1 + i % 4]), (array['consent', 'erasure'])[1 + i % 2],
                case when i % 2 = 0 then 'marketing' end, case when i % 2 = 0 then true end, 'email_confirmation'
            );
        end if;
    end loop;
end
$$;

-- The rows as stored, in id order (ids themselves differ: a sequence does not roll back).
create function pg_temp.audit() returns jsonb
language sql stable
as $$
    select coalesce(jsonb_agg(to_jsonb(a) - 'id' order by a.id), '[]') from app.consent_audit as a
$$;

-- The reference run, undone: its rows leave the block in the error that rolls it back.
create function pg_temp.reference_rows() returns jsonb
language plpgsql volatile
as $$
declare
    v_rows text;
begin
    perform pg_temp.scenario(true);
    raise exception 'reference run done' using detail = pg_temp.audit()::text;
exception when raise_exception then
    get stacked diagnostics v_rows = pg_exception_detail;
    return v_rows::jsonb;
end
$$;
create temporary table reference on commit drop as select pg_temp.reference_rows() as rows;

select pg_temp.scenario(false);

select is(
    (select jsonb_array_length(r.rows) from reference as r), 96,
    'the reference run stored its 96 rows (24 of forms, 60 in batches of 1 to 4, 12 single)'
);
select is(
    pg_temp.audit(), (select r.rows from reference as r),
    'the same appends store the same rows as the recursive append did: every column and hash, in the same order'
);
select is_empty('select * from app_logic.verify_consent_chain()', 'the chains the new append made verify');
select ok(
    (select bool_and(app_logic.consent_chain_is_intact(s.subject)) from (select distinct subject from app.consent_audit) as s),
    'every subject''s chain is intact'
);
select is(
    (
        select count(distinct consent_text_version) from app.consent_audit
        where consent_text_version is not null
    ),
    2::bigint,
    'rows before and after the new text took effect name the text then in force'
);

-- The serialisation alone, over every character up to U+0800 and the awkward values, in each
-- position of the row and with and without a submission id.
select is(
    (
        select count(*)
        from generate_series(1, 2047) as c
        cross join lateral (select chr(c) || pg_temp.awkward(c) || chr(c) as v) as x
        where app_logic.consent_row_hash(
            x.v, c, x.v, x.v, c % 2 = 0, x.v, x.v, x.v, x.v, timestamptz '2026-01-01' + c * interval '1.000001 s',
            convert_to(x.v, 'UTF8'), nullif(c % 3, 0) * c
        ) is distinct from pg_temp.old_consent_row_hash(
            x.v, c, x.v, x.v, c % 2 = 0, x.v, x.v, x.v, x.v, timestamptz '2026-01-01' + c * interval '1.000001 s',
            convert_to(x.v, 'UTF8'), nullif(c % 3, 0) * c
        )
    ),
    0::bigint,
    'consent_row_hash gives the hash the jsonb serialisation gave, for every character and awkward value'
);
-- The edges the one trimmed array relies on: no time (to_char gives null for infinity), no
-- previous hash or an empty one, fields that end in "]", and the extreme ids.
select is(
    (
        select count(*)
        from unnest(array[null, '', ']', ']]', '[]', 'x]', '"]', '\]']) as t (v)
        cross join
            unnest(array[
                null, 'infinity', '-infinity', '4713-01-01 00:00:00+00 BC', '294276-12-31 23:59:59.999999+00', '2026-01-01'
            ]::timestamptz[]) as w (at)
        cross join unnest(array[null, '\x', '\x5d', '\x5d5d', '\x00ff']::bytea[]) as h (prev)
        cross join unnest(array[null, 0, -1, 9223372036854775807, -9223372036854775808]::bigint[]) as i (id)
        where app_logic.consent_row_hash(
            t.v, -2147483648, t.v, t.v, null, t.v, t.v, t.v, t.v, w.at, h.prev, i.id
        ) is distinct from pg_temp.old_consent_row_hash(
            t.v, -2147483648, t.v, t.v, null, t.v, t.v, t.v, t.v, w.at, h.prev, i.id
        )
    ),
    0::bigint,
    'consent_row_hash gives the reference''s hash with no time, no previous hash, fields ending in "]" and extreme ids'
);
-- Structurally: the append reads the time once (the text in force is looked up at that column,
-- not at a second app_logic.now()), and tells an erasure by one comparison, not a list.
select is(
    (
        select count(*)::integer
        from regexp_matches(pg_get_functiondef('app_logic.append_consent_rows'::regproc), 'app_logic\.now\(\)', 'g')
    ),
    1,
    'the append reads the time once'
);
select unalike(
    pg_get_functiondef('app_logic.append_consent_rows'::regproc),
    '%in (''consent'', ''request'')%',
    'the append tells an erasure by one comparison, not by a list of the other events'
);
-- Structurally: one array, not a CASE between an eleven- and a twelve-element one (both of
-- which, with their arguments, were set up again in every transaction).
select is(
    (
        select count(*)::integer
        from regexp_matches(pg_get_functiondef('app_logic.consent_row_hash'::regproc), 'json_build_array\(', 'g')
    ),
    1,
    'the row hash serialises one array'
);
select is(
    app_logic.consent_row_hash(null, null, null, null, null, null, null, null, null, null, null, null),
    pg_temp.old_consent_row_hash(null, null, null, null, null, null, null, null, null, null, null, null),
    'a row of nulls hashes as before'
);

-- What makes it cheap, structurally: a form's two rows are one call of append_consent_rows
-- (no array layer), whose INSERT has no recursive CTE, and the hash is inlined into it (with
-- track_functions = all an SQL function counts a call only when it runs as one, parsed and
-- planned again each time).
create temporary table calls_before on commit drop as
select
    f.funcname::text as name,
    f.calls
from pg_stat_xact_user_functions as f
where f.schemaname = 'app_logic';
select app_logic.record_form_consent('structure@example.org', false, null);
select is(
    (
        select
            jsonb_object_agg(n.name, coalesce((
                select f.calls from pg_stat_xact_user_functions as f
                where f.schemaname = 'app_logic' and f.funcname = n.name
            ), 0) - coalesce((
                select b.calls from calls_before as b
                where b.name = n.name
            ), 0))
        from unnest(array['append_consent_rows', 'append_consents', 'append_consent', 'consent_row_hash']) as n (name)
    ),
    '{"append_consent_rows": 1, "append_consents": 0, "append_consent": 0, "consent_row_hash": 0}'::jsonb,
    'a form''s consents are one call of append_consent_rows, nothing else that appends, the hash inlined'
);
-- The subject's lock, taken by a condition rather than a PERFORM query: held by this
-- transaction once the append returns (tests/test_consent_chain.py shows what it orders).
select ok(
    exists (
        select from pg_locks as l
        cross join (select hashtextextended('consent_audit:' || app_logic.person_pseudonym('structure@example.org'), 0) as k) as h
        where
            l.locktype = 'advisory' and l.pid = pg_backend_pid() and l.objsubid = 1 and l.granted
            and l.classid::bigint = (h.k >> 32) & 4294967295 and l.objid::bigint = h.k & 4294967295
    ),
    'a form''s append holds its subject''s advisory lock until the transaction ends'
);
select unalike(
    pg_get_functiondef('app_logic.append_consent_rows'::regproc),
    '%perform pg_advisory%',
    'the append takes its lock in a condition (a simple expression), not a PERFORM query'
);
-- The verification job recomputes every row's hash: inlined there too (a call per row would
-- parse and plan the function again for each row of the audit).
create temporary table hash_calls_before on commit drop as
select coalesce(sum(f.calls), 0) as calls
from pg_stat_xact_user_functions as f
where f.schemaname = 'app_logic' and f.funcname = 'consent_row_hash';
create temporary table verified on commit drop as
select count(*) as broken from app_logic.verify_consent_chain();
select is(
    (
        select
            (select v.broken from verified as v)
            + coalesce(sum(f.calls), 0) - (select b.calls from hash_calls_before as b)
        from pg_stat_xact_user_functions as f
        where f.schemaname = 'app_logic' and f.funcname = 'consent_row_hash'
    ),
    0::numeric,
    'the verification finds nothing broken and runs the hash inlined, not as a call per row'
);
select lives_ok(
    $$ select app_logic.append_consents('nothing', null, null, null, 'test') $$,
    'null arrays raise nothing, as the recursive append did'
);
select is(
    (
        select count(*) from app.consent_audit
        where subject = 'nothing'
    ), 0::bigint,
    'null arrays append nothing'
);
select unalike(
    pg_get_functiondef('app_logic.append_consent_rows'::regproc),
    '%recursive%',
    'the append''s INSERT is not a recursive CTE'
);

select * from finish();
rollback;
