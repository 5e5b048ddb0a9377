-- Consent texts as data, and the single-use links of double opt-in (issue 14).
--
-- A consent record names the version of the text the person was shown; the version now
-- points at the text itself (full wording, its SHA-256, when it became valid), so what was
-- agreed to can be shown word for word years later. Texts are never changed: a new wording is
-- a new version.

create table app.consent_texts (
    version text primary key check (version ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$'),
    body text not null check (char_length(body) between 1 and 20000),
    -- Checked rather than generated: convert_to() is only STABLE, which a generated column refuses.
    sha256 bytea not null check (sha256 = sha256(convert_to(body, 'UTF8'))),
    valid_from timestamptz not null,
    language text not null default 'en' check (language ~ '^[a-z]{2,3}(-[A-Z]{2})?$')
);
comment on table app.consent_texts is
'Every wording of the consent text ever shown, with its hash and the time it became valid; never changed.';
create unique index consent_texts_valid_from_key on app.consent_texts (valid_from);
alter table app.consent_texts enable row level security;

-- The version every existing record names.
insert into app.consent_texts (version, body, sha256, valid_from)
select
    t.version,
    t.body,
    sha256(convert_to(t.body, 'UTF8')) as sha256,
    t.valid_from
from (values (
    '2026-01',
    'I agree that CHORUS stores the data I entered in this form to answer my inquiry (GDPR Art. 6(1)(a)). '
    'Optionally: I would like to receive news about CHORUS by email. I will confirm this by a link sent to my '
    'address, and I can withdraw it at any time through the link in every message.',
    '2026-01-01T00:00:00Z'::timestamptz
)) as t (version, body, valid_from);

-- NOT VALID: no scan of the audit under lock; every row appended from now on is checked, and
-- every row before it names '2026-01', the text inserted above.
alter table app.consent_audit
add constraint consent_audit_text_fkey foreign key (consent_text_version) references app.consent_texts (version)
not valid;

-- The version in force is now the newest text's (one source): the setting goes.
delete from app.settings
where key = 'consent_text_version';

-- Links of double opt-in (confirm) and of unsubscribing (withdraw). Only the SHA-256 of the
-- token is kept: the token itself travels in the message and leaves the outbox once sent.
create table app.consent_tokens (
    token_hash bytea primary key check (octet_length(token_hash) = 32),
    purpose text not null check (purpose in ('confirm', 'withdraw')),
    lead_id uuid not null references app.leads (id) on delete cascade,
    -- The text the person is confirming (confirm tokens).
    consent_text_version text references app.consent_texts (version),
    created_at timestamptz not null,
    -- Confirm links expire (setting consent_confirmation_ttl); withdraw links do not.
    expires_at timestamptz,
    -- A confirm link works once; a withdraw link may be used again (it changes nothing more).
    used_at timestamptz
);
comment on table app.consent_tokens is
'Hashes of the confirm and withdraw links sent by mail; erased with the lead.';
create index consent_tokens_lead_idx on app.consent_tokens (lead_id);
alter table app.consent_tokens enable row level security;

insert into app.settings (key, value, description) values
(
    'consent_confirmation_ttl', '48 hours',
    'How long a marketing-consent confirmation link stays valid (a PostgreSQL interval).'
),
(
    'consent_controller', 'CHORUS',
    'Name of the data controller, as the consent receipts state it.'
),
(
    'consent_controller_contact', 'privacy@chorus.invalid',
    'How to reach the controller about personal data, as the consent receipts state it.'
),
(
    'consent_jurisdiction', 'EU (GDPR)',
    'The jurisdiction of the consents, as the consent receipts state it.'
),
(
    'privacy_policy_url', 'http://127.0.0.1:8080/privacy',
    'The privacy notice the consent receipts link to.'
);
