-- Logo materials per accessibility theme (issue 15): anyone reads them, an admin edits them.
-- The GET answers with an ETag (a hash of the answer) and Cache-Control max-age from
-- app.settings.logo_materials_max_age; nginx caches it for that long, then revalidates with
-- If-None-Match, which this function answers with 304 when nothing changed. An edit is
-- therefore visible within max-age seconds, through nginx or any other cache.

create function app_logic.logo_material_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object",
        "description": "Material settings of the 3D logo (three.js MeshPhysicalMaterial words).",
        "additionalProperties": false,
        "properties": {
            "baseColor": {"type": "string", "maxLength": 7, "pattern": "^#[0-9A-Fa-f]{6}$", "patternText": "a colour #rrggbb",
                          "description": "Base colour."},
            "emissiveColor": {"type": "string", "maxLength": 7, "pattern": "^#[0-9A-Fa-f]{6}$", "patternText": "a colour #rrggbb",
                              "description": "Colour the logo glows in."},
            "metalness": {"type": "number", "minimum": 0, "maximum": 1, "description": "0 (dielectric) to 1 (metal)."},
            "roughness": {"type": "number", "minimum": 0, "maximum": 1, "description": "0 (mirror) to 1 (matte)."},
            "emissiveIntensity": {"type": "number", "minimum": 0, "maximum": 10, "description": "Strength of the glow."},
            "clearcoat": {"type": "number", "minimum": 0, "maximum": 1, "description": "Clear-coat layer, 0 to 1."},
            "opacity": {"type": "number", "minimum": 0, "maximum": 1, "description": "0 (invisible) to 1 (opaque)."},
            "wireframe": {"type": "boolean", "description": "Draw the logo as a wireframe."}
        }
    }'::jsonb
$$;
comment on function app_logic.logo_material_rule() is 'Rule of a logo material object (every setting optional).';

-- POST /api/logo-materials ---------------------------------------------------------------

create function app_logic.update_logo_material_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'An edit of one theme''s logo material: the settings given replace the stored ones, '
        || 'the others are kept.',
        'required', jsonb_build_array('theme', 'material'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'theme', app_logic.accessibility_theme_rule('The accessibility theme whose material changes.'),
            'material', app_logic.logo_material_rule()
        )
    )
$$;
comment on function app_logic.update_logo_material_rule() is 'Validation rule (and OpenAPI schema) of POST /api/logo-materials.';

-- The answer of the GET for one theme or for all (null theme), and its ETag.
create function app_logic.logo_materials_document(p_theme text) returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select case when p_theme is null then
        jsonb_build_object('materials', coalesce((
            select jsonb_agg(jsonb_build_object(
                'theme', m.accessibility_theme, 'material', m.material, 'updatedAt', m.updated_at
            ) order by m.accessibility_theme)
            from app.logo_materials as m
        ), '[]'::jsonb))
    else (
        select jsonb_build_object('theme', m.accessibility_theme, 'material', m.material, 'updatedAt', m.updated_at)
        from app.logo_materials as m where m.accessibility_theme = p_theme
    ) end
$$;
comment on function app_logic.logo_materials_document(text) is
'The logo material of a theme ({theme, material, updatedAt}), or of every theme ({materials: [...]}).';

create function app_logic.update_logo_material_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_material jsonb;
begin
    update app.logo_materials as m set
        material = m.material || jsonb_strip_nulls(p_body -> 'material'),
        updated_at = app_logic.now(),
        updated_by_key_id = app_logic.current_api_key_id()
    where m.accessibility_theme = p_body ->> 'theme'
    returning m.material into v_material;
    return app_logic.respond(200, jsonb_build_object(
        'status', 'updated', 'theme', p_body ->> 'theme', 'material', v_material
    ));
end
$$;
select app_logic.declare_post(
    'update_logo_material', 'logo_materials', 'app_logic.update_logo_material_rule',
    'app_logic.update_logo_material_handler'
);
comment on function api.update_logo_material(jsonb) is
'POST /api/logo-materials (admin key): change settings of one theme''s logo material (the others are kept): '
'200 {"status":"updated","theme","material"}; 400 naming every invalid field. Caches see it within max-age.';

-- GET /api/logo-materials ----------------------------------------------------------------

create function app_logic.logo_materials_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'Query parameters: the theme, or none for every theme.',
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'theme', app_logic.accessibility_theme_rule('The accessibility theme; default every theme.')
        )
    )
$$;
comment on function app_logic.logo_materials_rule() is
'Query-parameter rule (and OpenAPI parameters) of GET /api/logo-materials.';

-- Whether an If-None-Match header names this ETag (or is *). Weak comparison, as RFC 9110 asks
-- for If-None-Match: W/"x" matches "x".
create function app_logic.etag_matches(p_header text, p_etag text) returns boolean
language sql immutable
as $$
    select coalesce(btrim(p_header) = '*' or exists (
        select from unnest(string_to_array(p_header, ',')) as t (tag)
        where regexp_replace(btrim(t.tag), '^W/', '') = regexp_replace(p_etag, '^W/', '')
    ), false)
$$;
comment on function app_logic.etag_matches(text, text) is 'Whether an If-None-Match header value matches the ETag.';

create function api.logo_materials(jsonb) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_query record;
    v_document jsonb;
    v_etag text;
    v_headers jsonb;
begin
    select q.* into v_query from app_logic.screen_query(app_logic.logo_materials_rule()) as q;
    if v_query.refused is not null then
        return v_query.refused;
    end if;
    v_document := app_logic.logo_materials_document(v_query.params ->> 'theme');
    v_etag := '"' || md5(v_document::text) || '"';
    v_headers := jsonb_build_array(
        jsonb_build_object('ETag', v_etag),
        jsonb_build_object('Cache-Control', format(
            'public, max-age=%s', coalesce(nullif(app_logic.setting('logo_materials_max_age'), ''), '60')
        ))
    );
    if app_logic.etag_matches(app_logic.request_header('if-none-match'), v_etag) then
        return app_logic.respond(304, null, v_headers);
    end if;
    return app_logic.respond(200, v_document, v_headers);
end
$$;
comment on function api.logo_materials(jsonb) is
'GET /api/logo-materials?theme=T: the 3D logo''s material for that accessibility theme ({theme, material, '
'updatedAt}), or for every theme ({materials: [...]}); with an ETag and Cache-Control max-age '
'(app.settings.logo_materials_max_age), 304 for a matching If-None-Match. Served from nginx''s cache while fresh.';

select app_logic.declare_post_health('check_logo_materials_health', 'logo-materials');
