-- Accessibility preferences and brand engagement: the privileges and policies of each role.
begin;
select plan(14);

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
    'app', 'accessibility_preferences', array['accessibility_preferences_analytics_read', 'accessibility_preferences_keyholder'],
    'accessibility_preferences has only the analytics read policy and the key holder''s (re-encryption)'
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
    'app', 'brand_engagement', array['brand_engagement_analytics_read', 'brand_engagement_keyholder'],
    'brand_engagement has only the analytics read policy and the key holder''s (re-encryption)'
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
    $$ select tap.call_as('reader', 'lead_id from app.brand_engagement limit 1') $$,
    '42501', 'permission denied for table brand_engagement', 'reader cannot query the engagement table directly'
);

select * from finish();
rollback;
