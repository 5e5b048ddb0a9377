-- (a') The ceiling PostgREST's transaction shape leaves: the statements PostgREST sends for a
-- request (BEGIN, the request-context statement, the pre-request function, the main query,
-- COMMIT), with a plain INSERT of the same row as (a) as the main query and no logic.
-- Run like (b): as authenticator in role anon with -M prepared (the pre-request refuses any
-- other role); the bench database alone lets anon insert into app.leads (FRAMED_INSERT_SETUP).
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
insert into app.leads (
    first_name, last_name, email, company_name, inquiry_details, lead_source, accessibility_theme,
    gdpr_consent, marketing_consent, device_type, core_web_vitals, logo_interactions, time_on_site, pages_viewed
) values (
    'John', 'Doe', 'f' || gen_random_uuid() || '@example.com', 'Acme Corp', 'Interested in technical deep dive',
    'contact_form', 'protanopia', true, false, 'desktop', '{"lcp": 2300, "fid": 85, "cls": 0.08}', 3, 145000,
    '["/", "/ecosystem", "/contact"]'
);
commit;
