-- The rows one accepted lead submission stores, written by one statement with no logic: the lead
-- (its four indexes, domains and triggers), its submission interaction (and the foreign key's
-- check), two hash-chained consent-audit rows (their checks, domains and text foreign key, hashes
-- of the length sha256 gives) and the IP's and the email's rate-limit counters (an upsert, as the
-- limiter writes them). Distinct emails, audit subjects and counter keys, like (b).
with new_lead as (
    insert into app.leads (
        first_name, last_name, email, company_name, inquiry_details, lead_source, accessibility_theme,
        gdpr_consent, marketing_consent, device_type, core_web_vitals, load_time_lcp, load_time_fid,
        logo_interactions, time_on_site, pages_viewed
    ) values (
        'John', 'Doe', 'r' || gen_random_uuid() || '@example.com', 'Acme Corp', 'Interested in technical deep dive',
        'contact_form', 'protanopia', true, false, 'desktop', '{"lcp": 2300, "fid": 85, "cls": 0.08}', 2300, 85, 3,
        145000, '["/", "/ecosystem", "/contact"]'
    )
    returning id
),

submission as (
    insert into app.lead_interactions (lead_id, kind, created_at)
    select n.id, 'submission', now() from new_lead as n
    returning id
),

audit as (
    insert into app.consent_audit (
        subject, seq, event, consent_type, granted, source, ip_hash, user_agent,
        consent_text_version, recorded_at, prev_hash, row_hash, submission_id
    )
    select
        s.subject, r.seq, 'consent', r.consent_type, r.granted, 'web_form', s.ip_hash, 'pgbench',
        app_logic.consent_text_at(now()), now(), r.prev_hash, r.row_hash, i.id
    from submission as i
    cross join (
        select encode(sha256(uuid_send(gen_random_uuid())), 'hex') as subject,
            encode(sha256(uuid_send(gen_random_uuid())), 'hex') as ip_hash
    ) as s
    cross join (
        values
        (1, 'gdpr', true, null::bytea, sha256('\x01'::bytea)),
        (2, 'marketing', false, sha256('\x01'::bytea), sha256('\x02'::bytea))
    ) as r (seq, consent_type, granted, prev_hash, row_hash)
),

counters as (
    insert into app.rate_limit_counters as c (subject, action, scope, hits, expires_at)
    values
    (sha256(uuid_send(gen_random_uuid())), 'leads', 'ip', array[now()], now() + interval '10 minutes'),
    (sha256(uuid_send(gen_random_uuid())), 'leads', 'email', array[now()], now() + interval '1 hour')
    on conflict (subject) do update set hits = c.hits || excluded.hits, expires_at = excluded.expires_at
)

select 1;
