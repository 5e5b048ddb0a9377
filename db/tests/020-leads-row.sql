-- A new lead's row is computed from the body by app_logic.lead_values, inlined into the INSERT
-- (issue 13); it was read field by field from the JSON object app_logic.lead_fields built. The
-- two must store the same row and record the same fields for every body the API accepts: here
-- the old definitions, copied as they were, against what the submission stores now, on valid
-- and awkward bodies (Unicode blanks, JSON nulls at the top and nested, phone spellings, whole
-- numbers written 1.0, multi-line text).
begin;
select plan(9);

-- integer_field and boolean_field as they were before session 9, which reads a value the rule
-- passed by its text (db/functions/000-foundation.sql).
create function pg_temp.old_integer_field(p_body jsonb, p_key text) returns integer
language sql immutable
as $$
    select case when jsonb_typeof(p_body -> p_key) = 'number' then (p_body -> p_key)::numeric::integer end
$$;
create function pg_temp.old_boolean_field(p_body jsonb, p_key text) returns boolean
language sql immutable
as $$
    select case when jsonb_typeof(p_body -> p_key) = 'boolean' then (p_body -> p_key)::boolean end
$$;
select is(
    (
        select array_agg(v::text order by v::text)
        from
            unnest(array[
                '0', '1', '1.0', '1e3', '1E+2', '2.50e1', '-0', '0.0', '145000', '2147483647', '3600000.000', 'null'
            ]::jsonb[]) as v
        where
            app_logic.integer_field(jsonb_build_object('n', v), 'n')
            is distinct from pg_temp.old_integer_field(jsonb_build_object('n', v), 'n')
    ),
    null,
    'integer_field reads every whole number the rule passes, and JSON null, as before'
);
select is(
    (
        select array_agg(b::text order by b::text)
        from unnest(array['{"b": true}', '{"b": false}', '{"b": null}', '{}', '{"c": true}']::jsonb[]) as b
        where
            app_logic.boolean_field(b, 'b') is distinct from pg_temp.old_boolean_field(b, 'b')
            or app_logic.integer_field(b, 'n') is distinct from pg_temp.old_integer_field(b, 'n')
    ),
    null,
    'boolean_field reads true, false, JSON null and an absent key as before, and integer_field an absent key'
);

-- lead_fields as it was before lead_values (db/functions/020-leads.sql, session 7), with the
-- field readers as they were then.
create function pg_temp.old_lead_fields(p_body jsonb) returns jsonb
language sql stable
as $$
    select jsonb_strip_nulls(jsonb_build_object(
        'firstName', app_logic.text_field(p_body, 'firstName'),
        'lastName', app_logic.text_field(p_body, 'lastName'),
        'email', app_logic.text_field(p_body, 'email'),
        'phone', case when jsonb_typeof(p_body -> 'phone') = 'string' then
            (app_logic.phone_to_e164(app_logic.text_field(p_body, 'phone'))).e164
        end,
        'companyName', app_logic.text_field(p_body, 'companyName'),
        'inquiryDetails', app_logic.text_field(p_body, 'inquiryDetails'),
        'leadSource', coalesce(p_body ->> 'leadSource', 'contact_form'),
        'gdprConsent', (p_body -> 'gdprConsent'),
        'marketingConsent', coalesce(pg_temp.old_boolean_field(p_body, 'marketingConsent'), false),
        'accessibilityTheme', coalesce(p_body ->> 'accessibilityTheme', 'default'),
        'preferredCommunication', coalesce(p_body ->> 'preferredCommunication', 'email'),
        'deviceType', p_body ->> 'deviceType',
        'coreWebVitals', p_body -> 'coreWebVitals',
        'logoInteractions', pg_temp.old_integer_field(p_body, 'logoInteractions'),
        'timeOnSite', pg_temp.old_integer_field(p_body, 'timeOnSite'),
        'pagesViewed', p_body -> 'pagesViewed',
        'browserInfo', p_body -> 'browserInfo',
        'sessionId', app_logic.text_field(p_body, 'sessionId')
    ))
$$;

-- The row the old INSERT stored from those fields (its VALUES, with the fields as v_fields).
create function pg_temp.old_lead_row(p_body jsonb) returns jsonb
language sql stable
as $$
    select jsonb_build_object(
        'first_name', f ->> 'firstName', 'last_name', f ->> 'lastName', 'email', f ->> 'email',
        'phone', f ->> 'phone', 'company_name', f ->> 'companyName', 'inquiry_details', f ->> 'inquiryDetails',
        'lead_source', f ->> 'leadSource', 'gdpr_consent', (f ->> 'gdprConsent')::boolean, 'marketing_consent', false,
        'accessibility_theme', f ->> 'accessibilityTheme', 'preferred_communication', f ->> 'preferredCommunication',
        'device_type', f ->> 'deviceType', 'core_web_vitals', f -> 'coreWebVitals',
        'load_time_lcp', (f #>> '{coreWebVitals,lcp}')::numeric, 'load_time_fid', (f #>> '{coreWebVitals,fid}')::numeric,
        'logo_interactions', coalesce((f ->> 'logoInteractions')::integer, 0), 'time_on_site', (f ->> 'timeOnSite')::integer,
        'pages_viewed', coalesce(f -> 'pagesViewed', '[]'::jsonb), 'browser_info', f -> 'browserInfo',
        'session_id', f ->> 'sessionId'
    )
    from pg_temp.old_lead_fields(p_body) as f
$$;

create temporary table bodies (n integer primary key, body jsonb not null) on commit drop;
insert into bodies (n, body)
select
    row_number() over () as n,
    tap.lead(o) || jsonb_build_object('email', format('row-%s@example.org', row_number() over ())) as body
from unnest(array[
    '{}',
    '{"firstName": "\u00a0\u200bAda\u3000", "lastName": "\ufeffLovelace\u2060", "companyName": " Acme\u00a0"}',
    '{"phone": "+44 (0)20 7946 0958", "preferredCommunication": "phone", "deviceType": "mobile"}',
    '{"phone": "0044 20 7946 0958", "marketingConsent": true}',
    '{"phone": "+1 415-555-2671", "marketingConsent": false}',
    '{"phone": "\u2003", "marketingConsent": null, "companyName": null, "inquiryDetails": null}',
    '{"phone": null, "deviceType": null, "sessionId": null, "timeOnSite": null, "logoInteractions": null}',
    '{"coreWebVitals": {"lcp": 2300, "fid": 85, "cls": 0.08}, "logoInteractions": 3, "timeOnSite": 145000}',
    '{"coreWebVitals": {"lcp": 1.0, "fid": 0, "inp": 1e3}, "logoInteractions": 1.0, "timeOnSite": 0}',
    '{"coreWebVitals": {}, "browserInfo": {}, "pagesViewed": []}',
    '{"coreWebVitals": null, "browserInfo": null, "pagesViewed": null}',
    '{"browserInfo": {"ua": "x", "n": null, "deep": {"a": null, "b": [null, {"c": null}]}}}',
    '{"pagesViewed": ["/", "/ecosystem", "/contact?x=1"], "leadSource": "trade_fair_2026"}',
    '{"accessibilityTheme": "protanopia", "preferredCommunication": "email", "sessionId": " s-\u00e9t\u00e9 "}',
    '{"inquiryDetails": "line one\r\nline two\n\ttabbed \ud83d\ude00", "companyName": "Caf\u00e9 \u202fGmbH"}',
    '{"email": "  MixedCase@Example.ORG\u200b", "gdprConsent": true, "website": ""}'
]::jsonb[]) as o;
-- The last body keeps its own email (it tests trimming); every other one gets a unique address.
update bodies set body = body || '{"email": "  MixedCase@Example.ORG\u200b"}'
where n = 16;
grant select on bodies to anon;

select is(
    (
        select count(*)::integer from bodies
        where app_logic.lead_fields(body) = pg_temp.old_lead_fields(body)
    ),
    16,
    'lead_fields answers what it answered for every body'
);
select is(
    (
        select count(*)::integer from bodies as b, app_logic.lead_values(b.body) as v
        where jsonb_strip_nulls(to_jsonb(v)) = pg_temp.old_lead_fields(b.body)
    ),
    16,
    'lead_values holds the same fields, one column each'
);

delete from app.rate_limit_rules
where action = 'leads';
select set_config('request.headers', '{"x-real-ip": "203.0.113.50", "user-agent": "pgtap"}', true);
set local role anon;
select is(
    (
        select count(*)::integer from bodies
        where api.submit_lead(body) = '{"status": "received"}'
    ),
    16,
    'every body is accepted'
);
reset role;

select is(
    (
        select array_agg(b.n order by b.n)
        from bodies as b
        left join app.leads as l on lower(l.email) = lower(app_logic.text_field(b.body, 'email'))
        where
            l.id is null
            or to_jsonb(l) - array['id', 'created_at', 'updated_at'] is distinct from pg_temp.old_lead_row(b.body)
    ),
    null,
    'each new lead''s row is the row the old INSERT stored from the same body'
);
select is(
    (
        select count(*)::integer
        from bodies as b
        inner join app.leads as l on lower(l.email) = lower(app_logic.text_field(b.body, 'email'))
        inner join app.consent_audit as c
            on
                c.submission_id = (
                    select i.id from app.lead_interactions as i
                    where i.lead_id = l.id and i.kind = 'submission'
                )
        where
            c.consent_type = 'marketing'
            and c.granted = coalesce((pg_temp.old_lead_fields(b.body) ->> 'marketingConsent')::boolean, false)
    ),
    16,
    'each submission records the marketing consent the old fields said'
);
-- submit_lead trims the address once, for the limit, the lead and the consent (session 9).
select is(
    (
        select count(*)::integer
        from bodies as b
        inner join app.leads as l on lower(l.email) = lower(app_logic.text_field(b.body, 'email'))
        inner join app.lead_interactions as i on l.id = i.lead_id and i.kind = 'submission'
        inner join app.consent_audit as c on i.id = c.submission_id
        cross join (
            select k.value as pepper from app.settings as k
            where k.key = 'hash_pepper'
        ) as p
        where c.subject = app_logic.pseudonym(lower(pg_temp.old_lead_fields(b.body) ->> 'email'), p.pepper)
    ),
    32,
    'each submission''s two consent rows name the person by the address the old fields gave'
);

-- A known address: its resubmission records the fields as lead_fields gives them.
set local role anon;
select api.submit_lead(body || '{"companyName": "\u00a0Second Ltd", "marketingConsent": false}') from bodies
where n = 2;
reset role;
select is(
    (
        select i.details from app.lead_interactions as i
        inner join app.leads as l on i.lead_id = l.id
        where l.email = 'row-2@example.org' and i.kind = 'resubmission'
    ),
    pg_temp.old_lead_fields(
        (
            select body || '{"companyName": "\u00a0Second Ltd", "marketingConsent": false}' from bodies
            where n = 2
        )
    ),
    'a resubmission records the fields the old lead_fields gave'
);

select * from finish();
rollback;
