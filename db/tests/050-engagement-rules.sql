-- Accessibility preferences and brand engagement: every rule of the two endpoints, one field
-- at a time.
begin;
select plan(62);

create function pg_temp.prefs(p_change jsonb) returns text[]
language sql stable as $$
    select tap.bad_fields(
        '{"sessionId": "sess_abc123", "accessibilityTheme": "deuteranopia"}'::jsonb || p_change,
        app_logic.save_accessibility_preferences_rule()
    )
$$;

create function pg_temp.engagement(p_change jsonb) returns text[]
language sql stable as $$
    select tap.bad_fields('{"sessionId": "sess_abc123"}'::jsonb || p_change, app_logic.record_brand_engagement_rule())
$$;

-- Rule: accessibility preferences

select is(pg_temp.prefs(c.change), c.fields, c.description)
from (
    values
    (
        1, '{
            "darkModePreference": true, "reducedMotion": false, "highContrast": true, "fontSizePreference": "x-large",
            "logoInteractionCount": 5, "themeSwitchCount": 2, "sessionDuration": 180000
        }'::jsonb,
        '{}'::text[], 'preferences: every field with a valid value passes'
    ),
    (2, '{"sessionId": "   "}', '{sessionId}', 'preferences: a blank sessionId is refused'),
    (
        3, jsonb_build_object('sessionId', repeat('s', 101)),
        '{sessionId}', 'preferences: a sessionId of 101 characters is refused'
    ),
    (4, jsonb_build_object('sessionId', repeat('s', 100)), '{}', 'preferences: a sessionId of 100 characters passes'),
    (5, '{"sessionId": 42}', '{sessionId}', 'preferences: a numeric sessionId is refused'),
    (6, '{"accessibilityTheme": "sepia"}', '{accessibilityTheme}', 'preferences: an unknown accessibilityTheme is refused'),
    (7, '{"darkModePreference": "true"}', '{darkModePreference}', 'preferences: darkModePreference must be a JSON boolean'),
    (8, '{"reducedMotion": 1}', '{reducedMotion}', 'preferences: reducedMotion must be a boolean'),
    (9, '{"highContrast": "no"}', '{highContrast}', 'preferences: highContrast must be a boolean'),
    (10, '{"fontSizePreference": "huge"}', '{fontSizePreference}', 'preferences: an unknown fontSizePreference is refused'),
    (11, '{"logoInteractionCount": -1}', '{logoInteractionCount}', 'preferences: a negative logoInteractionCount is refused'),
    (12, '{"themeSwitchCount": 1.5}', '{themeSwitchCount}', 'preferences: a fractional themeSwitchCount is refused'),
    (
        13, '{"sessionDuration": 2147483648}',
        '{sessionDuration}', 'preferences: a sessionDuration beyond an integer column is refused'
    ),
    (14, '{"sessionDuration": "60"}', '{sessionDuration}', 'preferences: a string sessionDuration is refused'),
    (15, '{"theme": "default"}', '{theme}', 'preferences: an unknown field is refused by name'),
    (
        16, '{"darkModePreference": null, "sessionDuration": null}',
        '{}', 'preferences: a JSON null is the same as leaving the field out'
    ),
    (17, '{"sessionId": "sess\u001b]0;x\u0007"}', '{sessionId}', 'preferences: ESC and BEL in a sessionId are refused')
) as c (position, change, fields, description)
order by c.position;
select is(
    tap.bad_fields('{"accessibilityTheme": "default"}', app_logic.save_accessibility_preferences_rule()),
    '{sessionId}', 'preferences: sessionId is required'
);
select is(
    tap.bad_fields('{"sessionId": "s"}', app_logic.save_accessibility_preferences_rule()),
    '{accessibilityTheme}', 'preferences: accessibilityTheme is required'
);

-- Rule: brand engagement

select is(pg_temp.engagement(c.change), c.fields, c.description)
from (
    values
    (
        1, '{
            "logoInteractions": [{"timestamp": 1767225600000, "theme": "protanopia", "duration": 1200.5}],
            "scrollDepthPercentage": 100, "timeSpentPerSection": {"hero": 12000, "ecosystem": 0.5},
            "ctaClicks": ["contact", {"id": "demo"}], "coreWebVitals": {"lcp": 2300, "fid": 85, "cls": 0.08, "inp": 120, "ttfb": 0},
            "accessibilityFeaturesUsed": ["reduced-motion"], "keyboardNavigationUsed": true, "logoAccessibilityThemeChanges": 3
        }'::jsonb,
        '{}'::text[], 'engagement: every field with a valid value passes'
    ),
    (
        2, jsonb_build_object('logoInteractions', (
            select jsonb_agg('{"timestamp": 1, "theme": "default", "duration": 1}'::jsonb) from generate_series(1, 501)
        )),
        '{logoInteractions}', 'engagement: more than 500 logoInteractions are refused'
    ),
    (
        3, jsonb_build_object('logoInteractions', (
            select jsonb_agg('{"timestamp": 1, "theme": "default", "duration": 1}'::jsonb) from generate_series(1, 500)
        )),
        '{}', 'engagement: 500 logoInteractions pass'
    ),
    (
        4, '{"logoInteractions": [{"timestamp": 1, "duration": 1}]}',
        '{logoInteractions[0].theme}', 'engagement: a logo interaction without theme is refused, naming the item'
    ),
    (
        5, '{"logoInteractions": [{"timestamp": -1, "theme": "default", "duration": 1}]}',
        '{logoInteractions[0].timestamp}', 'engagement: a negative logo interaction timestamp is refused'
    ),
    (
        6, '{"logoInteractions": [{"timestamp": 1, "theme": "default", "duration": "1s"}]}',
        '{logoInteractions[0].duration}', 'engagement: a logo interaction duration must be a number'
    ),
    (
        7, jsonb_build_object('logoInteractions', jsonb_build_array(
            jsonb_build_object('timestamp', 1, 'theme', repeat('t', 51), 'duration', 1)
        )),
        '{logoInteractions[0].theme}', 'engagement: a logo interaction theme longer than 50 is refused'
    ),
    (
        8, '{"logoInteractions": [{"timestamp": 1, "theme": "d", "duration": 1, "x": 0}]}',
        '{logoInteractions[0].x}', 'engagement: a logo interaction with an unknown key is refused'
    ),
    (9, '{"logoInteractions": {"timestamp": 1}}', '{logoInteractions}', 'engagement: logoInteractions must be an array'),
    (10, '{"scrollDepthPercentage": 101}', '{scrollDepthPercentage}', 'engagement: scrollDepthPercentage above 100 is refused'),
    (11, '{"scrollDepthPercentage": -1}', '{scrollDepthPercentage}', 'engagement: a negative scrollDepthPercentage is refused'),
    (
        12, '{"scrollDepthPercentage": 50.5}',
        '{scrollDepthPercentage}', 'engagement: a fractional scrollDepthPercentage is refused'
    ),
    (
        13, '{"timeSpentPerSection": {"hero": -5}}',
        '{timeSpentPerSection.hero}', 'engagement: a negative time in a section is refused, naming the section'
    ),
    (14, '{"timeSpentPerSection": {"hero": "5s"}}', '{timeSpentPerSection.hero}', 'engagement: a section time must be a number'),
    (
        15, jsonb_build_object('timeSpentPerSection', (
            select jsonb_object_agg('s' || i, i) from generate_series(1, 51) as i
        )),
        '{timeSpentPerSection}', 'engagement: more than 50 sections are refused'
    ),
    (
        16, jsonb_build_object('timeSpentPerSection', jsonb_build_object(repeat('k', 101), 1)),
        array['timeSpentPerSection.' || repeat('k', 100)], 'engagement: a section name longer than 100 is refused'
    ),
    (17, '{"timeSpentPerSection": [1, 2]}', '{timeSpentPerSection}', 'engagement: timeSpentPerSection must be an object'),
    (
        18, jsonb_build_object('ctaClicks', (select jsonb_agg(i) from generate_series(1, 101) as i)),
        '{ctaClicks}', 'engagement: more than 100 ctaClicks are refused'
    ),
    (
        19, jsonb_build_object('ctaClicks', jsonb_build_array(repeat('c', 9000))),
        '{ctaClicks}', 'engagement: ctaClicks over 8 KiB of JSON are refused'
    ),
    (20, '{"ctaClicks": "contact"}', '{ctaClicks}', 'engagement: ctaClicks must be an array'),
    (
        21, '{"coreWebVitals": {"lcp": 1, "tbt": 2}}',
        '{coreWebVitals.tbt}', 'engagement: an unknown Core Web Vital is refused by name'
    ),
    (22, '{"coreWebVitals": {"lcp": -1}}', '{coreWebVitals.lcp}', 'engagement: a negative lcp is refused'),
    (23, '{"coreWebVitals": {"cls": "0.1"}}', '{coreWebVitals.cls}', 'engagement: a cls given as a string is refused'),
    (24, '{"coreWebVitals": {"ttfb": 1e300}}', '{coreWebVitals.ttfb}', 'engagement: an absurdly large ttfb is refused'),
    (
        25, jsonb_build_object('accessibilityFeaturesUsed', (
            select jsonb_agg('f' || i) from generate_series(1, 51) as i
        )),
        '{accessibilityFeaturesUsed}', 'engagement: more than 50 accessibilityFeaturesUsed are refused'
    ),
    (
        26, '{"accessibilityFeaturesUsed": ["ok", 7]}',
        '{accessibilityFeaturesUsed[1]}', 'engagement: an accessibility feature must be a string'
    ),
    (
        27, jsonb_build_object('accessibilityFeaturesUsed', jsonb_build_array(repeat('f', 101))),
        '{accessibilityFeaturesUsed[0]}', 'engagement: an accessibility feature longer than 100 is refused'
    ),
    (
        28, '{"keyboardNavigationUsed": "yes"}',
        '{keyboardNavigationUsed}', 'engagement: keyboardNavigationUsed must be a boolean'
    ),
    (
        29, '{"logoAccessibilityThemeChanges": -2}',
        '{logoAccessibilityThemeChanges}', 'engagement: a negative logoAccessibilityThemeChanges is refused'
    ),
    (30, '{"pageLoadPerformance": {}}', '{pageLoadPerformance}', 'engagement: an unknown field is refused by name'),
    (31, '{"sessionId": "\u00a0\u200b"}', '{sessionId}', 'engagement: a sessionId of only NBSP and zero-width space is blank'),
    (
        32, '{"logoInteractions": [{"timestamp": 1e131071, "theme": "dark", "duration": 1}]}',
        '{logoInteractions[0].timestamp}', 'engagement: a logo interaction timestamp of 1e131071 is refused'
    ),
    (
        33, '{"logoInteractions": [{"timestamp": 100000000000000, "theme": "dark", "duration": 1}]}',
        '{logoInteractions[0].timestamp}', 'engagement: a timestamp of 10^14 ms (after the year 5138) is refused'
    ),
    (
        34, '{"logoInteractions": [{"timestamp": 99999999999999, "theme": "dark", "duration": 86400000}]}',
        '{}', 'engagement: a timestamp below 10^14 ms and a duration of a day pass'
    ),
    (
        35, '{"logoInteractions": [{"timestamp": 1767225600000, "theme": "dark", "duration": 86400001}]}',
        '{logoInteractions[0].duration}', 'engagement: an interaction longer than a day is refused'
    ),
    (
        36, '{"ctaClicks": [{"at": 1e131071}]}',
        '{ctaClicks}', 'engagement: free-form ctaClicks holding a huge exponent are refused'
    ),
    (
        37, jsonb_build_object('timeSpentPerSection', (
            select jsonb_object_agg('s' || i, '1e131071'::jsonb) from generate_series(1, 8192) as i
        )),
        '{timeSpentPerSection}', 'engagement: 8,192 sections of 1e131071 (1 GB as text) are refused without printing a number'
    ),
    (
        38, '{"timeSpentPerSection": {"hero\u0007": 10}}',
        '{timeSpentPerSection}', 'engagement: a section name with a control character is refused'
    ),
    (
        39, '{"accessibilityFeaturesUsed": ["\u202eesrever"]}',
        '{accessibilityFeaturesUsed[0]}', 'engagement: a bidi override in a feature name is refused'
    )
) as c (position, change, fields, description)
order by c.position;
select is(
    tap.bad_fields('{}', app_logic.record_brand_engagement_rule()), '{sessionId}',
    'engagement: sessionId is required'
);

-- More single bad fields: each case names exactly its field.
select is_empty(
    $$ select c.change::text, pg_temp.prefs(c.change) from (values
        ('{"sessionId": ""}'::jsonb, 'sessionId'), ('{"sessionId": ["sess"]}', 'sessionId'),
        ('{"accessibilityTheme": null}', 'accessibilityTheme'), ('{"accessibilityTheme": "Deuteranopia"}', 'accessibilityTheme'),
        ('{"highContrast": {}}', 'highContrast'), ('{"logoInteractionCount": 2.5}', 'logoInteractionCount'),
        ('{"themeSwitchCount": "3"}', 'themeSwitchCount'), ('{"sessionDuration": -0.5}', 'sessionDuration')
    ) as c (change, field)
    where pg_temp.prefs(c.change) <> array[c.field] $$,
    'preferences: each further bad value names exactly its field'
);
select is_empty(
    $$ select c.change::text, pg_temp.engagement(c.change) from (values
        (jsonb_build_object('logoInteractions', (
            select jsonb_agg('{"timestamp": 1, "theme": "default", "duration": 1}'::jsonb) from generate_series(1, 501)
        )), 'logoInteractions'),
        ('{"logoInteractions": [{"timestamp": 1, "theme": 3, "duration": 1}]}', 'logoInteractions[0].theme'),
        ('{"logoInteractions": ["spin"]}', 'logoInteractions[0]'),
        ('{"scrollDepthPercentage": "85%"}', 'scrollDepthPercentage'),
        ((select jsonb_build_object('timeSpentPerSection', jsonb_object_agg('s' || i, 1)) from generate_series(1, 51) as i),
            'timeSpentPerSection'),
        ('{"ctaClicks": {"contact": 1}}', 'ctaClicks'),
        (jsonb_build_object('ctaClicks', (select jsonb_agg(i) from generate_series(1, 101) as i)), 'ctaClicks'),
        ('{"coreWebVitals": [2300, 85, 0.08]}', 'coreWebVitals'),
        (jsonb_build_object('accessibilityFeaturesUsed', (select jsonb_agg('f' || i) from generate_series(1, 51) as i)),
            'accessibilityFeaturesUsed'),
        ('{"accessibilityFeaturesUsed": ["ok", null]}', 'accessibilityFeaturesUsed[1]'),
        (jsonb_build_object('accessibilityFeaturesUsed', jsonb_build_array(repeat('x', 101))), 'accessibilityFeaturesUsed[0]'),
        ('{"keyboardNavigationUsed": 1}', 'keyboardNavigationUsed'),
        ('{"leadId": "00000000-0000-4000-8000-000000000000"}', 'leadId')
    ) as c (change, field)
    where pg_temp.engagement(c.change) <> array[c.field] $$,
    'engagement: each further bad value names exactly its field'
);

-- Every property of both rules is documented (the OpenAPI document shows it).
select is_empty(
    $$ select r.name || '.' || p.key
       from (values ('preferences', app_logic.save_accessibility_preferences_rule()),
                    ('engagement', app_logic.record_brand_engagement_rule())) as r (name, rule)
       cross join lateral jsonb_each(r.rule -> 'properties') as p
       where not p.value ? 'description' $$,
    'every property of both rules has a description'
);

select * from finish();
rollback;
