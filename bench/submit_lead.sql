-- (b) A lead submission exactly as PostgREST 12 runs it: one transaction with the role and the
-- request settings, the pre-request function, the RPC, then the response settings.
-- Distinct client IPs (X-Real-IP, as nginx sets it) and distinct emails.
\set o2 random(0, 255)
\set o3 random(0, 255)
\set o4 random(1, 254)
begin isolation level read committed;
select
    set_config('role', 'anon', true),
    set_config('request.jwt.claims', '{"role":"anon"}', true),
    set_config('request.method', 'POST', true),
    set_config('request.path', '/rpc/submit_lead', true),
    set_config(
        'request.headers',
        format('{"x-real-ip":"10.%s.%s.%s","user-agent":"pgbench","content-type":"application/json"}', :o2, :o3, :o4),
        true
    ),
    set_config('request.cookies', '{}', true);
select app_logic.pre_request();
select api.submit_lead(jsonb_build_object(
    'firstName', 'John', 'lastName', 'Doe', 'email', 'b' || gen_random_uuid() || '@example.com',
    'leadSource', 'contact_form', 'gdprConsent', true, 'companyName', 'Acme Corp',
    'inquiryDetails', 'Interested in technical deep dive', 'accessibilityTheme', 'protanopia',
    'deviceType', 'desktop', 'coreWebVitals', jsonb_build_object('lcp', 2300, 'fid', 85, 'cls', 0.08),
    'logoInteractions', 3, 'timeOnSite', 145000, 'pagesViewed', jsonb_build_array('/', '/ecosystem', '/contact')
));
select current_setting('response.status', true), current_setting('response.headers', true);
commit;
