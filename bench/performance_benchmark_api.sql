-- A Lighthouse run as PostgREST 12.2 runs POST /rpc/record_performance_benchmarks with the admin
-- key the benchmark stores (chk_bench_admin, see chorus_db/bench.py): the statements of
-- bench/submit_lead.sql with this endpoint and body. Run with -M prepared.
\set o2 random(0, 255)
\set o3 random(0, 255)
\set o4 random(1, 254)
begin isolation level read committed read write;
select
    set_config('search_path', '"api", "public"', true),
    set_config('role', 'anon', true),
    set_config('request.jwt.claims', '{"role":"anon"}', true),
    set_config('request.method', 'POST', true),
    set_config('request.path', '/rpc/record_performance_benchmarks', true),
    set_config(
        'request.headers',
        format(
            '{"prefer":"return=minimal","x-real-ip":"10.%s.%s.%s","user-agent":"pgbench",'
            '"content-type":"application/json","host":"127.0.0.1","accept":"*/*","x-api-key":"chk_bench_admin"}',
            :o2::integer, :o3::integer, :o4::integer
        ),
        true
    ),
    set_config('request.cookies', '{}', true);
select "app_logic"."pre_request"();
with pgrst_source as (
    select pgrst_call.pgrst_scalar
    from (
        select "api"."record_performance_benchmarks"(
            '{"pagePath":"/ecosystem","deviceType":"mobile","accessibilityTheme":"protanopia","coreWebVitals":{"lcp":2350,"fid":40,"cls":0.04,"inp":120,"ttfb":300},"lighthouseScores":{"performance":91,"accessibility":100,"bestPractices":96,"seo":100},"threeJsRenderTimeMs":180}'::jsonb
        ) as pgrst_scalar
    ) as pgrst_call
)
select
    null::bigint as total_result_set,
    1 as page_total,
    coalesce(json_agg(_postgrest_t.pgrst_scalar) -> 0, 'null') as body,
    nullif(current_setting('response.headers', true), '') as response_headers,
    nullif(current_setting('response.status', true), '') as response_status,
    '' as response_inserted
from (select "record_performance_benchmarks".* from "pgrst_source" as "record_performance_benchmarks" limit 1000 offset 0) as _postgrest_t;
commit;
