-- The brand audit log: the generic trigger records changed columns with old and new values and
-- the actor; it is append-only for every role; only admin reads it.
begin;
select plan(9);

delete from app.rate_limit_rules
where action = 'accessibility_preferences';
select tap.call_as('anon', $$api.save_accessibility_preferences('{"sessionId": "s", "accessibilityTheme": "protanopia"}')$$);
select tap.call_as('anon', $$api.save_accessibility_preferences('{"sessionId": "s", "accessibilityTheme": "deuteranopia"}')$$);

select is(
    (
        select array_agg(operation order by id) from app.brand_audit
        where table_name = 'accessibility_preferences'
    ),
    array['INSERT', 'UPDATE'],
    'an insert and an update of preferences are recorded'
);
select is(
    (
        select changes -> 'sealed' from app.brand_audit
        where operation = 'UPDATE'
    ),
    '{"old": "[secret]", "new": "[secret]"}'::jsonb,
    'an update of encrypted fields names the sealed column as changed, never its values'
);
select is(
    (
        select actor_role from app.brand_audit
        where operation = 'UPDATE'
    ),
    'anon',
    'the actor is the request''s role'
);
select throws_ok(
    'update app.brand_audit set actor_role = ''x''', 'CHA01', null,
    'UPDATE of the log is refused for the owner'
);
select throws_ok('delete from app.brand_audit', 'CHA01', null, 'DELETE of the log is refused for the owner');
select throws_ok(
    'truncate app.brand_audit', 'CHA01', 'the brand audit log is append-only: TRUNCATE is refused',
    'TRUNCATE of the log is refused for the owner'
);
-- The guard is enabled ALWAYS (app_logic.declare_append_only), like the consent audit's.
set local session_replication_role = replica;
select throws_ok(
    'delete from app.brand_audit', 'CHA01', 'the brand audit log is append-only: DELETE is refused',
    'the guard holds with session_replication_role = replica'
);
reset session_replication_role;
select ok(
    has_table_privilege('admin', 'api.brand_audit', 'select') and not has_table_privilege('reader', 'api.brand_audit', 'select')
    and not has_table_privilege('anon', 'api.brand_audit', 'select'),
    'only admin reads the log'
);
select is(
    (
        select count(*)::integer from pg_trigger
        where tgname = 'brand_audit' and tgrelid in (
            'app.accessibility_preferences'::regclass, 'app.brand_engagement'::regclass, 'app.settings'::regclass,
            'app.api_keys'::regclass, 'app.rate_limit_rules'::regclass, 'app.retention_rules'::regclass
        )
    ),
    6,
    'the brand data, rules, keys and settings are attached'
);

select * from finish();
rollback;
