-- Field-level encryption of accessibility preferences and brand engagement (issue 14): the
-- fields that profile a person move into one encrypted column per row, `sealed`, with the
-- version of the key that sealed it (db/functions/045-field-encryption.sql says which fields
-- and why). The clear columns stay for rows written before (key_version null) until
-- `invoke db.rotate-key` seals them, and are null in every sealed row.

-- The owner of the functions that read the key file: the only role holding pg_read_server_files.
do $roles$
begin
    if not exists (select from pg_roles where rolname = 'chorus_keyholder') then
        create role chorus_keyholder nologin;
    end if;
end
$roles$;

-- The clear columns lose NOT NULL: a sealed row holds null there (no client reads these tables
-- directly; the endpoints write them, and the readers decrypt).
-- squawk-ignore-file ban-drop-not-null
alter table app.accessibility_preferences
add column sealed bytea,
add column key_version integer check (key_version > 0),
alter column accessibility_theme drop not null,
alter column dark_mode_preference drop not null,
alter column reduced_motion drop not null,
alter column high_contrast drop not null,
alter column font_size_preference drop not null,
add constraint accessibility_preferences_sealed_with_version check ((sealed is null) = (key_version is null)) not valid;

alter table app.brand_engagement
add column sealed bytea,
add column key_version integer check (key_version > 0),
alter column logo_interactions drop not null,
alter column time_spent_per_section drop not null,
alter column cta_clicks drop not null,
alter column accessibility_features_used drop not null,
alter column keyboard_navigation_used drop not null,
add constraint brand_engagement_sealed_with_version check ((sealed is null) = (key_version is null)) not valid;

-- NOT VALID: every row there is holds neither (the check binds every row written from now on).

-- db.rotate-key finds the rows not under the newest key by this index, batch after batch.
-- squawk-ignore require-concurrent-index-creation
create index accessibility_preferences_key_version_idx on app.accessibility_preferences (key_version);
-- squawk-ignore require-concurrent-index-creation
create index brand_engagement_key_version_idx on app.brand_engagement (key_version);
