-- Rate limiting: fixed windows, one counter row per client per window.
--
-- The upsert takes a row lock, so simultaneous requests of one client queue on that row and
-- each sees the count the previous one left: exactly max_requests are admitted. Different
-- clients touch different rows and never wait for each other.

create function app_logic.rate_limit_hit(p_action text, p_scope text, p_subject text) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_rule app.rate_limit_rules;
    v_now timestamptz := app_logic.now();
    v_window_start timestamptz;
    v_hits integer;
begin
    select r.* into v_rule from app.rate_limit_rules as r where r.action = p_action and r.scope = p_scope;
    if not found then
        return null;
    end if;
    v_window_start := to_timestamp(floor(extract(epoch from v_now) / v_rule.window_seconds) * v_rule.window_seconds);
    insert into app.rate_limit_counters as c (action, scope, subject, window_start, window_seconds)
    values (p_action, p_scope, p_subject, v_window_start, v_rule.window_seconds)
    on conflict (action, scope, subject, window_start) do update set hits = c.hits + 1
    returning c.hits into v_hits;
    if v_hits <= v_rule.max_requests then
        return null;
    end if;
    -- Seconds until this window ends and a slot is free again; never 0.
    return greatest(1, ceil(extract(epoch from (v_window_start + make_interval(secs => v_rule.window_seconds) - v_now)))::integer);
end
$$;
comment on function app_logic.rate_limit_hit(text, text, text) is
'Count one request; null when admitted, else the seconds to wait (Retry-After).';

-- Count the request against every rule of the action (per IP, and per email when given) and
-- answer 429 when one is exceeded. Called first by every public POST, so requests rejected
-- later for bad input still count.
create function app_logic.enforce_rate_limits(p_action text, p_email text default null) returns jsonb
language plpgsql volatile
as $$
declare
    v_network inet := app_logic.client_network();
    v_wait integer;
    v_email_wait integer;
begin
    v_wait := app_logic.rate_limit_hit(p_action, 'ip', app_logic.pseudonym(coalesce(v_network::text, 'unknown')));
    if p_email is not null and char_length(p_email) <= 254 then
        v_email_wait := app_logic.rate_limit_hit(p_action, 'email', app_logic.pseudonym(lower(btrim(p_email))));
        v_wait := greatest(v_wait, v_email_wait);
    end if;
    if v_wait is null then
        return null;
    end if;
    return app_logic.respond(
        429,
        app_logic.error_body(
            'CHR01', format('Too many requests: try again in %s seconds.', v_wait),
            format('The limit for %s was reached for this client.', p_action),
            'Wait for the number of seconds in the Retry-After header.'
        ),
        jsonb_build_array(jsonb_build_object('Retry-After', v_wait::text))
    );
end
$$;
comment on function app_logic.enforce_rate_limits(text, text) is
'Count a request for an action; the 429 body (status and Retry-After set) when over a limit, else null.';
