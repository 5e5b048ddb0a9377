-- The consent text in force, compiled (app_logic.consent_text_at, from app.consent_texts by the
-- trigger consent_texts_compile) against the query it replaced, on awkward times (the edges of
-- each text, a microsecond either side, infinity, null, the ends of the calendar) and awkward
-- texts (a microsecond valid_from, a far future, before Christ, infinity), inserted and deleted
-- under another DateStyle and time zone; inlined into its callers (no function call, no table
-- read left in the audit's INSERT); a plan a connection keeps follows a new text.
begin;
select plan(10);

-- What the audit's INSERT read before: the newest text whose valid_from has passed.
create function pg_temp.text_by_table(p_at timestamptz) returns text
language sql stable
as $$
    select t.version from app.consent_texts as t
    where t.valid_from <= p_at
    order by t.valid_from desc limit 1
$$;

-- Every time worth asking about: fixed awkward ones, and each text's valid_from and a
-- microsecond either side (so every edge of the CASE is crossed).
create function pg_temp.mismatches() returns table (at timestamptz, compiled text, by_table text)
language sql stable
as $$
    select q.at, app_logic.consent_text_at(q.at), pg_temp.text_by_table(q.at)
    from (
        select unnest(array[
            '-infinity', 'infinity', null, '4713-01-01 00:00:00+00 BC', '294276-12-31 23:59:59.999999+00',
            '1970-01-01 00:00:00+00', '2025-12-31 23:59:59.999999+00', '2026-01-01 00:00:00+00',
            '2026-01-01 00:00:00.000001+00', '2026-06-30 12:00:00+14', '2026-06-30 12:00:00-12', now()
        ]::timestamptz[]) as at
        union all
        select t.valid_from + d.shift
        from app.consent_texts as t
        cross join unnest(array['-1 microsecond', '0', '1 microsecond']::interval[]) as d (shift)
        where t.valid_from not in ('infinity', '-infinity')
    ) as q
    where app_logic.consent_text_at(q.at) is distinct from pg_temp.text_by_table(q.at)
$$;

select is_empty('select * from pg_temp.mismatches()', 'the compiled text in force answers what the texts'' table answers');

-- New texts, inserted under a DateStyle and a zone that read and print times differently: the
-- compile pins its own, so the times it writes come back exact.
set local datestyle = 'SQL, DMY';
set local timezone = 'Asia/Kathmandu';
insert into app.consent_texts (version, body, sha256, valid_from)
select
    v.version,
    v.body,
    sha256(convert_to(v.body, 'UTF8')) as sha256,
    v.valid_from::timestamptz
from (
    values
    ('2026-07', 'July.', '2026-07-01 08:15:30.123457+05:45'),
    ('2026-07a', 'A microsecond later.', '2026-07-01 02:30:30.123458+00'),
    ('far-future', 'Later.', '9999-12-31 23:59:59.999999+00'),
    ('bc', 'Long ago.', '0044-03-15 12:00:00+00 BC'),
    ('never', 'Not before the end of time.', 'infinity')
) as v (version, body, valid_from);
-- Read back under yet another DateStyle: what the compile wrote must not depend on either.
set local datestyle = 'SQL, MDY';
set local timezone = 'America/St_Johns';
select is_empty(
    'select * from pg_temp.mismatches()',
    'after texts inserted under another DateStyle and time zone, the compiled answer is the table''s, in the same transaction'
);
select is(
    app_logic.consent_text_at('2026-07-01 02:30:30.123457+00'), '2026-07',
    'a text is in force from its valid_from to the microsecond'
);
select is(
    app_logic.consent_text_at('2026-07-01 02:30:30.123458+00'), '2026-07a',
    'the next text takes over a microsecond later'
);
reset datestyle;
reset timezone;

delete from app.consent_texts
where version in ('2026-07a', 'never');
select is_empty('select * from pg_temp.mismatches()', 'after a delete, the compiled answer is the table''s');

-- Inlined: the call becomes its CASE over the caller's argument (app_logic.now() as the audit
-- passes it, used once per text), and the audit's INSERT no longer reads the texts' table.
create temporary table plan_text (line text) on commit drop;
do $$
declare
    v_line text;
begin
    for v_line in execute 'explain (verbose, costs off) select app_logic.consent_text_at(app_logic.now())' loop
        insert into plan_text values (v_line);
    end loop;
end
$$;
select ok(
    (select bool_and(p.line !~ 'consent_text' and p.line !~ 'app_logic\.now') from plan_text as p)
    and (select bool_or(p.line ~ 'CASE WHEN') from plan_text as p),
    'app_logic.consent_text_at is inlined with app_logic.now() as its argument: a CASE, no function call'
);
select ok(
    (
        select bool_and(p.prosrc !~ 'consent_texts' and p.prosrc ~ 'app_logic\.consent_text_at\(')
        from pg_proc as p
        where p.oid in ('app_logic.append_consent_rows'::regproc, 'api.current_consent_text'::regproc)
    ),
    'the audit''s INSERT and GET /api/consent-text take the text in force from the compiled function, not the table'
);
select is(
    (app_logic.current_consent_text()).version, pg_temp.text_by_table(app_logic.now()),
    'app_logic.current_consent_text is the row of the compiled version'
);

-- A kept plan (PostgREST prepares its statements, PL/pgSQL keeps its own) follows a new text.
create function pg_temp.kept_lookup() returns text
language plpgsql stable
as $$
begin
    return app_logic.consent_text_at('2030-01-01 00:00:00+00');
end
$$;
select is(pg_temp.kept_lookup(), '2026-07', 'a function''s kept plan answers the text in force');
insert into app.consent_texts (version, body, sha256, valid_from)
values ('2029', 'Newer.', sha256(convert_to('Newer.', 'UTF8')), '2029-01-01 00:00:00+00');
select is(pg_temp.kept_lookup(), '2029', 'the same kept plan answers the new text once it is inserted');

select * from finish();
rollback;
