-- Retention: one function applies every enabled rule of app.retention_rules and logs each
-- rule's run in app.retention_runs; a procedure repeats it in committed batches for pg_cron.
--
-- Rows are deleted with one statement per rule (optionally capped at a batch size, oldest
-- first); page views are never deleted row by row: whole monthly partitions are dropped.
-- Every statement re-checks its condition in the DELETE itself, so a row a request links to
-- a lead (or refreshes) while the job runs is not removed.

-- Leads: last activity is updated_at or the newest interaction. Interactions and linked
-- preferences and engagement follow through ON DELETE CASCADE. The consent audit is never
-- deleted: each removed lead gets an erasure record in its pseudonymous chain instead.
create function app_logic.purge_leads(p_cutoff timestamptz, p_limit integer default null) returns bigint
language plpgsql volatile
as $$
declare
    v_email text;
    v_count bigint := 0;
begin
    for v_email in
        with due as (
            select l.id
            from app.leads as l
            where
                l.updated_at < p_cutoff
                and not exists (
                    select from app.lead_interactions as i where i.lead_id = l.id and i.created_at >= p_cutoff
                )
            order by l.updated_at
            limit p_limit
            -- A lead a request is updating right now is busy, not expired: leave it.
            for update skip locked
        )
        delete from app.leads as l
        using due
        where l.id = due.id and l.updated_at < p_cutoff
        returning l.email
    loop
        perform app_logic.append_consent(app_logic.pseudonym(lower(btrim(v_email))), 'erasure', null, null, 'retention');
        v_count := v_count + 1;
    end loop;
    return v_count;
end
$$;
comment on function app_logic.purge_leads(timestamptz, integer) is
'Delete leads inactive since the cutoff (at most p_limit, oldest first), recording an erasure for each.';

-- Every kind whose age is one timestamp column is removed by purge_older_than: one body for
-- all of them, so batching, ordering and the re-check are the same everywhere. Without a limit
-- one plain DELETE (a sequential scan is the fastest way to remove a large share of a table);
-- with a limit the oldest due rows are picked (through the column's index where there is one)
-- and deleted by their ctid (a TID scan, no second index lookup). The DELETE repeats the
-- condition, so a row changed meanwhile (linked to a lead, refreshed) stays.
create function app_logic.purge_statement(
    p_table regclass, p_column name, p_limited boolean, p_only_null name default null, p_else_column name default null
) returns text
language plpgsql stable
as $$
declare
    v_table text;
    v_age text;
    v_due text;
begin
    -- Only identifiers are written into the statement, each quoted by %I (the table always with
    -- its schema, so no temporary table can stand in for it); values travel as parameters.
    select format('%I.%I', n.nspname, c.relname) into strict v_table
    from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    where c.oid = p_table;
    -- The age: the column, or where it is null the other one (a message sent, else given up).
    v_age := case when p_else_column is null then format('%I', p_column) else format('coalesce(%I, %I)', p_column, p_else_column) end;
    v_due := v_age || ' < $1'
        || case when p_only_null is not null then format(' and %I is null', p_only_null) else '' end;
    if not p_limited then
        return format('delete from %1$s where %2$s', v_table, v_due);
    end if;
    return format(
        'delete from %1$s where ctid = any(array(select ctid from %1$s where %2$s order by %3$s limit $2)) and %2$s',
        v_table, v_due, v_age
    );
end
$$;
comment on function app_logic.purge_statement(regclass, name, boolean, name, name) is
'The DELETE app_logic.purge_older_than runs for these arguments ($1 the cutoff, $2 the limit when p_limited).';

create function app_logic.purge_older_than(
    p_table regclass, p_column name, p_cutoff timestamptz, p_limit integer default null,
    p_only_null name default null, p_else_column name default null
) returns bigint
language plpgsql volatile
as $$
declare
    v_count bigint;
begin
    -- One statement's text (app_logic.purge_statement, whose plan the tests check), values as parameters.
    execute app_logic.purge_statement(p_table, p_column, p_limit is not null, p_only_null, p_else_column)
    using p_cutoff, p_limit;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function app_logic.purge_older_than(regclass, name, timestamptz, integer, name, name) is
'Retention: delete the rows of p_table whose p_column (or p_else_column where it is null) is before the cutoff '
'(at most p_limit, oldest first; with p_only_null, only rows where that column is null, i.e. never linked); '
'the number removed.';

-- The purge_<kind> of a kind whose age is one column: one line in its domain's file declares it
-- (the function is made here, over purge_older_than), so no two purges repeat a body.
create function app_logic.declare_purge(
    p_kind text, p_table regclass, p_column name, p_description text, p_only_null name default null,
    p_else_column name default null
) returns void
language plpgsql volatile
as $$
begin
    -- The table by its schema-qualified name (not a search_path's reading of it). A quoted body,
    -- not a standard SQL one, which would tie the table to the function (DROP TABLE would refuse).
    execute format(
        'create function app_logic.%I(p_cutoff timestamptz, p_limit integer default null) returns bigint '
        'language sql volatile as $body$ select app_logic.purge_older_than(%L, %L, p_cutoff, p_limit, %L, %L) $body$',
        'purge_' || p_kind,
        (select format('%I.%I', n.nspname, c.relname) from pg_catalog.pg_class as c
            join pg_catalog.pg_namespace as n on n.oid = c.relnamespace where c.oid = p_table),
        p_column, p_only_null, p_else_column
    );
    execute format('comment on function app_logic.%I(timestamptz, integer) is %L', 'purge_' || p_kind, p_description);
end
$$;
comment on function app_logic.declare_purge(text, regclass, name, text, name, name) is
'Create app_logic.purge_<kind>(cutoff, limit) deleting the rows of p_table whose p_column is before the cutoff.';

-- Unlinked preferences: the age is the last update (a returning session keeps its row).
select app_logic.declare_purge(
    'accessibility_preferences', 'app.accessibility_preferences', 'last_updated',
    'Delete preferences of sessions never linked to a lead, last updated before the cutoff.', 'lead_id'
);
select app_logic.declare_purge(
    'brand_engagement', 'app.brand_engagement', 'created_at',
    'Delete engagement of sessions never linked to a lead, created before the cutoff.', 'lead_id'
);
select app_logic.declare_purge(
    'retention_runs', 'app.retention_runs', 'started_at', 'Delete entries of the retention log older than the cutoff.'
);

-- A counter whose newest hit has left its window can no longer limit anything, also when its
-- window ends exactly at the cutoff: timestamps are whole microseconds, so expires_at <= cutoff
-- is expires_at < cutoff + 1 µs.
create function app_logic.purge_rate_limit_counters(p_cutoff timestamptz, p_limit integer default null)
returns bigint
language sql volatile
as $$
    select app_logic.purge_older_than(
        'app.rate_limit_counters', 'expires_at', p_cutoff + interval '1 microsecond', p_limit
    )
$$;
comment on function app_logic.purge_rate_limit_counters(timestamptz, integer) is
'Delete rate-limit counters whose newest hit left its window before the cutoff.';

-- The upper bound of a range partition of page_views; null for a DEFAULT partition (which is
-- never dropped). pg_get_expr renders the bound in the session's time zone, and the cast
-- reads it back in the same one.
create function app_logic.partition_upper_bound(p_partition regclass) returns timestamptz
language sql stable
as $$
    select (regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$ TO \('([^']+)'\)$re$))[1]::timestamptz
    from pg_catalog.pg_class as c
    where c.oid = p_partition
$$;
comment on function app_logic.partition_upper_bound(regclass) is
'Exclusive upper bound of a page_views partition; null for the default partition.';

-- Dropping a partition locks the parent table (ACCESS EXCLUSIVE) for a moment: a bounded
-- wait keeps page-view inserts from queueing behind a long analytics query. On timeout the
-- rule fails, is logged, and the next run tries again.
create function app_logic.drop_page_view_partitions(p_cutoff timestamptz) returns text[]
language plpgsql volatile
as $$
declare
    v_partition regclass;
    v_dropped text[] := '{}';
    v_lock_timeout text := current_setting('lock_timeout');
begin
    perform set_config('lock_timeout', '5s', true);
    for v_partition in
        select i.inhrelid::regclass
        from pg_catalog.pg_inherits as i
        where i.inhparent = 'app.page_views'::regclass
        order by app_logic.partition_upper_bound(i.inhrelid::regclass)
    loop
        if app_logic.partition_upper_bound(v_partition) <= p_cutoff then
            v_dropped := v_dropped || v_partition::text;
            execute format('drop table %s', v_partition);
        end if;
    end loop;
    perform set_config('lock_timeout', v_lock_timeout, true);
    return v_dropped;
end
$$;
comment on function app_logic.drop_page_view_partitions(timestamptz) is
'Drop every page_views partition whose whole range lies before the cutoff; returns their names.';

create function app_logic.apply_retention(p_kind text default null, p_max_rows integer default null)
returns setof app.retention_runs
language plpgsql volatile
as $$
declare
    v_rule app.retention_rules;
    v_run app.retention_runs;
    v_started timestamptz;
    v_cutoff timestamptz;
    v_rows bigint;
    v_limit integer;
    v_partitions text[];
    v_error text;
    v_table text;
    v_constraint text;
    -- Each removed lead appends to the consent audit under a per-subject advisory lock held
    -- to the end of the transaction: too many in one transaction exhaust the lock table.
    c_leads_per_batch constant integer := 1000;
begin
    if p_kind is not null and not exists (select from app.retention_rules as r where r.kind = p_kind) then
        raise exception 'there is no retention rule for %', p_kind
            using errcode = '22023', hint = 'app.retention_rules lists the kinds.';
    end if;
    if p_max_rows is not null and p_max_rows < 1 then
        raise exception 'the batch size must be at least 1, not %', p_max_rows using errcode = '22023';
    end if;
    for v_rule in
        select r.* from app.retention_rules as r
        where r.enabled and (p_kind is null or r.kind = p_kind)
        order by r.kind
    loop
        v_started := clock_timestamp();
        v_cutoff := app_logic.now() - v_rule.keep_for;
        v_rows := 0;
        v_partitions := '{}';
        v_error := null;
        -- Leads: never more than c_leads_per_batch per call, even unbatched ("complete" says if more is due).
        v_limit := case when v_rule.kind = 'leads' then least(coalesce(p_max_rows, c_leads_per_batch), c_leads_per_batch)
            else p_max_rows end;
        -- Each rule in its own subtransaction: one failing rule does not stop the others.
        begin
            -- The rule's deletions are logged below, one row per rule; the brand audit skips them.
            perform set_config('app.retention_purge', 'on', true);
            case v_rule.kind
                when 'leads' then
                    v_rows := app_logic.purge_leads(v_cutoff, v_limit);
                when 'accessibility_preferences' then
                    v_rows := app_logic.purge_accessibility_preferences(v_cutoff, p_max_rows);
                when 'brand_engagement' then
                    v_rows := app_logic.purge_brand_engagement(v_cutoff, p_max_rows);
                when 'rate_limit_counters' then
                    v_rows := app_logic.purge_rate_limit_counters(v_cutoff, p_max_rows);
                when 'retention_runs' then
                    v_rows := app_logic.purge_retention_runs(v_cutoff, p_max_rows);
                when 'page_views' then
                    v_partitions := app_logic.drop_page_view_partitions(v_cutoff);
                else
                    -- Every other kind brings its own app_logic.purge_<kind>(cutoff, limit): a
                    -- domain adds a rule row and that function, not a branch here.
                    execute format('select app_logic.%I($1, $2)', 'purge_' || v_rule.kind)
                    into v_rows using v_cutoff, p_max_rows;
            end case;
            perform set_config('app.retention_purge', 'off', true);
        exception when others then
            v_rows := 0;
            v_partitions := '{}';
            -- PostgreSQL's messages quote the offending value after a colon (invalid input
            -- syntax for type uuid: "<a stored value>"): the log and the run keep what comes
            -- before it, the SQLSTATE and the names of the objects involved, never the data.
            get stacked diagnostics v_table = table_name, v_constraint = constraint_name;
            v_error := concat(
                regexp_replace(sqlerrm, ': .*$', ''), ' (SQLSTATE ', sqlstate,
                case when v_table <> '' then ', table ' || v_table end,
                case when v_constraint <> '' then ', constraint ' || v_constraint end, ')'
            );
            raise warning 'retention rule % failed: %', v_rule.kind, v_error;
        end;
        insert into app.retention_runs (
            started_at, kind, cutoff, rows_removed, partitions_dropped, duration, complete, error
        ) values (
            app_logic.now(), v_rule.kind, v_cutoff, v_rows, v_partitions, clock_timestamp() - v_started,
            v_error is null and (v_limit is null or v_rows < v_limit), v_error
        )
        returning * into v_run;
        return next v_run;
    end loop;
end
$$;
comment on function app_logic.apply_retention(text, integer) is
'Apply every enabled retention rule (or only p_kind), at most p_max_rows rows per rule (leads: at most 1,000 '
'per call); logs and returns one app.retention_runs row per rule.';

-- What pg_cron calls: apply the rules in batches, committing after each, until nothing due
-- is left. Short transactions keep locks, WAL bursts and vacuum's horizon small even when a
-- backlog of millions of rows is due at once. Retention must not slow the requests served
-- meanwhile (measured by `invoke bench`), so the job throttles itself:
-- * batches of 2,000 rows (50,000 held a core and flushed WAL in bursts long enough to show in
--   the submissions' p99: 9x it without the job; 10,000 with equal pauses still 3x);
-- * after each batch it sleeps p_pause_ratio times as long as the batch took: a fifth of a core
--   with the default 4, less on a machine that is busy (batches take longer there). A backlog of
--   a million rows takes a few minutes, at night;
-- * its commits do not wait for the WAL flush (synchronous_commit off, this session only): a
--   crash can lose only the last deletions, which the next run repeats; the requests' commits,
--   which do wait, no longer queue behind the job's.
-- * with p_max_seconds it stops after the batch that reaches that time: a job bounded to a quiet
--   window, the next run goes on where it stopped (the benchmark alternates with it).
-- * with p_wal_rate (bytes per second) the pause after a batch is also at least as long as its WAL
--   takes at that rate: the requests' commits flush the job's WAL with theirs, and a batch's WAL
--   is not set by its rows (after a checkpoint each page it touches first is written whole).
-- * with p_batch_wal (bytes) each next batch has the rows that write about that much WAL at the
--   last batch's bytes per row (at most p_batch_rows, at most twice the last batch; the first has
--   p_batch_rows). After a checkpoint the first deletion on a page writes the whole page (8 kB;
--   sealed fields do not compress), so rows spread over the table make a batch write megabytes
--   where it wrote 100 kB, in one burst that the requests' commits flush with theirs: small
--   batches while pages are written whole, full ones again after.
--   Opt-in: alternated with the default in the retention bench it did not do better (README).
-- * with p_synchronous_commit each batch's commit waits for its WAL flush (synchronous_commit on):
--   the job pays that flush itself, before its pause. Off (the default), a batch's WAL that the
--   WAL writer has not yet flushed (it flushes every wal_writer_delay, or after
--   wal_writer_flush_after) is flushed by the next request's commit, with its own record.
--   Opt-in (issue 13, session 11): with requests at 200/s one of their commits still flushed 100 kB
--   or more of a batch's WAL in 9 of 12 batches with it (median 324 kB), in 12 of 12 without
--   (598 kB; strace, README); the retention bench alternates it with the default to tell
--   whether it moves their p99.
create procedure app_logic.run_retention(
    p_kind text default null, p_batch_rows integer default 2000, p_pause_ratio numeric default 4,
    p_max_seconds numeric default null, p_wal_rate bigint default null, p_batch_wal bigint default null,
    p_synchronous_commit boolean default false
)
language plpgsql
as $$
declare
    v_deadline timestamptz := clock_timestamp() + p_max_seconds * interval '1 second';
    v_kinds text[] := array[p_kind];
    v_pending text[];
    v_kind text;
    v_run app.retention_runs;
    v_started timestamptz;
    v_wal_start pg_lsn;
    v_wal numeric;
    v_batch_rows integer := p_batch_rows;
    v_removed bigint;
    v_commit_setting text := current_setting('synchronous_commit');
begin
    if p_pause_ratio is null or p_pause_ratio < 0 or p_pause_ratio > 100 then
        raise exception 'the pause ratio must be between 0 and 100, not %', p_pause_ratio using errcode = '22023';
    end if;
    if p_max_seconds <= 0 then
        raise exception 'the time limit must be a positive number of seconds, not %', p_max_seconds using errcode = '22023';
    end if;
    if p_wal_rate <= 0 then
        raise exception 'the WAL rate must be a positive number of bytes per second, not %', p_wal_rate using errcode = '22023';
    end if;
    if p_batch_wal <= 0 then
        raise exception 'the WAL per batch must be a positive number of bytes, not %', p_batch_wal using errcode = '22023';
    end if;
    if p_synchronous_commit is null then
        raise exception 'whether the job''s commits wait for the WAL flush must be true or false, not null'
            using errcode = '22023';
    end if;
    perform set_config('synchronous_commit', case when p_synchronous_commit then 'on' else 'off' end, false);
    loop
        v_started := clock_timestamp();
        v_wal_start := pg_catalog.pg_current_wal_insert_lsn();
        v_pending := '{}';
        v_removed := 0;
        foreach v_kind in array v_kinds loop
            for v_run in select * from app_logic.apply_retention(v_kind, v_batch_rows) loop
                -- One line per batch for a client watching (invoke db.retention --apply shows it as
                -- progress); pg_cron's job and the server log ignore notices.
                raise notice 'retention: % removed % row(s)%', v_run.kind, v_run.rows_removed,
                    case when v_run.error is not null then ', failed' when v_run.complete then '' else ', more is due' end;
                if not v_run.complete and v_run.error is null then
                    v_pending := v_pending || v_run.kind;
                end if;
                v_removed := v_removed + v_run.rows_removed;
            end loop;
        end loop;
        commit;
        exit when cardinality(v_pending) = 0 or clock_timestamp() >= v_deadline;
        v_kinds := v_pending;
        -- The WAL inserted meanwhile is the batch's and the requests': at most a little longer a
        -- pause, at most a little smaller a next batch.
        v_wal := pg_catalog.pg_current_wal_insert_lsn() - v_wal_start;
        if p_batch_wal is not null then
            -- By the rows removed, not the limit: leads stop at 1,000 a batch whatever the limit.
            v_batch_rows := least(
                p_batch_rows, 2 * v_batch_rows, greatest(1, floor(v_removed * p_batch_wal / greatest(v_wal, 1)))
            );
        end if;
        perform pg_sleep(greatest(p_pause_ratio * extract(epoch from clock_timestamp() - v_started), v_wal / p_wal_rate));
    end loop;
    perform set_config('synchronous_commit', v_commit_setting, false);
end
$$;
comment on procedure app_logic.run_retention (text, integer, numeric, numeric, bigint, bigint, boolean) is
'Apply retention (every rule, or p_kind) in committed batches of p_batch_rows until nothing is due (or '
'p_max_seconds have passed), pausing p_pause_ratio times each batch''s duration between batches (and, with '
'p_wal_rate, at least as long as the batch''s WAL takes at that many bytes per second); with p_batch_wal, '
'each next batch has the rows that write about that many bytes of WAL at the last batch''s rate, at most p_batch_rows; '
'with p_synchronous_commit, each batch''s commit waits for its WAL flush (by default it does not).';
