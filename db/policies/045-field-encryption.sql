-- Field-level encryption: chorus_keyholder owns the functions that read the key file, and is
-- the one role that may read server files. No web role (anon, reader, admin, authenticator)
-- may call app_logic.field_keys(), seal, unseal or read the file; reader and admin may call the
-- two bulk readers of the analytics views, which return what those views read before
-- encryption and never a key.

-- A block so that a restore (chorus_db/backup.py) runs this same statement.
do $membership$
begin
    grant pg_read_server_files to chorus_keyholder;
end
$membership$;
grant execute on function pg_catalog.pg_read_file(text, bigint, bigint, boolean) to chorus_keyholder;
grant usage on schema app, app_logic, extensions to chorus_keyholder;

alter function app_logic.field_keys() owner to chorus_keyholder;
-- The key file's path as the server configuration gives it to this build's session, pinned on
-- the one function that reads it (a session's own SET is then not what it reads). Empty when
-- the server names none: the function then says how to configure it. A new path needs
-- `invoke db.build --force`.
do $pin$
begin
    execute format(
        'alter function app_logic.field_keys() set chorus.field_key_file = %L',
        coalesce(current_setting('chorus.field_key_file', true), '')
    );
end
$pin$;
alter function app_logic.field_key_current(jsonb) owner to chorus_keyholder;
alter function app_logic.open_sealed(bytea, integer, jsonb) owner to chorus_keyholder;
alter function app_logic.opened_theme(bytea, integer, text, jsonb) owner to chorus_keyholder;
alter function app_logic.opened_cta_count(bytea, integer, jsonb, jsonb) owner to chorus_keyholder;
alter function app_logic.seal(jsonb) owner to chorus_keyholder;
alter function app_logic.unseal(bytea, integer) owner to chorus_keyholder;
alter function app_logic.opened_preference_themes(timestamptz, timestamptz) owner to chorus_keyholder;
alter function app_logic.opened_engagement_counts(timestamptz, timestamptz) owner to chorus_keyholder;
alter function app_logic.exposed_session_themes() owner to chorus_keyholder;
alter function app_logic.reseal_batch(text, integer) owner to chorus_keyholder;
alter function app_logic.field_key_status() owner to chorus_keyholder;

-- The build's role (the owner of every other function) calls these from the endpoints, the
-- triggers, the export and the A/B results.
grant execute on function app_logic.seal(jsonb), app_logic.unseal(bytea, integer),
app_logic.exposed_session_themes(), app_logic.reseal_batch(text, integer), app_logic.field_key_status(),
app_logic.opened_preference_themes(timestamptz, timestamptz), app_logic.opened_engagement_counts(timestamptz, timestamptz)
to current_user;
-- The analytics views run with the caller's rights (security_invoker).
grant execute on function app_logic.opened_preference_themes(timestamptz, timestamptz),
app_logic.opened_engagement_counts(timestamptz, timestamptz) to reader, admin;

grant select on app.accessibility_preferences, app.brand_engagement, app.ab_test_exposures to chorus_keyholder;
grant update (sealed, key_version) on app.accessibility_preferences, app.brand_engagement to chorus_keyholder;
create policy accessibility_preferences_keyholder on app.accessibility_preferences
for all to chorus_keyholder using (true) with check (true);
create policy brand_engagement_keyholder on app.brand_engagement
for all to chorus_keyholder using (true) with check (true);
create policy ab_test_exposures_keyholder on app.ab_test_exposures
for select to chorus_keyholder using (true);
