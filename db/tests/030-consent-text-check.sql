-- The text an audit row names is one of app.consent_texts. Since session 10 (db/schema/770) the
-- domain app.consent_text_version checks it, its list compiled from the table, instead of the
-- foreign key consent_audit_text_fkey: every refusal the key gave is given still, with the key's
-- SQLSTATE, message and detail (the texts below are PostgreSQL's own for that key), and no RI
-- query runs for a row appended. app.consent_tokens keeps its key to the texts: db/schema/651
-- analyzed the table, so that key's check reads the table's one page instead of its index.
begin;
select plan(17);

select ok(
    (
        select c.reltuples >= 0
        from pg_class as c
        where c.oid = 'app.consent_texts'::regclass
    ),
    'app.consent_texts has statistics'
);

-- A key's check, prepared as the trigger prepares it (its text, as ri_triggers.c writes it), in
-- the plan every later call keeps (a generic plan: the version is a parameter).
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
    'a foreign key''s check (consent_tokens'') locks the text it finds by a scan of the table''s page, not through its index'
);

-- Every field of an error, to hold a refusal to the key's: SQLSTATE, message, detail, and the
-- schema, table and constraint a client (PostgREST, psycopg) reads.
create function pg_temp.refusal(p_sql text) returns text[]
language plpgsql volatile
as $$
declare
    v_state text;
    v_message text;
    v_detail text;
    v_schema text;
    v_table text;
    v_constraint text;
begin
    execute p_sql;
    return null;
exception when others then
    get stacked diagnostics
        v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail,
        v_schema = schema_name, v_table = table_name, v_constraint = constraint_name;
    return array[v_state, v_message, v_detail, v_schema, v_table, v_constraint];
end
$$;

create function pg_temp.audit_row(p_seq integer, p_version text) returns text
language sql immutable
as $$
    select format(
        'insert into app.consent_audit (subject, seq, event, consent_type, granted, source, consent_text_version, row_hash) '
        'values (''text-check'', %s, ''consent'', ''gdpr'', true, ''test'', %L, ''\x00'')',
        p_seq, p_version
    )
$$;

select is(
    pg_temp.refusal(pg_temp.audit_row(1, '1999-01')),
    array[
        '23503', 'insert or update on table "consent_audit" violates foreign key constraint "consent_audit_text_fkey"',
        'Key (consent_text_version)=(1999-01) is not present in table "consent_texts".', 'app', 'consent_audit',
        'consent_audit_text_fkey'
    ],
    'a row naming a text that does not exist is refused as the foreign key refused it'
);

select lives_ok(pg_temp.audit_row(1, '2026-01'), 'a row naming the text in force is stored');
select lives_ok(
    $$ insert into app.consent_audit (subject, seq, event, source, row_hash)
       values ('text-check', 2, 'erasure', 'test', '\x00') $$,
    'a row naming no text (an erasure) is stored'
);

-- What makes it cheap: no foreign key on the audit, so no RI trigger and no query per row; the
-- column is the domain (fails on the code before session 10, which had the key).
select is(
    (
        select array_agg(c.conname::text)
        from pg_constraint as c
        where c.conrelid = 'app.consent_audit'::regclass and c.contype = 'f'
    ),
    null,
    'the audit has no foreign key'
);
select is(
    (
        select count(*)::integer
        from pg_trigger as t
        where t.tgrelid = 'app.consent_audit'::regclass and t.tgisinternal
    ),
    0,
    'so no RI trigger runs for a row appended'
);
select is(
    format_type(
        (
            select a.atttypid
            from pg_attribute as a
            where a.attrelid = 'app.consent_audit'::regclass and a.attname = 'consent_text_version'
        ),
        null
    ),
    'app.consent_text_version',
    'the text version is the domain that checks it'
);

-- A text inserted is named at once, in the same transaction (the compile changes the check).
insert into app.consent_texts (version, body, sha256, valid_from)
values
('2000-01', 'Old.', sha256(convert_to('Old.', 'UTF8')), '2000-01-01T00:00:00Z'),
('2000-02', 'Unused.', sha256(convert_to('Unused.', 'UTF8')), '2000-02-01T00:00:00Z');
select lives_ok(pg_temp.audit_row(3, '2000-01'), 'a row naming a text inserted in this transaction is stored');

-- The key's other half: a text a row names stays, and keeps its version.
select is(
    pg_temp.refusal($$ delete from app.consent_texts where version = '2000-01' $$),
    array[
        '23503',
        'update or delete on table "consent_texts" violates foreign key constraint "consent_audit_text_fkey" '
        'on table "consent_audit"',
        'Key (version)=(2000-01) is still referenced from table "consent_audit".', 'app', 'consent_audit',
        'consent_audit_text_fkey'
    ],
    'a text a row names cannot be deleted, refused as the foreign key refused it'
);
select is(
    pg_temp.refusal($$ update app.consent_texts set version = '2000-01b' where version = '2000-01' $$),
    array[
        '23503',
        'update or delete on table "consent_texts" violates foreign key constraint "consent_audit_text_fkey" '
        'on table "consent_audit"',
        'Key (version)=(2000-01) is still referenced from table "consent_audit".', 'app', 'consent_audit',
        'consent_audit_text_fkey'
    ],
    'nor given another version'
);
select lives_ok(
    $$ update app.consent_texts set version = version, language = 'en' where version = '2000-01' $$,
    'a named text''s other columns may change, as the key allowed (its version set to itself included)'
);

-- A text no row names can go; from then on no row may name it.
select lives_ok($$ delete from app.consent_texts where version = '2000-02' $$, 'a text no row names can be deleted');
select is(
    (pg_temp.refusal(pg_temp.audit_row(4, '2000-02')))[1:3],
    array[
        '23503', 'insert or update on table "consent_audit" violates foreign key constraint "consent_audit_text_fkey"',
        'Key (consent_text_version)=(2000-02) is not present in table "consent_texts".'
    ],
    'and a row naming the deleted text is refused'
);

-- TRUNCATE: without CASCADE another key (consent_tokens') refuses it; with CASCADE it reached the
-- audit, whose guard refused it, and still does.
select throws_ok(
    'truncate app.consent_texts cascade', 'CHA01', 'the consent audit is append-only: TRUNCATE is refused',
    'truncating the texts with CASCADE is refused as the audit''s guard refused it'
);
select throws_ok(
    'truncate app.consent_texts', '0A000', 'cannot truncate a table referenced in a foreign key constraint',
    'truncating the texts alone is refused by a foreign key'
);
select is(
    (
        select count(*)::integer
        from app.consent_texts
        where version in ('2026-01', '2000-01')
    ),
    2,
    'the texts are all there'
);

select * from finish();
rollback;
