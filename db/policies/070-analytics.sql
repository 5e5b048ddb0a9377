-- Brand analytics: the views are for reader and admin keys; anon gets nothing (401). The
-- tables they read are opened column by column in 050-engagement.

grant select on api.brand_performance, api.accessibility_usage, api.design_effectiveness to reader, admin;
-- The views' time windows end at app_logic.now(), evaluated with the caller's rights.
grant execute on function app_logic.now() to reader, admin;
