-- app_logic.respond: sets the status, the headers only when given, and answers its body; an
-- SQL expression the planner inlines into its caller (db/functions/000-foundation.sql).
begin;
select plan(8);

select is(app_logic.respond(201, '{"status": "received"}'), '{"status": "received"}', 'it answers its body');
select is(current_setting('response.status'), '201', 'it sets the status');
select set_config('response.headers', '[{"X-Kept": "1"}]', true);
select is(app_logic.respond(400, '[1, 2]'), '[1, 2]', 'an array body is answered as it is');
select is(current_setting('response.headers'), '[{"X-Kept": "1"}]', 'without headers it leaves those set before');
select is(
    app_logic.respond(304, null, '[{"ETag": "\"abc\""}]'), null, 'a null body is answered as null, with headers'
);
select is(
    current_setting('response.status') || ' ' || current_setting('response.headers'),
    '304 [{"ETag": "\"abc\""}]',
    'the status and the headers given are set'
);

select ok(
    tap.plan_of($$ select app_logic.respond(201, '{"status": "received"}') $$) ~ 'set_config'
    and tap.plan_of($$ select app_logic.respond(201, '{"status": "received"}') $$) !~ 'respond',
    'a call is inlined: the plan evaluates set_config, not respond'
);
select ok(
    tap.plan_of($$ select app_logic.respond(429, '{}', jsonb_build_array(jsonb_build_object('Retry-After', '5'))) $$)
    !~ 'respond',
    'a call with headers built in place is inlined too'
);

select * from finish();
rollback;
