-- Logo heatmaps: the rule, the endpoint as anon, the grid and the picture for reader keys,
-- and that no API role reads the table.
begin;
select plan(12);

select set_config('app.frozen_now', '2026-12-01T09:00:00Z', true);

select is(
    tap.call_with_query('anon', $$api.record_logo_heatmap('{"sessionId": "s1", "accessibilityTheme": "protanopia",
        "points": [{"x": 0, "y": 0, "durationMs": 100}, {"x": 1, "y": 1, "durationMs": 300}, {"x": 0.01, "y": 0, "durationMs": 200}]}')$$),
    '{"status": 201, "body": {"status": "recorded", "points": 3}}', 'anon posts three points: 201'
);
select is(
    (select array[cardinality(xs), cardinality(ys), cardinality(durations_ms)] from app.logo_interaction_heatmaps),
    '{3,3,3}', 'the points are one row of three parallel arrays'
);
select is(
    (tap.call_with_query('anon', $$api.record_logo_heatmap('{"sessionId": "s1", "accessibilityTheme": "sepia",
        "points": [{"x": 2, "y": 0, "durationMs": -1}]}')$$) -> 'body' ->> 'message'),
    '3 fields are invalid: accessibilityTheme, points[0].durationMs, points[0].x.', 'every bad field is named'
);
select is(
    (
        tap.call_with_query(
            'anon', $$api.record_logo_heatmap('{"sessionId": "s1", "accessibilityTheme": "default", "points": []}')$$
        )
        -> 'body' -> 'errors' -> 0 ->> 'field'
    ),
    'points', 'no points is refused'
);
select is((select count(*) from app.logo_interaction_heatmaps)::integer, 1, 'refused posts stored nothing');

select is(
    tap.call_with_query('reader', $$api.logo_heatmap('{}')$$, 'size=4') -> 'body' -> 'counts',
    '[[2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]', 'the grid counts points per cell, the edge 1.0 in the last cell'
);
select is(
    tap.call_with_query('reader', $$api.logo_heatmap('{}')$$, 'size=4') -> 'body' -> 'meanDurationMs' -> 0 -> 0,
    '150', 'a cell carries the mean duration of its points'
);
select is(
    tap.call_with_query('reader', $$api.logo_heatmap('{}')$$, 'size=4&theme=default') -> 'body' ->> 'points',
    '0', 'a theme filter leaves out the other themes'
);
select is(
    tap.call_with_query('reader', $$api.logo_heatmap('{}')$$, 'days=500') -> 'body' -> 'errors' -> 0 ->> 'field',
    'days', 'days over 400 is named'
);
select matches(
    tap.call_with_query('reader', $$to_jsonb(api.logo_heatmap_svg('{}')::text)$$, 'size=4') ->> 'body',
    '^<svg xmlns="http://www.w3.org/2000/svg".*linearGradient id="viridis".*fill="#fde725".*</svg>$',
    'the picture is an SVG with viridis cells and a viridis legend'
);
select throws_ok(
    $$select tap.call_with_query('anon', $q$api.logo_heatmap('{}')$q$)$$, '42501', null, 'anon may not read the grid'
);
select is(
    (
        select count(*) from information_schema.column_privileges
        where grantee in ('reader', 'admin', 'anon') and table_schema = 'app' and table_name = 'logo_interaction_heatmaps'
    )::integer,
    0, 'no API role holds a privilege on the heatmap table'
);

select * from finish();
rollback;
