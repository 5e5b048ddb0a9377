-- (a) The physical limit: one valid lead row inserted straight into the table, no logic.
insert into app.leads (
    first_name, last_name, email, company_name, inquiry_details, lead_source, accessibility_theme,
    gdpr_consent, marketing_consent, device_type, core_web_vitals, logo_interactions, time_on_site, pages_viewed
) values (
    'John', 'Doe', 'a' || gen_random_uuid() || '@example.com', 'Acme Corp', 'Interested in technical deep dive',
    'contact_form', 'protanopia', true, false, 'desktop', '{"lcp": 2300, "fid": 85, "cls": 0.08}', 3, 145000,
    '["/", "/ecosystem", "/contact"]'
);
