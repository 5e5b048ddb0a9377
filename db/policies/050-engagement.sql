-- Accessibility preferences and brand engagement: who may call what, who may read what.
--
-- Writes go only through the SECURITY DEFINER endpoints: no role is granted INSERT, UPDATE or
-- DELETE on the tables, on purpose. reader and admin read them only through the analytics
-- views (db/functions/070-analytics.sql), so they get SELECT on the columns those views use
-- and nothing that identifies a session's lead.

grant execute on function api.save_accessibility_preferences(jsonb) to anon, reader, admin;
grant execute on function api.record_brand_engagement(jsonb) to anon, reader, admin;

grant select (accessibility_theme, session_duration, created_at) on app.accessibility_preferences to reader, admin;
create policy accessibility_preferences_analytics_read on app.accessibility_preferences
for select to reader, admin
using (true);

-- session_id: the design analytics count each session once. lead_id is left out on purpose.
grant select (
    session_id, scroll_depth_percentage, cta_clicks, core_web_vitals, created_at
) on app.brand_engagement to reader, admin;
create policy brand_engagement_analytics_read on app.brand_engagement
for select to reader, admin
using (true);
