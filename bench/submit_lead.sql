-- (b) A lead submission exactly as PostgREST 12.2 runs POST /rpc/submit_lead (statements copied
-- from its log with log_statement = all): BEGIN, one statement setting the search path, role
-- and request context, the pre-request function, the call wrapped in PostgREST's query (which
-- also reads the response status and headers), COMMIT. Run with -M prepared, as PostgREST
-- prepares its statements. Distinct client IPs (X-Real-IP, as nginx sets it) and emails.
\set o2 random(0, 255)
\set o3 random(0, 255)
\set o4 random(1, 254)
begin isolation level read committed read write;
select
    set_config('search_path', '"api", "public"', true),
    set_config('role', 'anon', true),
    set_config('request.jwt.claims', '{"role":"anon"}', true),
    set_config('request.method', 'POST', true),
    set_config('request.path', '/rpc/submit_lead', true),
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
        select "api"."submit_lead"(format(
            '{"firstName":"John","lastName":"Doe","email":"b%s@example.com","leadSource":"contact_form",'
            '"gdprConsent": true,"companyName":"Acme Corp","inquiryDetails":"Interested in technical deep dive",'
            '"accessibilityTheme":"protanopia","deviceType":"desktop","coreWebVitals":{"lcp": 2300,"fid": 85,"cls": 0.08},'
            '"logoInteractions": 3,"timeOnSite": 145000,"pagesViewed":["/","/ecosystem","/contact"]}',
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
from (select "submit_lead".* from "pgrst_source" as "submit_lead" limit 1000 offset 0) as _postgrest_t;
commit;
