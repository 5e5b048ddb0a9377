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
comment on column app.rate_limit_counters.subject is
'HMAC-SHA256 of the action, the scope and the client network or email (the key): nothing in clear.';
comment on column app.rate_limit_counters.hits is 'Arrival times of the admitted requests inside the window, oldest first.';
comment on column app.rate_limit_counters.expires_at is 'When the newest hit leaves the window; the row is stale after it.';

-- The counter key of a client: a keyed hash of the action, the scope and the client network or
-- lower-cased email, so that a counter cannot be joined to a consent record or to another
-- action's or scope's counter. The whole HMAC-SHA256 as 32 bytes, the counters' primary key
-- (db/schema/585): never shortened, which could merge two clients' counters. The action and
-- the scope cannot hold ':', so the text hashed names one (action, scope, value) only.
-- pgcrypto's hmac(text, text, text), not app_logic.hmac_sha256 (issue 13): the database is UTF-8
-- (db/tests/040-rate-limits.sql checks it), so a text's bytes are its UTF-8 and the key the same
-- HMAC, without two convert_to() calls per key, each a lookup of the encoding by name and a
-- check of the text (callgrind: 6k instructions a submission, two keys). Here and not in
-- app_logic.hmac_sha256: these keys live minutes, while the pseudonyms it makes are stored, and
-- in a database of another encoding they must stay the HMAC of the UTF-8 bytes.
create function app_logic.rate_limit_subject(p_action text, p_scope text, p_value text, p_pepper text) returns bytea
language sql stable
as $$
    select extensions.hmac(p_action || ':' || p_scope || ':' || p_value, p_pepper, 'sha256')
$$;
comment on function app_logic.rate_limit_subject(text, text, text, text) is
'The key of a rate-limit counter with the pepper given: HMAC of action, scope and client network or lower-cased email.';

create function app_logic.rate_limit_subject(p_action text, p_scope text, p_value text) returns bytea
language sql stable
as $$
    select app_logic.rate_limit_subject(p_action, p_scope, p_value, app_logic.setting('hash_pepper'))
$$;
comment on function app_logic.rate_limit_subject(text, text, text) is
'The key of a rate-limit counter: HMAC of action, scope and client network or lower-cased email.';

-- The keys an email's counters can have, one per action (GDPR export and erasure): the actions
-- of the rules, and of the counters held (a rule removed leaves its counters until they expire).
create function app_logic.rate_limit_subjects_of_email(p_email text) returns bytea[]
language sql stable
as $$
    select array(
        select app_logic.rate_limit_subject(a.action, 'email', lower(app_logic.trim_text(p_email)))
        from (
            select r.action from app.rate_limit_rules as r where r.scope = 'email'
            union
            select c.action from app.rate_limit_counters as c where c.scope = 'email'
        ) as a
    )
$$;
comment on function app_logic.rate_limit_subjects_of_email(text) is
'The keys of the rate-limit counters an email can have, one per action.';

-- The limits compiled into constants (issue 13), as the route keys are (005-routes): the
-- limiter's upsert reads a rule's max_requests and window_seconds from app_logic.rate_limit_max
-- and app_logic.rate_limit_window, inlined JSON constants, instead of reading app.rate_limit_rules
-- (an index scan and a sub-select set up for every request). A trigger compiles them again in
-- the transaction of every change of the rules, and CREATE OR REPLACE invalidates the plans that
-- inlined them, so an UPDATE still applies from the next request. null: no such rule.
create function app_logic.compile_rate_limit_rules() returns void
language plpgsql volatile
as $$
declare
    v_max jsonb;
    v_window jsonb;
begin
    select
        coalesce(jsonb_object_agg(r.action || ':' || r.scope, r.max_requests), '{}'),
        coalesce(jsonb_object_agg(r.action || ':' || r.scope, r.window_seconds), '{}')
    into v_max, v_window
    from app.rate_limit_rules as r;
    perform app_logic.compile_json_lookup(
        'rate_limit_max(p_action text, p_scope text)', $k$p_action || ':' || p_scope$k$, v_max
    );
    perform app_logic.compile_json_lookup(
        'rate_limit_window(p_action text, p_scope text)', $k$p_action || ':' || p_scope$k$, v_window
    );
    comment on function app_logic.rate_limit_max(text, text) is
    'max_requests of the rate-limit rule of an action and scope, compiled from app.rate_limit_rules; null for none.';
    comment on function app_logic.rate_limit_window(text, text) is
    'window_seconds of the rate-limit rule of an action and scope, compiled from app.rate_limit_rules; null for none.';
end
$$;
comment on function app_logic.compile_rate_limit_rules() is
'Compile app.rate_limit_rules into app_logic.rate_limit_max and rate_limit_window (the trigger runs it on every change).';

create trigger rate_limit_rules_compile
after insert or update or delete or truncate on app.rate_limit_rules
for each statement execute function app_logic.tg_compile('compile_rate_limit_rules');

select app_logic.compile_rate_limit_rules();

-- The window starts at now - (expires_at - now), in seconds: a new row's expires_at is now + the
-- window (an interval of days would follow the time zone's clock changes).
create function app_logic.rate_limit_window_start(p_expires timestamptz, p_now timestamptz) returns timestamptz
language sql immutable
as $$
    select p_now - make_interval(secs => extract(epoch from p_expires - p_now))
$$;
comment on function app_logic.rate_limit_window_start(timestamptz, timestamptz) is
'Where the window of a counter written at p_now with expiry p_expires starts (now + window = p_expires).';

-- What the upsert's conflict clause (a returning client) asks, each one call of the two below
-- given the row and the new row's expires_at, not an expression: the conflict clause's SET and
-- WHERE are set up for every execution of the upsert, a new client's too, and their expression
-- trees cost more to set up than these calls (callgrind: 14k instructions a submission).
-- PL/pgSQL, not SQL: a SQL function with a sub-select is never inlined, so the upsert that calls
-- it would parse and plan it again on every repeat client's request; PL/pgSQL keeps the plan.
--
-- Whether a log has room for p_cost more hits under the rule of its action and scope.
create function app_logic.rate_limit_admits(
    p_hits timestamptz[], p_expires timestamptz, p_now timestamptz, p_cost integer, p_action text, p_scope text
) returns boolean
language plpgsql stable
as $$
begin
    return (
        select count(*)::integer from unnest(p_hits) as h
        where h > app_logic.rate_limit_window_start(p_expires, p_now)
    ) + p_cost <= app_logic.rate_limit_max(p_action, p_scope)::integer;
end
$$;
comment on function app_logic.rate_limit_admits(timestamptz[], timestamptz, timestamptz, integer, text, text) is
'Whether a counter''s log has room for p_cost more requests now (the upsert''s conflict condition).';

-- The admitted hits of a log still inside the window, oldest first, with p_cost more at p_now:
-- what a counter holds after admitting a request.
create function app_logic.hits_after_admitting(p_hits timestamptz[], p_expires timestamptz, p_now timestamptz, p_cost integer)
returns timestamptz[]
language plpgsql immutable
as $$
begin
    return array(
        select h from unnest(p_hits || array_fill(p_now, array[p_cost])) as h
        where h > app_logic.rate_limit_window_start(p_expires, p_now)
        order by h
    );
end
$$;
comment on function app_logic.hits_after_admitting(timestamptz[], timestamptz, timestamptz, integer) is
'A counter''s log after admitting p_cost requests at p_now: its hits inside the window and the new ones, oldest first.';

-- The rules of an action that apply to a request, each with the key of its counter: per IP
-- always, per email when there is one. One SQL SELECT, so the queries that read it inline it
-- into their plans (PL/pgSQL keeps them); its arguments must hold no sub-select for that, so it
-- reads the pepper itself, once per query.
create function app_logic.rate_limit_rules_for(p_action text, p_network text, p_email text)
returns table (rule app.rate_limit_rules, subject bytea)
language sql stable
as $$
    select r, app_logic.rate_limit_subject(r.action, r.scope, case when r.scope = 'ip' then p_network else p_email end, k.value)
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
-- start and end, and the PL/pgSQL statements around them, were most of the limiter's cost.
-- The admitted path runs that statement and four expressions. The statement reads no rule: the
-- limits are compiled constants (above), the rows to write a VALUES list of the IP and the
-- email, the pepper a sub-select (not a query of its own); it answers the scopes that took a
-- slot, and the rules that apply are counted from the constants (what the refused path needs is
-- read there again). The key is one bytea (db/schema/585). Its plan is the insert over one scan
-- of the VALUES list: a sort (for the lock order) and a join (for the pepper) cost a submission
-- 24k instructions (callgrind), the conflict clause's expressions 14k more
-- (tests/test_rate_limit_plan.py holds the plan to that).
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
    v_network text := coalesce(app_logic.client_network_text(), 'unknown');
    v_taken text[];
    v_rule app.rate_limit_rules;
    v_rules app.rate_limit_rules[];
    v_subjects bytea[];
    v_live timestamptz[];
    v_max_wait integer;
begin
    -- Not 1 to 254 characters: not an address (validation will say so); the IP rule still
    -- counts. The characters are counted only past 254 bytes (never fewer than characters):
    -- char_length walks the text, twice under BETWEEN (callgrind: 2.3k instructions a call).
    if v_email = '' or (octet_length(v_email) > 254 and char_length(v_email) > 254) then
        v_email := null;
    end if;
    -- The rows in the order of the VALUES list, IP first: one scan of it, nothing that could
    -- reorder it (no join, no sort), so the upsert locks them in one order and two requests
    -- cannot deadlock. A rule whose max_requests is below p_cost takes no slot (it refuses,
    -- counted below). The pepper is a sub-select, evaluated once: without one the key is null
    -- and the counter's insert fails (fail closed).
    with taken as (
        insert into app.rate_limit_counters as c (subject, action, scope, hits, expires_at)
        select
            app_logic.rate_limit_subject(
                p_action, r.scope, r.value, (select k.value from app.settings as k where k.key = 'hash_pepper')
            ),
            p_action,
            r.scope,
            array_fill(v_now, array[p_cost]),
            v_now + make_interval(secs => app_logic.rate_limit_window(p_action, r.scope)::integer)
        from (values ('ip', v_network), ('email', v_email)) as r (scope, value)
        where r.value is not null and p_cost <= app_logic.rate_limit_max(p_action, r.scope)::integer
        on conflict (subject) do update
        set
            hits = app_logic.hits_after_admitting(c.hits, excluded.expires_at, v_now, p_cost),
            expires_at = greatest(c.expires_at, excluded.expires_at)
        where app_logic.rate_limit_admits(c.hits, excluded.expires_at, v_now, p_cost, c.action, c.scope)
        returning c.scope
    )

    -- An ARRAY sub-select, not array_agg: an aggregate's node costs more to set up in every
    -- transaction (callgrind: 8.6k instructions a call), and the array is never null ('{}').
    select array(select t.scope from taken as t) into v_taken;
    -- Every row of the VALUES list took a slot (the IP's, and the email's when there is one):
    -- admitted, whatever the rules (a row without a rule takes none). Nearly every admitted
    -- request ends here, which asks no compiled rule (the condition below: callgrind, 7k
    -- instructions a call more to set up and run).
    if cardinality(v_taken) = 1 + (v_email is not null)::integer then
        return null;
    end if;
    -- Otherwise admitted when no rule that applies refused: the action's IP rule, and its email
    -- rule when there is an email (an action without a rule counts nothing).
    if cardinality(v_taken) = (
        (app_logic.rate_limit_max(p_action, 'ip') is not null)::integer
        + (v_email is not null and app_logic.rate_limit_max(p_action, 'email') is not null)::integer
    ) then
        return null;
    end if;

    -- Refused by at least one rule: when would p_cost slots be free under each? Give back what
    -- the others took first. Every row is locked, by the upsert or here, so the answer holds
    -- until this transaction ends.
    select array_agg(u.rule order by (u.rule).scope desc), array_agg(u.subject order by (u.rule).scope desc)
    into v_rules, v_subjects
    from app_logic.rate_limit_rules_for(p_action, v_network, v_email) as u;
    for i in 1..cardinality(v_rules) loop
        v_rule := v_rules[i];
        if v_rule.scope = any(v_taken) then
            update app.rate_limit_counters as c
            set
                hits = app_logic.hits_without(c.hits, v_now, p_cost),
                expires_at = coalesce(
                    (app_logic.hits_without(c.hits, v_now, p_cost))[cardinality(c.hits) - p_cost]
                    + make_interval(secs => v_rule.window_seconds),
                    v_now
                )
            where c.subject = v_subjects[i];
            continue;
        end if;
        select array(
            select h from unnest(c.hits) as h where h > v_now - make_interval(secs => v_rule.window_seconds) order by h
        ) into v_live
        from app.rate_limit_counters as c
        where c.subject = v_subjects[i]
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
