-- A brand-engagement post as PostgREST 12.2 runs POST /rpc/record_brand_engagement: the statements of
-- bench/submit_lead.sql with this endpoint and body (the brand audit log's benchmark,
-- chorus_db/bench/audit.py). Run with -M prepared.
\set o2 random(0, 255)
\set o3 random(0, 255)
\set o4 random(1, 254)
begin isolation level read committed read write;
select
    set_config('search_path', '"api", "public"', true),
    set_config('role', 'anon', true),
    set_config('request.jwt.claims', '{"role":"anon"}', true),
    set_config('request.method', 'POST', true),
    set_config('request.path', '/rpc/record_brand_engagement', true),
    set_config(
        'request.headers',
        format(
            '{"prefer":"return=minimal","x-real-ip":"10.%s.%s.%s","user-agent":"pgbench",'
            '"content-type":"application/json","host":"127.0.0.1","accept":"*/*"}',
            :o2::integer, :o3::integer, :o4::integer
        ),
        true
    ),
    set_config('request.cookies', '{}', true);
select "app_logic"."pre_request"();
with pgrst_source as (
    select pgrst_call.pgrst_scalar
    from (
        select "api"."record_brand_engagement"(format(
            '{"sessionId":"s%s","scrollDepthPercentage": 40,"keyboardNavigationUsed": true,'
            '"ctaClicks":[{"id":"contact","at":1200}],"timeSpentPerSection":{"hero":5300}}',
            gen_random_uuid()
                )::jsonb) as pgrst_scalar
    ) as pgrst_call
)
select
    null::bigint as total_result_set,
    1 as page_total,
    coalesce(json_agg(_postgrest_t.pgrst_scalar) -> 0, 'null') as body,
    nullif(current_setting('response.headers', true), '') as response_headers,
    nullif(current_setting('response.status', true), '') as response_status,
    '' as response_inserted
from (select "record_brand_engagement".* from "pgrst_source" as "record_brand_engagement" limit 1000 offset 0) as _postgrest_t;
commit;
