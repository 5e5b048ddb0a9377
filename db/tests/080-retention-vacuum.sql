-- The tables the retention job empties in bulk are vacuumed at a slower pace than the default
-- (db/schema/730-retention-vacuum-pace.sql): the requests' tables keep PostgreSQL's.
begin;
select plan(2);

select is(
    (
        select array_agg(concat(c.relname, '=', o.option_value) order by c.relname)
        from pg_catalog.pg_class as c cross join lateral pg_catalog.pg_options_to_table(c.reloptions) as o
        where c.relnamespace = 'app'::regnamespace and o.option_name = 'autovacuum_vacuum_cost_delay'
    ),
    array['accessibility_preferences=8', 'brand_engagement=8'],
    'only the tables retention empties in bulk have a slower autovacuum pace'
);
select is(
    (
        select count(*)::integer from pg_catalog.pg_class as c
        where
            c.oid in ('app.leads'::regclass, 'app.consent_audit'::regclass, 'app.rate_limit_counters'::regclass)
            and c.reloptions is not null and c.reloptions::text like '%autovacuum%'
    ),
    0,
    'the submissions'' tables keep the default autovacuum pace'
);

select * from finish();
rollback;
