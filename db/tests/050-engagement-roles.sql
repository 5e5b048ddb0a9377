-- Accessibility preferences and brand engagement: the privileges and policies of each role.
begin;
select plan(14);

-- Privileges and policies per role

select
    ok(
        (select bool_and(has_function_privilege(r, e.fn, 'execute')) from unnest(array['anon', 'reader', 'admin']) as r),
        format('anon, reader and admin may post %s', e.what)
    )
from (
    values
    (1, 'api.save_accessibility_preferences(jsonb)', 'preferences'), (2, 'api.record_brand_engagement(jsonb)', 'engagement')
) as e (position, fn, what)
order by e.position;
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
-- Each table: the analytics read policy (select, for reader and admin) and the key holder's
-- (re-encryption), nothing else.
create temporary table engagement_tables (position, name) as
values (1, 'accessibility_preferences'::name), (2, 'brand_engagement'::name);
select
    policies_are(
        'app', t.name, array[t.name || '_analytics_read', t.name || '_keyholder']::name[],
        format('%s has only the analytics read policy and the key holder''s (re-encryption)', t.name)
    )
from engagement_tables as t
order by t.position;
select
    policy_roles_are(
        'app', t.name, (t.name || '_analytics_read')::name, array['reader', 'admin']::name[],
        format('the %s read policy applies to reader and admin', t.name)
    )
from engagement_tables as t
order by t.position;
select
    policy_cmd_is(
        'app', t.name, (t.name || '_analytics_read')::name, 'select', format('the %s read policy allows select only', t.name)
    )
from engagement_tables as t
order by t.position;

select throws_ok(
    $$ select tap.call_as('reader', 'lead_id from app.brand_engagement limit 1') $$,
    '42501', 'permission denied for table brand_engagement', 'reader cannot query the engagement table directly'
);

select * from finish();
rollback;
