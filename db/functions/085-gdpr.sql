-- Data protection: the consent audit's verification, and export, erasure and consent changes
-- for one person (by email, any letter case) behind the admin endpoints and `invoke gdpr.*`.
--
-- A person is found through their lead (email), the sessions it owns (app.lead_sessions: every
-- session one of its submissions named first, resubmissions from later sessions included), and
-- their pseudonym (HMAC of the lower-cased email) in the consent audit and rate-limit counters.
-- A session another lead claimed first (a shared browser) is that lead's: it is neither exported
-- nor erased with this one.

-- The consent audit walked subject by subject: every row's hash must match its content, its
-- prev_hash the hash of the row before it, and seq must count 1, 2, 3... without a gap.
-- A row changed behind the audit's back (triggers disabled) breaks its own hash, or, if its
-- hash was recomputed, the next row's link; a deleted row leaves a gap. What a chain cannot
-- show on its own is the loss of a subject's newest rows: compare with a backup for that.
create function app_logic.verify_consent_chain()
returns table (id bigint, subject text, seq integer, reason text)
language sql stable
as $$
    with walked as (
        select
            a.*,
            lag(a.seq) over subject_chain as prev_seq,
            lag(a.id) over subject_chain as prev_id,
            lag(a.row_hash) over subject_chain as prev_row_hash,
            row_number() over subject_chain as position
        from app.consent_audit as a
        window subject_chain as (partition by a.subject order by a.seq)
    ),

    checked as (
        select
            w.id,
            w.subject,
            w.seq,
            case
                when w.position = 1 and w.seq <> 1 then
                    format('the chain starts at seq %s: the rows before it are missing', w.seq)
                when w.position > 1 and w.seq <> w.prev_seq + 1 then
                    format('seq %s follows seq %s: %s row(s) between them are missing', w.seq, w.prev_seq, w.seq - w.prev_seq - 1)
                when w.position = 1 and w.prev_hash is not null then
                    'the first row of the chain links to a previous row that does not exist'
                when w.position > 1 and w.prev_hash is distinct from w.prev_row_hash then
                    format('prev_hash does not match the hash of the row before it (id %s): one of them was altered', w.prev_id)
                when w.row_hash is distinct from app_logic.consent_row_hash(
                    w.subject, w.seq, w.event, w.consent_type, w.granted, w.source, w.ip_hash, w.user_agent,
                    w.consent_text_version, w.recorded_at, w.prev_hash, w.submission_id
                ) then 'row_hash does not match the row''s content: the row was changed'
            end as reason
        from walked as w
    )

    select c.id, c.subject, c.seq, c.reason
    from checked as c
    where c.reason is not null
    order by c.id
    limit 1
$$;
comment on function app_logic.verify_consent_chain() is
'The first row (by id) where the consent audit''s hash chain is broken, and why; no row when intact.';

-- camelCase keys for the export document, like every field name of the API.
create function app_logic.camel_keys(p_row jsonb) returns jsonb
language sql immutable
as $$
    select coalesce(jsonb_object_agg(
        lower(left(k, 1)) || substr(replace(initcap(replace(k, '_', ' ')), ' ', ''), 2), v
    ), '{}'::jsonb)
    from jsonb_each(p_row) as e (k, v)
$$;
comment on function app_logic.camel_keys(jsonb) is 'The object with snake_case keys turned into camelCase.';

create function app_logic.person_pseudonym(p_email text) returns text
language sql stable
as $$
    select app_logic.pseudonym(lower(app_logic.trim_text(p_email)))
$$;
comment on function app_logic.person_pseudonym(text) is
'The subject of a person in the consent audit (counters use app_logic.rate_limit_subject).';

-- The sessions a lead owns (app.lead_sessions): every session its submissions named first.
create function app_logic.lead_sessions(p_lead_id uuid) returns text[]
language sql stable
as $$
    select coalesce(array_agg(s.session_id order by s.session_id), '{}')
    from app.lead_sessions as s
    where s.lead_id = p_lead_id
$$;
comment on function app_logic.lead_sessions(uuid) is 'Session ids the lead owns (app.lead_sessions).';

-- Everything held about one person; null when nothing at all is held.
create function app_logic.export_personal_data(p_email text) returns jsonb
language plpgsql stable
as $$
declare
    v_lead app.leads;
    v_subject text := app_logic.person_pseudonym(p_email);
    v_sessions text[] := '{}';
    v_document jsonb;
begin
    select l.* into v_lead from app.leads as l where lower(l.email) = lower(app_logic.trim_text(p_email));
    if v_lead.id is not null then
        v_sessions := app_logic.lead_sessions(v_lead.id);
    end if;
    v_document := jsonb_build_object(
        'email', lower(app_logic.trim_text(p_email)),
        'exportedAt', app_logic.now(),
        'lead', case when v_lead.id is not null then app_logic.camel_keys(to_jsonb(v_lead)) end,
        'sessions', to_jsonb(v_sessions),
        'leadInteractions', (
            select coalesce(jsonb_agg(app_logic.camel_keys(to_jsonb(i)) order by i.created_at, i.id), '[]')
            from app.lead_interactions as i where i.lead_id = v_lead.id
        ),
        'accessibilityPreferences', (
            select coalesce(jsonb_agg(app_logic.camel_keys(app_logic.opened_row(to_jsonb(p))) order by p.created_at), '[]')
            from app.accessibility_preferences as p
            where p.lead_id = v_lead.id or (p.session_id = any(v_sessions) and p.lead_id is null)
        ),
        'brandEngagement', (
            select coalesce(jsonb_agg(app_logic.camel_keys(app_logic.opened_row(to_jsonb(e))) order by e.created_at), '[]')
            from app.brand_engagement as e
            where e.lead_id = v_lead.id or (e.session_id = any(v_sessions) and e.lead_id is null)
        ),
        'pageViews', (
            select coalesce(jsonb_agg(app_logic.camel_keys(to_jsonb(v)) order by v.viewed_at), '[]')
            from app.page_views as v where v.session_id = any(v_sessions)
        ),
        'consentAudit', (
            select coalesce(jsonb_agg(app_logic.camel_keys(to_jsonb(a)) order by a.seq), '[]')
            from app.consent_audit as a where a.subject = v_subject
        ),
        -- The texts those rows name, word for word, and a receipt for each consent given or
        -- withdrawn (db/functions/310-consent-texts.sql).
        'consentTexts', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'version', t.version, 'text', t.body, 'sha256', encode(t.sha256, 'hex'), 'validFrom', t.valid_from,
                'language', t.language
            ) order by t.valid_from), '[]')
            from app.consent_texts as t
            where t.version in (select a.consent_text_version from app.consent_audit as a where a.subject = v_subject)
        ),
        'consentReceipts', (
            select coalesce(jsonb_agg(app_logic.audit_consent_receipt(a, lower(btrim(p_email))) order by a.seq), '[]')
            from app.consent_audit as a
            where a.subject = v_subject and a.event = 'consent'
        ),
        'consentLinks', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'purpose', t.purpose, 'createdAt', t.created_at, 'expiresAt', t.expires_at, 'usedAt', t.used_at
            ) order by t.created_at, t.purpose), '[]')
            from app.consent_tokens as t where t.lead_id = v_lead.id
        ),
        'messages', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'kind', o.kind, 'channel', o.channel, 'subject', o.message -> 'subject', 'createdAt', o.created_at,
                'sentAt', o.sent_at, 'failedAt', o.failed_at
            ) order by o.id), '[]')
            from app.outbox as o where o.lead_id = v_lead.id
        ),
        -- The brand-intelligence tables keyed by session (db/functions/249-brand-gdpr.sql).
        'brandSessionData', app_logic.export_brand_session_data(v_sessions),
        'rateLimitCounters', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'action', c.action, 'hits', to_jsonb(c.hits), 'expiresAt', c.expires_at
            ) order by c.action), '[]')
            from app.rate_limit_counters as c
            where c.scope = 'email' and c.subject = any(app_logic.rate_limit_subjects_of_email(p_email))
        )
    );
    if v_lead.id is null
        and v_document -> 'consentAudit' = '[]'::jsonb
        and v_document -> 'rateLimitCounters' = '[]'::jsonb then
        return null;
    end if;
    return v_document;
end
$$;
comment on function app_logic.export_personal_data(text) is
'Every row held about the person with that email (any case), as one JSON document; null when none.';

-- Removes the person's personal data everywhere and appends an erasure record to their
-- pseudonymous consent chain. Idempotent: a second call removes nothing and says so.
create function app_logic.erase_personal_data(p_email text, p_source text) returns jsonb
language plpgsql volatile
as $$
declare
    v_subject text := app_logic.person_pseudonym(p_email);
    v_lead_id uuid;
    v_sessions text[] := '{}';
    v_removed jsonb := '{}';
    v_count bigint;
begin
    -- Lock the lead first: a submission for the same email waits and then finds no lead.
    select l.id into v_lead_id from app.leads as l where lower(l.email) = lower(app_logic.trim_text(p_email)) for update;
    if v_lead_id is not null then
        v_sessions := app_logic.lead_sessions(v_lead_id);
    end if;

    delete from app.page_views as v where v.session_id = any(v_sessions);
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('pageViews', v_count);

    delete from app.accessibility_preferences as p
    where p.lead_id = v_lead_id or (p.session_id = any(v_sessions) and p.lead_id is null);
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('accessibilityPreferences', v_count);

    delete from app.brand_engagement as e
    where e.lead_id = v_lead_id or (e.session_id = any(v_sessions) and e.lead_id is null);
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('brandEngagement', v_count);

    v_removed := v_removed || app_logic.erase_brand_session_data(v_sessions);

    delete from app.lead_interactions as i where i.lead_id = v_lead_id;
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('leadInteractions', v_count);

    delete from app.leads as l where l.id = v_lead_id;
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('leads', v_count);

    delete from app.rate_limit_counters as c
    where c.scope = 'email' and c.subject = any(app_logic.rate_limit_subjects_of_email(p_email));
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('rateLimitCounters', v_count);

    -- Last, so the DELETE entries just written are covered too (db/functions/320-brand-audit.sql).
    perform app_logic.redact_brand_audit(v_lead_id, v_sessions);

    -- The request is recorded even when nothing was held: proof that it was handled.
    perform app_logic.append_consent(v_subject, 'erasure', null, null, p_source);
    return v_removed;
end
$$;
comment on function app_logic.erase_personal_data(text, text) is
'Delete everything held about the person with that email and record the erasure in the consent audit; '
'returns the number of rows removed per kind.';

create function app_logic.record_consent(p_email text, p_marketing boolean, p_source text) returns boolean
language plpgsql volatile
as $$
declare
    v_lead_id uuid;
begin
    update app.leads as l set marketing_consent = p_marketing, updated_at = app_logic.now()
    where lower(l.email) = lower(app_logic.trim_text(p_email))
    returning l.id into v_lead_id;
    if v_lead_id is null then
        return false;
    end if;
    insert into app.lead_interactions (lead_id, kind, note, details, api_key_id)
    values (
        v_lead_id, 'status_change',
        case when p_marketing then 'Marketing consent given.' else 'Marketing consent withdrawn.' end,
        jsonb_build_object('marketingConsent', p_marketing, 'source', p_source),
        app_logic.current_api_key_id()
    );
    perform app_logic.append_consent(app_logic.person_pseudonym(p_email), 'consent', 'marketing', p_marketing, p_source);
    return true;
end
$$;
comment on function app_logic.record_consent(text, boolean, text) is
'Set a lead''s marketing consent, note it in the CRM history and append it to the consent audit; '
'false when no lead has that email.';

-- The request rules: also the OpenAPI document's schemas.
create function app_logic.export_personal_data_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'The person whose data to export.',
        'properties', jsonb_build_object(
            'email', jsonb_build_object(
                'type', 'email', 'maxLength', 254, 'trim', true,
                'description', 'Email address of the person (any letter case).'
            )
        ),
        'required', jsonb_build_array('email'),
        'additionalProperties', false
    )
$$;
comment on function app_logic.export_personal_data_rule() is 'Request rule of POST /api/gdpr/export.';

create function app_logic.erase_personal_data_rule() returns jsonb
language sql immutable
as $$
    select jsonb_set(
        app_logic.export_personal_data_rule(), '{description}', '"The person whose data to erase."'
    )
$$;
comment on function app_logic.erase_personal_data_rule() is 'Request rule of POST /api/gdpr/erase.';

create function app_logic.record_consent_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'A change of a person''s marketing consent.',
        'properties', jsonb_build_object(
            'email', jsonb_build_object(
                'type', 'email', 'maxLength', 254, 'trim', true,
                'description', 'Email address of the person (any letter case); a lead with it must exist.'
            ),
            'marketingConsent', jsonb_build_object(
                'type', 'boolean', 'description', 'true: the person agrees to marketing; false: withdrawn.'
            )
        ),
        'required', jsonb_build_array('email', 'marketingConsent'),
        'additionalProperties', false
    )
$$;
comment on function app_logic.record_consent_rule() is 'Request rule of POST /api/gdpr/consent.';

create function app_logic.no_such_person(p_message text) returns jsonb
language sql volatile
as $$
    select app_logic.respond(404, app_logic.error_body(
        'CHG01', p_message, null, 'Check the address; letter case does not matter.'
    ))
$$;
comment on function app_logic.no_such_person(text) is 'Answer 404 CHG01: nothing is held for that email.';

create function app_logic.export_personal_data_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_document jsonb;
begin
    v_document := app_logic.export_personal_data(app_logic.text_field(p_body, 'email'));
    if v_document is null then
        return app_logic.no_such_person('No personal data is held for that email address.');
    end if;
    return app_logic.respond(200, v_document);
end
$$;
select app_logic.declare_post(
    'export_personal_data', 'gdpr', 'app_logic.export_personal_data_rule', 'app_logic.export_personal_data_handler'
);
comment on function api.export_personal_data(jsonb) is
'POST /api/gdpr/export (admin key): everything held about the person with that email as one JSON document: '
'lead, leadInteractions, accessibilityPreferences, brandEngagement, pageViews (of the lead''s sessions), '
'consentAudit (their pseudonymous rows) and rateLimitCounters. 404 CHG01 when nothing is held.';

create function app_logic.erase_personal_data_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
begin
    return app_logic.respond(200, jsonb_build_object(
        'status', 'erased',
        'removed', app_logic.erase_personal_data(app_logic.text_field(p_body, 'email'), 'gdpr_endpoint')
    ));
end
$$;
select app_logic.declare_post(
    'erase_personal_data', 'gdpr', 'app_logic.erase_personal_data_rule', 'app_logic.erase_personal_data_handler'
);
comment on function api.erase_personal_data(jsonb) is
'POST /api/gdpr/erase (admin key): removes the personal data of the person with that email everywhere '
'(lead, interactions, linked preferences and engagement, page views of their sessions, email rate-limit counters) '
'and appends an erasure record to the pseudonymous consent audit. 200 {"status":"erased","removed":{...counts}}, '
'also for an address on which nothing is held (all counts 0): erasure is idempotent.';

create function app_logic.record_consent_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_marketing boolean;
begin
    v_marketing := (p_body ->> 'marketingConsent')::boolean;
    if not app_logic.record_consent(app_logic.text_field(p_body, 'email'), v_marketing, 'gdpr_endpoint') then
        return app_logic.no_such_person('No lead with that email address exists.');
    end if;
    return app_logic.respond(201, jsonb_build_object('status', 'recorded', 'marketingConsent', v_marketing));
end
$$;
select app_logic.declare_post(
    'record_consent', 'gdpr', 'app_logic.record_consent_rule', 'app_logic.record_consent_handler'
);
comment on function api.record_consent(jsonb) is
'POST /api/gdpr/consent (admin key): sets the marketing consent of the lead with that email and appends it '
'to the consent audit (source gdpr_endpoint). 201 {"status":"recorded"}; 404 CHG01 when no lead has that email.';
