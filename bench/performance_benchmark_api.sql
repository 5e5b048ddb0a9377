-- frame: role=anon x-api-key=chk_bench_admin
-- A Lighthouse run as PostgREST 12.2 runs POST /rpc/record_performance_benchmarks with the admin
-- key the benchmark stores (chk_bench_admin, see chorus_db/bench/brand.py): this call in
-- PostgREST's framing, like bench/submit_lead.sql. Run with -M prepared.
select "api"."record_performance_benchmarks"(
    '{"pagePath":"/ecosystem","deviceType":"mobile","accessibilityTheme":"protanopia","coreWebVitals":{"lcp":2350,"fid":40,"cls":0.04,"inp":120,"ttfb":300},"lighthouseScores":{"performance":91,"accessibility":100,"bestPractices":96,"seo":100},"threeJsRenderTimeMs":180}'::jsonb
)
