-- Leads and their CRM history (the seed's leads and lead_interactions, bugs fixed).

create table app.leads (
    id uuid primary key default gen_random_uuid(),
    first_name text not null check (char_length(first_name) between 1 and 100),
    last_name text not null check (char_length(last_name) between 1 and 100),
    email text not null check (char_length(email) between 3 and 254),
    -- E.164: '+', country code, subscriber number, at most 15 digits in all.
    phone text check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    company_name text check (char_length(company_name) <= 200),
    inquiry_details text check (char_length(inquiry_details) <= 5000),
    lead_source text not null default 'contact_form' check (lead_source ~ '^[a-z0-9_]{1,50}$'),
    accessibility_theme text not null default 'default' check (
        accessibility_theme in ('default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia')
    ),
    preferred_communication text not null default 'email' check (preferred_communication in ('email', 'phone')),
    gdpr_consent boolean not null check (gdpr_consent),
    marketing_consent boolean not null default false,
    logo_interactions integer not null default 0 check (logo_interactions >= 0),
    time_on_site integer check (time_on_site >= 0),
    pages_viewed jsonb not null default '[]'::jsonb check (jsonb_typeof(pages_viewed) = 'array'),
    core_web_vitals jsonb check (jsonb_typeof(core_web_vitals) = 'object'),
    -- The seed's columns, derived from core_web_vitals so the two cannot disagree.
    load_time_lcp numeric generated always as ((core_web_vitals ->> 'lcp')::numeric) stored,
    load_time_fid numeric generated always as ((core_web_vitals ->> 'fid')::numeric) stored,
    device_type text check (device_type in ('mobile', 'tablet', 'desktop')),
    browser_info jsonb check (jsonb_typeof(browser_info) = 'object' and octet_length(browser_info::text) <= 4096),
    session_id text check (char_length(session_id) between 1 and 100),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint leads_phone_needed check (preferred_communication <> 'phone' or phone is not null)
);
comment on table app.leads is 'One row per person who contacted us; email unique regardless of case.';
create unique index leads_email_key on app.leads (lower(email));
create index leads_created_at_idx on app.leads (created_at);
create index leads_accessibility_theme_idx on app.leads (accessibility_theme);
create index leads_lead_source_idx on app.leads (lead_source);
create index leads_session_id_idx on app.leads (session_id) where session_id is not null;
alter table app.leads enable row level security;

create table app.lead_interactions (
    id bigint generated always as identity primary key,
    lead_id uuid not null references app.leads (id) on delete cascade,
    kind text not null check (
        kind in ('submission', 'resubmission', 'note', 'call', 'email', 'meeting', 'status_change')
    ),
    note text check (char_length(note) <= 5000),
    -- What a resubmission carried (validated fields), for the CRM to see what changed.
    details jsonb,
    -- The API key that added the entry; null when the system recorded it.
    api_key_id bigint references app.api_keys (id),
    created_at timestamptz not null default now()
);
comment on table app.lead_interactions is 'CRM history of a lead: submissions and what the team did.';
create index lead_interactions_lead_idx on app.lead_interactions (lead_id, created_at);
alter table app.lead_interactions enable row level security;
