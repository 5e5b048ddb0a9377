-- API keys and the pre-request function: how a request gets the reader or admin role.
--
-- PostgREST starts every request as anon (no JWT is used) and then calls
-- app_logic.pre_request(). A valid X-API-Key switches the role for the rest of the request.
-- SET ROLE is allowed because the session user (authenticator) is a member of reader and
-- admin; it is not allowed inside SECURITY DEFINER, so only the key lookup is one.

create function app_logic.hash_api_key(p_key text) returns bytea
language sql immutable
as $$
    select sha256(convert_to(p_key, 'UTF8'))
$$;
comment on function app_logic.hash_api_key(text) is 'The stored form of an API key: its SHA-256.';

-- PL/pgSQL: a SECURITY DEFINER SQL function is never inlined, so its query was parsed and
-- planned again for every request with a key; PL/pgSQL keeps the plan.
create function app_logic.api_key_lookup(p_key text, out role text, out key_id bigint)
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
begin
    select k.role, k.id into role, key_id
    from app.api_keys as k
    where k.key_hash = app_logic.hash_api_key(p_key) and k.revoked_at is null;
end
$$;
comment on function app_logic.api_key_lookup(text) is 'The role and id of an active key; nulls when unknown or revoked.';

-- Whether a role may use the api object a PostgREST path names (/rpc/<function> or /<view>).
-- A path naming no api object is left to PostgREST (404).
create function app_logic.role_may_use(p_role text, p_method text, p_path text) returns boolean
language plpgsql stable
as $$
declare
    v_name text;
    v_view oid;
begin
    if p_path like '/rpc/%' then
        v_name := substr(p_path, 6);
        return not exists (
            select from pg_catalog.pg_proc as p
            where p.pronamespace = 'api'::regnamespace and p.proname = v_name
        ) or exists (
            select from pg_catalog.pg_proc as p
            where
                p.pronamespace = 'api'::regnamespace and p.proname = v_name
                and has_function_privilege(p_role, p.oid, 'execute')
        );
    end if;
    v_name := substr(p_path, 2);
    select c.oid into v_view from pg_catalog.pg_class as c
    where c.relnamespace = 'api'::regnamespace and c.relname = v_name;
    if v_view is null then
        return true;
    end if;
    return has_table_privilege(
        p_role, v_view,
        case upper(p_method) when 'POST' then 'insert' when 'PATCH' then 'update' when 'DELETE' then 'delete' else 'select' end
    );
end
$$;
comment on function app_logic.role_may_use(text, text, text) is
'Whether the role holds the privilege a request (method, PostgREST path) needs on its api object.';

-- A role's own statement_timeout (ALTER ROLE ... SET, db/policies/010-api-keys.sql), compiled
-- into one JSON constant, as app_logic.protected_route_key is (005-routes): the
-- pre-request inlines it and reads no catalog (the pg_db_role_setting scan was a query of its
-- own in every transaction). db/policies/010-api-keys.sql compiles it again right after its
-- ALTER ROLE statements, in every build; CREATE OR REPLACE invalidates the cached plans that
-- inlined it, so PostgREST's open connections follow at their next request. STABLE, not
-- IMMUTABLE: its answer changes with a build, which an immutable function promises never to do
-- (and PostgreSQL may fold an immutable call with constant arguments to its value at planning).
-- A setting changed by hand (ALTER ROLE outside the build) applies from the next build.
create function app_logic.compile_role_timeouts() returns void
language plpgsql volatile
as $$
declare
    v_timeouts jsonb;
begin
    select coalesce(jsonb_object_agg(r.rolname, substr(c.setting, length('statement_timeout=') + 1)), '{}')
    into v_timeouts
    from pg_catalog.pg_db_role_setting as s
    cross join unnest(s.setconfig) as c (setting)
    join pg_catalog.pg_roles as r on r.oid = s.setrole
    where s.setdatabase = 0 and c.setting like 'statement\_timeout=%';
    perform app_logic.compile_json_lookup('role_statement_timeout(p_role text)', 'p_role', v_timeouts);
    comment on function app_logic.role_statement_timeout(text) is
    'The statement_timeout a role is configured with (ALTER ROLE ... SET, as of the last build); null when none.';
end
$$;
comment on function app_logic.compile_role_timeouts() is
'Compile the roles'' statement_timeout settings into app_logic.role_statement_timeout (db/policies runs it).';

-- The first version, from the settings as they are: the pre-request's definition needs it.
select app_logic.compile_role_timeouts();

-- Apply a role's statement_timeout to the rest of the transaction (0: none); inlined.
create function app_logic.apply_statement_timeout(p_role text) returns text
language sql volatile
as $$
    select set_config('statement_timeout', coalesce(app_logic.role_statement_timeout(p_role), '0'), true)
$$;
comment on function app_logic.apply_statement_timeout(text) is
'Set statement_timeout for the rest of the transaction to the role''s configured one (0 when none).';

-- 401 CHK01 for a request whose key is missing, wrong or not allowed to be missing: PostgREST's
-- raw error (SQLSTATE PGRST), so the status and WWW-Authenticate come from the detail.
create function app_logic.refuse_key(p_message text, p_hint text) returns void
language plpgsql volatile
as $$
begin
    raise sqlstate 'PGRST' using
        message = app_logic.error_body('CHK01', p_message, null, p_hint)::text,
        detail = '{"status": 401, "headers": {"WWW-Authenticate": "X-API-Key"}}';
end
$$;
comment on function app_logic.refuse_key(text, text) is
'Raise 401 CHK01 (WWW-Authenticate: X-API-Key) with this message and hint; the pre-request''s refusal.';

-- The pre-request of a request with a key: the role of a valid key, or 401/403.
create function app_logic.pre_request_with_key() returns void
language plpgsql volatile
as $$
declare
    v_key text := app_logic.request_header('x-api-key');
    v_role text;
    v_key_id bigint;
begin
    -- Keys are 52 characters; a longer header is not worth hashing.
    if char_length(v_key) <= 200 then
        select l.role, l.key_id into v_role, v_key_id from app_logic.api_key_lookup(v_key) as l;
    end if;
    if v_role is null then
        -- A wrong or revoked key is refused everywhere, so a client learns at once it is bad.
        perform app_logic.refuse_key(
            'The X-API-Key header holds no valid API key.',
            'Ask an operator for a key (invoke api.key-create) or leave the header out.'
        );
    end if;
    -- PostgREST answers a privilege error (42501) with 401 whenever the request carried no JWT,
    -- so a valid key of a role without the privilege would look like a bad key: 403 here.
    if not app_logic.role_may_use(
        v_role, current_setting('request.method', true), current_setting('request.path', true)
    ) then
        raise sqlstate 'PGRST' using
            message = app_logic.error_body(
                'CHK02', format('An API key of role %s may not use this endpoint.', v_role), null,
                'Use a key of a role that may (invoke api.keys lists the keys and their roles).'
            )::text,
            detail = '{"status": 403, "headers": {}}';
    end if;
    perform set_config('role', v_role, true);
    perform set_config('app.api_key_id', v_key_id::text, true);
    -- The role's statement_timeout bounds the request's query (the next statement).
    perform app_logic.apply_statement_timeout(v_role);
end
$$;
comment on function app_logic.pre_request_with_key() is
'The pre-request of a request carrying X-API-Key: switches to the key''s role and applies its statement_timeout; '
'401 for a bad key, 403 for a role that may not use the endpoint.';

-- PL/pgSQL: PL/pgSQL evaluates an expression without a query (its "simple expression" path)
-- from a plan it keeps for the session, whether PostgREST prepares its call or not (as an
-- inlined SQL function it was parsed and planned again for every unprepared call, as through
-- PgBouncer: callgrind 1.28M instructions a request against 0.36M). No statement, no table read
-- (the route keys and the timeouts are compiled constants, inlined from 005-routes and above).
--
-- Two paths (issue 13). PL/pgSQL sets up the nodes of every expression it reaches again in each
-- transaction, a branch of a CASE that does not run too, but not the statements of an IF branch
-- it does not enter. Nearly every request is public: no key, anon, a route without a key. It
-- is told by one condition and answered by one expression (the headers kept, anon's timeout);
-- the key lookup and the refusals are in the other branch, set up only for a request that
-- needs them (callgrind, a framed request: 183k instructions for the pre-request, 153k in session 8).
-- The condition only routes: the other branch decides everything itself, as one expression
-- did before (an empty X-API-Key is no key there, as it was), so both answer alike
-- (db/tests/010-pre-request-paths.sql compares them). So it asks of the route only whether
-- any method of its path needs a key (protected_route_target, 005-routes): a protected path
-- under a public method takes the full branch, which answers it as public (callgrind, the
-- pre-request of a framed submission: 150k instructions, 142k by the path alone).
--
-- No JSON parse on the common path (issue 13, session 11). The routing condition also asks the
-- text of request.headers whether it holds "x-api-key" (followed by anything: split_part, since
-- strpos counts the characters before a match, 4k more for a request with a key) or a backslash
-- at all: a key's name is always written so, and a false alarm only routes to the full branch,
-- which decides from the parsed JSON. So the public branch sees only headers without an escape, whose values
-- app_logic.header_text_value (000-foundation) reads from the text: with a canonical dotted
-- quad as X-Real-IP it keeps that and the user agent; otherwise it parses the JSON as before. The JSON parse of the
-- headers nginx forwards from a browser costs 26k instructions (what PostgREST writes for Chrome's
-- form post: tests/test_http_headers.py); a browser's framed submission 2,037.4k -> 2,014.3k
-- (-23k), the bench's 2,002.5k -> 1,988.0k; a request with a key pays 10k more for the text
-- checks (the frame around select 1: 724.6k -> 734.7k; callgrind, fresh builds of main and this).
create function app_logic.pre_request() returns void
language plpgsql volatile
as $$
declare
    -- The request's one header read: what the rest of the request reads of it is kept (000-foundation),
    -- read from the text on the common path (header_text_value).
    v_text text := current_setting('request.headers', true);
    v_address text;
    v_headers jsonb;
    v_done text;
begin
    if split_part(v_text, '"x-api-key"', 2) <> '' or strpos(v_text, '\') > 0 or current_user <> 'anon'
        or app_logic.protected_route_target(current_setting('request.path', true)) is not null then
        v_headers := app_logic.request_headers();
        -- A variable: keep_request_headers uses its quad more than once (an expression in its
        -- place would run the regular expression each time).
        v_address := app_logic.dotted_quad(v_headers ->> 'x-real-ip');
        v_done := app_logic.keep_request_headers(v_headers, v_address) || (case
            when nullif(v_headers ->> 'x-api-key', '') is not null then app_logic.pre_request_with_key()
            -- Roles come only from API keys: a request that reached us in another role (a JWT's)
            -- is refused, whatever the token said.
            when current_user <> 'anon' then app_logic.refuse_key(
                'Requests are authorised by an API key in X-API-Key only.',
                'Send the key in X-API-Key and no Authorization header.'
            )
            -- A protected endpoint without a key: 401 naming no database object (PostgREST would
            -- answer "permission denied for view leads").
            else case app_logic.protected_route_key(current_setting('request.method', true), current_setting('request.path', true))
                when 'admin' then app_logic.refuse_key('This endpoint needs an API key (X-API-Key).', 'Send an API key of role admin.')
                when 'reader' then app_logic.refuse_key(
                    'This endpoint needs an API key (X-API-Key).', 'Send an API key of role reader or admin.'
                )
                -- Stays anon (public endpoints work), under anon's statement_timeout.
                else app_logic.apply_statement_timeout('anon')::void
            end
        end)::text;
        return;
    end if;
    -- A public request: stays anon, under anon's statement_timeout. Its headers hold no
    -- backslash, so they are read from the text when X-Real-IP is a canonical dotted quad there;
    -- else the JSON is parsed and the address checked in full, in statements set up only when
    -- they run.
    v_address := app_logic.header_text_value(v_text, 'x-real-ip');
    if app_logic.dotted_quad(v_address) is null then
        v_headers := app_logic.request_headers();
        v_address := app_logic.dotted_quad(v_headers ->> 'x-real-ip');
        v_done := app_logic.keep_request_headers(v_headers, v_address) || app_logic.apply_statement_timeout('anon');
        return;
    end if;
    v_done := app_logic.keep_client_settings(v_address, app_logic.header_text_value(v_text, 'user-agent'))
        || app_logic.apply_statement_timeout('anon');
end
$$;
comment on function app_logic.pre_request() is
'PostgREST db-pre-request: switches to the role of a valid X-API-Key and applies its statement_timeout; '
'401 for a bad key, for no key on a protected endpoint and for a role not given by a key, '
'403 for a valid key whose role may not use the endpoint.';

-- The key that authorised this request, for attributing CRM entries.
create function app_logic.current_api_key_id() returns bigint
language sql stable
as $$
    select nullif(current_setting('app.api_key_id', true), '')::bigint
$$;

-- Key management for the operator CLI (invoke api.*). Not exposed over HTTP.
create function app_logic.create_api_key(p_name text, p_role text) returns text
language plpgsql volatile
as $$
declare
    v_key text := 'chk_' || encode(extensions.gen_random_bytes(24), 'hex');
begin
    if p_role not in ('reader', 'admin') then
        raise exception 'role must be reader or admin' using errcode = '22023';
    end if;
    insert into app.api_keys (name, role, key_hash, key_prefix)
    values (p_name, p_role, app_logic.hash_api_key(v_key), left(v_key, 10));
    return v_key;
end
$$;
comment on function app_logic.create_api_key(text, text) is 'Create a key and return it; only its hash is kept.';

create function app_logic.revoke_api_key(p_name text) returns integer
language sql volatile
as $$
    with revoked as (
        update app.api_keys set revoked_at = now()
        where name = p_name and revoked_at is null
        returning id
    )
    select count(*)::integer from revoked
$$;
comment on function app_logic.revoke_api_key(text) is 'Revoke the active key of that name; effective on the next request.';

-- GET /api/api-key: which key a client holds, so a page can check a key once and show only
-- the controls its role may use (the dashboard, issue 17). The key itself is never returned.
create function api.current_api_key() returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select jsonb_build_object('name', k.name, 'role', k.role, 'keyPrefix', k.key_prefix)
    from app.api_keys as k
    where k.id = app_logic.current_api_key_id() and k.revoked_at is null
$$;
comment on function api.current_api_key() is
'GET /api/api-key (reader or admin key): the name, role and first 10 characters of the key sent; '
'no key: 401, a wrong or revoked key: 401 CHK01.';

create function app_logic.current_api_key_response() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object", "description": "The key sent with the request.",
        "required": ["name", "role", "keyPrefix"], "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "description": "The key''s name (invoke api.keys lists them)."},
            "role": {"type": "string", "enum": ["reader", "admin"], "description": "What the key may do."},
            "keyPrefix": {"type": "string", "description": "The first 10 characters of the key."}
        }
    }'::jsonb
$$;
comment on function app_logic.current_api_key_response() is 'OpenAPI schema of what GET /api/api-key answers.';
