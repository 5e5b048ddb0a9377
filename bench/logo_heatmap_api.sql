-- A logo-heatmap post of 50 points as PostgREST 12.2 runs POST /rpc/record_logo_heatmap: the
-- statements of bench/submit_lead.sql with this endpoint and body. Run with -M prepared.
\set o2 random(0, 255)
\set o3 random(0, 255)
\set o4 random(1, 254)
begin isolation level read committed read write;
select
    set_config('search_path', '"api", "public"', true),
    set_config('role', 'anon', true),
    set_config('request.jwt.claims', '{"role":"anon"}', true),
    set_config('request.method', 'POST', true),
    set_config('request.path', '/rpc/record_logo_heatmap', true),
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
        select "api"."record_logo_heatmap"(format(
            '{"sessionId":"s%s","accessibilityTheme":"deuteranopia","points":[{"x":0.0,"y":0.0,"durationMs":40},{"x":0.37,"y":0.53,"durationMs":41},{"x":0.74,"y":0.06,"durationMs":42},{"x":0.11,"y":0.59,"durationMs":43},{"x":0.48,"y":0.12,"durationMs":44},{"x":0.85,"y":0.65,"durationMs":45},{"x":0.22,"y":0.18,"durationMs":46},{"x":0.59,"y":0.71,"durationMs":47},{"x":0.96,"y":0.24,"durationMs":48},{"x":0.33,"y":0.77,"durationMs":49},{"x":0.7,"y":0.3,"durationMs":50},{"x":0.07,"y":0.83,"durationMs":51},{"x":0.44,"y":0.36,"durationMs":52},{"x":0.81,"y":0.89,"durationMs":53},{"x":0.18,"y":0.42,"durationMs":54},{"x":0.55,"y":0.95,"durationMs":55},{"x":0.92,"y":0.48,"durationMs":56},{"x":0.29,"y":0.01,"durationMs":57},{"x":0.66,"y":0.54,"durationMs":58},{"x":0.03,"y":0.07,"durationMs":59},{"x":0.4,"y":0.6,"durationMs":60},{"x":0.77,"y":0.13,"durationMs":61},{"x":0.14,"y":0.66,"durationMs":62},{"x":0.51,"y":0.19,"durationMs":63},{"x":0.88,"y":0.72,"durationMs":64},{"x":0.25,"y":0.25,"durationMs":65},{"x":0.62,"y":0.78,"durationMs":66},{"x":0.99,"y":0.31,"durationMs":67},{"x":0.36,"y":0.84,"durationMs":68},{"x":0.73,"y":0.37,"durationMs":69},{"x":0.1,"y":0.9,"durationMs":70},{"x":0.47,"y":0.43,"durationMs":71},{"x":0.84,"y":0.96,"durationMs":72},{"x":0.21,"y":0.49,"durationMs":73},{"x":0.58,"y":0.02,"durationMs":74},{"x":0.95,"y":0.55,"durationMs":75},{"x":0.32,"y":0.08,"durationMs":76},{"x":0.69,"y":0.61,"durationMs":77},{"x":0.06,"y":0.14,"durationMs":78},{"x":0.43,"y":0.67,"durationMs":79},{"x":0.8,"y":0.2,"durationMs":80},{"x":0.17,"y":0.73,"durationMs":81},{"x":0.54,"y":0.26,"durationMs":82},{"x":0.91,"y":0.79,"durationMs":83},{"x":0.28,"y":0.32,"durationMs":84},{"x":0.65,"y":0.85,"durationMs":85},{"x":0.02,"y":0.38,"durationMs":86},{"x":0.39,"y":0.91,"durationMs":87},{"x":0.76,"y":0.44,"durationMs":88},{"x":0.13,"y":0.97,"durationMs":89}]}',
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
from (select "record_logo_heatmap".* from "pgrst_source" as "record_logo_heatmap" limit 1000 offset 0) as _postgrest_t;
commit;
