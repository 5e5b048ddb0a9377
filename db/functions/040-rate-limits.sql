-- Rate limiting (issue 4): a sliding log per client, counted before anything else a public POST does.
-- (db/schema/040-rate-limits.sql's header says "fixed-window": the comments below are current.)
--
-- Exact under concurrency: every request of one client locks that client's row, so
-- simultaneous requests queue on it and each sees what the previous one left: exactly
-- max_requests are admitted. Different clients lock different rows and never wait for each
-- other. Rows are locked in one order (ip before email), so two requests cannot deadlock.
-- Endpoints answer 4xx with response.status instead of raising, so a request rejected for bad
-- input keeps its hit: PostgREST commits the transaction.

comment on table app.rate_limit_rules is
'How many requests each action admits in any window of window_seconds (a sliding window), per client network '
'(scope ip) or lower-cased email (scope email). Change a limit with an UPDATE; no deploy.';
comment on table app.rate_limit_counters is
'A sliding log per client, action and scope: the arrival times of the admitted requests still inside the window '
'(at most max_requests). Unlogged: a crash forgets them, which only forgives. Rows whose window ended are purged '
'every minute (retention rule rate_limit_counters).';
comment on column app.rate_limit_counters.subject is 'HMAC of the scope and the client network or email: nothing in clear.';
comment on column app.rate_limit_counters.hits is 'Arrival times of the admitted requests inside the window, oldest first.';
comment on column app.rate_limit_counters.expires_at is 'When the newest hit leaves the window; the row is stale after it.';

-- The counter key of a client: a keyed hash, prefixed by scope so that a counter cannot be
-- joined to a consent record or to another scope's counter.
create function app_logic.rate_limit_subject(p_scope text, p_value text, p_pepper text) returns text
language sql stable
as $$
    select app_logic.pseudonym(p_scope || ':' || p_value, p_pepper)
$$;
comment on function app_logic.rate_limit_subject(text, text, text) is
'The key of a rate-limit counter with the pepper given: HMAC of scope and client network or lower-cased email.';

create function app_logic.rate_limit_subject(p_scope text, p_value text) returns text
language sql stable
as $$
    select app_logic.rate_limit_subject(p_scope, p_value, app_logic.setting('hash_pepper'))
$$;
comment on function app_logic.rate_limit_subject(text, text) is
'The key of a rate-limit counter: HMAC of scope and client network or lower-cased email.';

-- The admitted hits of a log still inside the window starting at p_since, oldest first, with
-- p_cost more at p_now: what a counter holds after admitting a request.
create function app_logic.hits_after_admitting(p_hits timestamptz[], p_since timestamptz, p_now timestamptz, p_cost integer)
returns timestamptz[]
language sql immutable
as $$
    select array(select h from unnest(p_hits || array_fill(p_now, array[p_cost])) as h where h > p_since order by h)
$$;

-- How many hits of a log are still inside the window starting at p_since.
create function app_logic.live_hits(p_hits timestamptz[], p_since timestamptz) returns integer
language sql immutable
as $$
    select count(*)::integer from unnest(p_hits) as h where h > p_since
$$;

-- Count a request for an action against each of its rules (per IP, and per email when given)
-- and answer 429 when one is exceeded. A request is admitted only when every rule admits it,
-- and only an admitted request takes a slot: retrying while blocked does not prolong the block.
-- p_cost: how many requests this one counts as (a batch of page views counts each event).
--
-- One statement per rule: an upsert that takes the slot only when the log has room (the
-- condition of ON CONFLICT DO UPDATE is evaluated on the locked, latest row, so concurrent
-- requests of one client queue on it and exactly max_requests are admitted; a new client's
-- row is inserted with its first hit). A refused upsert still locks the row. When a later rule
-- refuses, the slots the earlier rules took are given back (the rows are still locked by this
-- transaction, so nobody else has seen them), and every remaining rule is asked for its wait so
-- that Retry-After is the longest.
create function app_logic.enforce_rate_limits(p_action text, p_email text default null, p_cost integer default 1)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_now timestamptz := app_logic.now();
    v_email text := lower(app_logic.trim_text(p_email));
    v_rule app.rate_limit_rules;
    v_rules app.rate_limit_rules[];
    v_subject text;
    v_window interval;
    v_admitted boolean;
    v_taken app.rate_limit_rules[] := '{}';
    v_taken_subjects text[] := '{}';
    v_live timestamptz[];
    v_max_wait integer;
    -- Read once: every rule's subject is hashed with it.
    v_pepper text := app_logic.setting('hash_pepper');
begin
    if char_length(v_email) not between 1 and 254 then
        v_email := null; -- not an address: validation will say so; the IP rule still counts
    end if;
    -- 'ip' sorts after 'email': descending order locks the IP row first, always. Read as one
    -- array: a loop over a query opens a cursor (a portal) per request.
    v_rules := array(
        select r from app.rate_limit_rules as r
        where r.action = p_action and (r.scope = 'ip' or v_email is not null)
        order by r.scope desc
    );
    foreach v_rule in array v_rules loop
        v_subject := app_logic.rate_limit_subject(
            v_rule.scope,
            case when v_rule.scope = 'ip' then coalesce(app_logic.client_network()::text, 'unknown') else v_email end,
            v_pepper
        );
        v_window := make_interval(secs => v_rule.window_seconds);
        v_admitted := null;
        if v_max_wait is null and p_cost <= v_rule.max_requests then
            insert into app.rate_limit_counters as c (action, scope, subject, hits, expires_at)
            values (p_action, v_rule.scope, v_subject, array_fill(v_now, array[p_cost]), v_now + v_window)
            on conflict (action, scope, subject) do update
            set
                hits = app_logic.hits_after_admitting(c.hits, v_now - v_window, v_now, p_cost),
                expires_at = greatest(c.expires_at, v_now + v_window)
            where app_logic.live_hits(c.hits, v_now - v_window) + p_cost <= v_rule.max_requests
            returning true into v_admitted;
        end if;
        if v_admitted then
            v_taken := v_taken || v_rule;
            v_taken_subjects := v_taken_subjects || v_subject;
            continue;
        end if;
        -- Refused (or a rule after a refusal): when would p_cost slots be free? The row is locked,
        -- by the refused upsert or here, so the answer holds until this transaction ends.
        select array(
            select h from unnest(c.hits) as h where h > v_now - v_window order by h
        ) into v_live
        from app.rate_limit_counters as c
        where c.action = p_action and c.scope = v_rule.scope and c.subject = v_subject
        for update;
        if p_cost > v_rule.max_requests then
            -- Never admissible: a slot-sized wait would only invite the same refusal.
            v_max_wait := greatest(v_max_wait, v_rule.window_seconds);
        elsif coalesce(cardinality(v_live), 0) + p_cost > v_rule.max_requests then
            -- Slots free as the hits that keep the log full leave the window.
            v_max_wait := greatest(v_max_wait, 1, ceil(extract(epoch from
                v_live[cardinality(v_live) + p_cost - v_rule.max_requests] + v_window - v_now
            ))::integer);
        end if;
    end loop;

    if v_max_wait is null then
        return null;
    end if;
    -- Give back what the rules before the refusing one took.
    for i in 1..cardinality(v_taken) loop
        update app.rate_limit_counters as c
        set
            hits = app_logic.hits_without(c.hits, v_now, p_cost),
            expires_at = coalesce(
                (app_logic.hits_without(c.hits, v_now, p_cost))[cardinality(c.hits) - p_cost]
                + make_interval(secs => v_taken[i].window_seconds),
                v_now
            )
        where c.action = p_action and c.scope = v_taken[i].scope and c.subject = v_taken_subjects[i];
    end loop;
    return app_logic.respond(
        429,
        app_logic.error_body(
            'CHR01', format('Too many requests: try again in %s seconds.', v_max_wait),
            format('The rate limit for %s was reached for this client.', p_action),
            'Wait for the number of seconds in the Retry-After header.'
        ),
        jsonb_build_array(jsonb_build_object('Retry-After', v_max_wait::text))
    );
end
$$;
comment on function app_logic.enforce_rate_limits(text, text, integer) is
'Count a request (as p_cost requests) for an action; the 429 body (status and Retry-After set) when over a limit, '
'else null.';

-- A log with p_cost of the hits at p_at taken out again (in a sorted log, equal times are
-- interchangeable): how a slot taken by a request that another rule refused is given back.
create function app_logic.hits_without(p_hits timestamptz[], p_at timestamptz, p_cost integer) returns timestamptz[]
language sql immutable
as $$
    select coalesce(array_agg(h order by h, n), '{}')
    from (
        select u.h, u.n, count(*) filter (where u.h = p_at) over (order by u.n) as k
        from unnest(p_hits) with ordinality as u (h, n)
    ) as s
    where s.h <> p_at or s.k > p_cost
$$;
