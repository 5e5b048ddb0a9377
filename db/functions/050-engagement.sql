-- Accessibility preferences and brand engagement (issue 5): the two session endpoints, their
-- validation rules, and the link from a session's data to the lead submitted in it.
--
-- Linking works from both sides: a lead arriving after the session's data links the rows it
-- finds (trigger on app.leads), data arriving after the lead looks the lead up. Both sides take
-- the same per-session advisory lock first, so a lead and data of one session committing at
-- the same moment cannot each miss the other.

-- Integer fields validated by a rule: via numeric, because JSON may spell a whole number 1.0.
create function app_logic.integer_field(p_body jsonb, p_key text) returns integer
language sql immutable
as $$
    select case when jsonb_typeof(p_body -> p_key) = 'number' then (p_body -> p_key)::numeric::integer end
$$;
comment on function app_logic.integer_field(jsonb, text) is
'A validated whole-number field as integer; null when absent or JSON null.';

create function app_logic.boolean_field(p_body jsonb, p_key text) returns boolean
language sql immutable
as $$
    select case when jsonb_typeof(p_body -> p_key) = 'boolean' then (p_body -> p_key)::boolean end
$$;
comment on function app_logic.boolean_field(jsonb, text) is 'A validated boolean field; null when absent or JSON null.';

-- Serialises the lead and the session data of one session (see the header).
create function app_logic.lock_session(p_session_id text) returns void
language sql volatile
as $$
    select pg_advisory_xact_lock(hashtextextended('chorus_website:session:' || p_session_id, 0))
$$;
comment on function app_logic.lock_session(text) is
'Transaction lock on one session id, taken before linking its data to a lead.';

-- The lead submitted in a session; the newest when several people used one browser session.
create function app_logic.session_lead(p_session_id text) returns uuid
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select l.id from app.leads as l
    where l.session_id = p_session_id
    order by l.created_at desc, l.id
    limit 1
$$;
comment on function app_logic.session_lead(text) is 'The id of the newest lead submitted with this session id, or null.';

-- The session id rule shared by the session endpoints (and the lead's sessionId).
create function app_logic.session_id_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "string", "trim": true, "minLength": 1, "maxLength": 100,
        "description": "The browser session''s opaque id; links this data to a lead submitted in the same session."
    }'::jsonb
$$;
comment on function app_logic.session_id_rule() is 'Rule of a sessionId field: 1 to 100 characters after trimming.';

-- The largest value an integer column holds: a bigger number is a 400, not an overflow.
create function app_logic.counter_rule(p_description text) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'integer', 'minimum', 0, 'maximum', 2147483647, 'description', p_description
    )
$$;
comment on function app_logic.counter_rule(text) is 'Rule of a non-negative integer field that fits an integer column.';

-- Core Web Vitals: timings in milliseconds, CLS unitless. The upper bounds only keep a value
-- within what double precision (the p75 analytics) handles meaningfully.
create function app_logic.core_web_vitals_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object",
        "description": "Core Web Vitals measured on the page: lcp, fid, inp, ttfb in milliseconds, cls unitless.",
        "properties": {
            "lcp": {"type": "number", "minimum": 0, "maximum": 3600000, "description": "Largest Contentful Paint, ms."},
            "fid": {"type": "number", "minimum": 0, "maximum": 3600000, "description": "First Input Delay, ms."},
            "cls": {"type": "number", "minimum": 0, "maximum": 100, "description": "Cumulative Layout Shift, unitless."},
            "inp": {"type": "number", "minimum": 0, "maximum": 3600000, "description": "Interaction to Next Paint, ms."},
            "ttfb": {"type": "number", "minimum": 0, "maximum": 3600000, "description": "Time to First Byte, ms."}
        },
        "additionalProperties": false
    }'::jsonb
$$;
comment on function app_logic.core_web_vitals_rule() is 'Rule of a coreWebVitals object: known metrics only, each >= 0.';

-- POST /api/accessibility-preferences ----------------------------------------------------

create function app_logic.save_accessibility_preferences_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'The accessibility preferences of one browser session; a later post updates them.',
        'required', jsonb_build_array('sessionId', 'accessibilityTheme'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'sessionId', app_logic.session_id_rule(),
            'accessibilityTheme', '{
                "type": "string",
                "enum": ["default", "protanopia", "deuteranopia", "tritanopia", "achromatopsia"],
                "description": "The colour theme the visitor chose."
            }'::jsonb,
            'darkModePreference', '{"type": "boolean", "description": "Dark mode on; default true."}'::jsonb,
            'reducedMotion', '{"type": "boolean", "description": "Reduced motion on; default false."}'::jsonb,
            'highContrast', '{"type": "boolean", "description": "High contrast on; default false."}'::jsonb,
            'fontSizePreference', '{
                "type": "string", "enum": ["small", "medium", "large", "x-large"],
                "description": "Font size; default medium."
            }'::jsonb,
            'logoInteractionCount', app_logic.counter_rule('How often the visitor interacted with the logo; default 0.'),
            'themeSwitchCount', app_logic.counter_rule('How often the visitor switched themes; default 0.'),
            'sessionDuration', app_logic.counter_rule('Length of the session so far, in milliseconds.')
        )
    )
$$;
comment on function app_logic.save_accessibility_preferences_rule() is
'Validation rule (and OpenAPI schema) of POST /api/accessibility-preferences.';

-- One row per session. A field left out of a later post keeps its stored value, so a client
-- may send only what changed; the first post fills the defaults.
create function api.save_accessibility_preferences(jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    p_body alias for $1;
    v_refused jsonb;
    v_session text;
    v_now timestamptz := app_logic.now();
    v_inserted boolean;
    v_dark boolean;
    v_motion boolean;
    v_contrast boolean;
    v_font text;
    v_logo integer;
    v_switches integer;
    v_duration integer;
begin
    v_refused := app_logic.screen_request('accessibility_preferences', p_body, app_logic.save_accessibility_preferences_rule());
    if v_refused is not null then
        return v_refused;
    end if;
    -- Read only now: before validation a field may hold anything (1e30 overflows an integer).
    v_session := app_logic.text_field(p_body, 'sessionId');
    v_dark := app_logic.boolean_field(p_body, 'darkModePreference');
    v_motion := app_logic.boolean_field(p_body, 'reducedMotion');
    v_contrast := app_logic.boolean_field(p_body, 'highContrast');
    v_font := p_body ->> 'fontSizePreference';
    v_logo := app_logic.integer_field(p_body, 'logoInteractionCount');
    v_switches := app_logic.integer_field(p_body, 'themeSwitchCount');
    v_duration := app_logic.integer_field(p_body, 'sessionDuration');
    perform app_logic.lock_session(v_session);
    insert into app.accessibility_preferences as p (
        session_id, lead_id, accessibility_theme, dark_mode_preference, reduced_motion, high_contrast,
        font_size_preference, logo_interaction_count, theme_switch_count, session_duration, created_at, last_updated
    ) values (
        v_session, app_logic.session_lead(v_session), p_body ->> 'accessibilityTheme', coalesce(v_dark, true),
        coalesce(v_motion, false), coalesce(v_contrast, false), coalesce(v_font, 'medium'), coalesce(v_logo, 0),
        coalesce(v_switches, 0), v_duration, v_now, v_now
    )
    on conflict (session_id) do update set
        lead_id = coalesce(excluded.lead_id, p.lead_id),
        accessibility_theme = excluded.accessibility_theme,
        dark_mode_preference = coalesce(v_dark, p.dark_mode_preference),
        reduced_motion = coalesce(v_motion, p.reduced_motion),
        high_contrast = coalesce(v_contrast, p.high_contrast),
        font_size_preference = coalesce(v_font, p.font_size_preference),
        logo_interaction_count = coalesce(v_logo, p.logo_interaction_count),
        theme_switch_count = coalesce(v_switches, p.theme_switch_count),
        session_duration = coalesce(v_duration, p.session_duration),
        last_updated = v_now
    -- xmax is 0 only on a freshly inserted row version: insert (201) or update (200).
    returning p.xmax = 0 into v_inserted;
    if v_inserted then
        return app_logic.respond(201, jsonb_build_object('status', 'created'));
    end if;
    return app_logic.respond(200, jsonb_build_object('status', 'updated'));
end
$$;
comment on function api.save_accessibility_preferences(jsonb) is
'POST /api/accessibility-preferences: store a session''s accessibility preferences. '
'201 {"status":"created"} for a new session, 200 {"status":"updated"} when the session '
'posted before (fields left out keep their stored values); 400 naming every invalid field; '
'429 over the rate limit (120 per client IP per minute by default).';

-- POST /api/brand-engagement ----------------------------------------------------------------

create function app_logic.record_brand_engagement_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'What a session did with the logo, the page sections and the calls to action.',
        'required', jsonb_build_array('sessionId'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'sessionId', app_logic.session_id_rule(),
            'logoInteractions', '{
                "type": "array", "maxItems": 500,
                "description": "Interactions with the 3D logo, at most 500.",
                "items": {
                    "type": "object",
                    "description": "One interaction.",
                    "required": ["timestamp", "theme", "duration"],
                    "additionalProperties": false,
                    "properties": {
                        "timestamp": {"type": "number", "minimum": 0, "description": "When, in ms since the epoch."},
                        "theme": {"type": "string", "minLength": 1, "maxLength": 50, "description": "Theme shown."},
                        "duration": {"type": "number", "minimum": 0, "description": "How long, in ms."}
                    }
                }
            }'::jsonb,
            'scrollDepthPercentage', '{
                "type": "integer", "minimum": 0, "maximum": 100,
                "description": "How far down the page the visitor scrolled, in percent."
            }'::jsonb,
            'timeSpentPerSection', '{
                "type": "object", "maxProperties": 50, "maxBytes": 4096,
                "description": "Milliseconds spent per page section, by section name (at most 50 sections).",
                "additionalProperties": {
                    "type": "number", "minimum": 0, "maximum": 2147483647,
                    "description": "Milliseconds spent in the section."
                }
            }'::jsonb,
            'ctaClicks', '{
                "type": "array", "maxItems": 100, "maxBytes": 8192,
                "description": "The calls to action clicked, in order (at most 100, 8 KiB of JSON)."
            }'::jsonb,
            'coreWebVitals', app_logic.core_web_vitals_rule(),
            'accessibilityFeaturesUsed', '{
                "type": "array", "maxItems": 50,
                "description": "Names of the accessibility features used, at most 50.",
                "items": {"type": "string", "minLength": 1, "maxLength": 100, "description": "A feature name."}
            }'::jsonb,
            'keyboardNavigationUsed', '{"type": "boolean", "description": "The visitor navigated by keyboard."}'::jsonb,
            'logoAccessibilityThemeChanges', app_logic.counter_rule('How often the logo''s theme was changed.')
        )
    )
$$;
comment on function app_logic.record_brand_engagement_rule() is
'Validation rule (and OpenAPI schema) of POST /api/brand-engagement.';

-- Every post is a row: a session may report several snapshots (the analytics count sessions).
create function api.record_brand_engagement(jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    p_body alias for $1;
    v_refused jsonb;
    v_session text;
begin
    v_refused := app_logic.screen_request('brand_engagement', p_body, app_logic.record_brand_engagement_rule());
    if v_refused is not null then
        return v_refused;
    end if;
    v_session := app_logic.text_field(p_body, 'sessionId');
    perform app_logic.lock_session(v_session);
    insert into app.brand_engagement (
        session_id, lead_id, logo_interactions, logo_accessibility_theme_changes, scroll_depth_percentage,
        time_spent_per_section, cta_clicks, core_web_vitals, accessibility_features_used,
        keyboard_navigation_used, created_at
    ) values (
        v_session,
        app_logic.session_lead(v_session),
        coalesce(nullif(p_body -> 'logoInteractions', 'null'), '[]'),
        coalesce(app_logic.integer_field(p_body, 'logoAccessibilityThemeChanges'), 0),
        app_logic.integer_field(p_body, 'scrollDepthPercentage'),
        coalesce(nullif(p_body -> 'timeSpentPerSection', 'null'), '{}'),
        coalesce(nullif(p_body -> 'ctaClicks', 'null'), '[]'),
        coalesce(nullif(p_body -> 'coreWebVitals', 'null'), '{}'),
        coalesce(nullif(p_body -> 'accessibilityFeaturesUsed', 'null'), '[]'),
        coalesce(app_logic.boolean_field(p_body, 'keyboardNavigationUsed'), false),
        app_logic.now()
    );
    return app_logic.respond(201, jsonb_build_object('status', 'recorded'));
end
$$;
comment on function api.record_brand_engagement(jsonb) is
'POST /api/brand-engagement: record what a session did with the logo, sections and CTAs. '
'201 {"status":"recorded"}; 400 naming every invalid field; 429 over the rate limit '
'(120 per client IP per minute by default).';

-- Lead linking ---------------------------------------------------------------------------

-- A lead that carries a session id claims the data that session already sent.
create function app_logic.tg_leads__link_session() returns trigger
language plpgsql security definer
set search_path = pg_catalog, app, pg_temp
as $$
begin
    perform app_logic.lock_session(new.session_id);
    update app.accessibility_preferences as p set lead_id = new.id
    where p.session_id = new.session_id and p.lead_id is distinct from new.id;
    update app.brand_engagement as e set lead_id = new.id
    where e.session_id = new.session_id and e.lead_id is distinct from new.id;
    return null;
end
$$;
comment on function app_logic.tg_leads__link_session() is
'After a lead is stored with a session id: link that session''s preferences and engagement to it.';

create trigger leads_link_session
after insert or update of session_id on app.leads
for each row when (new.session_id is not null)
execute function app_logic.tg_leads__link_session();
