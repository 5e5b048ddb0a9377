-- frame: role=anon
-- (5) A page view as PostgREST 12.2 runs POST /rpc/record_page_view: this call in PostgREST's
-- framing, like bench/submit_lead.sql. Run with -M prepared.
select "api"."record_page_view"(format(
    '{"sessionId":"s%s","path":"/ecosystem","referrer":"https://www.example.com/blog?q=1",'
    '"deviceType":"desktop","durationMs": 5300}',
    gen_random_uuid()
)::jsonb)
