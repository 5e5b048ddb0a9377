-- frame: role=anon
-- (b) A lead submission exactly as PostgREST 12.2 runs POST /rpc/submit_lead: this call inside
-- the statements PostgREST sends for a request (chorus_db.bench.common.framed). Run with
-- -M prepared, as PostgREST prepares its statements. Distinct client IPs and emails.
select "api"."submit_lead"(format(
    '{"firstName":"John","lastName":"Doe","email":"b%s@example.com","leadSource":"contact_form",'
    '"gdprConsent": true,"companyName":"Acme Corp","inquiryDetails":"Interested in technical deep dive",'
    '"accessibilityTheme":"protanopia","deviceType":"desktop","coreWebVitals":{"lcp": 2300,"fid": 85,"cls": 0.08},'
    '"logoInteractions": 3,"timeOnSite": 145000,"pagesViewed":["/","/ecosystem","/contact"]}',
    gen_random_uuid()
)::jsonb)
