-- Data protection endpoints: admin keys only.
--
-- anon and reader are left out on purpose: export returns personal data and erasure destroys
-- it. PostgREST answers 401 (no key) or 403 (reader key) from the missing EXECUTE privilege.
-- The app_logic functions behind them (verification, export, erasure, consent, retention)
-- are granted to no API role: the SECURITY DEFINER endpoints and the operator (invoke gdpr.*)
-- call them as the owner.

grant execute on function api.export_personal_data(jsonb) to admin;
grant execute on function api.erase_personal_data(jsonb) to admin;
grant execute on function api.record_consent(jsonb) to admin;
