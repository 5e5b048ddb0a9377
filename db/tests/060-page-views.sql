-- Page views: the rule, the referrer reduced to its host, what is (not) stored, the monthly
-- partitions and the job that makes them, and who may do what.
begin;
select plan(52);

create function pg_temp.bad_fields(p_change jsonb) returns text[]
language sql stable as $$
    select coalesce(array_agg(distinct p ->> 'field' order by p ->> 'field'), '{}')
    from jsonb_array_elements(app_logic.validate(
        '{"sessionId": "sess_abc123", "path": "/ecosystem"}'::jsonb || p_change, app_logic.record_page_view_rule()
    )) as p
$$;

-- Rule ---------------------------------------------------------------------------------------

select is(
    pg_temp.bad_fields('{"referrer": "https://www.google.com/search?q=chorus", "deviceType": "mobile", "durationMs": 5400}'),
    '{}', 'every field with a valid value passes'
);
select is(
    (
        select array_agg(p ->> 'field' order by p ->> 'field')
        from jsonb_array_elements(app_logic.validate('{}', app_logic.record_page_view_rule())) as p
    ),
    '{path,sessionId}', 'sessionId and path are required'
);
select is_empty(
    $$ select c.change::text, pg_temp.bad_fields(c.change) from (values
        ('{"path": null}'::jsonb, 'path'), ('{"path": ["/"]}', 'path'), ('{"referrer": "google"}', 'referrer'),
        ('{"referrer": "www.google.com/search"}', 'referrer'), ('{"referrer": "javascript:alert(1)"}', 'referrer'),
        ('{"referrer": 7}', 'referrer'), ('{"deviceType": "phone"}', 'deviceType'), ('{"durationMs": 12.5}', 'durationMs'),
        ('{"durationMs": 2147483648}', 'durationMs'), ('{"userAgent": "Mozilla/5.0"}', 'userAgent'),
        ('{"sessionId": null}', 'sessionId'), (jsonb_build_object('sessionId', repeat('s', 101)), 'sessionId')
    ) as c (change, field)
    where pg_temp.bad_fields(c.change) <> array[c.field] $$,
    'each further bad value names exactly its field'
);
select is(pg_temp.bad_fields('{"path": "ecosystem"}'), '{path}', 'a path not starting with / is refused');
select is(
    pg_temp.bad_fields(jsonb_build_object('path', '/' || repeat('p', 200))), '{path}', 'a path of 201 characters is refused'
);
select is(pg_temp.bad_fields(jsonb_build_object('path', '/' || repeat('p', 199))), '{}', 'a path of 200 characters passes');
select is(pg_temp.bad_fields('{"path": "/a b"}'), '{path}', 'a path with a space is refused');
select is(pg_temp.bad_fields('{"path": 7}'), '{path}', 'a numeric path is refused');
select is(pg_temp.bad_fields('{"referrer": "not a url"}'), '{referrer}', 'a referrer that is not a URL is refused');
select is(pg_temp.bad_fields('{"referrer": "ftp://example.com/"}'), '{referrer}', 'a referrer that is not http(s) is refused');
select is(pg_temp.bad_fields('{"referrer": "https://"}'), '{referrer}', 'a referrer without a host is refused');
select
    is(
        pg_temp.bad_fields('{"referrer": "https://exa mple.com/"}'),
        '{referrer}',
        'a referrer with a space in the host is refused'
    );
select is(
    pg_temp.bad_fields(jsonb_build_object('referrer', 'https://example.com/' || repeat('x', 2048))), '{referrer}',
    'a referrer longer than 2048 characters is refused'
);
select is(pg_temp.bad_fields('{"deviceType": "watch"}'), '{deviceType}', 'an unknown deviceType is refused');
select is(pg_temp.bad_fields('{"durationMs": -1}'), '{durationMs}', 'a negative durationMs is refused');
select is(pg_temp.bad_fields('{"durationMs": 0.5}'), '{durationMs}', 'a fractional durationMs is refused');
select is(pg_temp.bad_fields('{"ip": "192.0.2.1"}'), '{ip}', 'an unknown field (an IP) is refused by name');
select is_empty(
    $$ select p.key from jsonb_each(app_logic.record_page_view_rule() -> 'properties') as p
       where not p.value ? 'description' $$,
    'every property of the rule has a description'
);

select is(
    app_logic.referrer_host('HTTPS://user:secret@WWW.Example.COM.:8443/path?q=1#top'), 'www.example.com',
    'the referrer''s host is kept lower-cased, without user info, port, trailing dot, path or query'
);
select is(app_logic.referrer_host('http://192.0.2.10/x'), '192.0.2.10', 'an IPv4 host is kept');
select is(app_logic.referrer_host('http://[2001:DB8::1]:8080/'), '[2001:db8::1]', 'an IPv6 host is kept lower-cased');
select is(app_logic.referrer_host('android-app://com.example'), null, 'a non-http referrer has no host');
select is(
    app_logic.referrer_host('https://Example.com/share?to=ada@example.org#x@y'), 'example.com',
    'an @ in the path, query or fragment is not user info'
);
select is(app_logic.referrer_host('https://a@b@example.com/'), null, 'a URL with two @ before its path has no host');

-- What a stored path keeps ---------------------------------------------------------------------

select results_eq(
    $$ select app_logic.clean_page_path(p) from unnest(array[
        '/shop;jsessionid=0123ABCD/cart;v=2?x=1',
        '/unsubscribe/ada@example.com/done',
        '/u/ada%40example.com',
        '/reset/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
        '/orders/123e4567-e89b-42d3-a456-426614174000',
        '/magic/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
        '/invite/Gx7pQ2mZr9TkLw4VbN8sY3',
        '/blog/2026/the-chorus-launch-announcement',
        '/ecosystem/partners',
        '/'
    ]) with ordinality as t (p, n) order by n $$,
    $$ values ('/shop/cart'), ('/unsubscribe/:email/done'), ('/u/:email'), ('/reset/:token'), ('/orders/:token'),
              ('/magic/:token'), ('/invite/:token'), ('/blog/2026/the-chorus-launch-announcement'),
              ('/ecosystem/partners'), ('/') $$,
    'paths lose matrix parameters; email and token segments become :email and :token; slugs stay'
);

-- The endpoint -------------------------------------------------------------------------------

select set_config('request.headers', '{"x-real-ip": "198.51.100.9", "user-agent": "Mozilla/5.0 (X11) Test/1"}', true);
select is(
    tap.call_as('anon', $$api.record_page_view('{"sessionId": "sess-p", "path": "/contact?email=ada@example.com#f",
        "referrer": "https://News.Example.org/story?id=7", "deviceType": "tablet", "durationMs": 1.0}')$$),
    '{"status": 201, "body": {"status": "recorded"}}', 'a page view is 201 recorded'
);
select results_eq(
    $$ select session_id, path, referrer_host, device_type, duration_ms from app.page_views $$,
    $$ values ('sess-p', '/contact', 'news.example.org', 'tablet', 1) $$,
    'the path loses its query and fragment, the referrer keeps only its host'
);
select is(
    tap.call_as('anon', $$api.record_page_view('{"sessionId": "sess-p", "path": "/", "referrer": ""}')$$) ->> 'status',
    '201', 'an empty referrer (a page opened directly) is accepted'
);
select is(
    (
        select referrer_host from app.page_views
        where path = '/'
    ), null, 'an empty referrer stores no host'
);
select is(
    tap.call_as('anon', $$api.record_page_view('{"sessionId": "sess-p", "path": "/", "referrer": "nope"}')$$)
    #>> '{body,message}',
    'referrer must be an http or https URL.', 'a bad referrer is a 400 naming referrer'
);
select is(
    tap.call_as('anon', format('api.record_page_view(%L)', jsonb_build_object(
        'sessionId', 's', 'path', '/', 'referrer', 'https://' || repeat(repeat('a', 60) || '.', 5) || 'com/'
    ))) #>> '{body,errors,0,field}',
    'referrer', 'a referrer whose host is longer than 253 characters is a 400 naming referrer'
);
select is((select count(*)::integer from app.page_views), 2, 'rejected page views stored nothing');
select is(
    tap.call_as('anon', $$api.record_page_view('{"sessionId": "sess-p",
        "path": "/account;jsessionid=A1B2C3/ada@example.com/9f86d081884c7d659a2feaa0c55ad015"}')$$) ->> 'status',
    '201', 'a page view whose path holds a session token and an email is recorded'
);
select is(
    (
        select path from app.page_views
        order by id desc limit 1
    ), '/account/:email/:token',
    'without the matrix parameter, the email or the token'
);
select is(
    tap.call_as('anon', $$api.record_page_view('{"sessionId": "sess-p\u001b", "path": "/"}')$$) #>> '{body,errors,0,field}',
    'sessionId', 'an ESC in a page view''s sessionId is refused'
);
select is(
    tap.call_as('anon', $$api.record_page_view('{"sessionId": "s", "path": "/\u0085x"}')$$) #>> '{body,errors,0,field}',
    'path', 'a C1 control in a path is refused'
);
select is(
    tap.call_as('anon', $$api.record_page_view('{"sessionId": "s", "path": "/", "referrer": 1e131071}')$$)
    #>> '{body,errors,0,message}',
    'referrer must be a string.', 'a numeric referrer is refused by type'
);
select columns_are(
    'app', 'page_views', array['id', 'session_id', 'path', 'referrer_host', 'device_type', 'duration_ms', 'viewed_at'],
    'page views have no column for an IP address or a user agent'
);
select is(
    (
        select r.max_requests || '/' || r.window_seconds || 's' from app.rate_limit_rules as r
        where r.action = 'page_views' and r.scope = 'ip'
    ),
    '120/60s', 'page views are limited to 120 per client IP per minute'
);

-- Partitions -------------------------------------------------------------------------------

select is_partitioned('app', 'page_views', 'app.page_views is partitioned');
select ok(
    app_logic.page_view_partition(now()) is not null
    and app_logic.page_view_partition(now() + interval '3 months') is not null,
    'the build made the partitions of this month and the next three'
);
select is(app_logic.ensure_page_view_partitions(3), 0, 'making the partitions again creates none');

select set_config('app.frozen_now', '2031-05-31 23:30:00-05', true);
select is(app_logic.page_view_partition_name(app_logic.now()), 'page_views_2031_06', 'partition names use the UTC month');
select is(app_logic.ensure_page_view_partitions(2), 3, 'months_ahead 2 makes this month and the next two');
select is(
    (
        select array_agg(c.relname::text order by c.relname) from pg_class as c
        inner join pg_inherits as i on c.oid = i.inhrelid
        where i.inhparent = 'app.page_views'::regclass and c.relname like 'page_views_2031%'
    ),
    '{page_views_2031_06,page_views_2031_07,page_views_2031_08}',
    'the new partitions are attached and named page_views_YYYY_MM'
);
select ok(
    (
        select bool_and(c.relrowsecurity and obj_description(c.oid, 'pg_class') like 'Page views of 2031-0%')
        from pg_class as c
        where c.relname like 'page_views_2031%' and c.relkind = 'r'
    ),
    'every new partition has RLS enabled and a comment'
);
insert into app.page_views (session_id, path, viewed_at) values
('edge', '/last', '2031-06-30 23:59:59.999999+00'), ('edge', '/first', '2031-07-01 00:00:00+00');
select results_eq(
    $$ select path, tableoid::regclass::text from app.page_views where session_id = 'edge' order by viewed_at $$,
    $$ values ('/last', 'app.page_views_2031_06'), ('/first', 'app.page_views_2031_07') $$,
    'a partition holds exactly its UTC month'
);
select throws_ok(
    $$ select app_logic.ensure_page_view_partitions(-1) $$, '22023', 'months_ahead must be between 0 and 24, not -1',
    'a negative months_ahead is refused'
);

select set_config('app.frozen_now', '2040-01-15 12:00:00+00', true);
select is(
    tap.call_as('anon', $$api.record_page_view('{"sessionId": "s", "path": "/"}')$$),
    jsonb_build_object('status', 503, 'body', app_logic.error_body(
        'CHU01', 'Page views cannot be stored right now: the partition for this month is missing.',
        'app.page_views_2040_01 does not exist.',
        'Operators: run select app_logic.ensure_page_view_partitions(3) and check the pg_cron job.'
    )),
    'without this month''s partition a page view is a 503 naming it'
);

-- Privileges ---------------------------------------------------------------------------------

select ok(
    has_function_privilege('anon', 'api.record_page_view(jsonb)', 'execute')
    and has_function_privilege('reader', 'api.record_page_view(jsonb)', 'execute')
    and has_function_privilege('admin', 'api.record_page_view(jsonb)', 'execute'),
    'anon, reader and admin may record a page view'
);
select ok(
    not has_any_column_privilege('anon', 'app.page_views', 'select,insert,update')
    and not has_any_column_privilege('reader', 'app.page_views', 'insert,update')
    and not has_any_column_privilege('admin', 'app.page_views', 'insert,update')
    and not has_function_privilege('anon', 'app_logic.ensure_page_view_partitions(integer)', 'execute'),
    'no role may write app.page_views or make partitions directly, and anon may not read it'
);
select is(
    (
        select array_agg(a.attname::text order by a.attname) from pg_attribute as a
        where
            a.attrelid = 'app.page_views'::regclass and a.attnum > 0
            and has_column_privilege('reader', 'app.page_views', a.attname, 'select')
    ),
    '{session_id,viewed_at}',
    'reader reads only the two columns the daily counts need (never path or referrer)'
);

select * from finish();
rollback;
