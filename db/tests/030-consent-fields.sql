-- The consent audit's two-column rule (consent_audit_consent_fields): a consent or a request
-- names its consent type and says granted; an erasure need not. db/schema/650 wrote it in a
-- shorter form ("or an erasure" for "or neither a consent nor a request", which the event
-- domain makes the same), and db/schema/800 made it the always empty index
-- consent_audit_consent_fields_idx, whose key's domain refuses the rows it covers (a table CHECK
-- is parsed again from its node string for every INSERT, an index's predicate is kept parsed);
-- here it is held against the rule as db/schema/100 and 440 stored it on every combination of
-- event, consent type and granted, inserted and updated directly as the owner.
begin;
select plan(11);

-- The SQLSTATE and constraint of a direct insert of one row (or, with p_update, of the update of
-- the stored row of subject 'fields-<p_n>' to these values), or 'stored'.
create function pg_temp.outcome(
    p_n integer, p_event text, p_consent_type text, p_granted boolean, p_update boolean default false
) returns text
language plpgsql volatile
as $$
declare
    v_constraint text;
begin
    if p_update then
        update app.consent_audit set event = p_event, consent_type = p_consent_type, granted = p_granted
        where subject = 'fields-' || p_n;
    else
        insert into app.consent_audit (subject, seq, event, consent_type, granted, source, row_hash)
        values ('fields-' || p_n, 1, p_event, p_consent_type, p_granted, 'test', '\x00');
    end if;
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
    '23514', 'value for domain app.consent_fields_given violates check constraint "consent_audit_consent_fields"',
    'a request without granted is refused, naming consent_audit_consent_fields'
);
select throws_ok(
    $$ insert into app.consent_audit (subject, seq, event, consent_type, source, row_hash)
       values ('fields-conflict', 1, 'consent', 'gdpr', 'test', '\x00') on conflict do nothing $$,
    '23514', null,
    'a consent without granted is refused by an INSERT ... ON CONFLICT DO NOTHING'
);

-- An UPDATE (the audit's guard refuses every one; here it is set aside, to show that the rule
-- holds for a changed row as well: a change of event, consent type or granted is not a HOT
-- update, so the index is maintained).
alter table app.consent_audit disable trigger consent_audit_append_only;
select is(
    (
        select jsonb_agg(jsonb_build_array(s.n, c.event, c.consent_type, c.granted) order by s.n, c.n)
        from combinations as s
        cross join combinations as c
        where
            s.old_rule
            and pg_temp.outcome(s.n, c.event, c.consent_type, c.granted, p_update => true)
            is distinct from (case when c.old_rule then 'stored' else '23514 consent_audit_consent_fields' end)
    ),
    null,
    'every stored row updated to every combination is refused exactly where the rule refuses, by consent_audit_consent_fields'
);
alter table app.consent_audit enable trigger consent_audit_append_only;

-- The form db/schema/800 gave it: no table CHECK (read from its node string, simplified and
-- compiled for every INSERT), an index covering exactly the refused rows instead.
select is(
    (
        select array_agg(c.conname order by c.conname) from pg_constraint as c
        where c.conrelid = 'app.consent_audit'::regclass and c.contype = 'c'
    ),
    null,
    'the audit has no table check to parse for every INSERT'
);
select is(
    (
        select pg_get_expr(i.indpred, i.indrelid) from pg_index as i
        where i.indexrelid = 'app.consent_audit_consent_fields_idx'::regclass
    ),
    '(((consent_type IS NULL) OR (granted IS NULL)) AND ((event)::text <> ''erasure''::text))',
    'consent_audit_consent_fields_idx covers exactly the consents and requests without a consent type or granted'
);
select is(
    (
        select pg_get_indexdef(i.indexrelid, 1, true) from pg_index as i
        where i.indexrelid = 'app.consent_audit_consent_fields_idx'::regclass
    ),
    '(false::app.consent_fields_given)',
    'its key is the constant false, cast to the domain that refuses it'
);
select is(
    (
        select count(*)::integer from app.consent_audit as a
        where a.event <> 'erasure' and (a.consent_type is null or a.granted is null)
    ),
    0,
    'after every insert and update above, no row the index covers is stored'
);

select * from finish();
rollback;
