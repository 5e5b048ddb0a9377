-- app.leads loses two indexes that no query uses and every submission wrote (README: Benchmarks).
-- squawk-ignore require-concurrent-index-deletion
drop index app.leads_accessibility_theme_idx;
-- squawk-ignore require-concurrent-index-deletion
drop index app.leads_lead_source_idx;
