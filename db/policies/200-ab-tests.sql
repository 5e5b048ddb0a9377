-- A/B tests: admins define and stop them, anyone is assigned and converts, reader and admin
-- keys see the results. Writes go only through the SECURITY DEFINER endpoints: no role gets a
-- table privilege, on purpose; the results view reads counts through
-- app_logic.ab_test_counts(), so no API role ever reads a session id of these tables.

grant execute on function api.create_ab_test(jsonb) to admin;
grant execute on function api.stop_ab_test(jsonb) to admin;
grant execute on function api.assign_ab_test(jsonb) to anon, reader, admin;
grant execute on function api.record_ab_test_conversion(jsonb) to anon, reader, admin;

grant select on api.ab_test_results to reader, admin;
grant execute on function app_logic.ab_test_counts() to reader, admin;
grant execute on function app_logic.two_proportion_p_value(bigint, bigint, bigint, bigint) to reader, admin;
grant execute on function app_logic.normal_upper_tail(double precision) to reader, admin;
grant execute on function api.check_ab_tests_health() to anon, reader, admin;
grant execute on function api.check_ab_tests_stop_health() to anon, reader, admin;
grant execute on function api.check_ab_test_conversions_health() to anon, reader, admin;
