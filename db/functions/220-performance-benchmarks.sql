-- Performance benchmarks (issue 15): the website's CI posts Lighthouse runs with an admin key
-- (one run, or a batch as a JSON array); reader keys see p75 of each vital and the mean of
-- each score per page, device and theme over a window, and the regressions against the
-- previous window of the same length, judged by app.performance_regression_thresholds.

create function app_logic.performance_benchmark_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'One Lighthouse run of one page on one device in one accessibility theme.',
        'required', jsonb_build_array('pagePath', 'deviceType', 'accessibilityTheme', 'lighthouseScores'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'pagePath', '{
                "type": "string", "minLength": 1, "maxLength": 200, "pattern": "^/[^?#\\s]*$",
                "patternText": "a path starting with / without spaces, query or fragment",
                "description": "The page measured."
            }'::jsonb,
            'deviceType', '{"type": "string", "enum": ["mobile", "tablet", "desktop"], "description": "The device emulated."}'::jsonb,
            'accessibilityTheme', app_logic.accessibility_theme_rule('The theme the page was measured in.'),
            'coreWebVitals', app_logic.core_web_vitals_rule(),
            'lighthouseScores', '{
                "type": "object",
                "description": "The four Lighthouse category scores, 0 to 100.",
                "required": ["performance", "accessibility", "bestPractices", "seo"],
                "additionalProperties": false,
                "properties": {
                    "performance": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Performance score."},
                    "accessibility": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Accessibility score."},
                    "bestPractices": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Best-practices score."},
                    "seo": {"type": "integer", "minimum": 0, "maximum": 100, "description": "SEO score."}
                }
            }'::jsonb,
            'threeJsRenderTimeMs', '{
                "type": "number", "minimum": 0, "maximum": 3600000,
                "description": "Time the 3D logo (three.js) took to render its first frame, in ms."
            }'::jsonb
        )
    )
$$;
comment on function app_logic.performance_benchmark_rule() is 'Validation rule of one performance benchmark run.';

-- The body is one run, or a batch {"runs": [...]} of 1 to 100. Not a bare JSON array: PostgREST
-- refuses an array whose objects have different keys (PGRST102) before any SQL runs, and runs
-- differ in the vitals they measured.
create function app_logic.record_performance_benchmarks_rule() returns jsonb
language sql immutable
as $$
    select app_logic.performance_benchmark_rule() || jsonb_build_object(
        'description', 'One Lighthouse run, or a batch {"runs": [...]} of 1 to 100 of them (all stored, or none).'
    )
$$;
comment on function app_logic.record_performance_benchmarks_rule() is
'Validation rule (and OpenAPI schema) of POST /api/performance-benchmarks: one run (a batch is {"runs": [...]}).';

create function app_logic.performance_benchmark_batch_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'A batch of Lighthouse runs.',
        'required', jsonb_build_array('runs'),
        'additionalProperties', false,
        'properties', jsonb_build_object('runs', jsonb_build_object(
            'type', 'array', 'maxItems', 100, 'description', '1 to 100 runs.',
            'items', app_logic.performance_benchmark_rule()
        ))
    )
$$;
comment on function app_logic.performance_benchmark_batch_rule() is
'Validation rule of a batch {"runs": [...]} of benchmark runs.';

-- The rule a body is screened with: a batch's, or one run's. A bare JSON array is refused by
-- the rule ("must be a JSON object"): a batch is {"runs": [...]}.
create function app_logic.performance_benchmark_rule_of(p_body jsonb) returns jsonb
language sql immutable
as $$
    select case
        when jsonb_typeof(p_body) = 'object' and p_body ? 'runs' then app_logic.performance_benchmark_batch_rule()
        else app_logic.performance_benchmark_rule()
    end
$$;
comment on function app_logic.performance_benchmark_rule_of(jsonb) is
'The rule of a POST /api/performance-benchmarks body: the batch rule for {"runs": [...]}, else one run''s.';

create function app_logic.record_performance_benchmarks_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_batch boolean := p_body ? 'runs';
    v_runs jsonb;
begin
    if v_batch and jsonb_array_length(p_body -> 'runs') = 0 then
        return app_logic.reject_invalid(app_logic.problem('runs', 'runs must have at least 1 item.'));
    end if;
    v_runs := case when v_batch then p_body -> 'runs' else jsonb_build_array(p_body) end;
    insert into app.performance_benchmarks (
        page_path, device_type, accessibility_theme, lcp, fid, cls, inp, ttfb,
        score_performance, score_accessibility, score_best_practices, score_seo,
        three_js_render_time_ms, api_key_id, measured_at
    )
    select
        r.run ->> 'pagePath', r.run ->> 'deviceType', r.run ->> 'accessibilityTheme',
        (r.run #>> '{coreWebVitals,lcp}')::double precision, (r.run #>> '{coreWebVitals,fid}')::double precision,
        (r.run #>> '{coreWebVitals,cls}')::double precision, (r.run #>> '{coreWebVitals,inp}')::double precision,
        (r.run #>> '{coreWebVitals,ttfb}')::double precision,
        (r.run #>> '{lighthouseScores,performance}')::numeric::integer,
        (r.run #>> '{lighthouseScores,accessibility}')::numeric::integer,
        (r.run #>> '{lighthouseScores,bestPractices}')::numeric::integer,
        (r.run #>> '{lighthouseScores,seo}')::numeric::integer,
        (r.run ->> 'threeJsRenderTimeMs')::double precision,
        app_logic.current_api_key_id(),
        app_logic.now()
    from jsonb_array_elements(v_runs) as r (run);
    return app_logic.respond(201, jsonb_build_object('status', 'recorded', 'count', jsonb_array_length(v_runs)));
end
$$;
select app_logic.declare_post(
    'record_performance_benchmarks', 'performance_benchmarks', 'app_logic.performance_benchmark_rule_of',
    'app_logic.record_performance_benchmarks_handler'
);
comment on function api.record_performance_benchmarks(jsonb) is
'POST /api/performance-benchmarks (admin key): store one Lighthouse run, or a batch {"runs": [...]} of up to 100 '
'(all or none): 201 {"status":"recorded","count":n}; 400 naming every invalid field (runs[i].field in a batch).';

-- GET /api/brand-analytics/performance-benchmarks(/regressions) -------------------------

create function app_logic.performance_benchmark_summary_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object",
        "description": "Query parameters: the window and optional filters.",
        "additionalProperties": false,
        "properties": {
            "days": {"type": "integer", "minimum": 1, "maximum": 200, "default": 7, "description": "The last N days up to now."},
            "pagePath": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Only this page."},
            "deviceType": {"type": "string", "enum": ["mobile", "tablet", "desktop"], "description": "Only this device."},
            "theme": {
                "type": "string", "enum": ["default", "protanopia", "deuteranopia", "tritanopia", "achromatopsia"],
                "description": "Only this accessibility theme."
            }
        }
    }'::jsonb
$$;
comment on function app_logic.performance_benchmark_summary_rule() is
'Query-parameter rule (and OpenAPI parameters) of GET /api/brand-analytics/performance-benchmarks.';

create function app_logic.performance_benchmark_regressions_rule() returns jsonb
language sql immutable
as $$
    select jsonb_set(
        app_logic.performance_benchmark_summary_rule(), '{properties,days,description}',
        '"The window: the last N days against the N days before them."'
    )
$$;
comment on function app_logic.performance_benchmark_regressions_rule() is
'Query-parameter rule (and OpenAPI parameters) of GET /api/brand-analytics/performance-benchmarks/regressions.';

-- p75 and means of the runs in (p_from, p_to], per page, device and theme, one row each.
create function app_logic.performance_window(p_from timestamptz, p_to timestamptz, p_filters jsonb)
returns table (
    page_path text, device_type text, accessibility_theme text, samples bigint,
    lcp double precision, fid double precision, cls double precision, inp double precision, ttfb double precision,
    three_js double precision, performance double precision, accessibility double precision,
    best_practices double precision, seo double precision
)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        b.page_path, b.device_type, b.accessibility_theme, count(*),
        percentile_cont(0.75) within group (order by b.lcp),
        percentile_cont(0.75) within group (order by b.fid),
        percentile_cont(0.75) within group (order by b.cls),
        percentile_cont(0.75) within group (order by b.inp),
        percentile_cont(0.75) within group (order by b.ttfb),
        percentile_cont(0.75) within group (order by b.three_js_render_time_ms),
        avg(b.score_performance)::double precision, avg(b.score_accessibility)::double precision,
        avg(b.score_best_practices)::double precision, avg(b.score_seo)::double precision
    from app.performance_benchmarks as b
    where
        b.measured_at > p_from and b.measured_at <= p_to
        and (p_filters ->> 'pagePath' is null or b.page_path = p_filters ->> 'pagePath')
        and (p_filters ->> 'deviceType' is null or b.device_type = p_filters ->> 'deviceType')
        and (p_filters ->> 'theme' is null or b.accessibility_theme = p_filters ->> 'theme')
    group by b.page_path, b.device_type, b.accessibility_theme
$$;
comment on function app_logic.performance_window(timestamptz, timestamptz, jsonb) is
'Per page, device and theme over (p_from, p_to]: sample count, p75 of each vital, mean of each score.';

-- The GETs below answer the screened query (app_logic.screen_query: days at its default when left
-- out) or its refusal.
create function app_logic.performance_benchmark_summary_of(p_query jsonb) returns jsonb
language sql stable
as $$
    with q as (
        select app_logic.now() - make_interval(days => (p_query ->> 'days')::integer) as since
    )

    select jsonb_build_object(
        'days', (p_query ->> 'days')::integer,
        'from', q.since,
        'to', app_logic.now(),
        'rows', coalesce((
            select jsonb_agg(jsonb_build_object(
                'pagePath', w.page_path, 'deviceType', w.device_type, 'accessibilityTheme', w.accessibility_theme,
                'sampleCount', w.samples,
                'p75', jsonb_build_object(
                    'lcp', w.lcp, 'fid', w.fid, 'cls', w.cls, 'inp', w.inp, 'ttfb', w.ttfb, 'threeJsRenderTimeMs', w.three_js
                ),
                'meanScores', jsonb_build_object(
                    'performance', w.performance, 'accessibility', w.accessibility,
                    'bestPractices', w.best_practices, 'seo', w.seo
                )
            ) order by w.page_path, w.device_type, w.accessibility_theme)
            from app_logic.performance_window(q.since, app_logic.now(), p_query) as w
        ), '[]'::jsonb)
    )
    from q
$$;
comment on function app_logic.performance_benchmark_summary_of(jsonb) is
'The answer of GET /api/brand-analytics/performance-benchmarks to screened query parameters.';

select app_logic.declare_query_get(
    'performance_benchmark_summary', 'app_logic.performance_benchmark_summary_of',
    'GET /api/brand-analytics/performance-benchmarks?days=N&pagePath=&deviceType=&theme= (reader or admin key): per '
    'page x device x theme over the last N days (default 7): sampleCount, p75 of each vital (lcp, fid, cls, inp, ttfb, '
    'threeJsRenderTimeMs) and the mean of each Lighthouse score, as {days, from, to, rows}.'
);

create function app_logic.performance_benchmark_regressions_of(p_query jsonb) returns jsonb
language sql stable
as $$
    with w as (
        select
            app_logic.now() as now,
            app_logic.now() - make_interval(days => (p_query ->> 'days')::integer) as current_from,
            app_logic.now() - make_interval(days => 2 * (p_query ->> 'days')::integer) as previous_from
    )

    select jsonb_build_object(
        'days', (p_query ->> 'days')::integer,
        'currentFrom', w.current_from,
        'previousFrom', w.previous_from,
        'to', w.now,
        'regressions', coalesce((
            with cur as (
                select * from app_logic.performance_window(w.current_from, w.now, p_query)
            ),

            prev as (
                select * from app_logic.performance_window(w.previous_from, w.current_from, p_query)
            ),

            pairs as (
                select
                    c.page_path, c.device_type, c.accessibility_theme, m.metric, m.current_p75, m.previous_p75,
                    c.samples as current_samples, p.samples as previous_samples
                from cur as c
                inner join prev as p using (page_path, device_type, accessibility_theme)
                cross join lateral (
                    values
                    ('lcp', c.lcp, p.lcp), ('fid', c.fid, p.fid), ('cls', c.cls, p.cls), ('inp', c.inp, p.inp),
                    ('ttfb', c.ttfb, p.ttfb), ('threeJsRenderTimeMs', c.three_js, p.three_js)
                ) as m (metric, current_p75, previous_p75)
            )

            select jsonb_agg(jsonb_build_object(
                'pagePath', x.page_path, 'deviceType', x.device_type, 'accessibilityTheme', x.accessibility_theme,
                'metric', x.metric, 'previousP75', x.previous_p75, 'currentP75', x.current_p75,
                'increasePercent', round(((x.current_p75 / x.previous_p75 - 1) * 100)::numeric, 2),
                'thresholdPercent', t.max_increase_percent,
                'previousSamples', x.previous_samples, 'currentSamples', x.current_samples
            ) order by x.page_path, x.device_type, x.accessibility_theme, x.metric)
            from pairs as x
            inner join app.performance_regression_thresholds as t on x.metric = t.metric
            where
                x.previous_p75 > 0
                and x.current_samples >= t.min_samples and x.previous_samples >= t.min_samples
                and (x.current_p75 / x.previous_p75 - 1) * 100 > t.max_increase_percent
        ), '[]'::jsonb)
    )
    from w
$$;
comment on function app_logic.performance_benchmark_regressions_of(jsonb) is
'The answer of GET /api/brand-analytics/performance-benchmarks/regressions to screened query parameters.';

select app_logic.declare_query_get(
    'performance_benchmark_regressions', 'app_logic.performance_benchmark_regressions_of',
    'GET /api/brand-analytics/performance-benchmarks/regressions?days=N (reader or admin key): the page x device x theme '
    'pairs whose p75 of a vital (or of threeJsRenderTimeMs) in the last N days (default 7) is worse than in the N days '
    'before by more than its threshold in app.performance_regression_thresholds (with enough samples in both).'
);

select app_logic.declare_post_health('check_performance_benchmarks_health', 'performance-benchmarks');

-- Retention (rule performance_benchmarks, db/schema/220-performance-benchmarks.sql).
select app_logic.declare_purge(
    'performance_benchmarks', 'app.performance_benchmarks', 'measured_at', 'Delete benchmark runs measured before the cutoff.'
);
