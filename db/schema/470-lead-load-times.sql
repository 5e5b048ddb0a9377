-- app.leads' load_time_lcp and load_time_fid become plain columns that the submission (POST
-- /api/leads) fills from the same coreWebVitals it stores (issue 13). As stored generated columns
-- their expressions were read from the catalog and compiled again for every INSERT statement
-- (about 4 us of a lead's INSERT, against 1 us for the INSERT computing them). The submission is
-- the only writer of core_web_vitals and nothing updates it, so the two still cannot disagree
-- (pgTAP: db/tests/020-leads-domains.sql). db/schema/471 needs this first: a column read by a
-- generated column cannot change its type.
--
-- Squawk's warning is about writers that rely on the expression: only the submission inserts
-- leads, and it now writes both values; DROP EXPRESSION keeps every stored value and rewrites
-- nothing.
-- squawk-ignore-file ban-drop-generated-expression

alter table app.leads
alter column load_time_lcp drop expression,
alter column load_time_fid drop expression;
comment on column app.leads.load_time_lcp is
'Largest Contentful Paint of core_web_vitals (lcp), ms; written with it by the submission.';
comment on column app.leads.load_time_fid is
'First Input Delay of core_web_vitals (fid), ms; written with it by the submission.';
