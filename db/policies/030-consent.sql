-- The consent audit: no API role reads or writes it directly.

-- Left out on purpose: no grant on app.consent_audit to anon, reader or admin, and no RLS
-- policy. Endpoints append through app_logic.append_consent (SECURITY DEFINER); the GDPR
-- export reads it the same way. The append-only triggers bind the owner too.
select 1 as consent_audit_has_no_api_grants;

-- The current consent text's version is public: every form shows it next to its checkboxes.
grant execute on function api.current_consent_text() to anon, reader, admin;
