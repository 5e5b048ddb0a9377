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
create function app_logic.rate_limit_subject(p_scope text, p_value text) returns text
language sql stable
as $$
    select app_logic.pseudonym(p_scope || ':' || p_value)
$$;
comment on function app_logic.rate_limit_subject(text, text) is
'The key of a rate-limit counter: HMAC of scope and client network or lower-cased email.';

-- Count a request for an action against each of its rules (per IP, and per email when given)
-- and answer 429 when one is exceeded. A request is admitted only when every rule admits it,
-- and only an admitted request takes a slot: retrying while blocked does not prolong the block.
create function app_logic.enforce_rate_limits(p_action text, p_email text default null) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_now timestamptz := app_logic.now();
    v_email text := lower(app_logic.trim_text(p_email));
    v_rule app.rate_limit_rules;
    v_subject text;
    v_counted app.rate_limit_rules[] := '{}';
    v_subjects text[] := '{}';
    v_hits timestamptz[];
    v_live timestamptz[];
    v_wait integer;
    v_max_wait integer;
begin
    if char_length(v_email) not between 1 and 254 then
        v_email := null; -- not an address: validation will say so; the IP rule still counts
    end if;
    -- 'ip' sorts after 'email': descending order locks the IP row first, always.
    for v_rule in
        select r.* from app.rate_limit_rules as r
        where r.action = p_action and (r.scope = 'ip' or v_email is not null)
        order by r.scope desc
    loop
        v_subject := app_logic.rate_limit_subject(
            v_rule.scope,
            case when v_rule.scope = 'ip' then coalesce(app_logic.client_network()::text, 'unknown') else v_email end
        );
        select c.hits into v_hits from app.rate_limit_counters as c
        where c.action = p_action and c.scope = v_rule.scope and c.subject = v_subject
        for update;
        if not found then
            -- A row this transaction inserted is its own until commit (a concurrent insert of
            -- the same key waits for it): only when another request inserted it first is it
            -- read, and locked, again.
            insert into app.rate_limit_counters as c (action, scope, subject, expires_at)
            values (p_action, v_rule.scope, v_subject, v_now)
            on conflict do nothing
            returning c.hits into v_hits;
            if not found then
                select c.hits into v_hits from app.rate_limit_counters as c
                where c.action = p_action and c.scope = v_rule.scope and c.subject = v_subject
                for update;
            end if;
        end if;
        -- A new client's log is empty: nothing to filter (the query is skipped).
        if cardinality(v_hits) = 0 then
            v_live := '{}';
        else
            v_live := array(
                select h from unnest(v_hits) as h
                where h > v_now - make_interval(secs => v_rule.window_seconds)
                order by h
            );
        end if;
        if cardinality(v_live) >= v_rule.max_requests then
            -- A slot frees when the hit that keeps the log full leaves the window.
            v_wait := greatest(1, ceil(extract(epoch from
                v_live[cardinality(v_live) - v_rule.max_requests + 1]
                + make_interval(secs => v_rule.window_seconds) - v_now
            ))::integer);
            v_max_wait := greatest(v_max_wait, v_wait);
        end if;
        v_counted := v_counted || v_rule;
        v_subjects := v_subjects || v_subject;
    end loop;

    if v_max_wait is null then
        -- Admitted: take a slot in every log (by full key: one index probe each).
        for i in 1..cardinality(v_subjects) loop
            update app.rate_limit_counters as c
            set
                hits = array(
                    select h from unnest(c.hits || v_now) as h
                    where h > v_now - make_interval(secs => v_counted[i].window_seconds)
                    order by h
                ),
                expires_at = greatest(c.expires_at, v_now + make_interval(secs => v_counted[i].window_seconds))
            where c.action = p_action and c.scope = v_counted[i].scope and c.subject = v_subjects[i];
        end loop;
        return null;
    end if;
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
comment on function app_logic.enforce_rate_limits(text, text) is
'Count a request for an action; the 429 body (status and Retry-After set) when over a limit, else null.';
