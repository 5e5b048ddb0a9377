-- Accessibility preferences and brand engagement: every rule, the endpoints as anon, the link
-- to a lead from both sides, and the privileges and policies of each role.
begin;
select plan(83);

-- The fields a rule finds wrong in a body, sorted.
create function pg_temp.bad_fields(p_body jsonb, p_rule jsonb) returns text[]
language sql stable as $$
    select coalesce(array_agg(distinct p ->> 'field' order by p ->> 'field'), '{}')
    from jsonb_array_elements(app_logic.validate(p_body, p_rule)) as p
$$;

-- A call as a role, the way PostgREST makes it: the body and the status it set.
create function pg_temp.call_as(p_role text, p_call text) returns jsonb
language plpgsql volatile as $$
declare
    v_body jsonb;
begin
    perform set_config('response.status', '', true);
    perform set_config('role', p_role, true);
    execute 'select ' || p_call into v_body;
    reset role;
    return jsonb_build_object('status', nullif(current_setting('response.status'), '')::integer, 'body', v_body);
end
$$;

create function pg_temp.prefs(p_change jsonb) returns text[]
language sql stable as $$
    select pg_temp.bad_fields(
        '{"sessionId": "sess_abc123", "accessibilityTheme": "deuteranopia"}'::jsonb || p_change,
        app_logic.save_accessibility_preferences_rule()
    )
$$;

create function pg_temp.engagement(p_change jsonb) returns text[]
language sql stable as $$
    select pg_temp.bad_fields('{"sessionId": "sess_abc123"}'::jsonb || p_change, app_logic.record_brand_engagement_rule())
$$;

-- Rule: accessibility preferences

select is(
    pg_temp.prefs('{
        "darkModePreference": true, "reducedMotion": false, "highContrast": true, "fontSizePreference": "x-large",
        "logoInteractionCount": 5, "themeSwitchCount": 2, "sessionDuration": 180000
    }'),
    '{}', 'preferences: every field with a valid value passes'
);
select is(
    pg_temp.bad_fields('{"accessibilityTheme": "default"}', app_logic.save_accessibility_preferences_rule()),
    '{sessionId}', 'preferences: sessionId is required'
);
select is(pg_temp.prefs('{"sessionId": "   "}'), '{sessionId}', 'preferences: a blank sessionId is refused');
select is(
    pg_temp.prefs(jsonb_build_object('sessionId', repeat('s', 101))), '{sessionId}',
    'preferences: a sessionId of 101 characters is refused'
);
select is(
    pg_temp.prefs(jsonb_build_object('sessionId', repeat('s', 100))), '{}',
    'preferences: a sessionId of 100 characters passes'
);
select is(pg_temp.prefs('{"sessionId": 42}'), '{sessionId}', 'preferences: a numeric sessionId is refused');
select is(
    pg_temp.bad_fields('{"sessionId": "s"}', app_logic.save_accessibility_preferences_rule()),
    '{accessibilityTheme}', 'preferences: accessibilityTheme is required'
);
select is(
    pg_temp.prefs('{"accessibilityTheme": "sepia"}'), '{accessibilityTheme}',
    'preferences: an unknown accessibilityTheme is refused'
);
select is(
    pg_temp.prefs('{"darkModePreference": "true"}'), '{darkModePreference}',
    'preferences: darkModePreference must be a JSON boolean'
);
select is(pg_temp.prefs('{"reducedMotion": 1}'), '{reducedMotion}', 'preferences: reducedMotion must be a boolean');
select is(pg_temp.prefs('{"highContrast": "no"}'), '{highContrast}', 'preferences: highContrast must be a boolean');
select is(
    pg_temp.prefs('{"fontSizePreference": "huge"}'), '{fontSizePreference}',
    'preferences: an unknown fontSizePreference is refused'
);
select is(
    pg_temp.prefs('{"logoInteractionCount": -1}'), '{logoInteractionCount}',
    'preferences: a negative logoInteractionCount is refused'
);
select is(
    pg_temp.prefs('{"themeSwitchCount": 1.5}'), '{themeSwitchCount}',
    'preferences: a fractional themeSwitchCount is refused'
);
select is(
    pg_temp.prefs('{"sessionDuration": 2147483648}'), '{sessionDuration}',
    'preferences: a sessionDuration beyond an integer column is refused'
);
select is(pg_temp.prefs('{"sessionDuration": "60"}'), '{sessionDuration}', 'preferences: a string sessionDuration is refused');
select is(pg_temp.prefs('{"theme": "default"}'), '{theme}', 'preferences: an unknown field is refused by name');
select is(
    pg_temp.prefs('{"darkModePreference": null, "sessionDuration": null}'), '{}',
    'preferences: a JSON null is the same as leaving the field out'
);

-- Rule: brand engagement

select is(
    pg_temp.engagement('{
        "logoInteractions": [{"timestamp": 1767225600000, "theme": "protanopia", "duration": 1200.5}],
        "scrollDepthPercentage": 100, "timeSpentPerSection": {"hero": 12000, "ecosystem": 0.5},
        "ctaClicks": ["contact", {"id": "demo"}], "coreWebVitals": {"lcp": 2300, "fid": 85, "cls": 0.08, "inp": 120, "ttfb": 0},
        "accessibilityFeaturesUsed": ["reduced-motion"], "keyboardNavigationUsed": true, "logoAccessibilityThemeChanges": 3
    }'),
    '{}', 'engagement: every field with a valid value passes'
);
select is(
    pg_temp.bad_fields('{}', app_logic.record_brand_engagement_rule()), '{sessionId}',
    'engagement: sessionId is required'
);
select is(
    pg_temp.engagement(jsonb_build_object('logoInteractions', (
        select jsonb_agg('{"timestamp": 1, "theme": "default", "duration": 1}'::jsonb) from generate_series(1, 501)
    ))),
    '{logoInteractions}', 'engagement: more than 500 logoInteractions are refused'
);
select is(
    pg_temp.engagement(jsonb_build_object('logoInteractions', (
        select jsonb_agg('{"timestamp": 1, "theme": "default", "duration": 1}'::jsonb) from generate_series(1, 500)
    ))),
    '{}', 'engagement: 500 logoInteractions pass'
);
select is(
    pg_temp.engagement('{"logoInteractions": [{"timestamp": 1, "duration": 1}]}'), '{logoInteractions[0].theme}',
    'engagement: a logo interaction without theme is refused, naming the item'
);
select is(
    pg_temp.engagement('{"logoInteractions": [{"timestamp": -1, "theme": "default", "duration": 1}]}'),
    '{logoInteractions[0].timestamp}', 'engagement: a negative logo interaction timestamp is refused'
);
select is(
    pg_temp.engagement('{"logoInteractions": [{"timestamp": 1, "theme": "default", "duration": "1s"}]}'),
    '{logoInteractions[0].duration}', 'engagement: a logo interaction duration must be a number'
);
select is(
    pg_temp.engagement(jsonb_build_object('logoInteractions', jsonb_build_array(
        jsonb_build_object('timestamp', 1, 'theme', repeat('t', 51), 'duration', 1)
    ))),
    '{logoInteractions[0].theme}', 'engagement: a logo interaction theme longer than 50 is refused'
);
select is(
    pg_temp.engagement('{"logoInteractions": [{"timestamp": 1, "theme": "d", "duration": 1, "x": 0}]}'),
    '{logoInteractions[0].x}', 'engagement: a logo interaction with an unknown key is refused'
);
select is(
    pg_temp.engagement('{"logoInteractions": {"timestamp": 1}}'), '{logoInteractions}',
    'engagement: logoInteractions must be an array'
);
select is(
    pg_temp.engagement('{"scrollDepthPercentage": 101}'), '{scrollDepthPercentage}',
    'engagement: scrollDepthPercentage above 100 is refused'
);
select is(
    pg_temp.engagement('{"scrollDepthPercentage": -1}'), '{scrollDepthPercentage}',
    'engagement: a negative scrollDepthPercentage is refused'
);
select is(
    pg_temp.engagement('{"scrollDepthPercentage": 50.5}'), '{scrollDepthPercentage}',
    'engagement: a fractional scrollDepthPercentage is refused'
);
select is(
    pg_temp.engagement('{"timeSpentPerSection": {"hero": -5}}'), '{timeSpentPerSection.hero}',
    'engagement: a negative time in a section is refused, naming the section'
);
select is(
    pg_temp.engagement('{"timeSpentPerSection": {"hero": "5s"}}'), '{timeSpentPerSection.hero}',
    'engagement: a section time must be a number'
);
select is(
    pg_temp.engagement(jsonb_build_object('timeSpentPerSection', (
        select jsonb_object_agg('s' || i, i) from generate_series(1, 51) as i
    ))),
    '{timeSpentPerSection}', 'engagement: more than 50 sections are refused'
);
select is(
    pg_temp.engagement(jsonb_build_object('timeSpentPerSection', jsonb_build_object(repeat('k', 101), 1))),
    array['timeSpentPerSection.' || repeat('k', 100)], 'engagement: a section name longer than 100 is refused'
);
select is(
    pg_temp.engagement('{"timeSpentPerSection": [1, 2]}'), '{timeSpentPerSection}',
    'engagement: timeSpentPerSection must be an object'
);
select is(
    pg_temp.engagement(jsonb_build_object('ctaClicks', (select jsonb_agg(i) from generate_series(1, 101) as i))),
    '{ctaClicks}', 'engagement: more than 100 ctaClicks are refused'
);
select is(
    pg_temp.engagement(jsonb_build_object('ctaClicks', jsonb_build_array(repeat('c', 9000)))),
    '{ctaClicks}', 'engagement: ctaClicks over 8 KiB of JSON are refused'
);
select is(pg_temp.engagement('{"ctaClicks": "contact"}'), '{ctaClicks}', 'engagement: ctaClicks must be an array');
select is(
    pg_temp.engagement('{"coreWebVitals": {"lcp": 1, "tbt": 2}}'), '{coreWebVitals.tbt}',
    'engagement: an unknown Core Web Vital is refused by name'
);
select is(
    pg_temp.engagement('{"coreWebVitals": {"lcp": -1}}'), '{coreWebVitals.lcp}',
    'engagement: a negative lcp is refused'
);
select is(
    pg_temp.engagement('{"coreWebVitals": {"cls": "0.1"}}'), '{coreWebVitals.cls}',
    'engagement: a cls given as a string is refused'
);
select is(
    pg_temp.engagement('{"coreWebVitals": {"ttfb": 1e300}}'), '{coreWebVitals.ttfb}',
    'engagement: an absurdly large ttfb is refused'
);
select is(
    pg_temp.engagement(jsonb_build_object('accessibilityFeaturesUsed', (
        select jsonb_agg('f' || i) from generate_series(1, 51) as i
    ))),
    '{accessibilityFeaturesUsed}', 'engagement: more than 50 accessibilityFeaturesUsed are refused'
);
select is(
    pg_temp.engagement('{"accessibilityFeaturesUsed": ["ok", 7]}'), '{accessibilityFeaturesUsed[1]}',
    'engagement: an accessibility feature must be a string'
);
select is(
    pg_temp.engagement(jsonb_build_object('accessibilityFeaturesUsed', jsonb_build_array(repeat('f', 101)))),
    '{accessibilityFeaturesUsed[0]}', 'engagement: an accessibility feature longer than 100 is refused'
);
select is(
    pg_temp.engagement('{"keyboardNavigationUsed": "yes"}'), '{keyboardNavigationUsed}',
    'engagement: keyboardNavigationUsed must be a boolean'
);
select is(
    pg_temp.engagement('{"logoAccessibilityThemeChanges": -2}'), '{logoAccessibilityThemeChanges}',
    'engagement: a negative logoAccessibilityThemeChanges is refused'
);
select is(
    pg_temp.engagement('{"pageLoadPerformance": {}}'), '{pageLoadPerformance}',
    'engagement: an unknown field is refused by name'
);

-- Every property of both rules is documented (the OpenAPI document shows it).
select is_empty(
    $$ select r.name || '.' || p.key
       from (values ('preferences', app_logic.save_accessibility_preferences_rule()),
                    ('engagement', app_logic.record_brand_engagement_rule())) as r (name, rule)
       cross join lateral jsonb_each(r.rule -> 'properties') as p
       where not p.value ? 'description' $$,
    'every property of both rules has a description'
);

-- The endpoints, as PostgREST calls them

select set_config('request.headers', '{"x-real-ip": "198.51.100.7"}', true);

select is(
    pg_temp.call_as('anon', $$api.save_accessibility_preferences(
        '{"sessionId": "sess-a", "accessibilityTheme": "tritanopia", "sessionDuration": 5000}')$$),
    '{"status": 201, "body": {"status": "created"}}', 'the first post of a session is 201 created'
);
select is(
    pg_temp.call_as('anon', $$api.save_accessibility_preferences(
        '{"sessionId": " sess-a ", "accessibilityTheme": "achromatopsia", "highContrast": true}')$$),
    '{"status": 200, "body": {"status": "updated"}}', 'a later post of the same (trimmed) session is 200 updated'
);
select is(
    pg_temp.call_as('anon', $$api.save_accessibility_preferences('{"sessionId": "sess-a", "accessibilityTheme": "nope"}')$$)
    #>> '{body,code}',
    'CHV01', 'an invalid post answers CHV01'
);
select is(
    pg_temp.call_as('anon', $$api.save_accessibility_preferences('{"sessionId": "sess-a", "accessibilityTheme": "nope"}')$$)
    ->> 'status',
    '400', 'an invalid post is 400'
);
select is(
    pg_temp.call_as('anon', $$api.record_brand_engagement(
        '{"sessionId": "sess-a", "scrollDepthPercentage": 40, "ctaClicks": ["contact"]}')$$),
    '{"status": 201, "body": {"status": "recorded"}}', 'brand engagement is 201 recorded'
);
select is(
    pg_temp.call_as('anon', $$api.record_brand_engagement('{"sessionId": "sess-a", "scrollDepthPercentage": 400}')$$)
    #>> '{body,message}',
    'scrollDepthPercentage must be between 0 and 100.', 'an invalid engagement names the field in its message'
);

select results_eq(
    $$ select accessibility_theme, dark_mode_preference, reduced_motion, high_contrast, font_size_preference,
              logo_interaction_count, theme_switch_count, session_duration
       from app.accessibility_preferences where session_id = 'sess-a' $$,
    $$ values ('achromatopsia', true, false, true, 'medium', 0, 0, 5000) $$,
    'one row per session: defaults first, then the later post''s fields, the rest kept'
);
select is(
    (
        select count(*)::integer from app.brand_engagement
        where session_id = 'sess-a'
    ), 1,
    'the invalid engagement stored nothing'
);
select results_eq(
    $$ select logo_interactions, time_spent_per_section, core_web_vitals, accessibility_features_used,
              keyboard_navigation_used, logo_accessibility_theme_changes
       from app.brand_engagement where session_id = 'sess-a' $$,
    $$ values ('[]'::jsonb, '{}'::jsonb, '{}'::jsonb, '[]'::jsonb, false, 0) $$,
    'brand engagement fills the defaults of the fields left out'
);
select is(
    (
        select r.max_requests || '/' || r.window_seconds || 's' from app.rate_limit_rules as r
        where r.action = 'accessibility_preferences' and r.scope = 'ip'
    ),
    '120/60s', 'preferences are limited to 120 per client IP per minute'
);
select is(
    (
        select r.max_requests || '/' || r.window_seconds || 's' from app.rate_limit_rules as r
        where r.action = 'brand_engagement' and r.scope = 'ip'
    ),
    '120/60s', 'engagement is limited to 120 per client IP per minute'
);

-- A lead links its session's data

insert into app.leads (id, first_name, last_name, email, gdpr_consent, session_id, created_at) values
('00000000-0000-4000-8000-00000000000a', 'Ada', 'Lovelace', 'ada@example.com', true, 'sess-a', now());
select is(
    (
        select lead_id from app.accessibility_preferences
        where session_id = 'sess-a'
    ),
    '00000000-0000-4000-8000-00000000000a'::uuid,
    'a lead arriving after the preferences links them'
);
select is(
    (
        select array_agg(distinct lead_id) from app.brand_engagement
        where session_id = 'sess-a'
    ),
    array['00000000-0000-4000-8000-00000000000a'::uuid],
    'a lead arriving after the engagement links it'
);

select pg_temp.call_as('anon', $$api.record_brand_engagement('{"sessionId": "sess-a"}')$$);
select pg_temp.call_as(
    'anon', $$api.save_accessibility_preferences('{"sessionId": "sess-b", "accessibilityTheme": "default"}')$$
);
select is(
    (
        select count(*)::integer from app.brand_engagement
        where session_id = 'sess-a' and lead_id = '00000000-0000-4000-8000-00000000000a'
    ),
    2, 'engagement posted after the lead links to it'
);
select is(
    (
        select lead_id from app.accessibility_preferences
        where session_id = 'sess-b'
    ), null,
    'another session''s preferences stay unlinked'
);

update app.leads set session_id = 'sess-b'
where id = '00000000-0000-4000-8000-00000000000a';
select is(
    (
        select lead_id from app.accessibility_preferences
        where session_id = 'sess-b'
    ),
    '00000000-0000-4000-8000-00000000000a'::uuid,
    'a lead whose session id changes links the new session''s data'
);
select is(
    (
        select lead_id from app.accessibility_preferences
        where session_id = 'sess-a'
    ),
    '00000000-0000-4000-8000-00000000000a'::uuid,
    'the old session''s data stays linked to the lead'
);

insert into app.leads (id, first_name, last_name, email, gdpr_consent, session_id, created_at) values
('00000000-0000-4000-8000-00000000000b', 'Bob', 'Other', 'bob@example.com', true, 'sess-b', now() + interval '1 second');
select is(
    app_logic.session_lead('sess-b'), '00000000-0000-4000-8000-00000000000b'::uuid,
    'with two leads in one session, the newest is the session''s lead'
);
select has_trigger('app', 'leads', 'leads_link_session', 'app.leads has the session-linking trigger');

-- Privileges and policies per role

select ok(
    has_function_privilege('anon', 'api.save_accessibility_preferences(jsonb)', 'execute')
    and has_function_privilege('reader', 'api.save_accessibility_preferences(jsonb)', 'execute')
    and has_function_privilege('admin', 'api.save_accessibility_preferences(jsonb)', 'execute'),
    'anon, reader and admin may post preferences'
);
select ok(
    has_function_privilege('anon', 'api.record_brand_engagement(jsonb)', 'execute')
    and has_function_privilege('reader', 'api.record_brand_engagement(jsonb)', 'execute')
    and has_function_privilege('admin', 'api.record_brand_engagement(jsonb)', 'execute'),
    'anon, reader and admin may post engagement'
);
select ok(
    not has_function_privilege('anon', 'app_logic.session_lead(text)', 'execute'),
    'anon may not look up a session''s lead'
);
select ok(
    not exists (
        select from unnest(array['anon', 'reader', 'admin']) as r
        cross join unnest(array['app.accessibility_preferences', 'app.brand_engagement']) as t
        where has_table_privilege(r, t, 'insert,update,delete,truncate') or has_any_column_privilege(r, t, 'insert,update')
    ),
    'no role may write the engagement tables directly: only through the endpoints'
);
select ok(
    not has_any_column_privilege('anon', 'app.accessibility_preferences', 'select')
    and not has_any_column_privilege('anon', 'app.brand_engagement', 'select'),
    'anon may read neither table'
);
select ok(
    has_column_privilege('reader', 'app.accessibility_preferences', 'accessibility_theme', 'select')
    and has_column_privilege('admin', 'app.brand_engagement', 'core_web_vitals', 'select'),
    'reader and admin may read the columns the analytics use'
);
select ok(
    not has_column_privilege('reader', 'app.accessibility_preferences', 'session_id', 'select')
    and not has_column_privilege('reader', 'app.accessibility_preferences', 'lead_id', 'select')
    and not has_column_privilege('admin', 'app.brand_engagement', 'lead_id', 'select'),
    'reader and admin may not read which lead or session a preference belongs to'
);
select policies_are(
    'app', 'accessibility_preferences', array['accessibility_preferences_analytics_read'],
    'accessibility_preferences has only the analytics read policy'
);
select policy_roles_are(
    'app', 'accessibility_preferences', 'accessibility_preferences_analytics_read', array['reader', 'admin'],
    'the preferences read policy applies to reader and admin'
);
select policy_cmd_is(
    'app', 'accessibility_preferences', 'accessibility_preferences_analytics_read', 'select',
    'the preferences policy allows select only'
);
select policies_are(
    'app', 'brand_engagement', array['brand_engagement_analytics_read'],
    'brand_engagement has only the analytics read policy'
);
select policy_roles_are(
    'app', 'brand_engagement', 'brand_engagement_analytics_read', array['reader', 'admin'],
    'the engagement read policy applies to reader and admin'
);
select policy_cmd_is(
    'app', 'brand_engagement', 'brand_engagement_analytics_read', 'select',
    'the engagement policy allows select only'
);

select throws_ok(
    $$ select pg_temp.call_as('reader', 'lead_id from app.brand_engagement limit 1') $$,
    '42501', 'permission denied for table brand_engagement', 'reader cannot query the engagement table directly'
);

select * from finish();
rollback;
