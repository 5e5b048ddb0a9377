-- Logo materials per accessibility theme (issue 15, the seed's "database caching for logo
-- material preferences"): the 3D logo's material settings an admin edits, one row per theme,
-- served with an ETag from nginx's cache (deploy/nginx/api.conf.template).

create table app.logo_materials (
    accessibility_theme text primary key check (
        accessibility_theme in ('default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia')
    ),
    material jsonb not null check (jsonb_typeof(material) = 'object'),
    updated_at timestamptz not null default now(),
    -- The admin key that made the last edit.
    updated_by_key_id bigint
);
comment on table app.logo_materials is
'The 3D logo''s material settings (colours, metalness, roughness, ...) for each accessibility theme.';
alter table app.logo_materials enable row level security;

-- Colours chosen per theme so the logo keeps its contrast: blue and amber where red and green
-- are confused (protanopia, deuteranopia), red and teal where blue and yellow are (tritanopia),
-- greys for achromatopsia.
insert into app.logo_materials (accessibility_theme, material) values
('default', '{"baseColor": "#6d28d9", "emissiveColor": "#1e1b4b", "metalness": 0.6, "roughness": 0.3,
  "emissiveIntensity": 0.2, "clearcoat": 0.5, "opacity": 1, "wireframe": false}'),
('protanopia', '{"baseColor": "#1d4ed8", "emissiveColor": "#f59e0b", "metalness": 0.6, "roughness": 0.3,
  "emissiveIntensity": 0.25, "clearcoat": 0.5, "opacity": 1, "wireframe": false}'),
('deuteranopia', '{"baseColor": "#2563eb", "emissiveColor": "#fbbf24", "metalness": 0.6, "roughness": 0.3,
  "emissiveIntensity": 0.25, "clearcoat": 0.5, "opacity": 1, "wireframe": false}'),
('tritanopia', '{"baseColor": "#dc2626", "emissiveColor": "#0d9488", "metalness": 0.6, "roughness": 0.3,
  "emissiveIntensity": 0.25, "clearcoat": 0.5, "opacity": 1, "wireframe": false}'),
('achromatopsia', '{"baseColor": "#404040", "emissiveColor": "#f5f5f5", "metalness": 0.5, "roughness": 0.4,
  "emissiveIntensity": 0.3, "clearcoat": 0.5, "opacity": 1, "wireframe": false}');

insert into app.settings (key, value, description) values
(
    'logo_materials_max_age', '60',
    'Seconds GET /api/logo-materials may be served from a cache (nginx''s included) before it is revalidated; '
    'an edit is visible within this time.'
);

-- Configuration, not data that ages: the rules exist so every table has one, and are off.
insert into app.retention_rules (kind, keep_for, condition, enabled) values
(
    'logo_materials', interval '0 seconds',
    'Configuration (one row per theme), nothing personal and nothing that ages: never removed. Disabled on purpose.',
    false
),
(
    'performance_regression_thresholds', interval '0 seconds',
    'Configuration (one row per metric), nothing personal and nothing that ages: never removed. Disabled on purpose.',
    false
);

insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values
('logo_materials', 'ip', 60, 60);
