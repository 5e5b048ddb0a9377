-- (baseline) The same Lighthouse run inserted straight into app.performance_benchmarks.
insert into app.performance_benchmarks (
    page_path, device_type, accessibility_theme, lcp, fid, cls, inp, ttfb,
    score_performance, score_accessibility, score_best_practices, score_seo, three_js_render_time_ms
) values ('/ecosystem', 'mobile', 'protanopia', 2350, 40, 0.04, 120, 300, 91, 100, 96, 100, 180);
