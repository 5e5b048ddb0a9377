-- Data protection across sessions: every session a person's submissions named first is theirs
-- for export and erasure, resubmissions from later sessions included; a session another
-- person named later stays with its owner.
begin;
select plan(8);

delete from app.rate_limit_rules;
select set_config('request.headers', '{"x-real-ip": "198.51.100.20"}', true);

-- Ada browses and submits on her laptop, later resubmits from her phone.
select tap.call_as('anon', $$api.record_page_view('{"sessionId": "ada-laptop", "path": "/contact"}')$$);
select
    tap.call_as(
        'anon', $$api.save_accessibility_preferences('{"sessionId": "ada-laptop", "accessibilityTheme": "tritanopia"}')$$
    );
select tap.call_as('anon', format('api.submit_lead(%L)', tap.lead('{"email": "ada@example.org", "sessionId": "ada-laptop"}')));
select tap.call_as('anon', $$api.record_page_view('{"sessionId": "ada-phone", "path": "/pricing"}')$$);
select tap.call_as(
    'anon', $$api.save_accessibility_preferences('{"sessionId": "ada-phone", "accessibilityTheme": "protanopia"}')$$
);
select tap.call_as('anon', $$api.record_brand_engagement('{"sessionId": "ada-phone", "scrollDepthPercentage": 10}')$$);
select tap.call_as('anon', format('api.submit_lead(%L)', tap.lead('{"email": "Ada@Example.org", "sessionId": "ada-phone"}')));
select tap.call_as('anon', $$api.record_page_view('{"sessionId": "ada-phone", "path": "/thanks"}')$$);
-- Mallory names Ada's phone session in a lead of her own.
select tap.call_as('anon', format('api.submit_lead(%L)', tap.lead('{"email": "mallory@example.net", "sessionId": "ada-phone"}')));

select is(
    (
        select
            jsonb_build_object(
                'preferences', jsonb_array_length(d -> 'accessibilityPreferences'),
                'engagement', jsonb_array_length(d -> 'brandEngagement'),
                'pageViews',
                (select jsonb_agg(v -> 'path' order by v ->> 'path') from jsonb_array_elements(d -> 'pageViews') as v)
            )
        from app_logic.export_personal_data('ada@example.org') as d
    ),
    '{"preferences": 2, "engagement": 1, "pageViews": ["/contact", "/pricing", "/thanks"]}',
    'the export holds both sessions'' preferences, engagement and page views, before and after each submission'
);
select is(
    app_logic.export_personal_data('ada@example.org') -> 'sessions', '["ada-laptop", "ada-phone"]',
    'the export lists the sessions the person owns'
);
select is(
    (
        select
            jsonb_build_object(
                'preferences', jsonb_array_length(d -> 'accessibilityPreferences'),
                'engagement', jsonb_array_length(d -> 'brandEngagement'),
                'pageViews', jsonb_array_length(d -> 'pageViews'), 'sessions', d -> 'sessions'
            )
        from app_logic.export_personal_data('mallory@example.net') as d
    ),
    '{"preferences": 0, "engagement": 0, "pageViews": 0, "sessions": []}',
    'naming someone else''s session shows none of it in one''s own export'
);
select is(
    app_logic.erase_personal_data('mallory@example.net', 'test') - 'leadInteractions',
    '{"leads": 1, "pageViews": 0, "brandEngagement": 0, "rateLimitCounters": 0, "accessibilityPreferences": 0,
      "abTestExposures": 0, "abTestConversions": 0, "logoInteractionHeatmaps": 0}',
    'erasing the person who named another''s session removes none of its data'
);
select is(
    app_logic.erase_personal_data('ada@example.org', 'test') - 'leadInteractions',
    '{"leads": 1, "pageViews": 3, "brandEngagement": 1, "rateLimitCounters": 0, "accessibilityPreferences": 2,
      "abTestExposures": 0, "abTestConversions": 0, "logoInteractionHeatmaps": 0}',
    'erasure removes the data of every session the person owns'
);
select is_empty(
    $$ select session_id from app.page_views where session_id in ('ada-laptop', 'ada-phone')
       union all select session_id from app.accessibility_preferences where session_id in ('ada-laptop', 'ada-phone')
       union all select session_id from app.brand_engagement where session_id in ('ada-laptop', 'ada-phone') $$,
    'nothing of either session survives the erasure'
);
select is_empty(
    'select session_id from app.lead_sessions', 'the session claims went with the leads'
);
select is(
    (
        select array_agg(event::text order by seq) from app.consent_audit
        where subject = app_logic.person_pseudonym('ada@example.org')
    ),
    array['consent', 'consent', 'consent', 'consent', 'erasure'],
    'the audit keeps the pseudonymous consents and records the erasure'
);

select * from finish();
rollback;
