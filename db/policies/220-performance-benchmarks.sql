-- Performance benchmarks: admin keys (the website's CI) post runs, reader and admin keys read
-- the summaries. No role gets a table privilege, on purpose: the summaries are computed by
-- SECURITY DEFINER functions; the thresholds are changed by the operator with an UPDATE.

grant execute on function api.record_performance_benchmarks(jsonb) to admin;
grant execute on function api.performance_benchmark_summary(jsonb) to reader, admin;
grant execute on function api.performance_benchmark_regressions(jsonb) to reader, admin;
grant execute on function api.check_performance_benchmarks_health() to anon, reader, admin;
