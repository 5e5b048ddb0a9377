-- Accessibility preferences and brand engagement (issue 5): the two session endpoints, their
-- validation rules, and the link from a session's data to the lead that owns the session.
--
-- A session is owned by the first lead whose submission named it (app.lead_sessions, claimed
-- once, never moved to another lead): its preferences and engagement are that lead's, whether
-- they arrive before or after the claim. Both sides take the same per-session advisory lock
-- first, so a claim and data of one session committing at the same moment cannot each miss the
-- other.

comment on table app.lead_sessions is
'Which lead owns which browser session: the first lead whose submission named it. A claim is never moved '
'to another lead; it goes when the lead is erased.';
comment on column app.lead_sessions.session_id is 'The session id, as the submission named it (trimmed).';
comment on column app.lead_sessions.lead_id is 'The lead that owns the session''s preferences, engagement and page views.';
comment on column app.lead_sessions.claimed_at is 'When the first submission naming the session arrived.';

-- Serialises the claim of a session and the session's data (see the header).
create function app_logic.lock_session(p_session_id text) returns void
language sql volatile
as $$
    select pg_advisory_xact_lock(hashtextextended('chorus_website:session:' || p_session_id, 0))
$$;
comment on function app_logic.lock_session(text) is
'Transaction lock on one session id, taken before claiming it or storing its data.';

create function app_logic.session_lead(p_session_id text) returns uuid
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select s.lead_id from app.lead_sessions as s where s.session_id = p_session_id
$$;
comment on function app_logic.session_lead(text) is 'The id of the lead that owns this session, or null.';

-- A submission naming a session claims it for its lead unless another lead owns it already (a
-- shared browser: the first person keeps the session). The session's data sent before the
-- claim then becomes the lead's: only unlinked rows, never another lead's.
-- Not SECURITY DEFINER: its callers (submit_lead and the lead trigger below) run as the owner
-- already, and no API role may execute it; the switch of search path cost each claim about
-- 10k instructions.
create function app_logic.claim_session(p_lead_id uuid, p_session_id text) returns void
language plpgsql volatile
as $$
begin
    if p_session_id is null then
        return;
    end if;
    perform app_logic.lock_session(p_session_id);
    insert into app.lead_sessions as s (session_id, lead_id, claimed_at)
    values (p_session_id, p_lead_id, app_logic.now())
    on conflict (session_id) do nothing;
    if found then
        update app.accessibility_preferences as p set lead_id = p_lead_id
        where p.session_id = p_session_id and p.lead_id is null;
        update app.brand_engagement as e set lead_id = p_lead_id
        where e.session_id = p_session_id and e.lead_id is null;
    end if;
end
$$;
comment on function app_logic.claim_session(uuid, text) is
'Claim a session for a lead unless another lead owns it, and link the session''s unlinked data to it.';

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
create function app_logic.save_accessibility_preferences_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_session text := app_logic.text_field(p_body, 'sessionId');
    v_now timestamptz := app_logic.now();
    v_dark boolean;
    v_motion boolean;
    v_contrast boolean;
    v_font text;
    v_logo integer;
    v_switches integer;
    v_duration integer;
begin
    v_dark := app_logic.boolean_field(p_body, 'darkModePreference');
    v_motion := app_logic.boolean_field(p_body, 'reducedMotion');
    v_contrast := app_logic.boolean_field(p_body, 'highContrast');
    v_font := p_body ->> 'fontSizePreference';
    v_logo := app_logic.integer_field(p_body, 'logoInteractionCount');
    v_switches := app_logic.integer_field(p_body, 'themeSwitchCount');
    v_duration := app_logic.integer_field(p_body, 'sessionDuration');
    perform app_logic.lock_session(v_session);
    -- Update, else insert: the session's lock makes that safe, and an INSERT ... ON CONFLICT would
    -- encrypt the row it then does not insert (the seal trigger runs before the conflict is seen;
    -- db/functions/045-field-encryption.sql). A field left out is written as null, which the
    -- seal trigger reads as "keep the stored value" (coalesce keeps it in a row not sealed yet).
    update app.accessibility_preferences as p set
        lead_id = coalesce(app_logic.session_lead(v_session), p.lead_id),
        accessibility_theme = p_body ->> 'accessibilityTheme',
        dark_mode_preference = coalesce(v_dark, p.dark_mode_preference),
        reduced_motion = coalesce(v_motion, p.reduced_motion),
        high_contrast = coalesce(v_contrast, p.high_contrast),
        font_size_preference = coalesce(v_font, p.font_size_preference),
        logo_interaction_count = coalesce(v_logo, p.logo_interaction_count),
        theme_switch_count = coalesce(v_switches, p.theme_switch_count),
        session_duration = coalesce(v_duration, p.session_duration),
        last_updated = v_now
    where p.session_id = v_session;
    if not found then
        insert into app.accessibility_preferences (
            session_id, lead_id, accessibility_theme, dark_mode_preference, reduced_motion, high_contrast,
            font_size_preference, logo_interaction_count, theme_switch_count, session_duration, created_at, last_updated
        ) values (
            v_session, app_logic.session_lead(v_session), p_body ->> 'accessibilityTheme', coalesce(v_dark, true),
            coalesce(v_motion, false), coalesce(v_contrast, false), coalesce(v_font, 'medium'), coalesce(v_logo, 0),
            coalesce(v_switches, 0), v_duration, v_now, v_now
        );
        return app_logic.respond(201, jsonb_build_object('status', 'created'));
    end if;
    return app_logic.respond(200, jsonb_build_object('status', 'updated'));
end
$$;
comment on function app_logic.save_accessibility_preferences_handler(jsonb) is
'What POST /api/accessibility-preferences does with a body that passed: insert or update the session''s row.';

select app_logic.declare_post(
    'save_accessibility_preferences', 'accessibility_preferences', 'app_logic.save_accessibility_preferences_rule',
    'app_logic.save_accessibility_preferences_handler'
);
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
                        "timestamp": {"type": "number", "minimum": 0, "maximum": 99999999999999,
                            "description": "When, in ms since the epoch (below 10^14, i.e. before the year 5138)."},
                        "theme": {"type": "string", "minLength": 1, "maxLength": 50, "description": "Theme shown."},
                        "duration": {"type": "number", "minimum": 0, "maximum": 86400000,
                            "description": "How long, in ms (at most a day)."}
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
create function app_logic.record_brand_engagement_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_session text := app_logic.text_field(p_body, 'sessionId');
begin
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
comment on function app_logic.record_brand_engagement_handler(jsonb) is
'What POST /api/brand-engagement does with a body that passed: store it as one more row of the session.';

select app_logic.declare_post(
    'record_brand_engagement', 'brand_engagement', 'app_logic.record_brand_engagement_rule',
    'app_logic.record_brand_engagement_handler'
);
comment on function api.record_brand_engagement(jsonb) is
'POST /api/brand-engagement: record what a session did with the logo, sections and CTAs. '
'201 {"status":"recorded"}; 400 naming every invalid field; 429 over the rate limit '
'(120 per client IP per minute by default).';

-- A stored lead claims the session it names through the trigger leads_session on app.leads
-- (db/functions/200-ab-tests.sql, which converts the session's A/B tests in the same call); a
-- resubmission claims its session in submit_lead.
