-- The OpenAPI document (GET /api/) is public: every role may build it.

grant execute on function api.openapi() to anon, reader, admin;
-- The app_logic.openapi_* helpers and app_logic.public_routes() are granted to nobody on
-- purpose: only api.openapi() (SECURITY DEFINER) calls them.
