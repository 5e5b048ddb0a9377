-- (5) A page view through the endpoint, as PostgREST runs it.
\set o2 random(0, 255)
\set o3 random(0, 255)
\set o4 random(1, 254)
begin isolation level read committed;
select
    set_config('role', 'anon', true),
    set_config('request.jwt.claims', '{"role":"anon"}', true),
    set_config('request.method', 'POST', true),
    set_config('request.path', '/rpc/record_page_view', true),
    set_config(
        'request.headers',
        format('{"x-real-ip":"10.%s.%s.%s","user-agent":"pgbench","content-type":"application/json"}', :o2, :o3, :o4),
        true
    ),
    set_config('request.cookies', '{}', true);
select app_logic.pre_request();
select api.record_page_view(jsonb_build_object(
    'sessionId', 's' || gen_random_uuid(), 'path', '/ecosystem',
    'referrer', 'https://www.example.com/blog?q=1', 'deviceType', 'desktop', 'durationMs', 5300
));
select current_setting('response.status', true);
commit;
