-- Performance benchmarks: admins post runs, the summary's p75 per page, device and theme, the
-- regressions judged by thresholds stored as data, and who may call what.
begin;
select plan(10);

select set_config('app.frozen_now', '2026-12-14T00:00:00Z', true);

select is(
    tap.call_with_query('admin', $$api.record_performance_benchmarks('{"runs": [
        {"pagePath": "/", "deviceType": "mobile", "accessibilityTheme": "default", "coreWebVitals": {"lcp": 2000},
         "lighthouseScores": {"performance": 90, "accessibility": 100, "bestPractices": 95, "seo": 100}},
        {"pagePath": "/", "deviceType": "mobile", "accessibilityTheme": "default", "coreWebVitals": {"lcp": 3000},
         "lighthouseScores": {"performance": 80, "accessibility": 100, "bestPractices": 95, "seo": 100}}]}')$$),
    '{"status": 201, "body": {"status": "recorded", "count": 2}}', 'an admin posts a batch of two runs: 201'
);
select throws_ok(
    $$select tap.call_with_query('reader', $q$api.record_performance_benchmarks('{}')$q$)$$, '42501', null,
    'a reader may not post runs'
);
select is(
    tap.call_with_query('reader', $$api.performance_benchmark_summary('{}')$$, 'days=7')
    -> 'body' -> 'rows' -> 0 -> 'p75' -> 'lcp',
    '2750', 'the summary''s p75 of lcp 2000 and 3000 is 2750 (linear interpolation)'
);
select is(
    tap.call_with_query('reader', $$api.performance_benchmark_summary('{}')$$, 'days=7') -> 'body' -> 'rows' -> 0 -> 'meanScores'
    -> 'performance',
    '85', 'the summary''s mean performance score of 90 and 80 is 85'
);
select is(
    (tap.call_with_query('reader', $$api.performance_benchmark_summary('{}')$$) -> 'body') - 'rows',
    '{"days": 7, "from": "2026-12-07T00:00:00+00:00", "to": "2026-12-14T00:00:00+00:00"}'::jsonb,
    'days left out takes the rule''s default, 7'
);
select is(
    (tap.call_with_query('reader', $$api.performance_benchmark_regressions('{}')$$) -> 'body') - 'regressions',
    '{"days": 7, "currentFrom": "2026-12-07T00:00:00+00:00", "previousFrom": "2026-11-30T00:00:00+00:00",
      "to": "2026-12-14T00:00:00+00:00"}'::jsonb,
    'the regressions'' window defaults to 7 days against the 7 before'
);
insert into app.performance_benchmarks (
    page_path, device_type, accessibility_theme, lcp, score_performance, score_accessibility, score_best_practices,
    score_seo, measured_at
)
select
    '/' as page_path,
    'mobile' as device_type,
    'default' as accessibility_theme,
    1000 as lcp,
    90 as score_performance,
    100 as score_accessibility,
    95 as score_best_practices,
    100 as score_seo,
    '2026-12-03T00:00:00Z' as measured_at
from generate_series(1, 3);
select is(
    jsonb_array_length(
        tap.call_with_query('reader', $$api.performance_benchmark_regressions('{}')$$, 'days=7') -> 'body' -> 'regressions'
    ),
    0, 'two samples in the current window are fewer than min_samples (3): no verdict'
);
update app.performance_regression_thresholds set min_samples = 2
where metric = 'lcp';
select is(
    tap.call_with_query('reader', $$api.performance_benchmark_regressions('{}')$$, 'days=7') -> 'body' -> 'regressions' -> 0
    ->> 'metric',
    'lcp', 'lcp p75 2750 against 1000 is a regression over the 10% threshold'
);
update app.performance_regression_thresholds set max_increase_percent = 200
where metric = 'lcp';
select is(
    jsonb_array_length(
        tap.call_with_query('reader', $$api.performance_benchmark_regressions('{}')$$, 'days=7') -> 'body' -> 'regressions'
    ),
    0, 'with the threshold raised to 200% (data, no deploy) it is not'
);
select throws_ok(
    $$select tap.call_with_query('anon', $q$api.performance_benchmark_summary('{}')$q$)$$, '42501', null,
    'anon may not read the summary'
);

select * from finish();
rollback;
