-- Logo heatmaps: anyone posts points, reader and admin keys read the grid and the picture.
-- No role gets a table privilege, on purpose: the grid is computed by a SECURITY DEFINER
-- function that returns counts only, never a session id.

grant execute on function api.record_logo_heatmap(jsonb) to anon, reader, admin;
grant execute on function api.logo_heatmap(jsonb) to reader, admin;
grant execute on function api.logo_heatmap_svg(jsonb) to reader, admin;
grant usage on domain api."image/svg+xml" to anon, reader, admin;  -- noqa: RF05
grant execute on function api.check_logo_heatmaps_health() to anon, reader, admin;
