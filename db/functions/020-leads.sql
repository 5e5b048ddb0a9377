-- Leads (issue 3): phone normalisation, the submission endpoint, the CRM history and the
-- read views. Rules live in app_logic.<function>_rule() so the OpenAPI document uses them too.

-- Country calling codes assigned by the ITU (E.164 list; geographic areas and the global
-- services 800, 808, 870, 878, 881-883, 888, 979). Spare and withdrawn codes are absent.
-- The list is prefix-free, so at most one code is a prefix of a number.
create function app_logic.itu_country_code(p_digits text) returns text
language sql immutable
as $$
    select c.code
    from unnest(array[
        '1', '7',
        '20', '27', '30', '31', '32', '33', '34', '36', '39', '40', '41', '43', '44', '45', '46', '47', '48',
        '49', '51', '52', '53', '54', '55', '56', '57', '58', '60', '61', '62', '63', '64', '65', '66', '81',
        '82', '84', '86', '90', '91', '92', '93', '94', '95', '98',
        '211', '212', '213', '216', '218', '220', '221', '222', '223', '224', '225', '226', '227', '228',
        '229', '230', '231', '232', '233', '234', '235', '236', '237', '238', '239', '240', '241', '242',
        '243', '244', '245', '246', '247', '248', '249', '250', '251', '252', '253', '254', '255', '256',
        '257', '258', '260', '261', '262', '263', '264', '265', '266', '267', '268', '269', '290', '291',
        '297', '298', '299', '350', '351', '352', '353', '354', '355', '356', '357', '358', '359', '370',
        '371', '372', '373', '374', '375', '376', '377', '378', '380', '381', '382', '383', '385', '386',
        '387', '389', '420', '421', '423', '500', '501', '502', '503', '504', '505', '506', '507', '508',
        '509', '590', '591', '592', '593', '594', '595', '596', '597', '598', '599', '670', '672', '673',
        '674', '675', '676', '677', '678', '679', '680', '681', '682', '683', '685', '686', '687', '688',
        '689', '690', '691', '692', '800', '808', '850', '852', '853', '855', '856', '870', '878', '880',
        '881', '882', '883', '886', '888', '960', '961', '962', '963', '964', '965', '966', '967', '968',
        '970', '971', '972', '973', '974', '975', '976', '977', '979', '992', '993', '994', '995', '996',
        '998'
    ]) as c (code)
    where left(p_digits, char_length(c.code)) = c.code
    limit 1
$$;
comment on function app_logic.itu_country_code(text) is
'The ITU country calling code a string of digits starts with, or null when none is assigned.';

-- Phone numbers: the common international spellings (spaces, dashes, dots, slashes, brackets,
-- a leading 00, the British "(0)") become E.164. A number without a country code cannot be
-- normalised safely: the caller is told to add it. A blank value is no number at all.
-- STRICT: for a null value (no phone, or a blank one after trimming) the executor answers null
-- without calling it, so lead_values needs no test of its own for a phone that is not there
-- (about 2k instructions per submission; PL/pgSQL, a call and its statements otherwise).
create function app_logic.phone_to_e164(p_raw text, out e164 text, out problem text)
language plpgsql immutable strict
as $$
declare
    -- Typographic spaces and dashes count as separators too.
    v_text text := btrim(regexp_replace(p_raw, '[\u00a0\u2000-\u200b\u202f\u3000\u2010-\u2015\u2212]', ' ', 'g'));
    v_digits text;
    v_code text;
begin
    if coalesce(v_text, '') = '' then
        return;
    end if;
    if v_text !~ '^\+?[0-9[:space:]().\[\]/-]+$' then
        problem := 'may contain only digits, spaces, dashes, dots, slashes and brackets, after a leading + or 00.';
        return;
    end if;
    -- "+44 (0)20 ..." writes the national trunk prefix in brackets: it is not part of the number.
    v_digits := regexp_replace(regexp_replace(v_text, '\([[:space:]]*0[[:space:]]*\)', '', 'g'), '[^0-9+]', '', 'g');
    if v_digits ~ '^00' then
        v_digits := '+' || substr(v_digits, 3);
    end if;
    if v_digits !~ '^\+' then
        problem := 'needs the country code: start with + or 00, e.g. +44 20 7946 0958.';
        return;
    end if;
    v_digits := substr(v_digits, 2);
    v_code := app_logic.itu_country_code(v_digits);
    if char_length(v_digits) < 3 then
        problem := 'must have 7 to 15 digits including the country code.';
    elsif v_code is null then
        problem := format('starts with +%s, which is not an ITU country code.', left(v_digits, 3));
    elsif char_length(v_digits) not between 7 and 15 then
        problem := 'must have 7 to 15 digits including the country code.';
    elsif v_code in ('1', '7') and char_length(v_digits) <> 11 then
        -- North America (+1) and Russia/Kazakhstan (+7) have ten-digit national numbers.
        problem := format('with country code +%s must have 10 digits after it.', v_code);
    else
        e164 := '+' || v_digits;
    end if;
end
$$;
comment on function app_logic.phone_to_e164(text) is
'E.164 form of a phone number, or the reason it cannot be one (problem); both null for a blank value.';

-- POST /api/leads: the contract's table, one property per field; the fields other endpoints
-- share come from their rules in 000-foundation.
create function app_logic.submit_lead_rule() returns jsonb
language sql immutable
as $$
    select jsonb_set(jsonb_set(jsonb_set('{
        "type": "object",
        "additionalProperties": false,
        "required": ["firstName", "lastName", "email", "gdprConsent"],
        "properties": {
            "firstName": {"type": "string", "trim": true, "minLength": 1, "maxLength": 100,
                "description": "First name, 1 to 100 characters after trimming."},
            "lastName": {"type": "string", "trim": true, "minLength": 1, "maxLength": 100,
                "description": "Last name, 1 to 100 characters after trimming."},
            "email": {"type": "email", "trim": true, "maxLength": 254,
                "description": "Email address (at most 254 characters); one lead per address, whatever its letter case."},
            "phone": {"type": "phone", "trim": true, "maxLength": 40,
                "description": "Phone number with its country code (+44 20 7946 0958, 0044 ..., dots, dashes, brackets); stored as E.164."},
            "companyName": {"type": "string", "trim": true, "maxLength": 200,
                "description": "Company, at most 200 characters."},
            "inquiryDetails": {"type": "string", "trim": true, "multiline": true, "maxLength": 5000,
                "description": "What the person would like to discuss, at most 5000 characters."},
            "leadSource": {"type": "string", "maxLength": 50, "pattern": "^[a-z0-9_]{1,50}$",
                "patternText": "1 to 50 lower-case letters, digits or underscores",
                "description": "Where the lead came from, a slug; default contact_form."},
            "gdprConsent": {"type": "boolean", "const": true,
                "description": "Consent to processing the data for answering the inquiry; must be true."},
            "marketingConsent": {"type": "boolean",
                "description": "Consent to marketing messages; default false. Every submission records it."},
            "accessibilityTheme": {"type": "string",
                "enum": ["default", "protanopia", "deuteranopia", "tritanopia", "achromatopsia"],
                "description": "Colour theme the visitor used; default default."},
            "preferredCommunication": {"type": "string", "enum": ["email", "phone"],
                "description": "How to answer; default email; phone needs a phone number."},
            "deviceType": {"type": "string", "enum": ["mobile", "tablet", "desktop"],
                "description": "Kind of device the form was sent from."},
            "pagesViewed": {"type": "array", "maxItems": 100,
                "description": "Paths the visitor viewed, at most 100.",
                "items": {"type": "string", "maxLength": 200, "pattern": "^/\\S*$",
                    "patternText": "a path that starts with / and has no spaces",
                    "description": "A path, at most 200 characters."}},
            "browserInfo": {"type": "object", "maxBytes": 4096,
                "description": "Whatever the browser reports about itself, a JSON object of at most 4096 bytes."},
            "sessionId": {"type": "string", "trim": true, "maxLength": 100,
                "description": "The visitor''s session id, at most 100 characters; the first lead to name a session owns its preferences, engagement and page views."},
            "website": {"type": "string", "maxLength": 500,
                "description": "Leave empty: a field hidden from people (honeypot); a body that fills it in is dropped quietly."},
            "formToken": {"type": "string", "maxLength": 200,
                "description": "The token of GET /api/form-token, fetched when the form was shown (db/functions/340-spam.sql)."},
            "altcha": {"type": "string", "maxLength": 4000,
                "description": "Base64 payload of the solved challenge of GET /api/challenge (ALTCHA), when proof of work is on."}
        }
    }'::jsonb,
    '{properties,coreWebVitals}', app_logic.core_web_vitals_rule()),
    '{properties,logoInteractions}', app_logic.counter_rule('How often the visitor interacted with the logo.')),
    '{properties,timeOnSite}', app_logic.counter_rule('Time spent on the site before sending, ms.'))
$$;
comment on function app_logic.submit_lead_rule() is 'The validation rule of POST /api/leads (JSON Schema words).';

-- app_logic.submit_lead_passes(jsonb): the rule compiled, the fast path of a valid submission.
select app_logic.compile_rule('submit_lead_passes', app_logic.submit_lead_rule());

-- The validated fields of a submission, normalised (trimmed, phone in E.164, defaults applied,
-- JSON nulls removed, nested ones too), one column per field, named as the POST body names it:
-- the one definition of what is stored and of what a resubmission records (lead_fields). A
-- set-returning SQL function of one SELECT without FROM: the planner inlines it into the lead's
-- INSERT in submit_lead's cached plan, so a new lead's row is computed from the body directly,
-- with no JSON object built and read back field by field (issue 13: -125k instructions).
-- Every node of these expressions is set up again in every transaction (about 1.5k instructions
-- each, whether it is evaluated or not), so each field is read with the fewest the rule allows
-- (issue 13, session 9, -22k): the names and the email, required and at least one character
-- after trimming, need no nullif; a valid pagesViewed is an array of strings, in which
-- jsonb_strip_nulls has nothing to strip; gdprConsent is read as the boolean it is stored as.
-- pgTAP 020-leads-row compares the rows with the definitions before on awkward bodies.
create function app_logic.lead_values(p_body jsonb)
returns table (
    "firstName" text, "lastName" text, email text, phone text, "companyName" text, "inquiryDetails" text,
    "leadSource" text, "gdprConsent" boolean, "marketingConsent" boolean, "accessibilityTheme" text,
    "preferredCommunication" text, "deviceType" text, "coreWebVitals" jsonb, "logoInteractions" integer,
    "timeOnSite" integer, "pagesViewed" jsonb, "browserInfo" jsonb, "sessionId" text
)
language sql immutable
as $$
    select
        app_logic.trim_text(p_body ->> 'firstName'),
        app_logic.trim_text(p_body ->> 'lastName'),
        app_logic.trim_text(p_body ->> 'email'),
        (app_logic.phone_to_e164(app_logic.text_field(p_body, 'phone'))).e164,
        app_logic.text_field(p_body, 'companyName'),
        app_logic.text_field(p_body, 'inquiryDetails'),
        coalesce(p_body ->> 'leadSource', 'contact_form'),
        (p_body ->> 'gdprConsent')::boolean,
        coalesce(app_logic.boolean_field(p_body, 'marketingConsent'), false),
        coalesce(p_body ->> 'accessibilityTheme', 'default'),
        coalesce(p_body ->> 'preferredCommunication', 'email'),
        p_body ->> 'deviceType',
        jsonb_strip_nulls(nullif(p_body -> 'coreWebVitals', 'null')),
        app_logic.integer_field(p_body, 'logoInteractions'),
        app_logic.integer_field(p_body, 'timeOnSite'),
        nullif(p_body -> 'pagesViewed', 'null'),
        jsonb_strip_nulls(nullif(p_body -> 'browserInfo', 'null')),
        app_logic.text_field(p_body, 'sessionId')
$$;
comment on function app_logic.lead_values(jsonb) is
'The normalised fields of a valid POST /api/leads body (phone as E.164, defaults applied), one column each.';

-- The same fields as one JSON object without absent ones, camelCase: what a resubmission
-- records. PL/pgSQL keeps the plan of its query for the session (an SQL function with FROM is
-- planned again at every call); only a known address needs it.
create function app_logic.lead_fields(p_body jsonb) returns jsonb
language plpgsql stable
as $$
begin
    return (select jsonb_strip_nulls(to_jsonb(v)) from app_logic.lead_values(p_body) as v);
end
$$;
comment on function app_logic.lead_fields(jsonb) is
'The normalised fields of a valid POST /api/leads body (phone as E.164, defaults applied), as a JSON object.';

-- The rule the per-field checks cannot express (the hook of screen_request, so it sees only a
-- body the rule passed): answering by phone needs a phone number. Whether a body keeps it, as a
-- boolean, is the one definition: submit_lead's compiled answer reads it directly, the hook
-- explains a refusal. SQL without a sub-select, so the planner inlines both into submit_lead's
-- call (a PL/pgSQL call and its statement cost 14k instructions per submission); a containment
-- test (one operator where ->> and = were two) and no problem object built only to be counted
-- (issue 13, session 10, -2.7k instructions a submission, callgrind).
create function app_logic.submit_lead_checks_pass(p_body jsonb) returns boolean
language sql immutable
as $$
    select not p_body @> '{"preferredCommunication": "phone"}' or app_logic.text_field(p_body, 'phone') is not null
$$;
comment on function app_logic.submit_lead_checks_pass(jsonb) is
'Whether a POST /api/leads body the rule passed keeps the cross-field rule: phone contact needs a phone number.';

create function app_logic.submit_lead_checks(p_body jsonb) returns jsonb
language sql immutable
as $$
    select case when app_logic.submit_lead_checks_pass(p_body) then '[]'::jsonb
        else app_logic.problem(
            'preferredCommunication', 'preferredCommunication can be phone only when a phone number is given.'
        )
    end
$$;
comment on function app_logic.submit_lead_checks(jsonb) is
'Cross-field problems of a POST /api/leads body the rule passed: phone contact needs a phone number.';

-- A known address (anyone may know one) changes nothing of the lead and never grants marketing
-- consent: only a withdrawal (false) takes effect, which errs on the safe side. A new address's
-- consent is what the form said. The audit rows carry the submission (lead_interactions.id) and
-- say what it asked: 'consent' when it took effect, 'request' when it did not.
create function api.submit_lead(jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    p_body alias for $1;
    v_refusal jsonb;
    v_fields jsonb;
    v_now timestamptz := app_logic.now();
    v_lead_id uuid;
    v_known app.leads;
    v_marketing boolean;
    v_submission_id bigint;
    -- The address, trimmed once: the rate limit's key, the lead's email and the consent's subject
    -- (for a body the rule passed it is lead_values' email). Trimming it again at each of the three
    -- cost 15k instructions per submission (issue 13): btrim over 67 characters and its set-up.
    v_email text := case when jsonb_typeof(p_body -> 'email') = 'string' then app_logic.trim_text(p_body ->> 'email') end;
begin
    v_refusal := app_logic.screen_request(
        'leads', p_body, app_logic.submit_lead_rule(),
        v_email,
        'app_logic.submit_lead_checks',
        p_passes => app_logic.submit_lead_passes(p_body) and app_logic.submit_lead_checks_pass(p_body)
    );
    if v_refusal is not null then
        return v_refusal;
    end if;
    -- Honeypot, form token, proof of work (db/functions/340-spam.sql): a quiet 201 or a 400; only
    -- for a body with anything for the endpoint's rule to check (the test is inlined and folded).
    if app_logic.spam_screen_needed('leads', p_body) then
        v_refusal := app_logic.screen_spam('leads', p_body);
        if v_refusal is not null then
            return v_refusal;
        end if;
    end if;

    -- As app_logic.lead_values reads it (pgTAP 020-leads-row compares the two).
    v_marketing := coalesce(app_logic.boolean_field(p_body, 'marketingConsent'), false);
    -- Twice at most: a known lead erased between the insert and the lookup is inserted anew.
    for attempt in 1..2 loop
        -- The lead and its submission in one statement (one executor run fewer per request).
        with new_lead as (
            insert into app.leads as l (
                first_name, last_name, email, phone, company_name, inquiry_details, lead_source,
                gdpr_consent, marketing_consent, accessibility_theme, preferred_communication, device_type,
                core_web_vitals, load_time_lcp, load_time_fid, logo_interactions, time_on_site, pages_viewed,
                browser_info, session_id, created_at, updated_at
            )
            select
                v."firstName", v."lastName", v_email, v.phone, v."companyName", v."inquiryDetails", v."leadSource",
                -- Marketing consent waits for the address's owner (double opt-in, 310-consent-texts).
                v."gdprConsent", false, v."accessibilityTheme", v."preferredCommunication", v."deviceType",
                -- lcp and fid as the columns' old generated expressions read them (db/schema/470), from
                -- the body: the stored vitals differ only by nulls, and an inlined column is computed
                -- again where it is read.
                v."coreWebVitals", (p_body #>> '{coreWebVitals,lcp}')::numeric, (p_body #>> '{coreWebVitals,fid}')::numeric,
                coalesce(v."logoInteractions", 0), v."timeOnSite", coalesce(v."pagesViewed", '[]'), v."browserInfo",
                v."sessionId", v_now, v_now
            from app_logic.lead_values(p_body) as v
            on conflict ((lower(email))) do nothing
            returning l.id
        )
        insert into app.lead_interactions as i (lead_id, kind, created_at)
        select n.id, 'submission', v_now from new_lead as n
        returning i.lead_id, i.id into v_lead_id, v_submission_id;
        if v_lead_id is not null then
            exit;
        end if;
        v_fields := app_logic.lead_fields(p_body);
        select l.* into v_known from app.leads as l where lower(l.email) = lower(v_fields ->> 'email') for update;
        if found then
            v_lead_id := v_known.id;
            if v_known.marketing_consent and not v_marketing then
                update app.leads set marketing_consent = false, updated_at = v_now where id = v_known.id;
            end if;
            if not v_marketing then
                perform app_logic.cancel_marketing_confirmations(v_known.id);
            end if;
            insert into app.lead_interactions (lead_id, kind, details, created_at)
            values (v_known.id, 'resubmission', v_fields, v_now)
            returning id into v_submission_id;
            -- A new lead claims its session in the insert trigger; a known one claims it here.
            perform app_logic.claim_session(v_known.id, v_fields ->> 'sessionId');
            exit;
        end if;
    end loop;

    -- A form's marketing consent is always a request: the confirmation link makes it a consent.
    -- In a condition, not a PERFORM: a simple expression, no SELECT through SPI (030-consent).
    if app_logic.record_form_consent(
        v_email, v_marketing, v_submission_id, v_marketing
    ) is null then
        null;
    end if;
    if v_marketing and not coalesce(v_known.marketing_consent, false) then
        perform app_logic.request_marketing_confirmation(v_lead_id);
    end if;
    -- The same answer for a new and a known address: a caller cannot learn which it was. A
    -- constant, not jsonb_build_object (STABLE, so built again in every transaction: 4.7k).
    return app_logic.respond(201, '{"status": "received"}');
end
$$;
comment on function api.submit_lead(jsonb) is
'POST /api/leads: record a lead from the contact form. 201 {"status":"received"} whether or not the address was '
'known (a known address changes nothing but may withdraw marketing consent); marketingConsent true sends a '
'confirmation link to the address and grants nothing until it is opened; 400 naming every invalid field; '
'429 when rate-limited (5 per IP per 10 minutes, 3 per email per hour).';

-- GET /api/leads: the leads with the POST field names. security_invoker: the caller's grants
-- and the RLS policies of app.leads decide who reads what.
create view api.leads with (security_invoker = true) as
select
    l.id,
    l.first_name as "firstName",
    l.last_name as "lastName",
    l.email,
    l.phone,
    l.company_name as "companyName",
    l.inquiry_details as "inquiryDetails",
    l.lead_source as "leadSource",
    l.gdpr_consent as "gdprConsent",
    l.marketing_consent as "marketingConsent",
    l.accessibility_theme as "accessibilityTheme",
    l.preferred_communication as "preferredCommunication",
    l.device_type as "deviceType",
    l.core_web_vitals as "coreWebVitals",
    l.logo_interactions as "logoInteractions",
    l.time_on_site as "timeOnSite",
    l.pages_viewed as "pagesViewed",
    l.browser_info as "browserInfo",
    l.session_id as "sessionId",
    l.created_at as "createdAt",
    l.updated_at as "updatedAt"
from app.leads as l;
comment on view api.leads is
'GET /api/leads (reader or admin key): one row per person who contacted us. PostgREST filters, order, '
'limit/offset and Prefer: count=exact apply.';
comment on column api.leads.id is 'Lead id (UUID).';
comment on column api.leads."firstName" is 'First name, trimmed.';
comment on column api.leads."lastName" is 'Last name, trimmed.';
comment on column api.leads.email is 'Email address as first submitted; unique regardless of letter case.';
comment on column api.leads.phone is 'Phone number in E.164 (+442079460958), or null.';
comment on column api.leads."companyName" is 'Company, or null.';
comment on column api.leads."inquiryDetails" is 'What the person would like to discuss, or null.';
comment on column api.leads."leadSource" is 'Where the lead came from (slug), default contact_form.';
comment on column api.leads."gdprConsent" is 'Consent to processing; always true (required to submit).';
comment on column api.leads."marketingConsent" is
'Current marketing consent: what the first submission said, unless withdrawn since (a later submission or '
'POST /api/gdpr/consent).';
comment on column api.leads."accessibilityTheme" is 'Colour theme the visitor used.';
comment on column api.leads."preferredCommunication" is 'email or phone.';
comment on column api.leads."deviceType" is 'mobile, tablet or desktop, or null.';
comment on column api.leads."coreWebVitals" is 'Core Web Vitals object {lcp, fid, cls, inp, ttfb}, or null.';
comment on column api.leads."logoInteractions" is 'How often the visitor interacted with the logo.';
comment on column api.leads."timeOnSite" is 'Time on the site before sending, ms, or null.';
comment on column api.leads."pagesViewed" is 'JSON array of the paths viewed.';
comment on column api.leads."browserInfo" is 'JSON object the browser reported, or null.';
comment on column api.leads."sessionId" is 'Session id linking the lead to accessibility preferences and engagement.';
comment on column api.leads."createdAt" is 'When the lead was first submitted.';
comment on column api.leads."updatedAt" is 'When the lead last changed (a marketing consent change).';

-- GET /api/lead-interactions: the CRM history, same access as the leads.
create view api.lead_interactions with (security_invoker = true) as
select
    i.id,
    i.lead_id as "leadId",
    i.kind,
    i.note,
    i.details,
    i.api_key_id as "apiKeyId",
    i.created_at as "createdAt"
from app.lead_interactions as i;
comment on view api.lead_interactions is
'GET /api/lead-interactions (reader or admin key): what happened to each lead, oldest first by id; '
'filter with leadId=eq.<id>.';
comment on column api.lead_interactions.id is 'Interaction id.';
comment on column api.lead_interactions."leadId" is 'The lead it belongs to (api.leads.id).';
comment on column api.lead_interactions.kind is
'submission or resubmission (recorded by the system), note, call, email, meeting or status_change (the team).';
comment on column api.lead_interactions.note is 'Free text of the team''s entry, or null.';
comment on column api.lead_interactions.details is
'For a resubmission: the validated fields it carried (the lead itself is not changed by it).';
comment on column api.lead_interactions."apiKeyId" is 'Id of the API key that added the entry; null for system entries.';
comment on column api.lead_interactions."createdAt" is 'When it happened.';

create function app_logic.add_lead_interaction_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object",
        "additionalProperties": false,
        "required": ["leadId", "kind"],
        "properties": {
            "leadId": {"type": "string", "maxLength": 36,
                "pattern": "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
                "patternText": "a lead id (UUID)", "description": "Id of the lead (from GET /api/leads)."},
            "kind": {"type": "string", "enum": ["note", "call", "email", "meeting", "status_change"],
                "description": "What happened."},
            "note": {"type": "string", "trim": true, "multiline": true, "maxLength": 5000,
                "description": "Free text, at most 5000 characters; required when kind is note."}
        }
    }'::jsonb
$$;
comment on function app_logic.add_lead_interaction_rule() is
'The validation rule of POST /api/lead-interactions (JSON Schema words).';

-- The checks of a body the rule passed: the lead must exist, and a note needs its text.
create function app_logic.add_lead_interaction_checks(p_body jsonb) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_problems jsonb := '[]'::jsonb;
begin
    if not exists (select from app.leads as l where l.id = (p_body ->> 'leadId')::uuid) then
        v_problems := app_logic.problem('leadId', 'leadId does not name a known lead.');
    end if;
    if p_body ->> 'kind' = 'note' and app_logic.text_field(p_body, 'note') is null then
        v_problems := v_problems || app_logic.problem('note', 'note is required when kind is note.');
    end if;
    return v_problems;
end
$$;
comment on function app_logic.add_lead_interaction_checks(jsonb) is
'Problems of a POST /api/lead-interactions body the rule passed: an unknown leadId, a note without text.';

create function app_logic.add_lead_interaction_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_id bigint;
begin
    insert into app.lead_interactions (lead_id, kind, note, api_key_id, created_at)
    values (
        (p_body ->> 'leadId')::uuid, p_body ->> 'kind', app_logic.text_field(p_body, 'note'),
        app_logic.current_api_key_id(), app_logic.now()
    )
    returning id into v_id;
    return app_logic.respond(201, jsonb_build_object('status', 'recorded', 'id', v_id));
end
$$;
-- No rate-limit rule is seeded for this action; an operator may add one.
select app_logic.declare_post(
    'add_lead_interaction', 'lead_interactions', 'app_logic.add_lead_interaction_rule',
    'app_logic.add_lead_interaction_handler', 'app_logic.add_lead_interaction_checks'
);
comment on function api.add_lead_interaction(jsonb) is
'POST /api/lead-interactions (admin key): add a note, call, email, meeting or status change to a lead. '
'201 {"status":"recorded","id":...}; 400 naming the invalid fields (an unknown leadId included).';
