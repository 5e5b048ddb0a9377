-- Operations (issue 16): the read replica's freshness check, the scheduled consent-chain
-- check, retention of pg_cron's run log, and the product metrics Prometheus scrapes.
--
-- Metrics are queries over data the product already keeps (leads, interactions, rate-limit
-- logs, retention runs, catalogs): no request writes anything for monitoring's sake.

-- -- Read replica ------------------------------------------------------------------------

-- How far behind the primary this server's data is, in seconds; 0 on a primary. A standby
-- that has replayed everything it received while still streaming is current, however old
-- its last transaction (an idle primary sends nothing). Not streaming: the time since the
-- primary was last heard from, so a cut-off standby counts as lagging.
create function app_logic.replica_lag_seconds() returns double precision
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text;
    v_last_message timestamptz;
begin
    if not pg_is_in_recovery() then
        return 0;
    end if;
    select r.status, r.last_msg_receipt_time into v_status, v_last_message from pg_stat_wal_receiver as r;
    if v_status = 'streaming' and pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then
        return 0;
    end if;
    if v_status = 'streaming' then
        return greatest(0, extract(epoch from now() - pg_last_xact_replay_timestamp()));
    end if;
    return coalesce(
        extract(epoch from now() - greatest(v_last_message, pg_last_xact_replay_timestamp())),
        'infinity'::double precision
    );
end
$$;
comment on function app_logic.replica_lag_seconds() is
'Seconds this server lags behind the primary (0 on the primary; infinity when a standby never heard from it).';

create function app_logic.replica_lag_limit() returns double precision
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select coalesce((select s.value from app.settings as s where s.key = 'replica_max_lag_seconds'), '30')::double precision
$$;
comment on function app_logic.replica_lag_limit() is
'app.settings.replica_max_lag_seconds: the lag beyond which the replica''s reads go to the primary.';

-- The replica's PostgREST runs this as its pre-request function: a replica further behind
-- than app.settings.replica_max_lag_seconds answers 503 CHU02, which nginx treats as "try
-- the next server" and retries on the primary; the client never sees it.
create function app_logic.pre_request_replica() returns void
language plpgsql volatile
as $$
declare
    v_lag double precision := app_logic.replica_lag_seconds();
    v_limit double precision := app_logic.replica_lag_limit();
begin
    if v_lag > v_limit then
        raise sqlstate 'PGRST' using
            message = app_logic.error_body(
                'CHU02', 'The read replica is too far behind the primary.',
                format('It lags %s seconds; the limit is %s.', round(least(v_lag, 1e9)::numeric, 1), v_limit),
                'Retry: reads go to the primary meanwhile.'
            )::text,
            detail = '{"status": 503, "headers": {"Retry-After": "1"}}';
    end if;
    perform app_logic.pre_request();
end
$$;
comment on function app_logic.pre_request_replica() is
'Pre-request function of the replica''s PostgREST: 503 CHU02 when the replica lags beyond the limit, else pre_request().';

-- -- Consent-chain check (scheduled) ----------------------------------------------------

create function app_logic.check_consent_chains() returns app.consent_chain_checks
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_broken bigint;
    v_first bigint;
    v_row app.consent_chain_checks;
begin
    select count(*), min(b.id) into v_broken, v_first from app_logic.verify_consent_chain() as b;
    insert into app.consent_chain_checks (checked_at, rows_checked, broken_rows, first_broken_id, duration)
    values (
        app_logic.now(), (select count(*) from app.consent_audit), v_broken, v_first, clock_timestamp() - v_started
    )
    returning * into v_row;
    return v_row;
end
$$;
comment on function app_logic.check_consent_chains() is
'Verify every consent-audit chain and log the result in app.consent_chain_checks (the hourly job).';

-- -- Retention of the operations logs ---------------------------------------------------

-- Only this project's jobs: on a shared server other projects' history is theirs.
create function app_logic.purge_cron_job_run_details(p_cutoff timestamptz, p_limit integer default null)
returns bigint
language plpgsql volatile
as $$
declare
    v_count bigint;
begin
    if to_regclass('cron.job_run_details') is null then
        return 0; -- no pg_cron in this database
    end if;
    -- The schema is a parameter so that the statement is checked only where pg_cron exists.
    execute format($sql$
        delete from %1$I.job_run_details as d
        where d.runid in (
            select r.runid
            from %1$I.job_run_details as r
            join %1$I.job as j on j.jobid = r.jobid
            where j.jobname like 'chorus_website:%%' and r.end_time < $1
            order by r.end_time
            limit $2
        )
    $sql$, 'cron') using p_cutoff, p_limit;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function app_logic.purge_cron_job_run_details(timestamptz, integer) is
'Delete pg_cron run-log rows of the project''s jobs that ended before the cutoff.';

select app_logic.declare_purge(
    'consent_chain_checks', 'app.consent_chain_checks', 'checked_at', 'Delete consent-chain check results older than the cutoff.'
);

-- -- Product metrics (prometheus-postgres-exporter, deploy/monitoring/queries.yaml) ----

-- Lead submissions over the last minute. Accepted: new leads and resubmissions. Refused
-- after the rate limiter admitted them (CHV01, bad input): admitted requests (the per-IP
-- sliding logs keep the time of each) minus accepted ones. Refused by the limiter (CHR01):
-- clients whose log is full, each of whose requests is answered 429 until a slot frees.
create function app_logic.metrics_submissions()
returns table (outcome text, code text, per_minute double precision)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    with accepted as (
        select
            (select count(*) from app.leads as l where l.created_at > app_logic.now() - interval '1 minute')
            + (
                select count(*) from app.lead_interactions as i
                where i.kind = 'resubmission' and i.created_at > app_logic.now() - interval '1 minute'
            ) as n
    ),

    admitted as (
        select count(*) as n
        from app.rate_limit_counters as c
        cross join lateral unnest(c.hits) as h
        where c.action = 'leads' and c.scope = 'ip' and h > app_logic.now() - interval '1 minute'
    )

    select 'accepted', '', a.n::double precision from accepted as a
    union all
    select 'refused', 'CHV01', greatest(0, d.n - a.n)::double precision from admitted as d, accepted as a
$$;
comment on function app_logic.metrics_submissions() is
'Lead submissions in the last minute: accepted, and refused for bad input (CHV01).';

-- Per rule: clients at their limit now (every request of theirs gets 429 CHR01) and the
-- admitted requests still inside the window.
create function app_logic.metrics_rate_limits()
returns table (action text, scope text, clients_limited double precision, admitted_in_window double precision)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        r.action,
        r.scope,
        count(c.subject) filter (
            where (
                select count(*) from unnest(c.hits) as h
                where h > app_logic.now() - make_interval(secs => r.window_seconds)
            ) >= r.max_requests
        )::double precision,
        coalesce(sum((
            select count(*) from unnest(c.hits) as h
            where h > app_logic.now() - make_interval(secs => r.window_seconds)
        )), 0)::double precision
    from app.rate_limit_rules as r
    left join app.rate_limit_counters as c on c.action = r.action and c.scope = r.scope
    group by r.action, r.scope
$$;
comment on function app_logic.metrics_rate_limits() is
'Per rate-limit rule: clients refused with 429 right now, and admitted requests inside the window.';

create function app_logic.metrics_rows()
returns table (relation text, row_count double precision)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select 'leads', count(*)::double precision from app.leads
    union all
    select 'consent_audit', count(*)::double precision from app.consent_audit
$$;
comment on function app_logic.metrics_rows() is 'Row counts of the leads and the consent audit.';

create function app_logic.metrics_consent_chain()
returns table (checked double precision, broken_rows double precision, age_seconds double precision)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        count(c.id)::double precision,
        coalesce(max(c.broken_rows), 0)::double precision,
        coalesce(extract(epoch from app_logic.now() - max(c.checked_at)), 'infinity')::double precision
    from (select * from app.consent_chain_checks order by checked_at desc limit 1) as c
$$;
comment on function app_logic.metrics_consent_chain() is
'The latest consent-chain check: whether there is one, its broken rows, its age in seconds.';

-- Per rule: age of the last complete, error-free run, and rows removed in the last 24 hours.
create function app_logic.metrics_retention()
returns table (kind text, last_complete_age_seconds double precision, rows_removed_24h double precision)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        r.kind,
        coalesce(extract(epoch from app_logic.now() - max(u.started_at) filter (
            where u.complete and u.error is null
        )), 'infinity')::double precision,
        coalesce(sum(u.rows_removed) filter (
            where u.started_at > app_logic.now() - interval '24 hours'
        ), 0)::double precision
    from app.retention_rules as r
    left join app.retention_runs as u on u.kind = r.kind and u.started_at > app_logic.now() - interval '8 days'
    where r.enabled
    group by r.kind
$$;
comment on function app_logic.metrics_retention() is
'Per retention rule: seconds since its last complete run, and rows it removed in the last 24 hours.';

-- Whole months of page-view partitions after the current one (2 means the next two months exist).
create function app_logic.metrics_page_view_partitions()
returns table (months_ahead double precision, partitions double precision)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    with bounds as (
        select app_logic.partition_upper_bound(i.inhrelid::regclass) as upper_bound
        from pg_catalog.pg_inherits as i
        where i.inhparent = 'app.page_views'::regclass
    )

    select
        coalesce(max(
            (extract(year from b.upper_bound) * 12 + extract(month from b.upper_bound))
            - (extract(year from app_logic.now()) * 12 + extract(month from app_logic.now())) - 1
        ), -1)::double precision,
        count(*)::double precision
    from bounds as b
$$;
comment on function app_logic.metrics_page_view_partitions() is
'Whole months of page-view partitions beyond the current month, and the number of partitions.';

create function app_logic.metrics_cron_jobs()
returns table (cron_job text, failures_24h double precision, last_failed double precision)
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
begin
    if to_regclass('cron.job_run_details') is null then
        return;
    end if;
    return query execute format($sql$
        select
            j.jobname::text,
            count(d.runid) filter (where d.status = 'failed' and d.start_time > now() - interval '24 hours')::double precision,
            coalesce((
                select (l.status = 'failed')::integer from %1$I.job_run_details as l
                where l.jobid = j.jobid and l.status in ('succeeded', 'failed')
                order by l.start_time desc limit 1
            ), 0)::double precision
        from %1$I.job as j
        left join %1$I.job_run_details as d on d.jobid = j.jobid and d.start_time > now() - interval '24 hours'
        where j.jobname like 'chorus_website:%%'
        group by j.jobid, j.jobname
    $sql$, 'cron');
end
$$;
comment on function app_logic.metrics_cron_jobs() is
'Per project pg_cron job: failed runs in the last 24 hours, and whether the latest run failed.';

-- On the primary: every standby, its replay lag and the WAL its slot holds back; the limit
-- from app.settings travels along so the alert compares against the stored threshold.
create function app_logic.metrics_replication()
returns table (standby text, lag_seconds double precision, retained_bytes double precision, max_lag_seconds double precision)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        coalesce(r.application_name, s.slot_name)::text,
        coalesce(extract(epoch from r.replay_lag), case when r.pid is null then 'infinity'::double precision else 0 end)::double precision,
        coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::double precision,
        app_logic.replica_lag_limit()
    from pg_catalog.pg_replication_slots as s
    full join pg_catalog.pg_stat_replication as r on r.pid = s.active_pid
    where not pg_is_in_recovery() and (s.slot_type is null or s.slot_type = 'physical')
$$;
comment on function app_logic.metrics_replication() is
'Per standby (slot): replay lag in seconds (infinity when disconnected), WAL held back, and the lag limit.';

-- Connections in use per client program against max_connections: PostgREST's pool,
-- PgBouncer's server connections, pg_cron's workers, everything else.
create function app_logic.metrics_connections()
returns table (application text, state text, connections double precision, max_connections double precision)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select
        case
            when a.application_name like 'PostgREST%' then 'postgrest'
            when a.application_name like 'pgbouncer%' or a.usename = 'pgbouncer' then 'pgbouncer'
            when a.backend_type like 'pg_cron%' or a.application_name like 'pg_cron%' then 'pg_cron'
            when a.backend_type = 'walsender' then 'replication'
            else 'other'
        end,
        coalesce(a.state, 'background'),
        count(*)::double precision,
        current_setting('max_connections')::double precision
    from pg_catalog.pg_stat_activity as a
    where a.backend_type in ('client backend', 'walsender') or a.backend_type like 'pg_cron%'
    group by 1, 2
$$;
comment on function app_logic.metrics_connections() is
'Connections per client program and state, with max_connections (pool saturation).';

-- -- Replication health (GET /api/replication/health) ----------------------------------

-- On the primary: whether every standby streams within the stored lag limit. The endpoint is
-- "ok" either way (200): with a standby behind, "replication" is "degraded" and the API serves
-- every read from the primary meanwhile (nginx's read pool).
-- No address or slot name is shown, only the numbers an operator's probe needs.
create function api.check_replication_health() returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_limit double precision := app_logic.replica_lag_limit();
    v_standbys jsonb;
    v_behind integer;
begin
    select
        coalesce(jsonb_agg(jsonb_build_object(
            'streaming', m.lag_seconds <> 'infinity'::double precision,
            'lagSeconds', case when m.lag_seconds = 'infinity'::double precision then null else round(m.lag_seconds::numeric, 3) end
        ) order by m.standby), '[]'::jsonb),
        count(*) filter (where m.lag_seconds > v_limit)
    into v_standbys, v_behind
    from app_logic.metrics_replication() as m;
    return jsonb_build_object(
        'status', 'ok',
        'endpoint', 'replication',
        'replication', case when v_behind > 0 then 'degraded' else 'ok' end,
        'role', case when pg_is_in_recovery() then 'standby' else 'primary' end,
        'maxLagSeconds', v_limit,
        'standbys', v_standbys
    );
end
$$;
comment on function api.check_replication_health() is
'GET /api/replication/health: 200 {"status":"ok", "replication":"ok"|"degraded", "standbys":[{"streaming","lagSeconds"}], '
'"maxLagSeconds"}; degraded when a standby lags beyond app.settings.replica_max_lag_seconds (reads then go to the primary).';
