-- The consent audit's foreign key to app.consent_texts: db/schema/651 analyzed the table, so the
-- check PostgreSQL runs for every row appended (the query below, as ri_triggers.c writes it)
-- reads the table's one page instead of opening its primary key; it refuses what it did.
begin;
select plan(4);

select ok(
    (
        select c.reltuples >= 0
        from pg_class as c
        where c.oid = 'app.consent_texts'::regclass
    ),
    'app.consent_texts has statistics'
);

-- The foreign key's check, prepared as the trigger prepares it (its text, as ri_triggers.c
-- writes it), in the plan every later call keeps (a generic plan: the version is a parameter).
create function pg_temp.plan_nodes() returns text[]
language plpgsql volatile
as $$
declare
    v_plan jsonb;
begin
    set local plan_cache_mode = force_generic_plan;
    execute 'prepare text_check (text) as select 1 from only "app"."consent_texts" x '
        'where "version" operator(pg_catalog.=) $1 for key share of x';
    execute 'explain (format json) execute text_check(''2026-01'')' into v_plan;
    deallocate text_check;
    return array[v_plan #>> '{0,Plan,Node Type}', v_plan #>> '{0,Plan,Plans,0,Node Type}'];
end
$$;

select is(
    pg_temp.plan_nodes(),
    array['LockRows', 'Seq Scan'],
    'the foreign key''s check locks the text it finds by a scan of the table''s page, not through its index'
);

select throws_ok(
    $$ insert into app.consent_audit (subject, seq, event, consent_type, granted, source, consent_text_version, row_hash)
       values ('text-check', 1, 'consent', 'gdpr', true, 'test', '1999-01', '\x00') $$,
    '23503',
    'insert or update on table "consent_audit" violates foreign key constraint "consent_audit_text_fkey"',
    'a row naming a text that does not exist is refused by the foreign key'
);

select lives_ok(
    $$ insert into app.consent_audit (subject, seq, event, consent_type, granted, source, consent_text_version, row_hash)
       values ('text-check', 1, 'consent', 'gdpr', true, 'test', '2026-01', '\x00') $$,
    'a row naming the text in force is stored'
);

select * from finish();
rollback;
