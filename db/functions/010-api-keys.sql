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

create function app_logic.api_key_lookup(p_key text, out role text, out key_id bigint)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select k.role, k.id
    from app.api_keys as k
    where k.key_hash = app_logic.hash_api_key(p_key) and k.revoked_at is null
$$;
comment on function app_logic.api_key_lookup(text) is 'The role and id of an active key; nulls when unknown or revoked.';

create function app_logic.pre_request() returns void
language plpgsql volatile
as $$
declare
    v_key text := app_logic.request_header('x-api-key');
    v_role text;
    v_key_id bigint;
begin
    if v_key is null then
        return; -- stays anon: public endpoints work, protected ones answer 401
    end if;
    -- Keys are 52 characters; a longer header is not worth hashing.
    if char_length(v_key) <= 200 then
        select l.role, l.key_id into v_role, v_key_id from app_logic.api_key_lookup(v_key) as l;
    end if;
    if v_role is null then
        -- A wrong or revoked key is refused everywhere, so a client learns at once it is bad.
        raise sqlstate 'PGRST' using
            message = app_logic.error_body(
                'CHK01', 'The X-API-Key header holds no valid API key.', null,
                'Ask an operator for a key (invoke api.key-create) or leave the header out.'
            )::text,
            detail = '{"status": 401, "headers": {"WWW-Authenticate": "X-API-Key"}}';
    end if;
    perform set_config('role', v_role, true);
    perform set_config('app.api_key_id', v_key_id::text, true);
end
$$;
comment on function app_logic.pre_request() is
'PostgREST db-pre-request: switches to the role of a valid X-API-Key; 401 for a bad one.';

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
        raise exception 'role must be reader or admin, not %', p_role using errcode = '22023';
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
