-- Live brand metrics (issue 15): every accepted brand-engagement, logo-heatmap and page-view
-- write notifies channel chorus_brand_metrics (LISTEN/NOTIFY) with a payload that holds no
-- personal data: what kind of write, when, and a few counts, never a session id, lead, path
-- or address. The relay (chorus_db/live.py) listens, adds them up per minute and streams the
-- minutes to dashboards as Server-Sent Events at GET /api/live/brand-metrics (reader key,
-- checked by nginx's auth_request against api.live_brand_metrics below).
--
-- The notification is sent at commit, so a rolled-back write never shows; a refused request
-- (400, 429) inserts nothing and notifies nothing.

-- Every payload is {"kind", "at" (epoch seconds), ...its counts}: the envelope is made here.
create function app_logic.notify_brand_metric(p_kind text, p_at timestamptz, p_counts jsonb) returns void
language sql volatile
as $$
    select pg_notify(
        'chorus_brand_metrics', (jsonb_build_object('kind', p_kind, 'at', extract(epoch from p_at)) || p_counts)::text
    )
$$;
comment on function app_logic.notify_brand_metric(text, timestamptz, jsonb) is
'Send one brand metric (its kind, time and counts; no personal data) on channel chorus_brand_metrics; delivered at commit.';

create function app_logic.tg_brand_engagement__notify() returns trigger
language plpgsql
as $$
begin
    perform app_logic.notify_brand_metric('brand_engagement', new.created_at, jsonb_build_object(
        'ctaClicks', jsonb_array_length(new.cta_clicks), 'logoInteractions', jsonb_array_length(new.logo_interactions)
    ));
    return new;
end
$$;
comment on function app_logic.tg_brand_engagement__notify() is 'Before a brand-engagement row is stored: notify its counts.';

-- Before the row is stored, and before seal_fields (row triggers fire in name order), which
-- encrypts the arrays counted here (db/functions/045-field-encryption.sql); the notification
-- still leaves at commit only.
create trigger brand_engagement_notify
before insert on app.brand_engagement
for each row execute function app_logic.tg_brand_engagement__notify();

create function app_logic.tg_logo_interaction_heatmaps__notify() returns trigger
language plpgsql
as $$
begin
    perform app_logic.notify_brand_metric('logo_heatmap', new.created_at, jsonb_build_object(
        'theme', new.accessibility_theme, 'points', cardinality(new.xs)
    ));
    return null;
end
$$;
comment on function app_logic.tg_logo_interaction_heatmaps__notify() is 'After a heatmap post: notify its theme and point count.';

create trigger logo_interaction_heatmaps_notify
after insert on app.logo_interaction_heatmaps
for each row execute function app_logic.tg_logo_interaction_heatmaps__notify();

-- On the partitioned table: PostgreSQL clones it onto every partition, those made later too.
create function app_logic.tg_page_views__notify() returns trigger
language plpgsql
as $$
begin
    perform app_logic.notify_brand_metric('page_view', new.viewed_at, jsonb_build_object('deviceType', new.device_type));
    return null;
end
$$;
comment on function app_logic.tg_page_views__notify() is 'After a page view: notify its device type.';

create trigger page_views_notify
after insert on app.page_views
for each row execute function app_logic.tg_page_views__notify();

-- GET /api/live/brand-metrics --------------------------------------------------------------

-- PostgREST answers a function returning this domain as text/event-stream.
create domain api."text/event-stream" as text;  -- noqa: RF05
comment on domain api."text/event-stream" is 'A Server-Sent Events stream.';  -- noqa: RF05

-- nginx's auth_request asks this before the stream starts: reader and admin keys may call it
-- (200), no key is 401 and a wrong key 401 (pre-request). The stream itself comes from the
-- relay, never from PostgREST.
create function api.live_brand_metrics() returns api."text/event-stream"  -- noqa: RF05
language sql stable
as $$
    select ''::api."text/event-stream"  -- noqa: RF05
$$;
comment on function api.live_brand_metrics() is
'GET /api/live/brand-metrics (reader or admin key): a Server-Sent Events stream of brand metrics per minute '
'(page views, brand engagement, logo heatmap posts and points, by theme and device), from LISTEN/NOTIFY through '
'the relay (chorus_db/live.py). Events: snapshot (the last minutes, at once), minute (the current minute, at most '
'every few seconds while it changes). No personal data. Browsers send the key with fetch() streaming (EventSource '
'cannot send headers).';

-- The OpenAPI operation of a GET on a function without arguments that returns a media-type
-- domain (the stream): that media type instead of the health answer; null for other functions.
create function app_logic.openapi_media_operation(p_route jsonb, p_proc regprocedure) returns jsonb
language sql stable
as $$
    select app_logic.openapi_operation_head(p_route, p.proname, obj_description(p_proc, 'pg_proc'))
    || jsonb_build_object('responses', jsonb_build_object(
        '200', jsonb_build_object(
            'description', 'The stream.',
            'content', jsonb_build_object(t.typname, jsonb_build_object('schema', '{"type": "string"}'::jsonb))
        )
    ) || app_logic.openapi_common_responses(p_route))
    from pg_catalog.pg_proc as p
    inner join pg_catalog.pg_type as t on p.prorettype = t.oid
    where p.oid = p_proc and p.pronargs = 0 and t.typtype = 'd' and t.typname like '%/%'
$$;
comment on function app_logic.openapi_media_operation(jsonb, regprocedure) is
'The OpenAPI operation of a GET returning a media-type domain (text/event-stream); null for other functions.';
