-- Brand analytics: the views are for reader and admin keys; anon gets nothing (401). The
-- tables they read are opened column by column in 050-engagement.

grant select on api.brand_performance, api.accessibility_usage, api.design_effectiveness to reader, admin;
-- The views' time windows end at app_logic.now(), evaluated with the caller's rights.
grant execute on function app_logic.now() to reader, admin;

-- The dashboard's counts (issue 17). Leads are readable by reader and admin already
-- (020-leads), page views in 060-page-views.
grant select on api.leads_per_day, api.leads_per_source, api.page_views_per_day to reader, admin;
grant execute on function app_logic.analytics_days() to reader, admin;

-- The day rollups of the analytics over sealed fields (db/functions/070-analytics.sql): the
-- functions that decrypt belong to chorus_keyholder, as the bulk readers of
-- 045-field-encryption do; reader and admin reach the rollups only through the two totals.
alter function app_logic.preference_theme_totals(timestamptz, timestamptz) owner to chorus_keyholder;
alter function app_logic.engagement_session_totals(timestamptz, timestamptz) owner to chorus_keyholder;
alter function app_logic.roll_up_preference_day(date) owner to chorus_keyholder;
alter function app_logic.roll_up_engagement_day(date) owner to chorus_keyholder;
grant execute on function app_logic.preference_theme_totals(timestamptz, timestamptz),
app_logic.engagement_session_totals(timestamptz, timestamptz) to reader, admin, current_user;
grant execute on function app_logic.roll_up_preference_day(date), app_logic.roll_up_engagement_day(date) to current_user;
grant execute on function app_logic.day_inside(date, timestamptz, timestamptz) to chorus_keyholder;
grant select, insert on app.preference_theme_days, app.engagement_days to chorus_keyholder;
create policy preference_theme_days_keyholder on app.preference_theme_days
for all to chorus_keyholder using (true) with check (true);
create policy engagement_days_keyholder on app.engagement_days
for all to chorus_keyholder using (true) with check (true);

select app_logic.declare_job(
    'chorus_website:analytics-rollups', '41 * * * *', 'call app_logic.refresh_analytics_rollups()'
);
