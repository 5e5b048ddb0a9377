-- The indexes of app.leads (db/schema/130, 580): each one left serves a query of the product,
-- and the ones no query reads are gone, since every submission writes each index it has. The
-- fourth, leads_phone_needed_idx (db/schema/670), is the phone rule: always empty, no
-- submission writes it (020-leads-domains tests the rule).
begin;
select plan(3);

select indexes_are(
    'app', 'leads', array['leads_pkey', 'leads_email_key', 'leads_created_at_idx', 'leads_phone_needed_idx'],
    'app.leads has its key, the address''s unique index, the creation time''s and the phone rule''s, and no index no query reads'
);

-- The dashboard's latest leads (web/public/dashboard: order=createdAt.desc&limit=10) and the
-- operations metric of the last minute (db/functions/350-operations.sql) read by creation time.
set local enable_seqscan = off;
select matches(
    tap.plan_of($$ select l.id from api.leads as l order by l."createdAt" desc limit 10 $$),
    'Index Scan Backward using leads_created_at_idx',
    'the dashboard''s latest leads read leads_created_at_idx'
);
select matches(
    tap.plan_of($$ select count(*) from app.leads as l where l.created_at > app_logic.now() - interval '1 minute' $$),
    'leads_created_at_idx',
    'the last minute''s leads read leads_created_at_idx'
);
reset enable_seqscan;

select * from finish();
rollback;
