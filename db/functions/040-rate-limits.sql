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
-- p_cost more at p_now: what a counter holds after admitting a request. PL/pgSQL, like
-- live_hits: a SQL function with a sub-select is never inlined, so the upsert that calls it
-- parsed and planned it again on every repeat client's request; PL/pgSQL keeps the plan.
create function app_logic.hits_after_admitting(p_hits timestamptz[], p_since timestamptz, p_now timestamptz, p_cost integer)
returns timestamptz[]
language plpgsql immutable
as $$
begin
    return array(select h from unnest(p_hits || array_fill(p_now, array[p_cost])) as h where h > p_since order by h);
end
$$;

-- How many hits of a log are still inside the window starting at p_since.
create function app_logic.live_hits(p_hits timestamptz[], p_since timestamptz) returns integer
language plpgsql immutable
as $$
begin
    return (select count(*)::integer from unnest(p_hits) as h where h > p_since);
end
$$;

-- The rules of an action that apply to a request, each with the key of its counter: per IP
-- always, per email when there is one. One SQL SELECT, so the queries that read it inline it
-- into their plans (PL/pgSQL keeps them); its arguments must hold no sub-select for that, so it
-- reads the pepper itself, once per query.
create function app_logic.rate_limit_rules_for(p_action text, p_network text, p_email text)
returns table (rule app.rate_limit_rules, subject text)
language sql stable
as $$
    select r, app_logic.rate_limit_subject(r.scope, case when r.scope = 'ip' then p_network else p_email end, k.value)
    -- A left join: without a pepper the key is null and the counter's insert fails (fail closed;
    -- an inner join would apply no rule at all).
    from app.rate_limit_rules as r
    left join app.settings as k on k.key = 'hash_pepper'
    where r.action = p_action and (r.scope = 'ip' or p_email is not null)
$$;
comment on function app_logic.rate_limit_rules_for(text, text, text) is
'The rate-limit rules of an action for a client network and email (none per email without one), with their '
'counters'' keys.';

-- Count a request for an action against each of its rules (per IP, and per email when given)
-- and answer 429 when one is exceeded. A request is admitted only when every rule admits it,
-- and only an admitted request takes a slot: retrying while blocked does not prolong the block.
-- p_cost: how many requests this one counts as (a batch of page views counts each event).
--
-- One statement for every rule: an upsert of a row per rule that takes the slot only when the
-- log has room (the condition of ON CONFLICT DO UPDATE is evaluated on the locked, latest row,
-- so concurrent requests of one client queue on it and exactly max_requests are admitted; a
-- new client's row is inserted with its first hit). The upsert reads its rows ip first, so it
-- locks them in one order and two requests cannot deadlock. A refused upsert still locks its
-- row. When a rule refuses, the slots the others took are given back (the rows are still
-- locked by this transaction, so nobody else has seen them), and every rule is asked for its
-- wait so that Retry-After is the longest. One statement, not one per rule: the executor's
-- start and end, and the PL/pgSQL statements around them, were most of the limiter's cost. The
-- admitted path runs that statement and four expressions: the pepper is read inside it (a join,
-- not a query of its own), it answers a count (what the refused path needs is read there
-- again), and the client's network is an inlined expression.
-- Not SECURITY DEFINER: only the API's own SECURITY DEFINER functions call it (through
-- screen_request; no web role may), so it runs as their owner already, and a pinned search path
-- would cost a configuration nest level and a search-path recomputation per request. Every name
-- is schema-qualified.
create function app_logic.enforce_rate_limits(p_action text, p_email text default null, p_cost integer default 1)
returns jsonb
language plpgsql volatile
as $$
declare
    v_now timestamptz := app_logic.now();
    v_email text := lower(app_logic.trim_text(p_email));
    v_network text := coalesce(app_logic.client_network()::text, 'unknown');
    v_applied integer;
    v_rule app.rate_limit_rules;
    v_rules app.rate_limit_rules[];
    v_subjects text[];
    v_taken text[];
    v_live timestamptz[];
    v_max_wait integer;
begin
    if char_length(v_email) not between 1 and 254 then
        v_email := null; -- not an address: validation will say so; the IP rule still counts
    end if;
    -- 'ip' sorts after 'email': descending order locks the IP row first, always. The subquery's
    -- max_requests lookup runs only for a client whose row exists.
    with rules as materialized (
        select u.rule as r, u.subject
        from app_logic.rate_limit_rules_for(p_action, v_network, v_email) as u
    ),
    taken as (
        insert into app.rate_limit_counters as c (action, scope, subject, hits, expires_at)
        select p_action, (u.r).scope, u.subject, array_fill(v_now, array[p_cost]),
            v_now + make_interval(secs => (u.r).window_seconds)
        from rules as u
        where p_cost <= (u.r).max_requests
        order by (u.r).scope desc
        -- A new row's expires_at is now + the window: the window start is now - (expires_at - now),
        -- in seconds (an interval of days would follow the time zone's clock changes).
        on conflict (action, scope, subject) do update
        set
            hits = app_logic.hits_after_admitting(
                c.hits, v_now - make_interval(secs => extract(epoch from excluded.expires_at - v_now)), v_now, p_cost
            ),
            expires_at = greatest(c.expires_at, excluded.expires_at)
        where app_logic.live_hits(
            c.hits, v_now - make_interval(secs => extract(epoch from excluded.expires_at - v_now))
        ) + p_cost <= (
            select r.max_requests from app.rate_limit_rules as r where r.action = c.action and r.scope = c.scope
        )
        returning c.subject
    )

    select count(*)::integer, (select array_agg(t.subject) from taken as t)
    into v_applied, v_taken
    from rules;
    if v_applied = coalesce(cardinality(v_taken), 0) then
        return null;
    end if;

    -- Refused by at least one rule: when would p_cost slots be free under each? Give back what
    -- the others took first. Every row is locked, by the upsert or here, so the answer holds
    -- until this transaction ends.
    select array_agg(u.rule order by (u.rule).scope desc), array_agg(u.subject order by (u.rule).scope desc)
    into v_rules, v_subjects
    from app_logic.rate_limit_rules_for(p_action, v_network, v_email) as u;
    v_taken := coalesce(v_taken, '{}');
    for i in 1..cardinality(v_rules) loop
        v_rule := v_rules[i];
        if v_subjects[i] = any(v_taken) then
            update app.rate_limit_counters as c
            set
                hits = app_logic.hits_without(c.hits, v_now, p_cost),
                expires_at = coalesce(
                    (app_logic.hits_without(c.hits, v_now, p_cost))[cardinality(c.hits) - p_cost]
                    + make_interval(secs => v_rule.window_seconds),
                    v_now
                )
            where c.action = p_action and c.scope = v_rule.scope and c.subject = v_subjects[i];
            continue;
        end if;
        select array(
            select h from unnest(c.hits) as h where h > v_now - make_interval(secs => v_rule.window_seconds) order by h
        ) into v_live
        from app.rate_limit_counters as c
        where c.action = p_action and c.scope = v_rule.scope and c.subject = v_subjects[i]
        for update;
        if p_cost > v_rule.max_requests then
            -- Never admissible: a slot-sized wait would only invite the same refusal.
            v_max_wait := greatest(v_max_wait, v_rule.window_seconds);
        elsif coalesce(cardinality(v_live), 0) + p_cost > v_rule.max_requests then
            -- Slots free as the hits that keep the log full leave the window.
            v_max_wait := greatest(v_max_wait, 1, ceil(extract(epoch from
                v_live[cardinality(v_live) + p_cost - v_rule.max_requests]
                + make_interval(secs => v_rule.window_seconds) - v_now
            ))::integer);
        end if;
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
