-- The consent audit: append-only, hash-chained per subject (see db/functions/030-consent.sql).

create table app.consent_audit (
    id bigint generated always as identity primary key,
    -- Pseudonym of the person: HMAC of the lower-cased email with the secret pepper.
    subject text not null,
    -- Position in the subject's chain, from 1; a gap or a duplicate is tampering.
    seq integer not null check (seq >= 1),
    event text not null check (event in ('consent', 'erasure')),
    consent_type text check (consent_type in ('gdpr', 'marketing')),
    granted boolean,
    source text not null check (char_length(source) <= 50),
    ip_hash text,
    user_agent text check (char_length(user_agent) <= 512),
    consent_text_version text,
    recorded_at timestamptz not null default now(),
    prev_hash bytea,
    row_hash bytea not null,
    unique (subject, seq),
    constraint consent_audit_consent_fields check (
        event <> 'consent' or (consent_type is not null and granted is not null)
    )
);
comment on table app.consent_audit is
'Every consent given or changed, and every erasure; append-only and tamper-evident.';
alter table app.consent_audit enable row level security;
