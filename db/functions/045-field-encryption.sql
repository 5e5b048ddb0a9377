-- Field-level encryption (issue 14): what profiles a person in accessibility preferences and
-- brand engagement is stored encrypted, with pgcrypto's OpenPGP symmetric encryption (AES-256,
-- integrity-protected by its modification detection code, no compression), under a key that
-- the database never holds.
--
-- Which fields, and why:
--   accessibility_preferences: accessibility_theme (a colour-vision deficiency: protanopia,
--     deuteranopia, ... is health data), dark_mode_preference, reduced_motion, high_contrast
--     and font_size_preference (together a disability profile: vestibular disorders, low
--     vision). Clear: the session id (random, what the upsert and the session claim match on),
--     the lead link, the counters and the session duration (behaviour numbers the analytics
--     average), the times.
--   brand_engagement: logo_interactions (per-interaction timestamps and themes: a fingerprint
--     and the theme again), time_spent_per_section and cta_clicks (free-form JSON a client
--     fills with anything, free text included), accessibility_features_used and
--     keyboard_navigation_used (assistive technology: a disability profile). Clear: the
--     session id, the lead link, the scroll depth, the theme-change counter and the Core Web
--     Vitals (performance numbers of a page load, which the performance analytics read on
--     every request), the time.
-- The sealed fields of a row are one JSON object, encrypted as one value (`sealed`), with the
-- key's version (`key_version`): one decryption per row, and a rotation knows what to do.
--
-- The key: a file outside the data directory (so no base backup, replica copy or dump carries
-- it), named by the server setting chorus.field_key_file (postgresql.conf or the server's
-- command line), which the build pins on field_keys() (ALTER FUNCTION ... SET): a value a
-- session SETs is not what it reads, so no session can point it at another file. (pg_settings
-- does not list custom settings, so their source cannot be checked at run time.)
-- Lines "<version> <64 hex digits>"; the highest version seals, every version listed opens.
-- Only app_logic.field_keys() reads it, as chorus_keyholder, the one role holding
-- pg_read_server_files; nobody may call that function but its owner. The functions below that
-- use the key belong to chorus_keyholder too, and the web roles may call only those that give
-- back what they could already read (aggregates' inputs, never a key). There is no cache in the
-- session: a web role can read every setting (custom settings included) and a temporary table
-- cannot be created in the read-only transactions GETs run in; reading the file costs about
-- 6 µs (pg_read_file, measured), and the bulk readers below read it once per call, not once
-- per row.

-- The key file's keys, {"<version>": "<hex key>", ...}, or {"error": "<sentence>"} when there is
-- none to read (a reader of sealed rows then raises that sentence; see field_key_problem).
create function app_logic.field_keys() returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_path text;
    v_text text;
    v_keys jsonb := '{}';
    v_line text;
    v_number integer := 0;
    v_match text[];
begin
    -- The function's own setting, pinned by the build (db/policies/045-field-encryption.sql):
    -- a value SET by the session is not the one read here.
    v_path := current_setting('chorus.field_key_file', true);
    if coalesce(v_path, '') = '' then
        return jsonb_build_object('error',
            'No field-encryption key file was configured when the database was built: set chorus.field_key_file in the server configuration, reload, and run invoke db.build --force.');
    end if;
    begin
        v_text := pg_catalog.pg_read_file(v_path, 0, 1048576, true);
    exception when others then
        v_text := null;
    end;
    if v_text is null then
        return jsonb_build_object('error', format(
            'The field-encryption key file %s is missing or unreadable: restore it (mode 600, owned by the server''s user) from where the keys are kept.', v_path));
    end if;
    -- string_to_array: the same lines as regexp_split_to_array(v_text, '\n') (an empty file is no
    -- line instead of one empty line: no key either way), without running the regex engine.
    foreach v_line in array string_to_array(v_text, E'\n') loop
        v_number := v_number + 1;
        continue when v_line ~ '^\s*(#.*)?$';
        -- Runs of digits and hex digits, their lengths checked after: the same lines and captures
        -- as ([0-9]{1,4})\s+([0-9a-fA-F]{64}), whose bounded repetitions made PostgreSQL's regex
        -- engine spend about 600k instructions a line (most of what sealing a row cost). At most
        -- 4 digits, so the one version out of 1-32767 is 0 (tested without a cast, which a long
        -- run of digits would overflow).
        v_match := regexp_match(v_line, '^\s*([0-9]+)\s+([0-9a-fA-F]+)\s*$');
        if v_match is null or length(v_match[1]) > 4 or length(v_match[2]) <> 64 or ltrim(v_match[1], '0') = '' then
            -- The line itself is never quoted: it may hold a key.
            return jsonb_build_object('error', format(
                'Line %s of the field-encryption key file %s is not "<version 1-32767> <64 hex digits>": correct it.', v_number, v_path));
        end if;
        v_keys := v_keys || jsonb_build_object(v_match[1]::integer::text, lower(v_match[2]));
    end loop;
    if v_keys = '{}' then
        return jsonb_build_object('error', format(
            'The field-encryption key file %s holds no key: add a line "1 <64 hex digits>" (invoke db.rotate-key --new-key).', v_path));
    end if;
    return v_keys;
end
$$;
comment on function app_logic.field_keys() is
'The field-encryption keys of the file chorus.field_key_file names, by version, or {"error": sentence}. '
'Callable by its owner (chorus_keyholder) alone.';

-- The newest version of a key map; raises the map's sentence when there is no key.
create function app_logic.field_key_current(p_keys jsonb) returns integer
language plpgsql immutable
as $$
begin
    if p_keys ? 'error' then
        raise exception '%', p_keys ->> 'error' using errcode = 'PT503';
    end if;
    return (select max(k::integer) from jsonb_object_keys(p_keys) as k);
end
$$;
comment on function app_logic.field_key_current(jsonb) is 'The newest key version of a key map (what seals).';

-- One sealed value opened with a key map: null for a row that is not sealed.
create function app_logic.open_sealed(p_data bytea, p_version integer, p_keys jsonb) returns jsonb
language plpgsql immutable
as $$
declare
    v_key text;
begin
    if p_data is null then
        return null;
    end if;
    v_key := p_keys ->> p_version::text;
    if v_key is null then
        if p_keys ? 'error' then
            raise exception '%', p_keys ->> 'error' using errcode = 'PT503';
        end if;
        raise exception 'A row is encrypted with field key version %, which the key file no longer holds: put that key back in the file.',
            p_version using errcode = 'PT503';
    end if;
    return extensions.pgp_sym_decrypt(p_data, v_key)::jsonb;
end
$$;
comment on function app_logic.open_sealed(bytea, integer, jsonb) is 'Decrypt one sealed value with a key map (version -> key).';

-- Seal a set of fields under the newest key.
create function app_logic.seal(p_fields jsonb, out version integer, out data bytea)
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_keys jsonb := app_logic.field_keys();
begin
    version := app_logic.field_key_current(v_keys);
    -- s2k-mode=1: the key is 256 random bits, not a password, so the salted hash needs no
    -- iterations (the default iterated mode costs about 0.8 ms a value, this 13 µs).
    data := extensions.pgp_sym_encrypt(p_fields::text, v_keys ->> version::text, 'cipher-algo=aes256, compress-algo=0, s2k-mode=1');
end
$$;
comment on function app_logic.seal(jsonb) is
'Encrypt fields (a JSON object) under the newest field key: the version and the ciphertext.';

-- Open one sealed row, for the few readers of single rows (export, the update of a sealed row).
create function app_logic.unseal(p_data bytea, p_version integer) returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select case when p_data is not null then app_logic.open_sealed(p_data, p_version, app_logic.field_keys()) end
$$;
comment on function app_logic.unseal(bytea, integer) is 'Decrypt one sealed value (reads the key file once per call).';

-- A row as JSON with its sealed fields opened in place and sealed/key_version left out: the
-- row as it was before encryption (GDPR export).
create function app_logic.opened_row(p_row jsonb) returns jsonb
language sql stable
as $$
    select (p_row - 'sealed' - 'key_version') || coalesce(
        app_logic.unseal(decode(substr(p_row ->> 'sealed', 3), 'hex'), (p_row ->> 'key_version')::integer), '{}'
    )
$$;
comment on function app_logic.opened_row(jsonb) is
'A preferences or engagement row (to_jsonb) with its sealed fields decrypted in place, as it was stored before encryption.';

-- BEFORE INSERT OR UPDATE of a table with sealed fields (TG_ARGV: their columns): the clear
-- values written move into `sealed`, and the clear columns become null. An UPDATE that writes
-- none of them (the session claim, a rotation) leaves the row as it is; one that writes some
-- keeps the others' sealed values.
create function app_logic.tg_seal_fields() returns trigger
language plpgsql
as $$
declare
    v_row jsonb := to_jsonb(new);
    v_fields jsonb := '{}';
    v_nulls jsonb := '{}';
    v_column text;
    v_sealed record;
begin
    foreach v_column in array tg_argv loop
        v_nulls := v_nulls || jsonb_build_object(v_column, null);
        if jsonb_typeof(v_row -> v_column) <> 'null' then
            v_fields := v_fields || jsonb_build_object(v_column, v_row -> v_column);
        end if;
    end loop;
    if v_fields = '{}' then
        return new;
    end if;
    if tg_op = 'UPDATE' and old.sealed is not null then
        v_fields := app_logic.unseal(old.sealed, old.key_version) || v_fields;
    end if;
    -- An assignment, not SELECT ... FROM seal(...): a simple expression, without a query's
    -- executor and the tuplestore of a function scan.
    v_sealed := app_logic.seal(v_fields);
    new := jsonb_populate_record(new, v_nulls);
    new.sealed := v_sealed.data;
    new.key_version := v_sealed.version;
    return new;
end
$$;
comment on function app_logic.tg_seal_fields() is
'Before a write of accessibility preferences or brand engagement: encrypt the profiling fields into sealed.';

-- A table's sealed fields, written once: its seal_fields trigger over them, and the comments of
-- sealed (what it holds and why), key_version and each field (schema 381 added sealed and
-- key_version; comments live here, re-applied).
create function app_logic.declare_sealed_fields(p_table regclass, p_what text, p_why text, variadic p_fields name[])
returns void
language plpgsql volatile
as $$
declare
    v_field name;
begin
    execute format(
        'create trigger seal_fields before insert or update on %s for each row execute function app_logic.tg_seal_fields(%s)',
        p_table, (select string_agg(quote_literal(f), ', ' order by o) from unnest(p_fields) with ordinality as u (f, o))
    );
    execute format('comment on column %s.sealed is %L', p_table, format(
        '%s: %s as one JSON object (pgcrypto OpenPGP, AES-256 with MDC). Encrypted because %s',
        p_what, array_to_string(p_fields, ', '), p_why
    ));
    execute format('comment on column %s.key_version is %L', p_table,
        'The field key version sealed was encrypted with; null for a row written before encryption (db.rotate-key seals it).');
    foreach v_field in array p_fields loop
        execute format('comment on column %s.%I is %L', p_table, v_field,
            'Encrypted into sealed: null in every sealed row; set only in a row written before encryption.');
    end loop;
end
$$;
comment on function app_logic.declare_sealed_fields(regclass, text, text, name[]) is
'Seal these fields of p_table (its seal_fields trigger) and comment sealed, key_version and each field.';

select app_logic.declare_sealed_fields(
    'app.accessibility_preferences', 'The encrypted profile',
    'together they are a disability and health profile (a colour-vision deficiency, vestibular disorders, low vision).',
    'accessibility_theme', 'dark_mode_preference', 'reduced_motion', 'high_contrast', 'font_size_preference'
);
select app_logic.declare_sealed_fields(
    'app.brand_engagement', 'The encrypted engagement details',
    'exact interaction times are a fingerprint, sections and CTA clicks are free-form JSON (free text), and the '
    'assistive technology used is a disability profile.',
    'logo_interactions', 'time_spent_per_section', 'cta_clicks', 'accessibility_features_used', 'keyboard_navigation_used'
);

-- The two values the analytics read from a row, decrypted: one expression each, used by every
-- bulk reader below and by the day rollups (db/functions/070-analytics.sql). SQL functions
-- without SET or SECURITY DEFINER, so they are inlined into the caller's query, which decrypts
-- only the rows it keeps.
create function app_logic.opened_theme(p_sealed bytea, p_version integer, p_clear text, p_keys jsonb) returns text
language sql immutable
as $$
    select coalesce(app_logic.open_sealed(p_sealed, p_version, p_keys) ->> 'accessibility_theme', p_clear)
$$;
comment on function app_logic.opened_theme(bytea, integer, text, jsonb) is
'The accessibility theme of a preferences row: decrypted from sealed, or the clear column of a row not sealed.';

create function app_logic.opened_cta_count(p_sealed bytea, p_version integer, p_clear jsonb, p_keys jsonb) returns integer
language sql immutable
as $$
    select jsonb_array_length(coalesce(app_logic.open_sealed(p_sealed, p_version, p_keys) -> 'cta_clicks', p_clear))
$$;
comment on function app_logic.opened_cta_count(bytea, integer, jsonb, jsonb) is
'The number of CTA clicks of a brand-engagement post: decrypted from sealed, or of the clear column of a row not sealed.';

-- The analytics' inputs, opened in bulk. The key map is an uncorrelated scalar subquery, an
-- InitPlan: the key file is read once per call, not once per row. They return what the
-- analytics views read before encryption (reader and admin could select these columns then),
-- never a session's lead or a key.
create function app_logic.opened_preference_themes(p_since timestamptz, p_until timestamptz)
returns table (accessibility_theme text, session_duration integer, created_at timestamptz)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        app_logic.opened_theme(p.sealed, p.key_version, p.accessibility_theme, (select app_logic.field_keys())),
        p.session_duration,
        p.created_at
    from app.accessibility_preferences as p
    where p.created_at > p_since and p.created_at <= p_until
$$;
comment on function app_logic.opened_preference_themes(timestamptz, timestamptz) is
'The theme, session duration and start of every session that started in (p_since, p_until], decrypted.';

create function app_logic.opened_engagement_counts(p_since timestamptz, p_until timestamptz)
returns table (session_id text, scroll_depth_percentage integer, cta_clicks integer)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        e.session_id,
        e.scroll_depth_percentage,
        app_logic.opened_cta_count(e.sealed, e.key_version, e.cta_clicks, (select app_logic.field_keys()))
    from app.brand_engagement as e
    where e.created_at > p_since and e.created_at <= p_until
$$;
comment on function app_logic.opened_engagement_counts(timestamptz, timestamptz) is
'Per brand-engagement post in (p_since, p_until]: its session, scroll depth and number of CTA clicks, decrypted.';

-- The A/B results' themes: the current theme of every session shown a test.
create function app_logic.exposed_session_themes()
returns table (session_id text, accessibility_theme text)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        p.session_id,
        app_logic.opened_theme(p.sealed, p.key_version, p.accessibility_theme, (select app_logic.field_keys()))
    from app.accessibility_preferences as p
    where exists (select from app.ab_test_exposures as x where x.session_id = p.session_id)
$$;
comment on function app_logic.exposed_session_themes() is
'The accessibility theme of every session that was shown an A/B test, decrypted.';

-- invoke db.rotate-key: up to p_limit rows of one table brought under the newest key (rows in
-- clear sealed, rows under an older key re-encrypted), committed by the caller batch by batch;
-- how many it did (0: the table is done). Rows locked by a writer are left for the next batch.
create function app_logic.reseal_batch(p_table text, p_limit integer) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_keys jsonb := app_logic.field_keys();
    v_current integer := app_logic.field_key_current(v_keys);
    v_rows integer;
begin
    if p_table not in ('accessibility_preferences', 'brand_engagement') then
        raise exception 'reseal_batch takes accessibility_preferences or brand_engagement, not %', p_table
            using errcode = '22023';
    end if;
    if p_limit not between 1 and 100000 then
        raise exception 'a batch holds 1 to 100000 rows, not %', p_limit using errcode = '22023';
    end if;
    -- A row in clear gets key_version null written again: the seal trigger then seals its clear
    -- values. A sealed row is decrypted with its key and encrypted with the newest.
    execute format($sql$
        update app.%1$I as t
        set
            sealed = case when t.sealed is not null then extensions.pgp_sym_encrypt(
                app_logic.open_sealed(t.sealed, t.key_version, $1)::text, $1 ->> $2::text,
                'cipher-algo=aes256, compress-algo=0, s2k-mode=1') end,
            key_version = case when t.sealed is not null then $2 end
        where t.ctid = any(array(
            select q.ctid from app.%1$I as q
            where q.key_version is null or q.key_version < $2 or q.key_version > $2
            limit $3
            for update skip locked
        ))
    $sql$, p_table) using v_keys, v_current, p_limit;
    get diagnostics v_rows = row_count;
    return v_rows;
end
$$;
comment on function app_logic.reseal_batch(text, integer) is
'Bring up to p_limit rows of accessibility_preferences or brand_engagement under the newest field key; how many.';

-- What db.rotate-key reports before and after: rows per table and key version (null: in clear),
-- and whether the key file holds that version.
create function app_logic.field_key_status()
returns table (table_name text, key_version integer, row_count bigint, key_present boolean, newest integer)
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_keys jsonb := app_logic.field_keys();
    v_current integer := app_logic.field_key_current(v_keys);
begin
    return query
    select s.t, s.v, s.n, s.v is null or v_keys ? s.v::text, v_current
    from (
        select 'accessibility_preferences'::text as t, p.key_version as v, count(*) as n
        from app.accessibility_preferences as p group by p.key_version
        union all
        select 'brand_engagement'::text, e.key_version, count(*) from app.brand_engagement as e group by e.key_version
    ) as s
    order by 1, 2 nulls first;
end
$$;
comment on function app_logic.field_key_status() is
'Rows per table and field key version (null: not sealed yet), whether the key file holds the version, the newest.';

-- The two tables as they read before encryption, for an operator's psql and the tests (granted to
-- no API role; each row decrypted on its own, so not for bulk reads).
create view app_logic.accessibility_preferences_opened as
select (jsonb_populate_record(null::app.accessibility_preferences, app_logic.opened_row(to_jsonb(p)))).*
from app.accessibility_preferences as p;
comment on view app_logic.accessibility_preferences_opened is
'app.accessibility_preferences with the sealed fields decrypted into their columns (sealed, key_version null).';

create view app_logic.brand_engagement_opened as
select (jsonb_populate_record(null::app.brand_engagement, app_logic.opened_row(to_jsonb(e)))).*
from app.brand_engagement as e;
comment on view app_logic.brand_engagement_opened is
'app.brand_engagement with the sealed fields decrypted into their columns (sealed, key_version null).';
