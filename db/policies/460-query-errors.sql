-- nginx's error path of the lists: every role may ask why its list query was refused (the
-- function checks the list's own key first).

grant execute on function api.explain_query_error(jsonb) to anon, reader, admin;
