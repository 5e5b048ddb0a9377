-- Health endpoints: ok when the endpoint's objects are usable; 503 naming what is missing
-- when a table, a partition, a function or anon's privilege is gone. No personal data.
begin;
select plan(13);

select is(
    tap.call_as('anon', 'api.check_accessibility_preferences_health()'),
    '{"status": 200, "body": {"status": "ok", "endpoint": "accessibility-preferences"}}',
    'accessibility preferences are healthy, for anon, and say nothing else'
);
select is(
    tap.call_as('anon', 'api.check_brand_engagement_health()'),
    '{"status": 200, "body": {"status": "ok", "endpoint": "brand-engagement"}}',
    'brand engagement is healthy'
);
select is(
    tap.call_as('anon', 'api.check_page_views_health()'),
    '{"status": 200, "body": {"status": "ok", "endpoint": "page-views"}}',
    'page views are healthy'
);
select is(
    (
        select array_agg(distinct provolatile::text) from pg_proc
        where pronamespace = 'api'::regnamespace and proname like 'check\_%\_health'
    ),
    '{s}', 'every health function is STABLE, so GET runs it read-only'
);
select ok(
    (
        select bool_and(has_function_privilege('anon', p.oid, 'execute')) from pg_proc as p
        where p.pronamespace = 'api'::regnamespace and p.proname like 'check\_%\_health'
    ),
    'anon may call every health function'
);

-- The page views partition of the (frozen) current month is missing.
select set_config('app.frozen_now', '2040-01-15 12:00:00+00', true);
select is(
    tap.call_as('anon', 'api.check_page_views_health()'),
    jsonb_build_object('status', 503, 'body', jsonb_build_object(
        'code', 'CHU01',
        'message', 'The page-views endpoint is unavailable: partition app.page_views_2040_01 of the current month is missing.',
        'details', 'Partition app.page_views_2040_01 of the current month is missing.',
        'hint', 'Operators: invoke db.status shows drift; invoke db.build --force restores functions, grants and partitions.',
        'status', 'unavailable', 'endpoint', 'page-views'
    )),
    'without the current month''s partition, page views health is 503 naming it'
);
select set_config('app.frozen_now', '', true);

select is(
    tap.call_as('anon', 'api.check_brand_engagement_health()') ->> 'status', '200',
    'the missing page views partition does not affect brand engagement'
);

revoke execute on function api.save_accessibility_preferences(jsonb) from anon;
select is(
    tap.call_as('anon', 'api.check_accessibility_preferences_health()') #>> '{body,message}',
    'The accessibility-preferences endpoint is unavailable: '
    || 'the anon role may not execute api.save_accessibility_preferences(jsonb).',
    'a revoked execute privilege is a 503 naming it'
);

drop view api.brand_performance, api.design_effectiveness, app_logic.brand_engagement_opened;
drop table app.brand_engagement;
select is(
    tap.call_as('anon', 'api.check_brand_engagement_health()') #>> '{body,details}',
    'Table app.brand_engagement is missing.',
    'a dropped table is a 503 naming it'
);
select is(
    tap.call_as('anon', 'api.check_brand_engagement_health()') ->> 'status', '503',
    'a dropped table makes the health check 503'
);

drop function api.record_page_view(jsonb);
select is(
    tap.call_as('anon', 'api.check_page_views_health()') #>> '{body,details}',
    'Function api.record_page_view(jsonb) is missing.',
    'a dropped endpoint function is a 503 naming it'
);

revoke usage on schema api from anon;
select is(
    tap.call_as('reader', 'api.check_page_views_health()') #>> '{body,details}',
    'Function api.record_page_view(jsonb) is missing. The anon role has no usage on schema api.',
    'several problems are all named in details'
);
select is(
    tap.call_as('reader', 'api.check_page_views_health()') #>> '{body,message}',
    'The page-views endpoint is unavailable: function api.record_page_view(jsonb) is missing; '
    || 'the anon role has no usage on schema api.',
    'the message lists every problem in one sentence'
);

select * from finish();
rollback;
