-- The consent audit's two-column rule (consent_audit_consent_fields): a consent or a request
-- names its consent type and says granted; an erasure need not. db/schema/650 wrote it in a
-- shorter form ("or an erasure" for "or neither a consent nor a request", which the event
-- domain makes the same); here it is held against the rule it replaced on every combination of
-- event, consent type and granted, inserted directly as the owner.
begin;
select plan(6);

-- The SQLSTATE and constraint of a direct insert of one row, or 'stored'.
create function pg_temp.outcome(p_n integer, p_event text, p_consent_type text, p_granted boolean) returns text
language plpgsql volatile
as $$
declare
    v_constraint text;
begin
    insert into app.consent_audit (subject, seq, event, consent_type, granted, source, row_hash)
    values ('fields-' || p_n, 1, p_event, p_consent_type, p_granted, 'test', '\x00');
    return 'stored';
exception when others then
    get stacked diagnostics v_constraint = constraint_name;
    return sqlstate || ' ' || v_constraint;
end
$$;

create temporary table combinations as
select
    row_number() over ()::integer as n,
    e.event,
    t.consent_type,
    g.granted,
    -- The rule as db/schema/100 and 440 stored it.
    (e.event not in ('consent', 'request') or (t.consent_type is not null and g.granted is not null)) as old_rule
from (values ('consent'), ('request'), ('erasure')) as e (event)
cross join (values (null), ('gdpr'), ('marketing')) as t (consent_type)
cross join (values (null::boolean), (true), (false)) as g (granted);

select is(
    (select count(*)::integer from combinations),
    27,
    'every event, consent type (or none) and granted (or none)'
);

select is(
    (
        select jsonb_agg(jsonb_build_array(c.event, c.consent_type, c.granted) order by c.n)
        from combinations as c
        where (pg_temp.outcome(c.n, c.event, c.consent_type, c.granted) = 'stored') is distinct from c.old_rule
    ),
    null,
    'the rule stores exactly the rows the rule it replaced stored'
);

select is(
    (
        select count(*)::integer from app.consent_audit as a
        where a.subject like 'fields-%'
    ),
    (
        select count(*)::integer from combinations as c
        where c.old_rule
    ),
    'and the stored rows are there (17 of 27: 4 with both fields for each of consent and request, 9 erasures)'
);

select is(
    (
        select array_agg(distinct pg_temp.outcome(100 + c.n, c.event, c.consent_type, c.granted))
        from combinations as c
        where not c.old_rule
    ),
    array['23514 consent_audit_consent_fields'],
    'every refused row is refused by consent_audit_consent_fields (SQLSTATE 23514)'
);

select throws_ok(
    $$ insert into app.consent_audit (subject, seq, event, consent_type, source, row_hash)
       values ('fields-request', 1, 'request', 'marketing', 'test', '\x00') $$,
    '23514', 'new row for relation "consent_audit" violates check constraint "consent_audit_consent_fields"',
    'a request without granted is refused with the constraint''s message'
);

-- The form db/schema/650 gave it: no array of events, which PostgreSQL would fold again for
-- every INSERT (the rule is read from its node string per statement).
select ok(
    (
        select pg_get_constraintdef(c.oid) !~* 'array|any|all'
        from pg_constraint as c
        where c.conrelid = 'app.consent_audit'::regclass and c.conname = 'consent_audit_consent_fields'
    ),
    'the rule compares the event with one constant, not with an array'
);

select * from finish();
rollback;
