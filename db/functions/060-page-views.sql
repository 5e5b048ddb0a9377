-- Page views (issue 5): the anonymous analytics endpoint and the monthly partitions of
-- app.page_views. Partitions are made ahead by a pg_cron job (db/policies/060-page-views.sql)
-- so that a request never runs DDL, and retention can drop a whole month at once.

-- Partitions are named by their UTC month, page_views_YYYY_MM; the name is how the endpoint,
-- the health check and the job find one.
create function app_logic.page_view_partition_name(p_at timestamptz) returns text
language sql immutable
as $$
    select 'page_views_' || extract(year from p_at at time zone 'UTC')::integer::text
        || '_' || lpad(extract(month from p_at at time zone 'UTC')::integer::text, 2, '0')
$$;
comment on function app_logic.page_view_partition_name(timestamptz) is
'Name (in schema app) of the page_views partition holding that instant: page_views_YYYY_MM, UTC.';

-- The partition attached to app.page_views that holds that instant, or null when it is missing.
-- PL/pgSQL keeps the query's plan for the session; as a SQL function (a query over the catalog,
-- never inlined) it was parsed and planned on every page view, which cost more than the insert.
create function app_logic.page_view_partition(p_at timestamptz) returns regclass
language plpgsql stable
as $$
begin
    return (
        select c.oid::regclass
        from pg_catalog.pg_class as c
        join pg_catalog.pg_inherits as i on i.inhrelid = c.oid
        where
            i.inhparent = to_regclass('app.page_views')
            and c.relnamespace = 'app'::regnamespace
            and c.relname = app_logic.page_view_partition_name(p_at)
    );
end
$$;
comment on function app_logic.page_view_partition(timestamptz) is
'The attached page_views partition for that instant''s month; null when none exists.';

-- Creating a partition locks app.page_views briefly; lock_timeout keeps the job from queueing
-- page views behind a long-running reader. A job that gives up retries the next day, with
-- months of margin.
create function app_logic.ensure_page_view_partitions(p_months_ahead integer) returns integer
language plpgsql volatile
set lock_timeout = '5s'
as $$
declare
    v_month timestamp := date_trunc('month', app_logic.now() at time zone 'UTC');
    v_start timestamp;
    v_name text;
    v_created integer := 0;
begin
    if p_months_ahead is null or p_months_ahead not between 0 and 24 then
        raise exception 'months_ahead must be between 0 and 24, not %', p_months_ahead using errcode = '22023';
    end if;
    -- The build and the job may run at once: one creates, the other then finds it made.
    perform pg_advisory_xact_lock(hashtextextended('chorus_website:page_view_partitions', 0));
    for i in 0..p_months_ahead loop
        v_start := v_month + make_interval(months => i);
        v_name := app_logic.page_view_partition_name(v_start at time zone 'UTC');
        continue when to_regclass(format('app.%I', v_name)) is not null;
        execute format(
            'create table app.%I partition of app.page_views for values from (%L) to (%L)',
            v_name, to_char(v_start, 'YYYY-MM-DD') || ' 00:00:00+00',
            to_char(v_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00'
        );
        execute format('alter table app.%I enable row level security', v_name);
        execute format(
            'comment on table app.%I is %L', v_name,
            format('Page views of %s (UTC); made ahead by the page-view-partitions job, dropped whole by retention.',
                to_char(v_start, 'YYYY-MM'))
        );
        v_created := v_created + 1;
    end loop;
    return v_created;
end
$$;
comment on function app_logic.ensure_page_view_partitions(integer) is
'Create the monthly page_views partitions (RLS on) from the current UTC month to months_ahead '
'months later that are missing; returns how many were created.';

-- POST /api/page-views -------------------------------------------------------------------

-- An http(s) URL: optional user info (never kept), a host name, IPv4 or [IPv6] address,
-- optional port, then a path, query or fragment. Written for both PostgreSQL and ECMAScript
-- (the OpenAPI document), hence no inline flags.
create function app_logic.referrer_pattern() returns text
language sql immutable
as $$
    select '^[hH][tT][tT][pP][sS]?://([^/?#@\s]*@)?'
        || '(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
        || '(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?)'
        || '(:[0-9]{1,5})?([/?#]\S*)?$'
$$;
comment on function app_logic.referrer_pattern() is 'Pattern of an acceptable referrer URL; group 2 is the host.';

-- The host of a referrer URL, lower-cased, without a trailing dot; null for no referrer.
-- The full pattern is only matched, not captured from: with its bounded repeats, capturing took
-- about 65 us. In a URL that matched it, the host is what follows the scheme and the optional
-- user info (which ends at its only @), up to the port, path, query or fragment; an IPv6 host is
-- the bracketed part.
create function app_logic.referrer_host(p_referrer text) returns text
language sql immutable
as $$
    select case when p_referrer ~ app_logic.referrer_pattern() then
        nullif(rtrim(lower(substring(p_referrer from '^[hH][tT][tT][pP][sS]?://(?:[^/?#@\s]*@)?(\[[^]]*\]|[^:/?#]*)')), '.'), '')
    end
$$;
comment on function app_logic.referrer_host(text) is 'The lower-cased host of an http(s) URL; null when it is not one.';

create function app_logic.record_page_view_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'One page view; no IP address or user agent is stored with it.',
        -- The body may also be a batch {"events": [...]} of 1 to this many page views.
        'batchMaxItems', 100,
        'required', jsonb_build_array('sessionId', 'path'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'sessionId', app_logic.session_id_rule(),
            'path', '{
                "type": "string", "minLength": 1, "maxLength": 200, "pattern": "^/\\S*$",
                "patternText": "a path starting with / without spaces",
                "description": "The page''s path, starting with /; its query string, fragment and matrix parameters are dropped, and email or token segments are stored as :email or :token."
            }'::jsonb,
            'referrer', jsonb_build_object(
                'type', 'string', 'maxLength', 2048, 'pattern', app_logic.referrer_pattern(),
                'patternText', 'an http or https URL',
                'description', 'The referring page''s URL (an empty string for none); only its host is kept.'
            ),
            'deviceType', '{
                "type": "string", "enum": ["mobile", "tablet", "desktop"], "description": "The kind of device."
            }'::jsonb,
            'durationMs', app_logic.counter_rule('Time spent on the page, in milliseconds.')
        )
    )
$$;
comment on function app_logic.record_page_view_rule() is 'Validation rule (and OpenAPI schema) of POST /api/page-views.';

-- What a stored path may keep: no query string or fragment (where analytics leak personal data:
-- ?email=...), no matrix parameters (;jsessionid=... is a session token), and no segment that is
-- an email address (one holding @ or %40) or looks like a token (16 or more hex digits with a
-- digit among them, as in UUIDs and hashes; 20 or more URL-safe base64 characters mixing upper
-- and lower case and digits; a JWT's three dotted parts): such a segment is replaced by :email
-- or :token, so the view still counts and the page stays recognisable. The segment work runs
-- only for a path holding a character that can start one of those.
create function app_logic.clean_page_path(p_path text) returns text
language plpgsql immutable
as $$
declare
    v_path text := regexp_replace(p_path, '[?#].*$', '');
begin
    if v_path !~ '[;@%]|[0-9A-Za-z_-]{16}' then
        return v_path;
    end if;
    v_path := regexp_replace(v_path, ';[^/]*', '', 'g');
    return left(array_to_string(array(
        select case
            when t.seg ~* '@|%40' then ':email'
            when t.seg ~ '^[0-9A-Fa-f-]+$' and t.seg ~ '[0-9]' and char_length(replace(t.seg, '-', '')) >= 16
                then ':token'
            when t.seg ~ '^[A-Za-z0-9_-]{20,}$' and t.seg ~ '[0-9]' and t.seg ~ '[A-Z]' and t.seg ~ '[a-z]'
                then ':token'
            when t.seg ~ '^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$' then ':token'
            else t.seg
        end
        from unnest(string_to_array(v_path, '/')) with ordinality as t (seg, n)
        order by t.n
    ), '/'), 200);
end
$$;
comment on function app_logic.clean_page_path(text) is
'A page path as stored: without query, fragment and matrix parameters; email and token segments as :email, :token.';

-- The hook of screen_request: the referrer's host must be a real host name (the pattern bounds
-- each label, not the whole).
create function app_logic.record_page_view_checks(p_body jsonb) returns jsonb
language plpgsql immutable
as $$
declare
    v_host text;
begin
    if jsonb_typeof(p_body -> 'referrer') = 'string' then
        v_host := app_logic.referrer_host(p_body ->> 'referrer');
        if v_host is null or char_length(v_host) > 253 then
            return app_logic.problem('referrer', 'referrer must have a host name of at most 253 characters.');
        end if;
    end if;
    return '[]'::jsonb;
end
$$;
comment on function app_logic.record_page_view_checks(jsonb) is
'Problems of a POST /api/page-views body the rule passed: a referrer host longer than 253 characters.';

-- A batch {"events": [...]}: the page-view rule for each event, 1 to batchMaxItems of them.
create function app_logic.record_page_view_batch_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'required', jsonb_build_array('events'),
        'additionalProperties', false,
        'properties', jsonb_build_object('events', jsonb_build_object(
            'type', 'array', 'maxItems', app_logic.record_page_view_rule() -> 'batchMaxItems',
            'items', app_logic.record_page_view_rule()
        ))
    )
$$;
comment on function app_logic.record_page_view_batch_rule() is 'Validation rule of a batch of page views, {"events": [...]}.';

-- The rules compiled, the fast path of a valid page view or batch.
select app_logic.compile_rule('page_view_passes', app_logic.record_page_view_rule());
select app_logic.compile_rule('page_view_batch_passes', app_logic.record_page_view_batch_rule());

-- The hook of screen_request for a batch: at least one event, and each event's own checks,
-- named by its index.
create function app_logic.record_page_view_batch_checks(p_body jsonb) returns jsonb
language plpgsql immutable
as $$
declare
    v_events jsonb := p_body -> 'events';
    v_problems jsonb := '[]'::jsonb;
begin
    if jsonb_array_length(v_events) = 0 then
        return app_logic.problem('events', format(
            'events must hold 1 to %s page views.', app_logic.record_page_view_rule() ->> 'batchMaxItems'
        ));
    end if;
    for i in 0..jsonb_array_length(v_events) - 1 loop
        v_problems := v_problems || (
            select coalesce(jsonb_agg(jsonb_build_object(
                'field', format('events[%s].%s', i, p ->> 'field'), 'message', format('events[%s].%s', i, p ->> 'message')
            )), '[]')
            from jsonb_array_elements(app_logic.record_page_view_checks(v_events -> i)) as p
        );
    end loop;
    return v_problems;
end
$$;
comment on function app_logic.record_page_view_batch_checks(jsonb) is
'Problems of a batch of page views its rule passed: an empty batch, and each event''s own checks by index.';

-- An empty referrer is what a browser reports for a page opened directly: the same as none.
-- For a page view, or for each event of a batch.
create function app_logic.without_empty_referrers(p_body jsonb) returns jsonb
language sql immutable
as $$
    select case
        when jsonb_typeof(p_body -> 'events') = 'array' then jsonb_set(p_body, '{events}', coalesce((
            select jsonb_agg(case when e.event -> 'referrer' = '""'::jsonb then e.event - 'referrer' else e.event end
                order by e.n)
            from jsonb_array_elements(p_body -> 'events') with ordinality as e (event, n)
        ), '[]'))
        when p_body -> 'referrer' = '""'::jsonb then p_body - 'referrer'
        else p_body
    end
$$;
comment on function app_logic.without_empty_referrers(jsonb) is
'A page view (or each event of a batch) with an empty referrer left out: a page opened directly.';

-- One event, or a batch {"events": [...]} of 1 to batchMaxItems (analytics beacons send
-- several at once). Not a bare JSON array: PostgREST 12 refuses one whose objects do not all
-- have the same keys (PGRST102) before any SQL runs, and events leave out optional fields.
-- A batch is all or nothing, like every refused request: one bad event refuses it with every
-- bad field named by its index ("events[3].path"), and nothing of it is stored. Each event
-- counts against the rate limit (a batch of 40 uses 40 slots; at most batchMaxItems, so an
-- oversized batch is refused for its size, not for the limit).
create function api.record_page_view(jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    p_body alias for $1;
    v_batch boolean := jsonb_typeof(p_body) = 'object' and p_body ? 'events';
    v_count integer := case when jsonb_typeof(p_body -> 'events') = 'array' then jsonb_array_length(p_body -> 'events') end;
    v_max integer := (app_logic.record_page_view_rule() ->> 'batchMaxItems')::integer;
    v_refusal jsonb;
    v_now timestamptz := app_logic.now();
begin
    if p_body ? 'events' or p_body ? 'referrer' then
        p_body := app_logic.without_empty_referrers(p_body);
    end if;
    v_refusal := app_logic.screen_request(
        'page_views', p_body,
        case when v_batch then app_logic.record_page_view_batch_rule() else app_logic.record_page_view_rule() end,
        null,
        case when v_batch then 'app_logic.record_page_view_batch_checks' else 'app_logic.record_page_view_checks' end::regproc,
        case when v_batch then greatest(1, least(coalesce(v_count, 1), v_max)) else 1 end,
        case
            when v_batch then app_logic.page_view_batch_passes(p_body)
                and jsonb_array_length(app_logic.record_page_view_batch_checks(p_body)) = 0
            else app_logic.page_view_passes(p_body) and jsonb_array_length(app_logic.record_page_view_checks(p_body)) = 0
        end
    );
    if v_refusal is not null then
        return v_refusal;
    end if;
    if app_logic.page_view_partition(v_now) is null then
        -- The partition job has not run: an operator's problem, not the client's.
        return app_logic.respond(503, app_logic.error_body(
            'CHU01', 'Page views cannot be stored right now: the partition for this month is missing.',
            format('app.%s does not exist.', app_logic.page_view_partition_name(v_now)),
            'Operators: run select app_logic.ensure_page_view_partitions(3) and check the pg_cron job.'
        ));
    end if;
    -- One INSERT for the whole batch.
    insert into app.page_views (session_id, path, referrer_host, device_type, duration_ms, viewed_at)
    select
        app_logic.text_field(e.event, 'sessionId'),
        app_logic.clean_page_path(e.event ->> 'path'),
        app_logic.referrer_host(e.event ->> 'referrer'),
        e.event ->> 'deviceType',
        app_logic.integer_field(e.event, 'durationMs'),
        v_now
    from jsonb_array_elements(case when v_batch then p_body -> 'events' else jsonb_build_array(p_body) end) as e (event);
    if v_batch then
        return app_logic.respond(201, jsonb_build_object('status', 'recorded', 'count', v_count));
    end if;
    return app_logic.respond(201, jsonb_build_object('status', 'recorded'));
end
$$;
comment on function api.record_page_view(jsonb) is
'POST /api/page-views: record one anonymous page view, or a batch {"events": [...]} of at most 100, with no IP and '
'no user agent; the referrer is reduced to its host; the path loses its query string, fragment and matrix '
'parameters, and email or token segments become :email or :token. 201 {"status":"recorded"} (a batch: '
'{"status":"recorded","count":n}); 400 naming every invalid field (in a batch by index, "events[3].path"; '
'nothing of a refused batch is stored); 429 over the rate limit (120 page views per client IP per minute by '
'default, each event of a batch counting); 503 when this month''s partition is missing.';
