-- Double opt-in links: anyone holding a link may open it, with or without a key.

grant usage on type api."*/*" to anon, reader, admin;
grant execute on function api.confirm_consent(jsonb) to anon, reader, admin;
grant execute on function api.withdraw_consent(jsonb) to anon, reader, admin;
grant execute on function api.confirm_consent_page(jsonb) to anon, reader, admin;
grant execute on function api.withdraw_consent_page(jsonb) to anon, reader, admin;
-- Left out on purpose: no grant on app.consent_texts or app.consent_tokens to any API role,
-- and no RLS policy: the SECURITY DEFINER endpoints read them as the owner; texts reach people
-- through the confirmation mail, receipts and the GDPR export.
