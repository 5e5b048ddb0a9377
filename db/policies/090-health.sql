-- Health endpoints are public: no key, no personal data.

grant execute on function api.check_leads_health() to anon, reader, admin;
grant execute on function api.check_accessibility_preferences_health() to anon, reader, admin;
grant execute on function api.check_brand_engagement_health() to anon, reader, admin;
grant execute on function api.check_page_views_health() to anon, reader, admin;
