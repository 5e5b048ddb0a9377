-- Accessibility preferences and brand engagement: the endpoints as PostgREST calls them (201,
-- 200, 400), what they store, and their rate limits.
begin;
select plan(9);

-- The endpoints, as PostgREST calls them

select set_config('request.headers', '{"x-real-ip": "198.51.100.7"}', true);

select is(
    tap.call_as('anon', $$api.save_accessibility_preferences(
        '{"sessionId": "sess-a", "accessibilityTheme": "tritanopia", "sessionDuration": 5000}')$$),
    '{"status": 201, "body": {"status": "created"}}', 'the first post of a session is 201 created'
);
select is(
    tap.call_as('anon', $$api.save_accessibility_preferences(
        '{"sessionId": " sess-a ", "accessibilityTheme": "achromatopsia", "highContrast": true}')$$),
    '{"status": 200, "body": {"status": "updated"}}', 'a later post of the same (trimmed) session is 200 updated'
);
select is(
    (
        select jsonb_build_object('status', a -> 'status', 'code', a #> '{body,code}')
        from tap.call_as(
            'anon', $$api.save_accessibility_preferences('{"sessionId": "sess-a", "accessibilityTheme": "nope"}')$$
        ) as a
    ),
    '{"status": 400, "code": "CHV01"}', 'an invalid post is 400 CHV01'
);
select is(
    tap.call_as('anon', $$api.record_brand_engagement(
        '{"sessionId": "sess-a", "scrollDepthPercentage": 40, "ctaClicks": ["contact"]}')$$),
    '{"status": 201, "body": {"status": "recorded"}}', 'brand engagement is 201 recorded'
);
select is(
    tap.call_as('anon', $$api.record_brand_engagement('{"sessionId": "sess-a", "scrollDepthPercentage": 400}')$$)
    #>> '{body,message}',
    'scrollDepthPercentage must be between 0 and 100.', 'an invalid engagement names the field in its message'
);

select results_eq(
    $$ select accessibility_theme, dark_mode_preference, reduced_motion, high_contrast, font_size_preference,
              logo_interaction_count, theme_switch_count, session_duration
       from app_logic.accessibility_preferences_opened where session_id = 'sess-a' $$,
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
       from app_logic.brand_engagement_opened where session_id = 'sess-a' $$,
    $$ values ('[]'::jsonb, '{}'::jsonb, '{}'::jsonb, '[]'::jsonb, false, 0) $$,
    'brand engagement fills the defaults of the fields left out'
);
select results_eq(
    $$ select r.action, r.max_requests || '/' || r.window_seconds || 's' from app.rate_limit_rules as r
       where r.action in ('accessibility_preferences', 'brand_engagement') and r.scope = 'ip' order by r.action $$,
    $$ values ('accessibility_preferences', '120/60s'), ('brand_engagement', '120/60s') $$,
    'preferences and engagement are each limited to 120 per client IP per minute'
);

select * from finish();
rollback;
