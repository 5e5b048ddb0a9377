-- The brand audit log: admin keys read it; nobody writes it but the trigger.

grant select on api.brand_audit to admin;
grant select on app.brand_audit to admin;
-- Left out on purpose: reader and anon (the log shows who changed what, and old values);
-- no INSERT, UPDATE or DELETE for any API role.
create policy brand_audit_select_admin on app.brand_audit
for select to admin
using (true);
comment on policy brand_audit_select_admin on app.brand_audit is 'An admin key reads the whole brand audit log.';

-- The brand data audited, one line each (issue 14). New brand tables add their line here or
-- in their own db/policies file.
-- sealed: the encrypted profile (db/functions/045-field-encryption.sql) is named as changed, never
-- recorded, or the log would keep what encryption hides, under keys a rotation retires.
select app_logic.attach_brand_audit('app.accessibility_preferences', array['sealed']);
select app_logic.attach_brand_audit('app.brand_engagement', array['sealed']);
select app_logic.attach_brand_audit('app.retention_rules');
select app_logic.attach_brand_audit('app.rate_limit_rules');
select app_logic.attach_brand_audit('app.api_keys', array['key_hash']);
select app_logic.attach_brand_audit('app.settings');
select app_logic.attach_brand_audit('app.consent_texts');
