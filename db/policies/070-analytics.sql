-- Brand analytics: the views are for reader and admin keys; anon gets nothing (401). The
-- tables they read are opened column by column in 050-engagement.

grant select on api.brand_performance, api.accessibility_usage, api.design_effectiveness to reader, admin;
-- The views' time windows end at app_logic.now(), evaluated with the caller's rights.
grant execute on function app_logic.now() to reader, admin;

-- The dashboard's counts (issue 17). Leads are readable by reader and admin already
-- (020-leads), page views in 060-page-views.
grant select on api.leads_per_day, api.leads_per_source, api.page_views_per_day to reader, admin;
grant execute on function app_logic.analytics_days() to reader, admin;
