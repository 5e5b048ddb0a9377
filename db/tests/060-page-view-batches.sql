-- Page views in batches: {"events": [...]} of up to 100, each validated and counted against the
-- rate limit as a single one is; a batch is stored all or nothing, its bad events named by index.
begin;
select plan(19);

-- A batch of these events (a JSON array), or a single page view (an object).
create function pg_temp.send(p_events jsonb) returns jsonb
language sql volatile as $$
    select tap.call_as('anon', format('api.record_page_view(%L::jsonb)', case
        when jsonb_typeof(p_events) = 'array' then jsonb_build_object('events', p_events) else p_events
    end))
$$;

-- How many page views of a session are stored.
create function pg_temp.stored(p_session_id text) returns integer
language sql stable as $$
    select count(*)::integer from app.page_views where session_id = p_session_id
$$;

select set_config('request.headers', '{"x-real-ip": "198.51.100.40"}', true);
select set_config('app.frozen_now', now()::text, true);

select is(
    pg_temp.send($$[
        {"sessionId": "b-1", "path": "/a?x=1", "referrer": "https://Search.Example.com/q"},
        {"sessionId": "b-1", "path": "/b#top", "referrer": ""},
        {"sessionId": "b-1", "path": "/c", "deviceType": "mobile", "durationMs": 1200}
    ]$$),
    '{"status": 201, "body": {"status": "recorded", "count": 3}}',
    'a batch of three page views is 201 with their count'
);
select results_eq(
    $$ select path, referrer_host, device_type, duration_ms from app.page_views where session_id = 'b-1' order by id $$,
    $$ values ('/a', 'search.example.com', null, null), ('/b', null, null, null), ('/c', null, 'mobile', 1200) $$,
    'each event of a batch is stored as a single one would be: path without query, referrer host only'
);
select is(
    (
        select cardinality(c.hits) from app.rate_limit_counters as c
        where c.action = 'page_views' and c.subject = app_logic.rate_limit_subject('page_views', 'ip', '198.51.100.40/32')
    ),
    3, 'a batch of three takes three slots of the client''s rate limit'
);

select is(
    pg_temp.send($$[
        {"sessionId": "b-2", "path": "/ok"},
        {"sessionId": "b-2", "path": "no-slash"},
        {"sessionId": "b-2", "path": "/ok", "referrer": "nope"}
    ]$$) #>> '{body,message}',
    '2 fields are invalid: events[1].path, events[2].referrer.',
    'a partly bad batch names every bad event''s field by its index'
);
select is(current_setting('response.status'), '400', 'a partly bad batch is a 400');
select is(
    pg_temp.send('[{"sessionId": "b-2", "path": "/ok"}, {"sessionId": "b-2", "path": "x"}]') #> '{body,errors}',
    '[{"field": "events[1].path", "message": "events[1].path must be a path starting with / without spaces."}]',
    'errors list the bad event''s field and the same message as for a single page view'
);
select is(
    pg_temp.stored('b-2'), 0,
    'nothing of a partly bad batch is stored, not even its good events'
);

select is(
    pg_temp.send('[]') #>> '{body,message}', 'events must hold 1 to 100 page views.',
    'an empty batch is a 400'
);
select is(
    pg_temp.send((select jsonb_agg(jsonb_build_object('sessionId', 'b-3', 'path', '/')) from generate_series(1, 101)))
    #>> '{body,errors,0,field}',
    'events', 'a batch of 101 page views is a 400 naming events'
);
select is(
    pg_temp.send('[{"sessionId": "b-4", "path": "/"}, "not an event", [1]]') #> '{body,errors}',
    '[{"field": "events[1]", "message": "events[1] must be an object."}, '
    '{"field": "events[2]", "message": "events[2] must be an object."}]',
    'events that are not objects are named by index'
);
select is(
    pg_temp.send('[{"sessionId": "b-5", "path": "/", "extra": 1}]') #>> '{body,errors,0,field}', 'events[0].extra',
    'an unknown field of an event is named with its index'
);
select is(
    tap.call_as('anon', $$api.record_page_view('{"events": [{"sessionId": "b-5", "path": "/"}], "sessionId": "b-5"}')$$)
    #>> '{body,message}',
    'sessionId is not a known field.', 'a batch holds nothing besides its events'
);
select is(
    tap.call_as('anon', $$api.record_page_view('[{"sessionId": "b-5", "path": "/"}]')$$) #>> '{body,message}',
    'The request body must be a JSON object.', 'a bare array is not a batch (PostgREST 12 refuses mixed ones anyway)'
);
select is(
    (
        select count(*)::integer from app.page_views
        where session_id like 'b-_' and session_id <> 'b-1'
    ), 0,
    'refused batches stored nothing'
);

-- The limit counts events: with 5 per minute, a batch of 3 leaves room for 2 more events.
update app.rate_limit_rules set max_requests = 5
where action = 'page_views';
select set_config('request.headers', '{"x-real-ip": "198.51.100.41"}', true);
select is(
    pg_temp.send('[{"sessionId": "b-6", "path": "/1"}, {"sessionId": "b-6", "path": "/2"}, {"sessionId": "b-6", "path": "/3"}]')
    -> 'status', '201', 'a batch of 3 of a limit of 5 is admitted'
);
select is(
    (
        pg_temp.send(
            '[{"sessionId": "b-6", "path": "/4"}, {"sessionId": "b-6", "path": "/5"}, {"sessionId": "b-6", "path": "/6"}]'
        )
        #>> '{body,code}', current_setting('response.headers')
    ),
    ('CHR01'::text, '[{"Retry-After": "60"}]'::text),
    'a batch of 3 with 2 slots left is refused 429 until the first batch leaves the window'
);
select is(
    array[
        pg_temp.send('[{"sessionId": "b-6", "path": "/4"}, {"sessionId": "b-6", "path": "/5"}]') ->> 'status',
        pg_temp.send('{"sessionId": "b-6", "path": "/6"}') ->> 'status'
    ],
    array['201', '429'],
    'the refused batch took no slot: a batch of 2 fits, then a single page view is over the limit'
);
select is(
    pg_temp.stored('b-6'), 5,
    'exactly the admitted events are stored'
);

select is(
    (app_logic.openapi_schema_of_rule(app_logic.record_page_view_rule()) #> '{oneOf,1,properties,events}') - 'items'
    - 'description',
    '{"type": "array", "minItems": 1, "maxItems": 100}',
    'the OpenAPI document offers a batch of 1 to 100 page views besides a single one'
);

select * from finish();
rollback;
