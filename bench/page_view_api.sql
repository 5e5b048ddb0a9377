-- (5) A page view as PostgREST 12.2 runs POST /rpc/record_page_view: the statements of
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
    set_config('request.path', '/rpc/record_page_view', true),
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
        select "api"."record_page_view"(format(
            '{"sessionId":"s%s","path":"/ecosystem","referrer":"https://www.example.com/blog?q=1",'
            '"deviceType":"desktop","durationMs": 5300}',
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
from (select "record_page_view".* from "pgrst_source" as "record_page_view" limit 1000 offset 0) as _postgrest_t;
commit;
