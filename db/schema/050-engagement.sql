-- Accessibility preferences and brand engagement, linked to a lead through the session id.

create table app.accessibility_preferences (
    id uuid primary key default gen_random_uuid(),
    session_id text not null unique check (char_length(session_id) between 1 and 100),
    lead_id uuid references app.leads (id) on delete cascade,
    accessibility_theme text not null check (
        accessibility_theme in ('default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia')
    ),
    dark_mode_preference boolean not null default true,
    reduced_motion boolean not null default false,
    high_contrast boolean not null default false,
    font_size_preference text not null default 'medium' check (
        font_size_preference in ('small', 'medium', 'large', 'x-large')
    ),
    logo_interaction_count integer not null default 0 check (logo_interaction_count >= 0),
    theme_switch_count integer not null default 0 check (theme_switch_count >= 0),
    session_duration integer check (session_duration >= 0),
    created_at timestamptz not null default now(),
    last_updated timestamptz not null default now()
);
comment on table app.accessibility_preferences is 'One row per browser session: the accessibility theme it chose.';
-- The usage analytics read a time window across all themes.
create index accessibility_preferences_created_idx on app.accessibility_preferences (created_at);
create index accessibility_preferences_lead_idx on app.accessibility_preferences (lead_id) where lead_id is not null;
alter table app.accessibility_preferences enable row level security;

create table app.brand_engagement (
    id uuid primary key default gen_random_uuid(),
    session_id text not null check (char_length(session_id) between 1 and 100),
    lead_id uuid references app.leads (id) on delete cascade,
    logo_interactions jsonb not null default '[]'::jsonb check (jsonb_typeof(logo_interactions) = 'array'),
    logo_accessibility_theme_changes integer not null default 0 check (logo_accessibility_theme_changes >= 0),
    scroll_depth_percentage integer check (scroll_depth_percentage between 0 and 100),
    time_spent_per_section jsonb not null default '{}'::jsonb check (jsonb_typeof(time_spent_per_section) = 'object'),
    cta_clicks jsonb not null default '[]'::jsonb check (jsonb_typeof(cta_clicks) = 'array'),
    core_web_vitals jsonb not null default '{}'::jsonb check (jsonb_typeof(core_web_vitals) = 'object'),
    accessibility_features_used jsonb not null default '[]'::jsonb check (
        jsonb_typeof(accessibility_features_used) = 'array'
    ),
    keyboard_navigation_used boolean not null default false,
    created_at timestamptz not null default now()
);
comment on table app.brand_engagement is 'What a session did with the logo, the page sections and the CTAs.';
create index brand_engagement_session_idx on app.brand_engagement (session_id);
create index brand_engagement_lead_idx on app.brand_engagement (lead_id) where lead_id is not null;
create index brand_engagement_created_idx on app.brand_engagement (created_at);
alter table app.brand_engagement enable row level security;
