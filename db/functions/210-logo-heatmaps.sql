-- Logo interaction heatmaps (issue 15): sessions post where they pointed at the logo
-- (normalised to its box) and for how long; reader keys get the counts and mean durations on a
-- grid, as JSON and as an SVG picture with a colour-blind-safe scale (viridis) and a legend.

-- PostgREST answers a function returning this domain with that media type (the SVG picture).
create domain api."image/svg+xml" as text;  -- noqa: RF05
comment on domain api."image/svg+xml" is 'An SVG document; PostgREST serves it as image/svg+xml.';  -- noqa: RF05

create function app_logic.accessibility_theme_rule(p_description text) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'string',
        'enum', jsonb_build_array('default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia'),
        'description', p_description
    )
$$;
comment on function app_logic.accessibility_theme_rule(text) is 'Rule of an accessibilityTheme field (the five themes).';

-- POST /api/logo-heatmaps ----------------------------------------------------------------

create function app_logic.record_logo_heatmap_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'Points where a session interacted with the logo, normalised to the logo''s box.',
        'required', jsonb_build_array('sessionId', 'accessibilityTheme', 'points'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'sessionId', app_logic.session_id_rule(),
            'accessibilityTheme', app_logic.accessibility_theme_rule('The theme the logo was shown in.'),
            'points', '{
                "type": "array", "maxItems": 500,
                "description": "1 to 500 points.",
                "items": {
                    "type": "object",
                    "description": "One point of interaction.",
                    "required": ["x", "y", "durationMs"],
                    "additionalProperties": false,
                    "properties": {
                        "x": {"type": "number", "minimum": 0, "maximum": 1, "description": "0 is the left edge of the logo, 1 the right."},
                        "y": {"type": "number", "minimum": 0, "maximum": 1, "description": "0 is the top edge of the logo, 1 the bottom."},
                        "durationMs": {
                            "type": "integer", "minimum": 0, "maximum": 3600000,
                            "description": "How long the pointer stayed, in milliseconds (at most an hour)."
                        }
                    }
                }
            }'::jsonb
        )
    )
$$;
comment on function app_logic.record_logo_heatmap_rule() is 'Validation rule (and OpenAPI schema) of POST /api/logo-heatmaps.';

create function app_logic.record_logo_heatmap_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_count integer;
begin
    v_count := jsonb_array_length(p_body -> 'points');
    if v_count = 0 then
        return app_logic.reject_invalid(app_logic.problem('points', 'points must have at least 1 item.'));
    end if;
    insert into app.logo_interaction_heatmaps (session_id, accessibility_theme, xs, ys, durations_ms, created_at)
    select
        app_logic.text_field(p_body, 'sessionId'),
        p_body ->> 'accessibilityTheme',
        array_agg((p.point ->> 'x')::real order by p.ord),
        array_agg((p.point ->> 'y')::real order by p.ord),
        array_agg((p.point ->> 'durationMs')::numeric::integer order by p.ord),
        app_logic.now()
    from jsonb_array_elements(p_body -> 'points') with ordinality as p (point, ord);
    return app_logic.respond(201, jsonb_build_object('status', 'recorded', 'points', v_count));
end
$$;
select app_logic.declare_post(
    'record_logo_heatmap', 'logo_heatmaps', 'app_logic.record_logo_heatmap_rule',
    'app_logic.record_logo_heatmap_handler'
);
comment on function api.record_logo_heatmap(jsonb) is
'POST /api/logo-heatmaps: record 1 to 500 points of interaction with the logo, 201 {"status":"recorded","points":n}; '
'400 naming every invalid field; 429 over the rate limit (60 per client IP per minute by default).';

-- GET /api/brand-analytics/logo-heatmap(.svg) --------------------------------------------

create function app_logic.logo_heatmap_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'Query parameters of the heatmap: theme, window and grid size.',
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'theme', app_logic.accessibility_theme_rule('Only posts of this theme; default every theme.'),
            'days', '{"type": "integer", "minimum": 1, "maximum": 400, "default": 30, "description": "The last N days up to now."}'::jsonb,
            'size', '{"type": "integer", "minimum": 4, "maximum": 64, "default": 32, "description": "Cells per side of the grid."}'::jsonb
        )
    )
$$;
comment on function app_logic.logo_heatmap_rule() is 'Query-parameter rule (and OpenAPI parameters) of the logo heatmap.';

-- The picture takes the same parameters (found by name for its OpenAPI document).
create function app_logic.logo_heatmap_svg_rule() returns jsonb
language sql immutable
as $$
    select app_logic.logo_heatmap_rule()
$$;
comment on function app_logic.logo_heatmap_svg_rule() is 'Query-parameter rule of the heatmap picture: the grid''s.';

-- The grid: counts[row][column] and meanDurationMs[row][column], row 0 at the top. A point on
-- the right or bottom edge (1.0) belongs to the last cell. It takes the screened query
-- parameters (app_logic.screen_query: theme or none, days and size at their defaults when left
-- out), so the JSON and the picture read them in one place.
create function app_logic.logo_heatmap_grid(p_query jsonb) returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    with params as (
        select
            p_query ->> 'theme' as theme,
            (p_query ->> 'days')::integer as days,
            (p_query ->> 'size')::integer as size
    ),

    posts as (
        select h.xs, h.ys, h.durations_ms
        from app.logo_interaction_heatmaps as h
        cross join params as q
        where
            h.created_at > app_logic.now() - make_interval(days => q.days)
            and h.created_at <= app_logic.now()
            and (q.theme is null or h.accessibility_theme = q.theme)
    ),

    cells as (
        select
            least(floor(u.y * q.size)::integer, q.size - 1) as cell_row,
            least(floor(u.x * q.size)::integer, q.size - 1) as cell_column,
            count(*) as points,
            avg(u.duration_ms)::double precision as mean_duration
        from posts as p
        cross join params as q
        cross join lateral unnest(p.xs, p.ys, p.durations_ms) as u (x, y, duration_ms)
        group by 1, 2
    ),

    grid as (
        select
            r.n as cell_row,
            jsonb_agg(coalesce(c.points, 0) order by k.n) as counts,
            jsonb_agg(c.mean_duration order by k.n) as means
        from params as q
        cross join lateral generate_series(0, q.size - 1) as r (n)
        cross join lateral generate_series(0, q.size - 1) as k (n)
        left join cells as c on r.n = c.cell_row and k.n = c.cell_column
        group by r.n
    )

    select jsonb_build_object(
        'theme', q.theme,
        'days', q.days,
        'size', q.size,
        'from', app_logic.now() - make_interval(days => q.days),
        'to', app_logic.now(),
        'posts', (select count(*) from posts),
        'points', (select coalesce(sum(c.points), 0) from cells as c),
        'maxCount', (select coalesce(max(c.points), 0) from cells as c),
        'counts', (select jsonb_agg(g.counts order by g.cell_row) from grid as g),
        'meanDurationMs', (select jsonb_agg(g.means order by g.cell_row) from grid as g)
    )
    from params as q
$$;
comment on function app_logic.logo_heatmap_grid(jsonb) is
'The heatmap of the last days days (one theme or all) on a size x size grid, from the screened query parameters: '
'counts and mean durations per cell.';

select app_logic.declare_query_get(
    'logo_heatmap', 'app_logic.logo_heatmap_grid',
    'GET /api/brand-analytics/logo-heatmap?theme=T&days=N&size=S (reader or admin key): the logo heatmap of the last N '
    'days (default 30) as a grid (default 32 x 32): {theme, days, size, from, to, posts, points, maxCount, '
    'counts[row][column], meanDurationMs[row][column]}, row 0 at the top of the logo.'
);

-- viridis (matplotlib's), sampled at 0, 0.1, ..., 1: perceptually uniform, readable with every
-- kind of colour blindness and in grey scale, so the picture says the same to every viewer.
create function app_logic.viridis(p_t double precision) returns text
language sql immutable
as $$
    with stops (i, r, g, b) as (
        values
        (0, 68, 1, 84), (1, 72, 36, 117), (2, 65, 68, 135), (3, 53, 95, 141), (4, 42, 120, 142), (5, 33, 145, 140),
        (6, 34, 168, 132), (7, 68, 191, 112), (8, 122, 209, 81), (9, 189, 223, 38), (10, 253, 231, 37)
    ),

    pos as (
        select
            least(greatest(coalesce(p_t, 0), 0), 1) * 10 as x
    )

    select format(
        '#%s%s%s',
        lpad(to_hex(round(a.r + (b.r - a.r) * (pos.x - a.i))::integer), 2, '0'),
        lpad(to_hex(round(a.g + (b.g - a.g) * (pos.x - a.i))::integer), 2, '0'),
        lpad(to_hex(round(a.b + (b.b - a.b) * (pos.x - a.i))::integer), 2, '0')
    )
    from pos
    join stops as a on a.i = least(floor(pos.x)::integer, 9)
    join stops as b on b.i = a.i + 1
$$;
comment on function app_logic.viridis(double precision) is 'The viridis colour (#rrggbb) at t in [0, 1].';

-- The picture: the grid on the left (square cells, empty ones light grey), a legend on the
-- right (the viridis bar from 1 to the largest count, and the empty-cell swatch), a title and
-- a text alternative for screen readers.
create function app_logic.logo_heatmap_svg(p_grid jsonb) returns text
language sql immutable
as $$
    with params as (
        select
            (p_grid ->> 'size')::integer as size,
            (p_grid ->> 'maxCount')::integer as max_count,
            480.0 / (p_grid ->> 'size')::integer as cell,
            case when p_grid ->> 'days' = '1' then 'last day' else format('last %s days', p_grid ->> 'days') end as span,
            format(
                'Logo interaction heatmap, %s, %s: %s points from %s posts, at most %s in one cell.',
                coalesce('theme ' || (p_grid ->> 'theme'), 'every theme'),
                case when p_grid ->> 'days' = '1' then 'last day' else format('last %s days', p_grid ->> 'days') end,
                p_grid ->> 'points', p_grid ->> 'posts', p_grid ->> 'maxCount'
            ) as summary
    ),

    cells as (
        select string_agg(format(
            '<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>row %s, column %s: %s points, mean %s ms</title></rect>',
            round(20 + (c.ord - 1) * p.cell, 3), round(60 + (r.ord - 1) * p.cell, 3), round(p.cell, 3), round(p.cell, 3),
            app_logic.viridis(case when p.max_count <= 1 then 1 else (c.n::double precision - 1) / (p.max_count - 1) end),
            r.ord - 1, c.ord - 1, c.n, round(coalesce((p_grid -> 'meanDurationMs' -> (r.ord - 1)::integer ->> (c.ord - 1)::integer)::numeric, 0))
        ), '' order by r.ord, c.ord) as svg
        from params as p
        cross join lateral jsonb_array_elements(p_grid -> 'counts') with ordinality as r (cells_row, ord)
        cross join lateral jsonb_array_elements_text(r.cells_row) with ordinality as c (n, ord)
        where c.n::integer > 0
    ),

    legend as (
        select string_agg(format(
            '<stop offset="%s" stop-color="%s"/>', s.t, app_logic.viridis(s.t)
        ), '' order by s.t) as stops
        from generate_series(0, 10) as g (i)
        cross join lateral (select g.i / 10.0 as t) as s
    )

    select
        '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="560" viewBox="0 0 640 560" '
        || 'role="img" aria-labelledby="heatmap-title heatmap-desc" font-family="DejaVu Sans, Arial, sans-serif">'
        || format('<title id="heatmap-title">Logo interaction heatmap</title><desc id="heatmap-desc">%s</desc>', app_logic.html_escape(p.summary))
        || '<defs><linearGradient id="viridis" x1="0" y1="1" x2="0" y2="0">' || l.stops || '</linearGradient></defs>'
        || '<rect width="640" height="560" fill="#ffffff"/>'
        || format(
            '<text x="20" y="28" font-size="18" fill="#111111">Logo interactions: %s, %s</text>',
            app_logic.html_escape(coalesce('theme ' || (p_grid ->> 'theme'), 'every theme')), p.span
        )
        || format(
            '<text x="20" y="48" font-size="13" fill="#333333">%s points from %s posts; %s x %s grid, top of the logo at the top</text>',
            p_grid ->> 'points', p_grid ->> 'posts', p.size, p.size
        )
        || '<rect x="20" y="60" width="480" height="480" fill="#e8e8e8" stroke="#555555" stroke-width="1"/>'
        || coalesce(c.svg, '')
        || '<rect x="530" y="60" width="24" height="360" fill="url(#viridis)" stroke="#555555" stroke-width="1"/>'
        || format('<text x="560" y="70" font-size="13" fill="#111111">%s</text>', greatest(p.max_count, 1))
        || '<text x="560" y="420" font-size="13" fill="#111111">1</text>'
        || '<text x="530" y="440" font-size="12" fill="#333333">points</text><text x="530" y="455" font-size="12" fill="#333333">per cell</text>'
        || '<rect x="530" y="480" width="24" height="24" fill="#e8e8e8" stroke="#555555" stroke-width="1"/>'
        || '<text x="560" y="497" font-size="12" fill="#333333">none</text>'
        || '</svg>'
    from params as p
    cross join cells as c
    cross join legend as l
$$;
comment on function app_logic.logo_heatmap_svg(jsonb) is
'The heatmap grid (app_logic.logo_heatmap_grid) as an SVG picture with a viridis scale and a legend.';

create function api.logo_heatmap_svg(jsonb) returns api."image/svg+xml"  -- noqa: RF05
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_query record;
begin
    select q.* into v_query from app_logic.screen_query(app_logic.logo_heatmap_svg_rule()) as q;
    if v_query.refused is not null then
        -- The error is JSON, whatever the picture's media type would be.
        perform set_config('response.headers', '[{"Content-Type": "application/json; charset=utf-8"}]', true);
        return v_query.refused::text;
    end if;
    return app_logic.logo_heatmap_svg(app_logic.logo_heatmap_grid(v_query.params));
end
$$;
comment on function api.logo_heatmap_svg(jsonb) is
'GET /api/brand-analytics/logo-heatmap.svg?theme=T&days=N&size=S (reader or admin key): the same heatmap as an '
'image/svg+xml picture, coloured with viridis (colour-blind safe), with a legend and a text alternative.';

select app_logic.declare_post_health('check_logo_heatmaps_health', 'logo-heatmaps');
