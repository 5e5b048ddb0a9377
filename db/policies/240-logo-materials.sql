-- Logo materials: anyone reads them, admin keys edit them. No role gets a table privilege, on
-- purpose: both go through SECURITY DEFINER functions.

grant execute on function api.logo_materials(jsonb) to anon, reader, admin;
grant execute on function api.update_logo_material(jsonb) to admin;
grant execute on function api.check_logo_materials_health() to anon, reader, admin;
