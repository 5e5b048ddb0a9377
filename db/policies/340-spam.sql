-- Spam protection: anyone may fetch a form token or a challenge.

grant execute on function api.issue_form_token(jsonb) to anon, reader, admin;
grant execute on function api.issue_challenge(jsonb) to anon, reader, admin;
-- Left out on purpose: no grant on app.spam_rules, app.used_challenges or the helpers to any API
-- role; the endpoints are SECURITY DEFINER.
select app_logic.attach_brand_audit('app.spam_rules');
