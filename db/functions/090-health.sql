-- Health endpoints: 200 {"status":"ok"} when the database and the endpoint's objects are usable.

create function api.check_leads_health() returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    -- Touches the objects the endpoint needs without reading any row's content.
    select jsonb_build_object('status', 'ok', 'endpoint', 'leads')
    from (select 1 from app.leads limit 0) as probe
    right join (select 1) as one on true
$$;
comment on function api.check_leads_health() is
'GET /api/leads/health: 200 {"status":"ok"} when the database and the leads objects are usable.';
