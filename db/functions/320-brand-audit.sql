-- The brand audit log (issue 14): one generic trigger records every change of the tables it
-- is attached to. Attaching a table is one line in its db/policies file:
--     select app_logic.attach_brand_audit('app.heatmaps');
-- (policies run after every functions file, so the attach function exists by then).

-- Values never recorded: the column is named as changed, its value is this marker.
create function app_logic.secret_marker() returns jsonb
language sql immutable
as $$
    select '"[secret]"'::jsonb
$$;

create function app_logic.erasure_marker() returns jsonb
language sql immutable
as $$
    select '"[erased]"'::jsonb
$$;
comment on function app_logic.erasure_marker() is 'What erasure puts in place of a person''s values in the brand audit log.';

-- TG_ARGV: the primary key columns, then '--', then the secret columns.
create function app_logic.tg_brand_audit__record() returns trigger
language plpgsql security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_old jsonb;
    v_new jsonb;
    v_row jsonb;
    v_key jsonb := '{}';
    v_secret text[] := '{}';
    v_changes jsonb := '{}';
    v_column text;
    v_in_secret boolean := false;
    v_role text := nullif(current_setting('role', true), 'none');
begin
    v_old := case when tg_op <> 'INSERT' then to_jsonb(old) end;
    v_new := case when tg_op <> 'DELETE' then to_jsonb(new) end;
    v_row := coalesce(v_new, v_old);
    foreach v_column in array tg_argv loop
        if v_column = '--' then
            v_in_secret := true;
        elsif v_in_secret then
            v_secret := v_secret || v_column;
        else
            v_key := v_key || jsonb_build_object(v_column, v_row -> v_column);
        end if;
    end loop;
    -- app.settings: the pepper is a secret whatever column holds it.
    if tg_table_name = 'settings' and v_row ->> 'key' = 'hash_pepper' then
        v_secret := v_secret || 'value'::text;
    end if;
    for v_column in select k from jsonb_object_keys(v_row) as k loop
        -- An unchanged column, or a null one inserted or deleted, says nothing.
        continue when v_old -> v_column is not distinct from v_new -> v_column;
        continue when tg_op <> 'UPDATE' and jsonb_typeof(v_row -> v_column) = 'null';
        v_changes := v_changes || jsonb_build_object(v_column,
            case when v_old is not null then jsonb_build_object('old', case
                when v_column = any(v_secret) then app_logic.secret_marker() else v_old -> v_column end) else '{}' end
            || case when v_new is not null then jsonb_build_object('new', case
                when v_column = any(v_secret) then app_logic.secret_marker() else v_new -> v_column end) else '{}' end
        );
    end loop;
    if tg_op = 'UPDATE' and v_changes = '{}' then
        return null;
    end if;
    insert into app.brand_audit (
        table_name, row_key, operation, changes, actor_role, actor_api_key_id, actor_job, request_path,
        lead_id, session_id, recorded_at
    ) values (
        tg_table_name, v_key, tg_op, v_changes,
        coalesce(v_role, session_user::text),
        app_logic.current_api_key_id(),
        case when current_setting('application_name', true) = 'pg_cron' then 'pg_cron' end,
        nullif(current_setting('request.path', true), ''),
        case when tg_table_name = 'leads' then (v_row ->> 'id')::uuid else (v_row ->> 'lead_id')::uuid end,
        v_row ->> 'session_id',
        app_logic.now()
    );
    return null;
end
$$;

-- One line per audited table. The key columns are the table's primary key.
create function app_logic.attach_brand_audit(p_table regclass, p_secret_columns text[] default '{}') returns void
language plpgsql volatile
as $$
declare
    v_key text[];
begin
    select array_agg(a.attname::text order by k.ord) into v_key
    from pg_index as i
    cross join lateral unnest(i.indkey) with ordinality as k (attnum, ord)
    inner join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
    where i.indrelid = p_table and i.indisprimary;
    if v_key is null then
        raise exception 'table % has no primary key to name its rows in the brand audit log', p_table
            using errcode = 'CHX04';
    end if;
    -- A retention rule's deletions are logged by the rule (app.retention_runs: kind, cutoff,
    -- rows removed), not row by row here: a copy of each removed row would keep, for the audit's
    -- own two years, the very values the rule removes (and cost more than the delete itself).
    -- The trigger's WHEN skips them without calling the function: that call alone was two thirds
    -- of a retention batch's CPU (3.7 against 1.2 us a row). A rule's subtransaction only deletes.
    execute format(
        'create trigger brand_audit after insert or update or delete on %s for each row '
        'when (current_setting(''app.retention_purge'', true) is distinct from ''on'') '
        'execute function app_logic.tg_brand_audit__record(%s)',
        p_table,
        array_to_string(array(select quote_literal(c) from unnest(v_key || '--'::text || p_secret_columns) as c), ', ')
    );
end
$$;
comment on function app_logic.attach_brand_audit(regclass, text[]) is
'Record every INSERT, UPDATE and DELETE of a table in app.brand_audit (secret columns as changed, never by value).';

create function app_logic.tg_brand_audit__refuse_change() returns trigger
language plpgsql
as $$
begin
    -- Erasure sets this for its own transaction; a retention rule (app_logic.apply_retention)
    -- sets app.retention_purge for its own subtransaction, and only deletes.
    if current_setting('app.brand_audit_maintenance', true) = 'on' then
        return case when tg_op = 'DELETE' then old else new end;
    end if;
    if tg_op = 'DELETE' and current_setting('app.retention_purge', true) = 'on' then
        return old;
    end if;
    raise exception 'the brand audit log is append-only: % is refused', tg_op
        using errcode = 'CHA01', hint = 'Erasure replaces personal values with a marker; retention removes old entries.';
end
$$;

select app_logic.declare_append_only('app.brand_audit', 'app_logic.tg_brand_audit__refuse_change');

-- Erasure: the person's entries stay (what happened, when, by whom) but their values go.
create function app_logic.redact_brand_audit(p_lead_id uuid, p_sessions text[]) returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_count bigint;
begin
    perform set_config('app.brand_audit_maintenance', 'on', true);
    update app.brand_audit as b
    set
        changes = (
            select coalesce(jsonb_object_agg(c.key, (
                select jsonb_object_agg(v.key, app_logic.erasure_marker()) from jsonb_each(c.value) as v
            )), '{}')
            from jsonb_each(b.changes) as c
        ),
        row_key = (select jsonb_object_agg(k.key, app_logic.erasure_marker()) from jsonb_each(b.row_key) as k)
            || case when b.row_key ? 'id' and b.table_name <> 'leads' then jsonb_build_object('id', b.row_key -> 'id') else '{}' end,
        session_id = null,
        lead_id = null
    where (b.lead_id = p_lead_id or b.session_id = any(p_sessions));
    get diagnostics v_count = row_count;
    perform set_config('app.brand_audit_maintenance', 'off', true);
    return v_count;
end
$$;
comment on function app_logic.redact_brand_audit(uuid, text[]) is
'Replace every value of a person''s brand audit entries with the erasure marker; the entries themselves stay.';

-- Retention removes old entries: the append-only trigger lets a retention rule's DELETE through.
select app_logic.declare_purge(
    'brand_audit', 'app.brand_audit', 'recorded_at',
    'Retention: remove brand audit entries recorded before the cutoff (at most p_limit, oldest first).'
);

select app_logic.declare_purge(
    'outbox', 'app.outbox', 'sent_at', 'Retention: remove outbox messages sent or given up before the cutoff.',
    p_else_column => 'failed_at'
);

create function app_logic.purge_consent_tokens(p_cutoff timestamptz, p_limit integer default null) returns bigint
language sql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
    with gone as (
        delete from app.consent_tokens as t
        where t.token_hash in (
            select d.token_hash from app.consent_tokens as d
            where d.purpose = 'confirm' and coalesce(d.used_at, d.expires_at) < p_cutoff
            limit p_limit
        )
        returning 1
    )

    select count(*) from gone
$$;
comment on function app_logic.purge_consent_tokens(timestamptz, integer) is
'Retention: remove confirmation links used or expired before the cutoff.';

-- GET /api/brand-audit (admin key): the log with the API's field names; PostgREST filters.
create view api.brand_audit with (security_invoker = true) as
select
    b.id,
    b.table_name as "tableName",
    b.row_key as "rowKey",
    b.operation,
    b.changes,
    b.actor_role as "actorRole",
    b.actor_api_key_id as "actorApiKeyId",
    b.actor_job as "actorJob",
    b.request_path as "requestPath",
    b.recorded_at as "recordedAt"
from app.brand_audit as b;
comment on view api.brand_audit is
'GET /api/brand-audit (admin key): every change of brand data, oldest first by id; filter with PostgREST, '
'e.g. tableName=eq.accessibility_preferences, operation=eq.UPDATE, recordedAt=gte.2026-01-01, actorApiKeyId=eq.3.';
comment on column api.brand_audit.id is 'Entry id (ascending in recording order).';
comment on column api.brand_audit."tableName" is
'The table changed (accessibility_preferences, brand_engagement, settings, ...).';
comment on column api.brand_audit."rowKey" is 'The primary key of the row changed, {column: value}.';
comment on column api.brand_audit.operation is 'INSERT, UPDATE or DELETE.';
comment on column api.brand_audit.changes is
'The changed columns, {column: {old, new}}; secrets as "[secret]", erased personal values as '
'"[erased]".';
comment on column api.brand_audit."actorRole" is
'The request''s role (anon, reader, admin) or the database role that changed it.';
comment on column api.brand_audit."actorApiKeyId" is 'The API key of the request, or null.';
comment on column api.brand_audit."actorJob" is 'pg_cron when a scheduled job changed it, else null.';
comment on column api.brand_audit."requestPath" is 'The PostgREST path of the request that changed it, or null.';
comment on column api.brand_audit."recordedAt" is 'When it changed.';
