-- Logo interaction heatmaps (issue 15): where on the logo sessions pointed or touched, and
-- for how long. One row per post; the points are three parallel arrays, so a post of up to
-- 500 points is one small row and the grid is one unnest away.

create table app.logo_interaction_heatmaps (
    id bigint generated always as identity primary key,
    session_id text not null check (char_length(session_id) between 1 and 100),
    accessibility_theme text not null check (
        accessibility_theme in ('default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia')
    ),
    -- Normalised to the logo's box: 0 is left/top, 1 is right/bottom.
    xs real[] not null,
    ys real[] not null,
    durations_ms integer[] not null,
    created_at timestamptz not null default now(),
    check (cardinality(xs) between 1 and 500),
    check (cardinality(ys) = cardinality(xs) and cardinality(durations_ms) = cardinality(xs)),
    check (0 <= all(xs) and 1 >= all(xs) and 0 <= all(ys) and 1 >= all(ys) and 0 <= all(durations_ms))
);
comment on table app.logo_interaction_heatmaps is
'Points of interaction with the logo (normalised 0..1 in its box) and their durations, one row per post.';
create index logo_interaction_heatmaps_created_idx on app.logo_interaction_heatmaps (created_at);
create index logo_interaction_heatmaps_session_idx on app.logo_interaction_heatmaps (session_id);
alter table app.logo_interaction_heatmaps enable row level security;

insert into app.retention_rules (kind, keep_for, condition) values
(
    'logo_interaction_heatmaps', interval '13 months',
    'Heatmap posts created longer ago than keep_for (a year of heatmaps plus the same month a year before).'
);

insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values
('logo_heatmaps', 'ip', 60, 60);
