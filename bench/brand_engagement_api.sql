-- frame: role=anon
-- A brand-engagement post as PostgREST 12.2 runs POST /rpc/record_brand_engagement: this call in
-- PostgREST's framing, like bench/submit_lead.sql (the brand audit log's benchmark,
-- chorus_db/bench/audit.py). Run with -M prepared.
select "api"."record_brand_engagement"(format(
    '{"sessionId":"s%s","scrollDepthPercentage": 40,"keyboardNavigationUsed": true,'
    '"ctaClicks":[{"id":"contact","at":1200}],"timeSpentPerSection":{"hero":5300}}',
    gen_random_uuid()
)::jsonb)
