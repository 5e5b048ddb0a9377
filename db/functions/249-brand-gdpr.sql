-- GDPR for the brand-intelligence tables (issue 15): what they hold about a person's sessions,
-- for export and erasure (db/functions/085-gdpr.sql calls these with the person's sessions).
-- Only A/B exposures and conversions and logo heatmaps are keyed by session; benchmarks and
-- logo materials hold nothing about a person. Each table added here is one key in both.

create function app_logic.export_brand_session_data(p_sessions text[]) returns jsonb
language sql stable
as $$
    select jsonb_build_object(
        'abTestExposures', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'test', t.name, 'sessionId', e.session_id, 'variant', v.name, 'exposedAt', e.exposed_at
            ) order by e.exposed_at, t.name), '[]'::jsonb)
            from app.ab_test_exposures as e
            join app.ab_tests as t on e.test_id = t.id
            join app.ab_test_variants as v on e.test_id = v.test_id and e.position = v.position
            where e.session_id = any(p_sessions)
        ),
        'abTestConversions', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'test', t.name, 'sessionId', c.session_id, 'kind', c.kind, 'convertedAt', c.converted_at
            ) order by c.converted_at, t.name, c.kind), '[]'::jsonb)
            from app.ab_test_conversions as c
            join app.ab_tests as t on c.test_id = t.id
            where c.session_id = any(p_sessions)
        ),
        'logoInteractionHeatmaps', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'sessionId', h.session_id, 'accessibilityTheme', h.accessibility_theme, 'createdAt', h.created_at,
                'points', (
                    select jsonb_agg(jsonb_build_object('x', u.x, 'y', u.y, 'durationMs', u.d) order by u.n)
                    from unnest(h.xs, h.ys, h.durations_ms) with ordinality as u (x, y, d, n)
                )
            ) order by h.created_at, h.id), '[]'::jsonb)
            from app.logo_interaction_heatmaps as h
            where h.session_id = any(p_sessions)
        )
    )
$$;
comment on function app_logic.export_brand_session_data(text[]) is
'The A/B exposures and conversions and the logo heatmap posts of these sessions, for a GDPR export.';

create function app_logic.erase_brand_session_data(p_sessions text[]) returns jsonb
language plpgsql volatile
as $$
declare
    v_removed jsonb := '{}'::jsonb;
    v_count bigint;
begin
    delete from app.ab_test_conversions as c where c.session_id = any(p_sessions);
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('abTestConversions', v_count);
    delete from app.ab_test_exposures as e where e.session_id = any(p_sessions);
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('abTestExposures', v_count);
    delete from app.logo_interaction_heatmaps as h where h.session_id = any(p_sessions);
    get diagnostics v_count = row_count;
    v_removed := v_removed || jsonb_build_object('logoInteractionHeatmaps', v_count);
    return v_removed;
end
$$;
comment on function app_logic.erase_brand_session_data(text[]) is
'Delete the A/B exposures and conversions and the logo heatmap posts of these sessions; the counts per kind.';

-- Retention (app.retention_rules rows of db/schema/200-ab-tests.sql and 210-logo-heatmaps.sql),
-- called by app_logic.apply_retention as purge_<kind>(cutoff, limit), oldest first.

-- Their conversions go with them (ON DELETE CASCADE).
select app_logic.declare_purge(
    'ab_test_exposures', 'app.ab_test_exposures', 'exposed_at',
    'Delete A/B exposures (and their conversions) older than the cutoff.'
);

create function app_logic.purge_ab_tests(p_cutoff timestamptz, p_limit integer default null) returns bigint
language plpgsql volatile
as $$
declare
    v_count bigint;
begin
    delete from app.ab_tests as t
    where t.id in (
        select q.id from app.ab_tests as q
        where least(q.stopped_at, q.ends_at) < p_cutoff
        order by least(q.stopped_at, q.ends_at)
        limit p_limit
    );
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function app_logic.purge_ab_tests(timestamptz, integer) is
'Delete A/B tests stopped or ended before the cutoff, with their variants, exposures and conversions.';

select app_logic.declare_purge(
    'logo_interaction_heatmaps', 'app.logo_interaction_heatmaps', 'created_at',
    'Delete logo heatmap posts created before the cutoff.'
);
