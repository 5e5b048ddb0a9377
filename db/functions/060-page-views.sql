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

create function api.record_page_view(jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    p_body alias for $1;
    v_refusal jsonb;
    v_now timestamptz := app_logic.now();
begin
    -- An empty referrer is what a browser reports for a page opened directly.
    if p_body -> 'referrer' = '""'::jsonb then
        p_body := p_body - 'referrer';
    end if;
    v_refusal := app_logic.screen_request(
        'page_views', p_body, app_logic.record_page_view_rule(), null, 'app_logic.record_page_view_checks'
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
    insert into app.page_views (session_id, path, referrer_host, device_type, duration_ms, viewed_at)
    values (
        app_logic.text_field(p_body, 'sessionId'),
        app_logic.clean_page_path(p_body ->> 'path'),
        app_logic.referrer_host(p_body ->> 'referrer'),
        p_body ->> 'deviceType',
        app_logic.integer_field(p_body, 'durationMs'),
        v_now
    );
    return app_logic.respond(201, jsonb_build_object('status', 'recorded'));
end
$$;
comment on function api.record_page_view(jsonb) is
'POST /api/page-views: record one anonymous page view (no IP, no user agent; the referrer '
'is reduced to its host; the path loses its query string, fragment and matrix parameters, and '
'email or token segments become :email or :token). 201 {"status":"recorded"}; 400 naming '
'every invalid field; 429 over the rate limit (120 per client IP per minute by default); 503 '
'when this month''s partition is missing.';
