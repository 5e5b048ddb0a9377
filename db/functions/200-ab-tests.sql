-- A/B tests of design elements (issue 15): an admin defines a test and its weighted variants,
-- a page asks which variant a session sees (the first answer is recorded as its exposure),
-- exposed sessions convert, and the reader keys see conversion rates, uplift and p-values.
--
-- Assignment is deterministic: a session's place in [0, 1) is the SHA-256 of test name and
-- session id, and the variants share that interval in proportion to their weights. The stored
-- exposure then pins the answer, so it never changes, even for a test edited before it started.

-- Errors of this domain (README, "Error codes"): CHE01 404 no running test of that name;
-- CHE02 409 a started test cannot change; CHE03 409 the session was never shown the test.

create function app_logic.ab_test_slug_rule(p_description text, p_max integer) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'string', 'minLength', 1, 'maxLength', p_max,
        'pattern', format('^[a-z0-9](?:[a-z0-9-]{0,%s}[a-z0-9])?$', p_max - 2),
        'patternText', 'a slug: lower-case letters, digits and dashes, starting and ending with a letter or digit',
        'description', p_description
    )
$$;
comment on function app_logic.ab_test_slug_rule(text, integer) is 'Rule of a test or variant name (a slug).';

create function app_logic.conversion_kind_rule(p_description text) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'string', 'minLength', 1, 'maxLength', 50, 'pattern', '^[a-z][a-z0-9_]{0,49}$',
        'patternText', 'lead, cta_click or another lower-case slug (letters, digits, underscores)',
        'description', p_description
    )
$$;
comment on function app_logic.conversion_kind_rule(text) is 'Rule of a conversion kind: lead, cta_click or a custom slug.';

create function app_logic.timestamp_rule(p_description text) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'string', 'maxLength', 40, 'format', 'date-time',
        'pattern', '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})$',
        'patternText', 'an ISO 8601 date and time with a time zone, e.g. 2026-12-01T09:00:00Z',
        'description', p_description
    )
$$;
comment on function app_logic.timestamp_rule(text) is 'Rule of an ISO 8601 timestamp with a zone.';

-- A timestamp that passed timestamp_rule; null when it names no real moment (month 13).
create function app_logic.timestamp_field(p_body jsonb, p_key text) returns timestamptz
language plpgsql stable
as $$
begin
    return (p_body ->> p_key)::timestamptz;
exception when datetime_field_overflow or invalid_datetime_format or invalid_time_zone_displacement_value then
    return null;
end
$$;
comment on function app_logic.timestamp_field(
    jsonb, text
) is 'A validated timestamp field; null when absent or not a real moment.';

-- The state of a test at an instant.
create function app_logic.ab_test_status(p_test app.ab_tests, p_at timestamptz) returns text
language sql immutable
as $$
    select case
        when p_test.stopped_at is not null and p_test.stopped_at <= p_at then 'stopped'
        when p_test.ends_at is not null and p_test.ends_at <= p_at then 'ended'
        when p_test.starts_at > p_at then 'scheduled'
        else 'running'
    end
$$;
comment on function app_logic.ab_test_status(app.ab_tests, timestamptz) is
'scheduled, running, ended or stopped: what a test is at that instant.';

-- Where a session falls in [0, 1) for a test: 56 bits of SHA-256, exact in numeric.
create function app_logic.ab_test_bucket(p_test text, p_session text) returns numeric
language sql immutable
as $$
    select ('x' || encode(substr(sha256(convert_to(p_test || ':' || p_session, 'UTF8')), 1, 7), 'hex'))::bit(56)::bigint::numeric
        / 72057594037927936
$$;
comment on function app_logic.ab_test_bucket(text, text) is
'The session''s deterministic position in [0, 1) for a test (SHA-256 of test name and session id).';

-- The variant whose share of the weights covers the session's bucket.
create function app_logic.ab_test_pick(p_test_id bigint, p_bucket numeric) returns integer
language sql stable
as $$
    select w.position
    from (
        select
            v.position,
            sum(v.weight) over (order by v.position) as upto,
            sum(v.weight) over () as total
        from app.ab_test_variants as v
        where v.test_id = p_test_id
    ) as w
    where w.upto > p_bucket * w.total
    order by w.position
    limit 1
$$;
comment on function app_logic.ab_test_pick(bigint, numeric) is
'The variant position a bucket in [0, 1) falls into, variants sharing the interval by weight.';

-- Two-sided p-value of a two-proportion z-test (pooled), and the normal tail it needs.
-- PostgreSQL 15 has no erf(): the tail is Zelen and Severo's approximation (Abramowitz and
-- Stegun 26.2.17), absolute error below 7.5e-8, which is far below what a dashboard shows.
create function app_logic.normal_upper_tail(p_z double precision) returns double precision
language sql immutable
as $$
    -- exp() raises on underflow, and beyond 37 the tail is below 1e-290 anyway.
    select case when p_z > 37 then 0::double precision else
        exp(-p_z * p_z / 2) / sqrt(2 * pi())
        * t * (0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))))
    end
    from (select 1 / (1 + 0.2316419 * abs(p_z)) as t) as s
$$;
comment on function app_logic.normal_upper_tail(double precision) is
'P(Z > |z|) for a standard normal Z (Abramowitz and Stegun 26.2.17, error < 7.5e-8).';

create function app_logic.two_proportion_p_value(
    p_conversions_a bigint, p_exposures_a bigint, p_conversions_b bigint, p_exposures_b bigint
) returns double precision
language sql immutable
as $$
    select case
        when p_exposures_a = 0 or p_exposures_b = 0 then null
        -- Pooled rate 0 or 1: no variance, nothing to test.
        when pooled <= 0 or pooled >= 1 then null
        else least(1, 2 * app_logic.normal_upper_tail(
            abs(p_conversions_b::double precision / p_exposures_b - p_conversions_a::double precision / p_exposures_a)
            / sqrt(pooled * (1 - pooled) * (1 / p_exposures_a::double precision + 1 / p_exposures_b::double precision))
        ))
    end
    from (
        select (p_conversions_a + p_conversions_b)::double precision / nullif(p_exposures_a + p_exposures_b, 0) as pooled
    ) as p
$$;
comment on function app_logic.two_proportion_p_value(bigint, bigint, bigint, bigint) is
'Two-sided p-value of the difference of two conversion rates (pooled two-proportion z-test); null without variance.';

-- POST /api/ab-tests ---------------------------------------------------------------------

create function app_logic.create_ab_test_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'An A/B test of design elements. Posting a test of the same name again replaces it '
        || 'until it has started; after that its variants and weights are fixed (409).',
        'required', jsonb_build_array('name', 'variants', 'goal'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'name', app_logic.ab_test_slug_rule('The test''s name, used by the assignment and the analytics.', 64),
            'variants', jsonb_build_object(
                'type', 'array', 'maxItems', 10,
                'description', '2 to 10 variants; the first is the control that uplift is measured against.',
                'items', jsonb_build_object(
                    'type', 'object',
                    'description', 'One variant of the design.',
                    'required', jsonb_build_array('name', 'design', 'weight'),
                    'additionalProperties', false,
                    'properties', jsonb_build_object(
                        'name', app_logic.ab_test_slug_rule('The variant''s name, unique within the test.', 50),
                        'design', '{
                            "type": "object", "maxBytes": 8192,
                            "description": "The design settings a page applies for this variant (any JSON object)."
                        }'::jsonb,
                        'weight', '{
                            "type": "number", "minimum": 0, "maximum": 1000000,
                            "description": "Share of sessions, relative to the other weights; greater than 0."
                        }'::jsonb
                    )
                )
            ),
            'goal', app_logic.conversion_kind_rule('The conversion kind the test is judged by: lead, cta_click or a custom slug.'),
            'startsAt', app_logic.timestamp_rule('When the test starts; default now.'),
            'endsAt', app_logic.timestamp_rule('When the test ends; default never (until stopped).')
        )
    )
$$;
comment on function app_logic.create_ab_test_rule() is 'Validation rule (and OpenAPI schema) of POST /api/ab-tests.';

-- What the rule cannot say: how many variants, weights above 0, unique names, real moments in order.
create function app_logic.ab_test_problems(p_body jsonb) returns jsonb
language plpgsql stable
as $$
declare
    v_problems jsonb := '[]'::jsonb;
    v_starts timestamptz;
    v_ends timestamptz;
    v_count integer := jsonb_array_length(p_body -> 'variants');
begin
    if v_count < 2 then
        v_problems := v_problems || app_logic.problem('variants', 'variants must have at least 2 items.');
    end if;
    v_problems := v_problems || coalesce((
        select jsonb_agg(jsonb_build_object(
            'field', format('variants[%s].weight', v.ord - 1),
            'message', format('variants[%s].weight must be greater than 0.', v.ord - 1)
        ) order by v.ord)
        from jsonb_array_elements(p_body -> 'variants') with ordinality as v (item, ord)
        where (v.item ->> 'weight')::numeric <= 0
    ), '[]'::jsonb);
    if (select count(distinct v ->> 'name') from jsonb_array_elements(p_body -> 'variants') as v) < v_count then
        v_problems := v_problems || app_logic.problem('variants', 'variants must have different names.');
    end if;
    if p_body ? 'startsAt' and jsonb_typeof(p_body -> 'startsAt') = 'string' then
        v_starts := app_logic.timestamp_field(p_body, 'startsAt');
        if v_starts is null then
            v_problems := v_problems || app_logic.problem('startsAt', 'startsAt must be a real date and time.');
        end if;
    end if;
    if p_body ? 'endsAt' and jsonb_typeof(p_body -> 'endsAt') = 'string' then
        v_ends := app_logic.timestamp_field(p_body, 'endsAt');
        if v_ends is null then
            v_problems := v_problems || app_logic.problem('endsAt', 'endsAt must be a real date and time.');
        elsif v_ends <= coalesce(v_starts, app_logic.now()) then
            v_problems := v_problems || app_logic.problem('endsAt', 'endsAt must be after startsAt (or after now).');
        end if;
    end if;
    return v_problems;
end
$$;
comment on function app_logic.ab_test_problems(jsonb) is
'Problems of a valid-shaped test body the rule cannot express (variant count, weights, names, times).';

create function app_logic.create_ab_test_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_problems jsonb;
    v_now timestamptz := app_logic.now();
    v_test app.ab_tests;
    v_name text;
    v_created boolean := false;
begin
    v_problems := app_logic.ab_test_problems(p_body);
    if jsonb_array_length(v_problems) > 0 then
        return app_logic.reject_invalid(v_problems);
    end if;
    v_name := p_body ->> 'name';
    select t.* into v_test from app.ab_tests as t where t.name = v_name for update;
    if v_test.id is not null and app_logic.ab_test_status(v_test, v_now) <> 'scheduled' then
        return app_logic.respond(409, app_logic.error_body(
            'CHE02', format('The A/B test %s has started: its variants and weights cannot change.', v_name),
            format('It is %s since %s.', app_logic.ab_test_status(v_test, v_now), v_test.starts_at),
            'Stop it (POST /api/ab-tests/stop) and create a test under a new name.'
        ));
    end if;
    if v_test.id is null then
        insert into app.ab_tests (name, goal, starts_at, ends_at, created_at, updated_at)
        values (
            v_name, p_body ->> 'goal', coalesce(app_logic.timestamp_field(p_body, 'startsAt'), v_now),
            app_logic.timestamp_field(p_body, 'endsAt'), v_now, v_now
        )
        returning * into v_test;
        v_created := true;
    else
        update app.ab_tests as t set
            goal = p_body ->> 'goal',
            starts_at = coalesce(app_logic.timestamp_field(p_body, 'startsAt'), v_now),
            ends_at = app_logic.timestamp_field(p_body, 'endsAt'),
            updated_at = v_now
        where t.id = v_test.id;
        -- Not started: nobody was exposed, so the variants can be replaced outright.
        delete from app.ab_test_variants as v where v.test_id = v_test.id;
    end if;
    insert into app.ab_test_variants (test_id, position, name, design, weight)
    select v_test.id, v.ord, v.item ->> 'name', v.item -> 'design', (v.item ->> 'weight')::numeric
    from jsonb_array_elements(p_body -> 'variants') with ordinality as v (item, ord);
    return app_logic.respond(
        case when v_created then 201 else 200 end,
        jsonb_build_object('status', case when v_created then 'created' else 'updated' end, 'test', v_name)
    );
end
$$;
select app_logic.declare_post(
    'create_ab_test', 'ab_tests', 'app_logic.create_ab_test_rule', 'app_logic.create_ab_test_handler'
);
comment on function api.create_ab_test(jsonb) is
'POST /api/ab-tests (admin key): create an A/B test, 201 {"status":"created","test":name}; the same name '
'again before it starts replaces it (200 "updated"); once started 409 CHE02. 400 naming every invalid field.';

-- POST /api/ab-tests/stop ----------------------------------------------------------------

create function app_logic.stop_ab_test_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'The test to stop; a stopped test assigns no variant and records no conversion.',
        'required', jsonb_build_array('name'),
        'additionalProperties', false,
        'properties', jsonb_build_object('name', app_logic.ab_test_slug_rule('The test''s name.', 64))
    )
$$;
comment on function app_logic.stop_ab_test_rule() is 'Validation rule (and OpenAPI schema) of POST /api/ab-tests/stop.';

create function app_logic.no_such_ab_test(p_name text) returns jsonb
language sql volatile
as $$
    select app_logic.respond(404, app_logic.error_body(
        'CHE01', 'There is no running A/B test with that name.',
        format('No test named %s is running (unknown, scheduled, ended or stopped).', left(p_name, 64)),
        'Check the name; GET /api/brand-analytics/ab-tests lists the tests.'
    ))
$$;
comment on function app_logic.no_such_ab_test(text) is 'Answer 404 CHE01: no running test of that name.';

create function app_logic.stop_ab_test_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_test app.ab_tests;
begin
    update app.ab_tests as t set stopped_at = coalesce(t.stopped_at, app_logic.now()), updated_at = app_logic.now()
    where t.name = p_body ->> 'name'
    returning * into v_test;
    if v_test.id is null then
        return app_logic.respond(404, app_logic.error_body(
            'CHE01', 'There is no A/B test with that name.', null, 'GET /api/brand-analytics/ab-tests lists the tests.'
        ));
    end if;
    return app_logic.respond(200, jsonb_build_object('status', 'stopped', 'test', v_test.name, 'stoppedAt', v_test.stopped_at));
end
$$;
select app_logic.declare_post(
    'stop_ab_test', 'ab_tests', 'app_logic.stop_ab_test_rule', 'app_logic.stop_ab_test_handler'
);
comment on function api.stop_ab_test(jsonb) is
'POST /api/ab-tests/stop (admin key): stop a test (idempotent): 200 {"status":"stopped","test","stoppedAt"}; 404 CHE01 unknown.';

-- GET /api/ab-tests/assignment -----------------------------------------------------------

create function app_logic.assign_ab_test_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'Query parameters: the test and the browser session to assign.',
        'required', jsonb_build_array('test', 'sessionId'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'test', app_logic.ab_test_slug_rule('The test''s name.', 64),
            'sessionId', app_logic.session_id_rule()
        )
    )
$$;
comment on function app_logic.assign_ab_test_rule() is
'Query-parameter rule (and OpenAPI parameters) of GET /api/ab-tests/assignment.';

-- GET, but it writes the exposure: nginx sends it to PostgREST as a POST (a GET runs read-only).
create function app_logic.assign_ab_test_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_query record;
    v_now timestamptz := app_logic.now();
    v_test app.ab_tests;
    v_session text;
    v_position integer;
    v_variant app.ab_test_variants;
begin
    select q.* into v_query from app_logic.screen_query(app_logic.assign_ab_test_rule()) as q;
    if v_query.refused is not null then
        return v_query.refused;
    end if;
    select t.* into v_test from app.ab_tests as t where t.name = v_query.params ->> 'test';
    if v_test.id is null or app_logic.ab_test_status(v_test, v_now) <> 'running' then
        return app_logic.no_such_ab_test(v_query.params ->> 'test');
    end if;
    v_session := app_logic.text_field(v_query.params, 'sessionId');
    select e.position into v_position from app.ab_test_exposures as e
    where e.test_id = v_test.id and e.session_id = v_session;
    if v_position is null then
        v_position := app_logic.ab_test_pick(v_test.id, app_logic.ab_test_bucket(v_test.name, v_session));
        -- A concurrent first request of the same session computed the same variant.
        insert into app.ab_test_exposures (test_id, session_id, position, exposed_at)
        values (v_test.id, v_session, v_position, v_now)
        on conflict do nothing;
    end if;
    select v.* into v_variant from app.ab_test_variants as v where v.test_id = v_test.id and v.position = v_position;
    return app_logic.respond(200, jsonb_build_object('test', v_test.name, 'variant', v_variant.name, 'design', v_variant.design));
end
$$;
-- The body is nginx's {} (the parameters are in the query string): counted, and checked empty.
select app_logic.declare_post(
    'assign_ab_test', 'ab_test_assignment', 'app_logic.query_string_body_rule', 'app_logic.assign_ab_test_handler'
);
comment on function api.assign_ab_test(jsonb) is
'GET /api/ab-tests/assignment?test=NAME&sessionId=S: the variant the session sees, {"test","variant","design"}, '
'the same every time and in proportion to the weights; the first answer is recorded as the session''s exposure. '
'404 CHE01 for an unknown, scheduled, ended or stopped test; 400 naming every invalid parameter.';

-- POST /api/ab-tests/conversions ---------------------------------------------------------

create function app_logic.record_ab_test_conversion_rule() returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'object',
        'description', 'A conversion of a session that was shown the test; counted once per session and kind.',
        'required', jsonb_build_array('test', 'sessionId', 'kind'),
        'additionalProperties', false,
        'properties', jsonb_build_object(
            'test', app_logic.ab_test_slug_rule('The test''s name.', 64),
            'sessionId', app_logic.session_id_rule(),
            'kind', app_logic.conversion_kind_rule(
                'What the session did: cta_click or a custom slug. lead is recorded by the lead itself '
                || '(POST /api/leads with this sessionId), not here.'
            )
        )
    )
$$;
comment on function app_logic.record_ab_test_conversion_rule() is
'Validation rule (and OpenAPI schema) of POST /api/ab-tests/conversions.';

create function app_logic.record_ab_test_conversion_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_now timestamptz := app_logic.now();
    v_test app.ab_tests;
    v_session text;
    v_recorded boolean;
begin
    if p_body ->> 'kind' = 'lead' then
        return app_logic.reject_invalid(app_logic.problem(
            'kind', 'kind lead is recorded when a lead is submitted with this sessionId, not through this endpoint.'
        ));
    end if;
    select t.* into v_test from app.ab_tests as t where t.name = p_body ->> 'test';
    if v_test.id is null or app_logic.ab_test_status(v_test, v_now) <> 'running' then
        return app_logic.no_such_ab_test(p_body ->> 'test');
    end if;
    v_session := app_logic.text_field(p_body, 'sessionId');
    if not exists (select from app.ab_test_exposures as e where e.test_id = v_test.id and e.session_id = v_session) then
        return app_logic.respond(409, app_logic.error_body(
            'CHE03', 'This session was never shown the test, so it cannot convert.',
            format('No exposure of this session to %s is recorded.', v_test.name),
            'Ask for the session''s variant first (GET /api/ab-tests/assignment).'
        ));
    end if;
    insert into app.ab_test_conversions (test_id, session_id, kind, converted_at)
    values (v_test.id, v_session, p_body ->> 'kind', v_now)
    on conflict do nothing
    returning true into v_recorded;
    if v_recorded then
        return app_logic.respond(201, jsonb_build_object('status', 'recorded'));
    end if;
    return app_logic.respond(200, jsonb_build_object('status', 'already recorded'));
end
$$;
select app_logic.declare_post(
    'record_ab_test_conversion', 'ab_test_conversions', 'app_logic.record_ab_test_conversion_rule',
    'app_logic.record_ab_test_conversion_handler'
);
comment on function api.record_ab_test_conversion(jsonb) is
'POST /api/ab-tests/conversions: a conversion of an exposed session, 201 {"status":"recorded"}, or 200 '
'{"status":"already recorded"} for the same session and kind; 409 CHE03 for a session never shown the test; '
'404 CHE01 for no running test; 400 naming every invalid field; 429 over the rate limit.';

-- A lead stored with a session id claims the session (050-engagement.sql: claim_session), then
-- converts the lead goal of every running test the session was shown: the website need not post
-- the conversion itself. One trigger does both (they were two, each set up its own call and NEW
-- row for every lead naming a session, about 10k instructions). Most sessions were shown no
-- test: the INSERT (an executor with ON CONFLICT and the table's checks, about 100k instructions
-- of a submission even when it inserts nothing) runs only for a session with an exposure. Not
-- SECURITY DEFINER: only the owner writes app.leads (its definer functions), so the trigger runs
-- as the owner anyway, without a pinned search path to switch for every lead (about 16k).
create function app_logic.tg_leads__session() returns trigger
language plpgsql
as $$
declare
    v_now timestamptz;
begin
    perform app_logic.claim_session(new.id, new.session_id);
    if not exists (select from app.ab_test_exposures as e where e.session_id = new.session_id) then
        return null;
    end if;
    v_now := app_logic.now();
    insert into app.ab_test_conversions (test_id, session_id, kind, converted_at)
    select e.test_id, e.session_id, 'lead', v_now
    from app.ab_test_exposures as e
    join app.ab_tests as t on e.test_id = t.id
    where e.session_id = new.session_id and app_logic.ab_test_status(t, v_now) = 'running'
    on conflict do nothing;
    return null;
end
$$;
comment on function app_logic.tg_leads__session() is
'After a lead is stored with a session id: claim the session for it unless another lead owns it, and record a '
'lead conversion for each running test that session was shown.';

create trigger leads_session
after insert or update of session_id on app.leads
for each row when (new.session_id is not null)
execute function app_logic.tg_leads__session();

-- GET /api/brand-analytics/ab-tests ------------------------------------------------------

-- Counts only: the view's readers never see a session id. Every variant gets a row per theme
-- (and 'all', and 'unknown' for sessions that posted no accessibility preferences), also
-- without exposures. The theme is the session's current preference.
create function app_logic.ab_test_counts()
returns table (
    test_id bigint, test text, goal text, status text, starts_at timestamptz, ends_at timestamptz,
    variant_position integer, variant text, weight numeric, theme text, exposures bigint, conversions bigint
)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    with exposed as (
        select e.test_id, e.position, e.session_id, coalesce(p.accessibility_theme, 'unknown') as theme
        from app.ab_test_exposures as e
        -- The theme is encrypted (db/functions/045-field-encryption.sql).
        left join app_logic.exposed_session_themes() as p on e.session_id = p.session_id
        where e.exposed_at <= app_logic.now()
    )

    select
        t.id, t.name, t.goal, app_logic.ab_test_status(t, app_logic.now()), t.starts_at, t.ends_at,
        v.position, v.name, v.weight, th.theme,
        count(x.session_id),
        count(c.session_id)
    from app.ab_tests as t
    join app.ab_test_variants as v on t.id = v.test_id
    cross join (
        values ('all'), ('default'), ('protanopia'), ('deuteranopia'), ('tritanopia'), ('achromatopsia'), ('unknown')
    ) as th (theme)
    left join exposed as x
        on v.test_id = x.test_id and v.position = x.position and (th.theme = 'all' or th.theme = x.theme)
    left join app.ab_test_conversions as c
        on
            x.test_id = c.test_id and x.session_id = c.session_id and c.kind = t.goal
            and c.converted_at <= app_logic.now()
    group by t.id, v.position, v.name, v.weight, th.theme
$$;
comment on function app_logic.ab_test_counts() is
'Exposures and goal conversions per test, variant and accessibility theme (and all); no session ids.';

create view api.ab_test_results with (security_invoker = true) as
with counted as (
    select
        c.*,
        first_value(c.exposures) over control as control_exposures,
        first_value(c.conversions) over control as control_conversions,
        first_value(c.variant_position) over control as control_position
    from app_logic.ab_test_counts() as c
    window control as (partition by c.test_id, c.theme order by c.variant_position)
)

select
    c.test,
    c.goal,
    c.status,
    c.starts_at as "startsAt",
    c.ends_at as "endsAt",
    c.variant,
    c.variant_position::integer as position,
    c.weight::double precision as weight,
    c.theme as "accessibilityTheme",
    c.exposures::integer as exposures,
    c.conversions::integer as conversions,
    (c.conversions::double precision / nullif(c.exposures, 0)) as "conversionRate",
    case
        when c.variant_position <> c.control_position
            then
                (c.conversions::double precision / nullif(c.exposures, 0))
                / nullif(c.control_conversions::double precision / nullif(c.control_exposures, 0), 0) - 1
    end as uplift,
    case
        when c.variant_position <> c.control_position
            then
                app_logic.two_proportion_p_value(c.control_conversions, c.control_exposures, c.conversions, c.exposures)
    end as "pValue"
from counted as c
order by c.test asc, c.theme = 'all' desc, c.theme, c.variant_position asc;
comment on view api.ab_test_results is
'GET /api/brand-analytics/ab-tests (reader or admin key): per test, variant and accessibility theme (all, each '
'theme, unknown), the exposures, the conversions of the test''s goal, the conversion rate, the uplift against '
'the first variant and the two-sided p-value of that difference (two-proportion z-test). Filter with '
'?test=eq.NAME&accessibilityTheme=eq.all.';
comment on column api.ab_test_results.test is 'The test''s name.';
comment on column api.ab_test_results.goal is 'The conversion kind the test is judged by.';
comment on column api.ab_test_results.status is 'scheduled, running, ended or stopped.';
comment on column api.ab_test_results."startsAt" is 'When the test starts or started.';
comment on column api.ab_test_results."endsAt" is 'When the test ends; null for no end.';
comment on column api.ab_test_results.variant is 'The variant''s name.';
comment on column api.ab_test_results.position is 'The variant''s place; 1 is the control.';
comment on column api.ab_test_results.weight is 'The variant''s weight.';
comment on column api.ab_test_results."accessibilityTheme" is
'all, or the sessions'' accessibility theme (default, protanopia, deuteranopia, tritanopia, achromatopsia, unknown).';
comment on column api.ab_test_results.exposures is 'Sessions shown this variant.';
comment on column api.ab_test_results.conversions is 'Of those, sessions that converted the goal.';
comment on column api.ab_test_results."conversionRate" is 'conversions / exposures; null without exposures.';
comment on column api.ab_test_results.uplift is
'Relative difference of the conversion rate to the control''s (0.1 = 10% better); null for the control or a zero control rate.';
comment on column api.ab_test_results."pValue" is
'Two-sided p-value of the difference to the control (pooled two-proportion z-test); null for the control or without variance.';

-- Health of the POST paths -----------------------------------------------------------------

select app_logic.declare_post_health('check_ab_tests_health', 'ab-tests');
select app_logic.declare_post_health('check_ab_tests_stop_health', 'ab-tests/stop');
select app_logic.declare_post_health('check_ab_test_conversions_health', 'ab-tests/conversions');
