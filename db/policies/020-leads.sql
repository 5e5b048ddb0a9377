-- Leads: who may call what.

grant execute on function api.check_leads_health() to anon, reader, admin;
