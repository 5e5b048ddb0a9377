-- Double opt-in and consent receipts (issue 14).
--
-- A web form's marketingConsent: true is a request, not a consent: anyone can type another
-- person's address. The submission queues a confirmation mail (same transaction) with a
-- single-use, expiring link. Opening it (GET /api/consent/confirm?token=...) only shows a page
-- whose button POSTs the token back: that POST is the consent, recorded with the time and the
-- hash of the confirmer's IP. Mail scanners (Safe Links, Proofpoint, Mimecast) and link previews
-- GET every link of a mail, so a GET must never be what grants or withdraws. Every marketing
-- mail carries a withdraw link (its page's button, or the RFC 8058 one-click POST).
-- The links carry a random token; only its SHA-256 is stored.

-- The text in force now: the newest one whose valid_from has passed.
-- PL/pgSQL: an SQL function with a FROM is never inlined, so its query was parsed and planned
-- again on every call (60 us of 1.1 ms); PL/pgSQL keeps the plan. The helpers of this file are
-- not SECURITY DEFINER: no API role may execute them, and the endpoints calling them run as the
-- owner already (each SECURITY DEFINER call pays a GUC nest level and a search path change).
create function app_logic.current_consent_text() returns app.consent_texts
language plpgsql stable
as $$
declare
    v_text app.consent_texts;
begin
    select t.* into v_text from app.consent_texts as t where t.version = app_logic.consent_text_at(app_logic.now());
    return v_text;
end
$$;
comment on function app_logic.current_consent_text() is 'The consent text in force (newest valid_from in the past).';

create function app_logic.consent_token_hash(p_token text) returns bytea
language sql immutable
as $$
    select sha256(convert_to(p_token, 'UTF8'))
$$;
comment on function app_logic.consent_token_hash(text) is 'What app.consent_tokens stores of a link''s token.';

-- 32 random bytes, base64url without padding: 43 characters, safe in a URL as they are.
create function app_logic.new_consent_token() returns text
language sql volatile
as $$
    select rtrim(translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/', '-_'), '=')
$$;
comment on function app_logic.new_consent_token() is 'A new random link token (43 URL-safe characters).';

-- A consent receipt in the fields of the Kantara Initiative Consent Receipt 1.1, which
-- ISO/IEC TS 27560 builds on: who is the controller, for what purpose, under which text
-- (version and SHA-256), when, how it was collected, under which jurisdiction, and its state.
create function app_logic.consent_receipt(
    p_email text, p_consent_type text, p_text_version text, p_at timestamptz, p_method text, p_state text,
    p_receipt_id uuid
) returns jsonb
language plpgsql stable
as $$
declare
    v_receipt jsonb;
begin
    -- PL/pgSQL keeps the plan (an SQL function with a FROM is planned again in every transaction),
    -- and the four settings are read in one scan.
    select jsonb_build_object(
        'version', 'KI-CR-v1.1.0',
        'specification', 'Kantara Initiative Consent Receipt v1.1 (ISO/IEC TS 27560)',
        'jurisdiction', c.jurisdiction,
        'consentTimestamp', extract(epoch from date_trunc('second', p_at))::bigint,
        'consentTime', to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'collectionMethod', p_method,
        'consentReceiptID', p_receipt_id,
        'language', t.language,
        'piiPrincipalId', lower(btrim(p_email)),
        'piiControllers', jsonb_build_array(jsonb_build_object(
            'piiController', c.controller, 'contact', c.contact, 'email', c.contact
        )),
        'policyUrl', c.policy_url,
        'services', jsonb_build_array(jsonb_build_object(
            'service', case p_consent_type when 'marketing' then 'News about CHORUS by email' else 'Answering the inquiry' end,
            'purposes', jsonb_build_array(jsonb_build_object(
                'purpose', case p_consent_type
                    when 'marketing' then 'Sending marketing messages by email'
                    else 'Processing the data of the contact form to answer the inquiry'
                end,
                'purposeCategory', jsonb_build_array(case p_consent_type when 'marketing' then 'Marketing' else 'Core function' end),
                'consentType', 'EXPLICIT',
                'piiCategory', jsonb_build_array('Contact details (name, email)'),
                'primaryPurpose', p_consent_type <> 'marketing',
                'termination', 'Until withdrawn: a link in every message, or a request to the controller',
                'thirdPartyDisclosure', false
            ))
        )),
        'sensitive', false,
        'spiCat', '[]'::jsonb,
        'notice', jsonb_build_object(
            'version', t.version, 'sha256', encode(t.sha256, 'hex'), 'validFrom', t.valid_from, 'text', t.body
        ),
        'state', p_state
    ) into v_receipt
    from app.consent_texts as t
    cross join (
        select
            max(s.value) filter (where s.key = 'consent_jurisdiction') as jurisdiction,
            max(s.value) filter (where s.key = 'consent_controller') as controller,
            max(s.value) filter (where s.key = 'consent_controller_contact') as contact,
            max(s.value) filter (where s.key = 'privacy_policy_url') as policy_url
        from app.settings as s
        where s.key in ('consent_jurisdiction', 'consent_controller', 'consent_controller_contact', 'privacy_policy_url')
    ) as c
    where t.version = p_text_version;
    return v_receipt;
end
$$;
comment on function app_logic.consent_receipt(text, text, text, timestamptz, text, text, uuid) is
'A consent receipt (Kantara CR v1.1 fields, ISO/IEC TS 27560) for one consent under one text version.';

-- The receipt of one consent-audit row, for the GDPR export: its id derives from the row's
-- hash, so the same row always has the same receipt.
create function app_logic.audit_consent_receipt(p_row app.consent_audit, p_email text) returns jsonb
language sql stable
as $$
    select app_logic.consent_receipt(
        p_email, p_row.consent_type, p_row.consent_text_version, p_row.recorded_at,
        case p_row.source
            when 'web_form' then 'Web form'
            when 'email_confirmation' then 'Link in the confirmation mail (double opt-in)'
            when 'unsubscribe_link' then 'Unsubscribe link in a mail'
            when 'gdpr_endpoint' then 'Recorded by the controller on request (admin API)'
            else p_row.source
        end,
        case when p_row.granted then 'granted' else 'withdrawn' end,
        encode(substr(p_row.row_hash, 1, 16), 'hex')::uuid
    )
$$;
comment on function app_logic.audit_consent_receipt(app.consent_audit, text) is
'The consent receipt of one consent-audit row (its id derived from the row hash).';

-- The confirmation request of a submission that ticked marketing consent: a confirm link
-- (expiring, single use), a withdraw link, and the mail carrying both and the receipt, queued
-- in the submission's transaction. The lead's consent stays false until the link is opened.
create function app_logic.request_marketing_confirmation(p_lead_id uuid) returns void
language plpgsql volatile
as $$
declare
    v_lead app.leads;
    v_text app.consent_texts := app_logic.current_consent_text();
    v_now timestamptz := app_logic.now();
    v_expires timestamptz;
    v_base text;
    v_confirm text := app_logic.new_consent_token();
    v_withdraw text := app_logic.new_consent_token();
    v_receipt jsonb;
begin
    select l.* into strict v_lead from app.leads as l where l.id = p_lead_id;
    -- Both settings in one read.
    select
        v_now + max(s.value) filter (where s.key = 'consent_confirmation_ttl')::interval,
        max(s.value) filter (where s.key = 'public_base_url')
    into v_expires, v_base
    from app.settings as s
    where s.key in ('consent_confirmation_ttl', 'public_base_url');
    -- Both links in one INSERT; only their hashes are kept.
    insert into app.consent_tokens (token_hash, purpose, lead_id, consent_text_version, created_at, expires_at)
    values
    (app_logic.consent_token_hash(v_confirm), 'confirm', p_lead_id, v_text.version, v_now, v_expires),
    (app_logic.consent_token_hash(v_withdraw), 'withdraw', p_lead_id, v_text.version, v_now, null);
    v_receipt := app_logic.consent_receipt(
        v_lead.email, 'marketing', v_text.version, v_now,
        'Web form, to be confirmed by a link sent to the address (double opt-in)', 'pending confirmation',
        gen_random_uuid()
    );
    perform app_logic.enqueue_email(
        'consent_confirmation', v_lead.email, p_lead_id,
        'Please confirm: news about CHORUS by email',
        concat_ws(
            E'\n',
            format('Hello %s,', v_lead.first_name),
            '',
            'someone, hopefully you, asked on our contact form to receive news about CHORUS at this address.',
            format('To confirm, open this link and press the button on its page before %s:',
                to_char(v_expires at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
            '',
            format('%s/api/consent/confirm?token=%s', v_base, v_confirm),
            '',
            'If it was not you, ignore this message: without the confirmation you will get no news from us.',
            '',
            'You agree to this text (version ' || v_text.version || ', SHA-256 ' || encode(v_text.sha256, 'hex') || '):',
            v_text.body,
            '',
            'The consent receipt (Kantara Consent Receipt v1.1 / ISO/IEC TS 27560) is attached as consent-receipt.json.',
            '',
            format('To stop receiving messages at any time, open this link and press its button: %s/api/consent/withdraw?token=%s', v_base, v_withdraw)
        ),
        jsonb_build_object(
            'List-Unsubscribe', format('<%s/api/consent/withdraw?token=%s>', v_base, v_withdraw),
            'List-Unsubscribe-Post', 'List-Unsubscribe=One-Click'
        ),
        jsonb_build_array(jsonb_build_object(
            'filename', 'consent-receipt.json', 'contentType', 'application/json', 'content', v_receipt
        ))
    );
end
$$;
comment on function app_logic.request_marketing_confirmation(uuid) is
'Queue the double opt-in mail of a lead (confirm link, withdraw link, consent receipt) in the current transaction.';

-- A submission without the tick from a known address withdraws, and that includes a pending
-- confirmation: its link stops working.
create function app_logic.cancel_marketing_confirmations(p_lead_id uuid) returns void
language sql volatile
as $$
    update app.consent_tokens as t set used_at = app_logic.now()
    where t.lead_id = p_lead_id and t.purpose = 'confirm' and t.used_at is null
$$;
comment on function app_logic.cancel_marketing_confirmations(uuid) is
'Make every pending confirmation link of a lead stop working (the person withdrew before confirming).';

-- The page or JSON a link answers with: HTML when the client asks for it (a person clicking),
-- JSON otherwise. Returned through PostgREST's "any" media-type handler, so the Content-Type
-- is ours; headers an earlier step set (Retry-After of a 429) are kept. With p_button, the
-- page holds one form: a button POSTing the link's own token back to the link (the page a GET
-- shows). No script, style, image or other resource: the CSP allows nothing but that form's
-- POST to this origin, and no site may frame the page (a framed button could be clicked for
-- the person: clickjacking).
create domain api."*/*" as bytea;
comment on domain api."*/*" is 'PostgREST''s any-media-type handler: the function sets Content-Type itself.';

create function app_logic.link_answer(p_body jsonb, p_title text, p_token text default null, p_button text default null)
returns api."*/*"
language plpgsql volatile
as $$
declare
    v_headers jsonb := coalesce(nullif(current_setting('response.headers', true), ''), '[]')::jsonb;
    v_html boolean := coalesce(app_logic.request_header('accept'), '') ilike '%text/html%';
    v_message text := coalesce(p_body ->> 'message', '');
    v_out bytea;
begin
    v_headers := v_headers || jsonb_build_array(
        jsonb_build_object('Content-Type', case when v_html then 'text/html; charset=utf-8' else 'application/json; charset=utf-8' end),
        -- The token is in the URL: no cache keeps it and no link on the page leaks it.
        jsonb_build_object('Cache-Control', 'no-store'),
        jsonb_build_object('Referrer-Policy', 'no-referrer'),
        jsonb_build_object('X-Content-Type-Options', 'nosniff')
    );
    if v_html then
        v_headers := v_headers || jsonb_build_array(
            jsonb_build_object('Content-Security-Policy',
                'default-src ''none''; form-action ''self''; base-uri ''none''; frame-ancestors ''none'''),
            jsonb_build_object('X-Frame-Options', 'DENY')
        );
        v_out := convert_to(format(
            E'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex"><title>%s</title></head>'
            '<body><h1>%s</h1><p>%s</p>%s</body></html>\n',
            app_logic.html_escape(p_title), app_logic.html_escape(p_title), app_logic.html_escape(v_message),
            -- A relative action: the link's own path with its token, behind any public base URL.
            case when p_button is not null then format(
                '<form method="post" action="?token=%s"><button type="submit">%s</button></form>',
                app_logic.html_escape(p_token), app_logic.html_escape(p_button)
            ) else '' end
        ), 'UTF8');
    else
        v_out := convert_to(p_body::text, 'UTF8');
    end if;
    perform set_config('response.headers', v_headers::text, true);
    return v_out::api."*/*";
end
$$;
comment on function app_logic.link_answer(jsonb, text, text, text) is
'Answer a consent link as HTML (Accept: text/html) or JSON, with no-store and no-referrer; with a button label, '
'the HTML page holds the form that POSTs the token.';

-- The body nginx builds from the link's query string: {"token": "..."}.
create function app_logic.consent_link_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object",
        "additionalProperties": false,
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9_-]{43}$",
                "patternText": "the 43-character token of the link",
                "description": "The token of the link, as the mail carried it."}
        }
    }'::jsonb
$$;
comment on function app_logic.consent_link_rule() is 'The validation rule of the confirm and withdraw links.';

-- Unknown, expired and used links get the same answer: it tells nothing about any address.
create function app_logic.invalid_link(p_title text) returns api."*/*"
language sql volatile
as $$
    select app_logic.link_answer(app_logic.respond(404, app_logic.error_body(
        'CHC01', 'This link is not valid: it has expired, was already used, or was never issued.', null,
        'Submit the form again to get a new confirmation link.'
    )), p_title)
$$;
comment on function app_logic.invalid_link(text) is 'Answer 404 CHC01 for a confirm or withdraw link that does not work.';

-- The token row of a confirm or withdraw link, locked until the answer commits; every column
-- null for a token that was never issued for that purpose.
create function app_logic.consent_link_token(p_body jsonb, p_purpose text) returns app.consent_tokens
language sql volatile
as $$
    select t.*
    from app.consent_tokens as t
    where t.token_hash = app_logic.consent_token_hash(p_body ->> 'token') and t.purpose = p_purpose
    for update
$$;
comment on function app_logic.consent_link_token(jsonb, text) is
'The consent token a link carries, for one purpose (confirm, withdraw), locked; null columns when unknown.';

-- A withdraw link works for good, a confirm link once and until it expires (the test of the
-- POSTs and of the page a GET shows).
create function app_logic.link_works(p_token app.consent_tokens) returns boolean
language sql stable
as $$
    select p_token.token_hash is not null and (
        p_token.purpose = 'withdraw' or (p_token.used_at is null and coalesce(p_token.expires_at > app_logic.now(), true))
    )
$$;
comment on function app_logic.link_works(app.consent_tokens) is
'Whether a consent link''s token still works: issued, and for a confirm link unused and unexpired.';

-- The lead of a link that works, locked until the answer commits; null columns when it does not.
create function app_logic.link_lead(p_token app.consent_tokens) returns app.leads
language sql volatile
as $$
    select l.* from app.leads as l where app_logic.link_works(p_token) and l.id = p_token.lead_id for update
$$;
comment on function app_logic.link_lead(app.consent_tokens) is
'The lead a working consent link belongs to, locked; null columns when the link does not work.';

-- A marketing consent given or withdrawn through a link: the lead, its CRM history and the
-- consent audit (with the hash of the address that opened the link and its user agent).
create function app_logic.record_link_consent(
    p_lead app.leads, p_granted boolean, p_source text, p_note text, p_details jsonb, p_now timestamptz
) returns void
language plpgsql volatile
as $$
begin
    update app.leads as l set marketing_consent = p_granted, updated_at = p_now where l.id = p_lead.id;
    insert into app.lead_interactions (lead_id, kind, note, details, created_at)
    values (
        p_lead.id, 'status_change', p_note,
        jsonb_build_object('marketingConsent', p_granted, 'source', p_source) || p_details, p_now
    );
    perform app_logic.append_consent(
        app_logic.person_pseudonym(p_lead.email), 'consent', 'marketing', p_granted, p_source,
        app_logic.client_ip_hash(), app_logic.request_user_agent()
    );
end
$$;
comment on function app_logic.record_link_consent(app.leads, boolean, text, text, jsonb, timestamptz) is
'Set a lead''s marketing consent from a confirm or withdraw link: the lead, a CRM note, the consent audit.';

-- A link refused before its token is read (over the rate limit, or not a link's token), in the
-- link's media type.
create function app_logic.link_refusal(p_refusal jsonb) returns api."*/*"
language sql volatile
as $$
    select app_logic.link_answer(p_refusal, 'The link could not be used')
$$;
comment on function app_logic.link_refusal(jsonb) is 'Answer a confirm or withdraw link''s 429 or 400 as HTML or JSON.';

-- The 200 of a link that did what it says: its status, the marketing consent now, a sentence.
create function app_logic.link_done(p_status text, p_marketing boolean, p_message text, p_title text)
returns api."*/*"
language sql volatile
as $$
    select app_logic.link_answer(app_logic.respond(200, jsonb_build_object(
        'status', p_status, 'marketingConsent', p_marketing, 'message', p_message
    )), p_title)
$$;
comment on function app_logic.link_done(text, boolean, text, text) is
'Answer a confirm or withdraw link that worked: 200 {"status", "marketingConsent", "message"} as HTML or JSON.';

create function app_logic.confirm_consent_handler(p_body jsonb) returns api."*/*"
language plpgsql volatile
as $$
declare
    v_token app.consent_tokens := app_logic.consent_link_token(p_body, 'confirm');
    v_lead app.leads := app_logic.link_lead(v_token);
    v_now timestamptz := app_logic.now();
begin
    if v_lead.id is null then
        return app_logic.invalid_link('This link does not work');
    end if;
    -- Every pending confirmation of the lead is settled by this one.
    update app.consent_tokens as t set used_at = v_now
    where t.lead_id = v_lead.id and t.purpose = 'confirm' and t.used_at is null;
    perform app_logic.record_link_consent(
        v_lead, true, 'email_confirmation', 'Marketing consent confirmed by email (double opt-in).',
        jsonb_build_object('consentTextVersion', v_token.consent_text_version), v_now
    );
    return app_logic.link_done(
        'confirmed', true, 'Thank you: you will receive news about CHORUS. Every message has a link to stop them.',
        'Subscription confirmed'
    );
end
$$;
comment on function app_logic.confirm_consent_handler(jsonb) is
'What POST /api/consent/confirm does with a link that passed: grant the marketing consent and settle every pending confirmation.';

create function app_logic.withdraw_consent_handler(p_body jsonb) returns api."*/*"
language plpgsql volatile
as $$
declare
    v_token app.consent_tokens := app_logic.consent_link_token(p_body, 'withdraw');
    v_lead app.leads := app_logic.link_lead(v_token);
    v_pending integer;
begin
    if v_lead.id is null then
        return app_logic.invalid_link('This link does not work');
    end if;
    update app.consent_tokens as t set used_at = app_logic.now()
    where t.lead_id = v_lead.id and t.used_at is null;
    get diagnostics v_pending = row_count;
    -- Used again, it changes nothing more and records nothing more.
    if v_lead.marketing_consent or v_pending > 0 then
        perform app_logic.record_link_consent(
            v_lead, false, 'unsubscribe_link', 'Marketing consent withdrawn through the link in a message.', '{}',
            app_logic.now()
        );
    end if;
    return app_logic.link_done('withdrawn', false, 'You will receive no more news from CHORUS.', 'Unsubscribed');
end
$$;
comment on function app_logic.withdraw_consent_handler(jsonb) is
'What POST /api/consent/withdraw does with a link that passed: withdraw the marketing consent and cancel every pending token.';

-- The two link POSTs open alike: one rate limit (consent_links), one rule, refusals as a link answers.
select
    app_logic.declare_post(
        f.name, 'consent_links', 'app_logic.consent_link_rule', format('app_logic.%s_handler', f.name)::regproc,
        p_refusal => 'app_logic.link_refusal'
    )
from unnest(array['confirm_consent', 'withdraw_consent']) as f (name);
comment on function api.confirm_consent(jsonb) is
'POST /api/consent/confirm?token=... (no key): the button of the double opt-in link''s page. Grants the '
'marketing consent and records it with the time and the hash of the confirmer''s IP. 200 {"status":"confirmed"}; '
'404 CHC01 for an expired, used or unknown link (the same answer for all three). HTML with Accept: text/html, '
'JSON otherwise. The body is not read: the token in the query is the whole authority, so no cookie is involved.';

comment on function api.withdraw_consent(jsonb) is
'POST /api/consent/withdraw?token=... (no key): the button of the unsubscribe link''s page, and RFC 8058 one-click '
'unsubscribe. Withdraws the marketing consent at once and records it in the consent audit; also cancels a pending '
'confirmation. 200 {"status":"withdrawn"}, also when used again; 404 CHC01 for an unknown link. HTML with '
'Accept: text/html, JSON otherwise.';

-- The page a link opens (GET and HEAD; nginx sends them here as a POST of {"token": ...}).
-- Mail scanners and link previews fetch every link of a mail, so this only reads: the
-- transaction is made read-only before anything else, so nothing below can write (not even a
-- rate-limit counter: nginx's per-address limits bound these reads). A link that would not
-- work gets the POST's own 400 or 404 CHC01 now, before the person presses anything.
create function app_logic.consent_link_page(p_body jsonb, p_purpose text) returns api."*/*"
language plpgsql stable
as $$
declare
    v_problems jsonb;
    v_token app.consent_tokens;
    v_confirm boolean := p_purpose = 'confirm';
begin
    perform set_config('transaction_read_only', 'on', true);
    v_problems := app_logic.validate(p_body, app_logic.consent_link_rule());
    if jsonb_array_length(v_problems) > 0 then
        return app_logic.link_refusal(app_logic.reject_invalid(v_problems));
    end if;
    select t.* into v_token
    from app.consent_tokens as t
    where t.token_hash = app_logic.consent_token_hash(p_body ->> 'token') and t.purpose = p_purpose;
    if not app_logic.link_works(v_token) then
        return app_logic.invalid_link('This link does not work');
    end if;
    return app_logic.link_answer(
        app_logic.respond(200, jsonb_build_object(
            'status', 'valid', 'action', p_purpose, 'method', 'POST',
            'message', case when v_confirm
                then 'Press the button to receive news about CHORUS by email. Opening this link alone changes nothing.'
                else 'Press the button to stop receiving news from CHORUS. Opening this link alone changes nothing.'
            end
        )),
        case when v_confirm then 'Confirm your subscription' else 'Unsubscribe' end,
        p_body ->> 'token',
        case when v_confirm then 'Yes, send me news about CHORUS' else 'Unsubscribe' end
    );
end
$$;
comment on function app_logic.consent_link_page(jsonb, text) is
'The page of a confirm or withdraw link (GET, HEAD): read-only; a button that POSTs the token, or the POST''s 400/404.';

-- The two GET routes (one function each, as each route names its own); the purpose decides
-- which token is valid, so a withdraw token on the confirm link is 404 like any unknown one.
create function api.confirm_consent_page(jsonb) returns api."*/*"
language sql stable security definer set search_path = pg_catalog, app, pg_temp
as $$ select app_logic.consent_link_page($1, 'confirm') $$;
create function api.withdraw_consent_page(jsonb) returns api."*/*"
language sql stable security definer set search_path = pg_catalog, app, pg_temp
as $$ select app_logic.consent_link_page($1, 'withdraw') $$;
comment on function api.confirm_consent_page(jsonb) is
'GET /api/consent/confirm?token=... (no key): the double opt-in link of the confirmation mail. Changes nothing '
'(mail scanners open links too): 200 with a page whose button POSTs the token to the same link, or JSON '
'{"status":"valid","action":"confirm","method":"POST"}; 404 CHC01 for an expired, used or unknown link; HEAD '
'answers the same headers.';
comment on function api.withdraw_consent_page(jsonb) is
'GET /api/consent/withdraw?token=... (no key): the unsubscribe link of every marketing mail. Changes nothing: 200 '
'with a page whose button POSTs the token to the same link (as RFC 8058 one-click does), or JSON '
'{"status":"valid","action":"withdraw","method":"POST"}; 404 CHC01 for an unknown link.';
