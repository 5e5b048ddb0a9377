-- Performance benchmarks (issue 15): Lighthouse runs of the website's CI, one row per page,
-- device and accessibility theme measured, and the thresholds above which a slower p75 than
-- in the previous window counts as a regression. Nothing here is about a person.

create table app.performance_benchmarks (
    id bigint generated always as identity primary key,
    page_path text not null check (page_path ~ '^/' and char_length(page_path) <= 200),
    device_type text not null check (device_type in ('mobile', 'tablet', 'desktop')),
    accessibility_theme text not null check (
        accessibility_theme in ('default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia')
    ),
    -- Core Web Vitals: milliseconds, cls unitless; null when the run did not measure one.
    lcp double precision check (lcp >= 0),
    fid double precision check (fid >= 0),
    cls double precision check (cls >= 0),
    inp double precision check (inp >= 0),
    ttfb double precision check (ttfb >= 0),
    score_performance integer not null check (score_performance between 0 and 100),
    score_accessibility integer not null check (score_accessibility between 0 and 100),
    score_best_practices integer not null check (score_best_practices between 0 and 100),
    score_seo integer not null check (score_seo between 0 and 100),
    three_js_render_time_ms double precision check (three_js_render_time_ms >= 0),
    -- The admin key that sent it (its CI job).
    api_key_id bigint,
    measured_at timestamptz not null default now()
);
comment on table app.performance_benchmarks is
'Lighthouse runs: Core Web Vitals, the four category scores and the 3D logo''s render time per page, device and theme.';
create index performance_benchmarks_measured_idx on app.performance_benchmarks (measured_at);
alter table app.performance_benchmarks enable row level security;

create table app.performance_regression_thresholds (
    metric text primary key check (metric in ('lcp', 'fid', 'cls', 'inp', 'ttfb', 'threeJsRenderTimeMs')),
    -- A p75 more than this much above the previous window's is a regression.
    max_increase_percent numeric not null check (max_increase_percent >= 0),
    -- Fewer samples than this in either window: no verdict.
    min_samples integer not null default 3 check (min_samples >= 1)
);
comment on table app.performance_regression_thresholds is
'How much worse a p75 may get from one window to the next before it is reported as a regression.';
alter table app.performance_regression_thresholds enable row level security;

insert into app.performance_regression_thresholds (metric, max_increase_percent) values
('lcp', 10), ('fid', 20), ('cls', 25), ('inp', 15), ('ttfb', 15), ('threeJsRenderTimeMs', 15);

insert into app.retention_rules (kind, keep_for, condition) values
(
    'performance_benchmarks', interval '13 months',
    'Benchmark runs measured longer ago than keep_for (a year of trends plus the same month a year before).'
);

insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values
('performance_benchmarks', 'ip', 600, 60);
