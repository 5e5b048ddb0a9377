-- Health endpoints are public: no key, no personal data.

grant execute on function api.check_leads_health() to anon, reader, admin;
