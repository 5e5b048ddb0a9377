-- Brand analytics (issue 5): the seed's monitoring queries, corrected, as api views for the
-- reader and admin keys. Corrections: AVG over jsonb text became numeric casts of numbers only,
-- JSON_ARRAY_LENGTH became jsonb_array_length, p75 was added (the Core Web Vitals assessment
-- uses the 75th percentile) and every window ends at app_logic.now() so tests can freeze it.
-- security_invoker: the caller's privileges and RLS apply to the tables read. Means are double
-- precision, like percentile_cont: plenty for a dashboard, and no 20-digit numerics in JSON.

-- Core Web Vitals over the last 7 days, one row per metric (all five, also without samples).
-- Every post carrying a metric is one sample.
create view api.brand_performance with (security_invoker = true) as
with samples as (
    select
        m.key as metric,
        m.value::numeric as value
    from app.brand_engagement as e
    cross join lateral jsonb_each(e.core_web_vitals) as m (key, value)
    where
        e.created_at > app_logic.now() - interval '7 days'
        and e.created_at <= app_logic.now()
        and jsonb_typeof(m.value) = 'number'
)

select
    metrics.metric,
    count(s.value)::integer as "sampleCount",
    avg(s.value)::double precision as mean,
    percentile_cont(0.75) within group (order by s.value::double precision) as p75
from (values (1, 'lcp'), (2, 'fid'), (3, 'cls'), (4, 'inp'), (5, 'ttfb')) as metrics (position, metric)
left join samples as s on metrics.metric = s.metric
group by metrics.position, metrics.metric
order by metrics.position;
comment on view api.brand_performance is
'GET /api/brand-analytics/performance (reader or admin key): Core Web Vitals of the last 7 days, '
'one row per metric with its mean and 75th percentile (p75, as the Core Web Vitals assessment uses).';
comment on column api.brand_performance.metric is 'lcp, fid, cls, inp or ttfb.';
comment on column api.brand_performance."sampleCount" is 'How many brand-engagement posts of the last 7 days carried the metric.';
comment on column api.brand_performance.mean is 'Mean of the metric (ms; cls unitless); null without samples.';
comment on column api.brand_performance.p75 is
'75th percentile, linearly interpolated (percentile_cont); null without samples.';

-- -- Day rollups of the analytics over sealed fields ---------------------------------------
-- A UTC day that has ended is rolled up once into its decrypted aggregate counts
-- (db/schema/500-analytics-day-rollups.sql says what they hold and why that reveals nothing
-- the endpoints do not answer); a read takes the days wholly inside its window from the
-- rollups and decrypts only the other rows of the window. Any change to a row of a day that
-- has ended drops that day's rollup in the same transaction (tg_analytics_day_changed), and the
-- hourly job rolls it up again: every answer is the one the rows give.

-- Whether the UTC day [p_day, p_day + 1) lies wholly inside the window (p_since, p_until], so
-- its rollup answers for all of its rows. An SQL function: inlined where it is used.
create function app_logic.day_inside(p_day date, p_since timestamptz, p_until timestamptz) returns boolean
language sql immutable
as $$
    select p_day::timestamp at time zone 'UTC' > p_since and (p_day + 1)::timestamp at time zone 'UTC' <= p_until
$$;
comment on function app_logic.day_inside(date, timestamptz, timestamptz) is
'Whether the UTC day p_day lies wholly inside the window (p_since, p_until].';

-- Per theme over the sessions started in (p_since, p_until]: sessions, summed and counted
-- session durations. Rolled-up days from their rollup, every other row decrypted.
create function app_logic.preference_theme_totals(p_since timestamptz, p_until timestamptz)
returns table (accessibility_theme text, sessions bigint, duration_sum numeric, duration_count bigint)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    with rolled as (
        select d.day, d.themes
        from app.preference_theme_days as d
        where
            d.day between (p_since at time zone 'UTC')::date and (p_until at time zone 'UTC')::date
            and app_logic.day_inside(d.day, p_since, p_until)
    ),

    parts as (
        select t.key as theme, (t.value ->> 0)::bigint as sessions, (t.value ->> 1)::numeric as duration_sum,
            (t.value ->> 2)::bigint as duration_count
        from rolled cross join lateral jsonb_each(rolled.themes) as t
        union all
        select
            app_logic.opened_theme(p.sealed, p.key_version, p.accessibility_theme, (select app_logic.field_keys())),
            1, p.session_duration, (p.session_duration is not null)::integer
        from app.accessibility_preferences as p
        where
            p.created_at > p_since and p.created_at <= p_until
            and not exists (select from rolled where rolled.day = (p.created_at at time zone 'UTC')::date)
    )

    -- No filter on the theme here: the planner would push it below the anti-join and decrypt
    -- every row of the window to test it.
    select parts.theme, sum(parts.sessions)::bigint, sum(parts.duration_sum), sum(parts.duration_count)::bigint
    from parts
    group by parts.theme
$$;
comment on function app_logic.preference_theme_totals(timestamptz, timestamptz) is
'Per accessibility theme, over the sessions started in (p_since, p_until]: sessions, the sum of their session durations '
'and how many reported one (decrypted; days that have ended from their rollup).';

-- Over the sessions that posted brand engagement in (p_since, p_until], each counted once with
-- its deepest scroll and most CTA clicks of the window: sessions, and the sums and counts of
-- those maxima. A session whose posts of the window all lie on one rolled-up day is in that
-- day's rollup; every other session (a post on a day without rollup, or posts on several days)
-- is taken from its decrypted posts, and its share of the rollups it appears in taken out.
create function app_logic.engagement_session_totals(p_since timestamptz, p_until timestamptz)
returns table (sessions bigint, scroll_sum numeric, scroll_count bigint, cta_sum numeric, cta_count bigint)
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    with rolled as (
        select d.*
        from app.engagement_days as d
        where
            d.day between (p_since at time zone 'UTC')::date and (p_until at time zone 'UTC')::date
            and app_logic.day_inside(d.day, p_since, p_until)
    ),

    -- The window's posts (clear columns only are read here), each with whether its day is rolled up.
    posts as materialized (
        select
            e.session_id, e.sealed, e.key_version, e.cta_clicks, e.scroll_depth_percentage,
            (e.created_at at time zone 'UTC')::date as day, rolled.day is not null as rolled_day
        from app.brand_engagement as e
        left join rolled on rolled.day = (e.created_at at time zone 'UTC')::date
        where e.created_at > p_since and e.created_at <= p_until
    ),

    -- The sessions no rollup answers for: a post on a day without one, or posts on several days.
    -- Grouped by hashing (a sort of the session ids by their collation cost more than the rest).
    own as (
        select posts.session_id
        from posts
        group by posts.session_id
        having not (bool_and(posts.rolled_day) and min(posts.day) = max(posts.day))
    ),

    -- Their posts, decrypted (the only rows that are).
    opened as (
        select
            posts.session_id, posts.day, posts.scroll_depth_percentage as scroll,
            app_logic.opened_cta_count(posts.sealed, posts.key_version, posts.cta_clicks, (select app_logic.field_keys())) as cta
        from posts
        where posts.session_id in (select own.session_id from own)
    ),

    -- What those sessions put into the rollups of the days they posted on.
    in_rollups as (
        select max(opened.scroll) as scroll, max(opened.cta) as cta
        from opened join rolled on rolled.day = opened.day
        group by opened.session_id, opened.day
    ),

    per_session as (
        select max(opened.scroll) as scroll, max(opened.cta) as cta
        from opened
        group by opened.session_id
    ),

    sums as (
        select
            coalesce(sum(rolled.sessions), 0) as sessions, coalesce(sum(rolled.scroll_sum), 0) as scroll_sum,
            coalesce(sum(rolled.scroll_count), 0) as scroll_count, coalesce(sum(rolled.cta_sum), 0) as cta_sum,
            coalesce(sum(rolled.cta_count), 0) as cta_count
        from rolled
        union all
        select -count(*), -coalesce(sum(in_rollups.scroll), 0), -count(in_rollups.scroll),
            -coalesce(sum(in_rollups.cta), 0), -count(in_rollups.cta)
        from in_rollups
        union all
        select count(*), coalesce(sum(per_session.scroll), 0), count(per_session.scroll),
            coalesce(sum(per_session.cta), 0), count(per_session.cta)
        from per_session
    )

    select sum(sums.sessions)::bigint, sum(sums.scroll_sum), sum(sums.scroll_count)::bigint, sum(sums.cta_sum),
        sum(sums.cta_count)::bigint
    from sums
$$;
comment on function app_logic.engagement_session_totals(timestamptz, timestamptz) is
'Over the sessions that posted brand engagement in (p_since, p_until], each once with its deepest scroll and most CTA '
'clicks: sessions, the sums of those maxima and how many were known (decrypted; days that have ended from their rollup).';

-- One ended UTC day rolled up (what app_logic.refresh_analytics_rollups calls, with the table
-- locked against writers). The day's rows, decrypted, aggregated as the reads above need them.
create function app_logic.roll_up_preference_day(p_day date) returns void
language sql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
    insert into app.preference_theme_days (day, themes)
    select p_day, coalesce(jsonb_object_agg(t.theme, jsonb_build_array(t.sessions, t.duration_sum, t.duration_count)), '{}')
    from (
        select
            app_logic.opened_theme(p.sealed, p.key_version, p.accessibility_theme, (select app_logic.field_keys())) as theme,
            count(*) as sessions, coalesce(sum(p.session_duration), 0) as duration_sum,
            count(p.session_duration) as duration_count
        from app.accessibility_preferences as p
        where p.created_at >= p_day::timestamp at time zone 'UTC' and p.created_at < (p_day + 1)::timestamp at time zone 'UTC'
        group by 1
    ) as t
    where t.theme is not null
    on conflict (day) do nothing
$$;
comment on function app_logic.roll_up_preference_day(date) is
'Roll up the accessibility preferences of one UTC day into app.preference_theme_days (per theme, decrypted).';

create function app_logic.roll_up_engagement_day(p_day date) returns void
language sql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
    insert into app.engagement_days (day, sessions, scroll_sum, scroll_count, cta_sum, cta_count)
    select p_day, count(*), coalesce(sum(s.scroll), 0), count(s.scroll), coalesce(sum(s.cta), 0), count(s.cta)
    from (
        select
            max(e.scroll_depth_percentage) as scroll,
            max(app_logic.opened_cta_count(e.sealed, e.key_version, e.cta_clicks, (select app_logic.field_keys()))) as cta
        from app.brand_engagement as e
        where e.created_at >= p_day::timestamp at time zone 'UTC' and e.created_at < (p_day + 1)::timestamp at time zone 'UTC'
        group by e.session_id
    ) as s
    on conflict (day) do nothing
$$;
comment on function app_logic.roll_up_engagement_day(date) is
'Roll up the brand engagement of one UTC day into app.engagement_days (over its sessions, decrypted).';

-- A row of a day that has ended was written, changed or removed: that day's rollup goes, in the
-- same transaction (the job makes it again). Rows of today, what the API writes, never fire it
-- (the triggers' WHEN). The clock, not now(): a transaction that began yesterday and writes a
-- row of yesterday after midnight drops the rollup the job may have made meanwhile.
create function app_logic.tg_analytics_day_changed() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_days date[];
begin
    if tg_op = 'TRUNCATE' then
        v_days := null;
    elsif tg_level = 'STATEMENT' then
        -- A DELETE (retention, an erasure, a cascade): its rows as a transition table, named
        -- by the trigger's argument (plpgsql_check, which checks the function against the
        -- table alone, would refuse a statement naming it).
        execute format('select array_agg(distinct (g.created_at at time zone ''UTC'')::date) from %I as g', tg_argv[0])
        into v_days;
    elsif tg_op = 'INSERT' then
        v_days := array[(new.created_at at time zone 'UTC')::date];
    else
        v_days := array[(old.created_at at time zone 'UTC')::date, (new.created_at at time zone 'UTC')::date];
    end if;
    if v_days is null and tg_table_name = 'brand_engagement' then
        delete from app.engagement_days;
    elsif v_days is null then
        delete from app.preference_theme_days;
    elsif tg_table_name = 'brand_engagement' then
        delete from app.engagement_days as d where d.day = any(v_days);
    else
        delete from app.preference_theme_days as d where d.day = any(v_days);
    end if;
    return null;
end
$$;
comment on function app_logic.tg_analytics_day_changed() is
'After a write to accessibility preferences or brand engagement of a day that has ended: drop that day''s rollup.';

-- The triggers of one table whose days are rolled up.
create function app_logic.declare_analytics_rollup(p_table regclass) returns void
language plpgsql volatile
as $$
declare
    v_ended constant text := 'date_trunc(''day'', clock_timestamp(), ''UTC'')';
begin
    execute format(
        'create trigger analytics_day_inserted after insert on %s for each row when (new.created_at < %s) '
        'execute function app_logic.tg_analytics_day_changed()', p_table, v_ended);
    execute format(
        'create trigger analytics_day_updated after update on %s for each row '
        'when (old.created_at < %2$s or new.created_at < %2$s) execute function app_logic.tg_analytics_day_changed()',
        p_table, v_ended);
    execute format(
        'create trigger analytics_day_deleted after delete on %s referencing old table as gone for each statement '
        'execute function app_logic.tg_analytics_day_changed(''gone'')', p_table);
    execute format(
        'create trigger analytics_day_truncated after truncate on %s for each statement '
        'execute function app_logic.tg_analytics_day_changed()', p_table);
end
$$;
comment on function app_logic.declare_analytics_rollup(regclass) is
'Create the triggers that drop a day''s analytics rollup when a row of that ended day of p_table changes.';

select app_logic.declare_analytics_rollup('app.accessibility_preferences');
select app_logic.declare_analytics_rollup('app.brand_engagement');

-- What the hourly job runs: every ended UTC day with rows and no rollup is rolled up, a day per
-- transaction. The table is locked against writers (SHARE) while its day is read, so no write
-- can slip between the read and the rollup unseen; a lock not granted within 2 s leaves the day
-- for the next run rather than queue the site's writes behind the job. Days are found through
-- the created_at index, one probe per day that has rows.
create procedure app_logic.refresh_analytics_rollups()
language plpgsql
as $$
declare
    v_source record;
    v_day date;
    v_today date;
begin
    for v_source in
        select *
        from (values
            ('accessibility_preferences', 'preference_theme_days', 'roll_up_preference_day'),
            ('brand_engagement', 'engagement_days', 'roll_up_engagement_day')
        ) as s (rows_table, rollup_table, roll_up)
    loop
        v_today := (clock_timestamp() at time zone 'UTC')::date;
        for v_day in execute format($sql$
            with recursive days (day) as (
                select (min(t.created_at) at time zone 'UTC')::date from app.%1$I as t
                union all
                select (
                    select (min(t.created_at) at time zone 'UTC')::date from app.%1$I as t
                    where t.created_at >= (days.day + 1)::timestamp at time zone 'UTC'
                )
                from days
                where days.day < $1
            )
            select days.day from days
            where days.day < $1 and not exists (select from app.%2$I as r where r.day = days.day)
            $sql$, v_source.rows_table, v_source.rollup_table) using v_today
        loop
            begin
                perform set_config('lock_timeout', '2s', true);
                execute format('lock table app.%I in share mode', v_source.rows_table);
                execute format('select app_logic.%I($1)', v_source.roll_up) using v_day;
            exception when lock_not_available then
                raise notice 'analytics rollup of % %: the table was busy, left for the next run', v_source.rows_table, v_day;
            end;
            commit;
        end loop;
    end loop;
end
$$;
comment on procedure app_logic.refresh_analytics_rollups is
'Roll up every ended UTC day of accessibility preferences and brand engagement that has rows and no rollup (the hourly job).';

-- Accessibility themes chosen by sessions started in the last 30 days (all five themes).
create view api.accessibility_usage with (security_invoker = true) as
select
    themes.theme as "accessibilityTheme",
    coalesce(t.sessions, 0)::integer as sessions,
    (t.duration_sum / nullif(t.duration_count, 0))::double precision as "meanSessionDuration"
from (
    values (1, 'default'), (2, 'protanopia'), (3, 'deuteranopia'), (4, 'tritanopia'), (5, 'achromatopsia')
) as themes (position, theme)
-- The theme is encrypted (db/functions/045-field-encryption.sql): decrypted, or from day rollups.
left join app_logic.preference_theme_totals(app_logic.now() - interval '30 days', app_logic.now()) as t
    on themes.theme = t.accessibility_theme
order by themes.position;
comment on view api.accessibility_usage is
'GET /api/brand-analytics/accessibility-usage (reader or admin key): per accessibility theme, '
'the sessions of the last 30 days that chose it and their mean session duration.';
comment on column api.accessibility_usage."accessibilityTheme" is
'default, protanopia, deuteranopia, tritanopia or achromatopsia.';
comment on column api.accessibility_usage.sessions is 'Sessions started in the last 30 days with this theme.';
comment on column api.accessibility_usage."meanSessionDuration" is
'Mean session duration of those sessions, in ms (sessions that reported one); null when none did.';

-- Scroll depth and CTA clicks per session over 30 days. A session may post several cumulative
-- snapshots, so each session counts once, with its deepest scroll and its most CTA clicks.
-- The CTA clicks are encrypted (db/functions/045-field-encryption.sql): decrypted, or from day rollups.
create view api.design_effectiveness with (security_invoker = true) as
select
    t.sessions::integer as sessions,
    (t.scroll_sum / nullif(t.scroll_count, 0))::double precision as "meanScrollDepthPercentage",
    (t.cta_sum / nullif(t.cta_count, 0))::double precision as "meanCtaClicksPerSession"
from app_logic.engagement_session_totals(app_logic.now() - interval '30 days', app_logic.now()) as t;
comment on view api.design_effectiveness is
'GET /api/brand-analytics/design-effectiveness (reader or admin key): over the sessions of the '
'last 30 days, the mean scroll depth and the mean number of CTA clicks per session.';
comment on column api.design_effectiveness.sessions is 'Sessions that posted brand engagement in the last 30 days.';
comment on column api.design_effectiveness."meanScrollDepthPercentage" is
'Mean over sessions of the deepest scroll each reported, in percent; null when none reported one.';
comment on column api.design_effectiveness."meanCtaClicksPerSession" is
'Mean over sessions of the CTA clicks each reported; null without sessions.';

-- Lead and page-view counts for the dashboard (issue 17): the 30 UTC days ending today, every
-- day listed (zero included), so a chart needs no gap filling. Days are UTC dates, the same
-- for every viewer whatever their time zone.
create function app_logic.analytics_days() returns table (day date, day_start timestamptz, day_end timestamptz)
language sql stable
as $$
    select
        d::date,
        d::date::timestamp at time zone 'UTC',
        (d::date + 1)::timestamp at time zone 'UTC'
    from generate_series(
        (app_logic.now() at time zone 'UTC')::date - 29, (app_logic.now() at time zone 'UTC')::date, interval '1 day'
    ) as d
$$;
comment on function app_logic.analytics_days() is
'The 30 UTC days ending today under app_logic.now(): each day''s date, its start and the next day''s start.';

create view api.leads_per_day with (security_invoker = true) as
select
    d.day,
    count(l.id)::integer as leads
from app_logic.analytics_days() as d
left join app.leads as l
    on d.day_start <= l.created_at and d.day_end > l.created_at and l.created_at <= app_logic.now()
group by d.day
order by d.day;
comment on view api.leads_per_day is
'GET /api/brand-analytics/leads-per-day (reader or admin key): new leads per UTC day over the '
'30 days ending today, every day listed.';
comment on column api.leads_per_day.day is 'The UTC date.';
comment on column api.leads_per_day.leads is 'Leads created that day (a resubmission creates none).';

create view api.leads_per_source with (security_invoker = true) as
select
    l.lead_source as "leadSource",
    count(*)::integer as leads
from app.leads as l
where
    l.created_at >= ((app_logic.now() at time zone 'UTC')::date - 29)::timestamp at time zone 'UTC'
    and l.created_at <= app_logic.now()
group by l.lead_source
order by leads desc, "leadSource" asc;
comment on view api.leads_per_source is
'GET /api/brand-analytics/leads-per-source (reader or admin key): new leads per leadSource over '
'the 30 UTC days ending today, the largest first; sources without leads are not listed.';
comment on column api.leads_per_source."leadSource" is 'The leadSource the leads were submitted with.';
comment on column api.leads_per_source.leads is 'Leads created in the window with that source.';

create view api.page_views_per_day with (security_invoker = true) as
select
    d.day,
    count(v.viewed_at)::integer as "pageViews",
    count(distinct v.session_id)::integer as sessions
from app_logic.analytics_days() as d
left join app.page_views as v
    on d.day_start <= v.viewed_at and d.day_end > v.viewed_at and v.viewed_at <= app_logic.now()
group by d.day
order by d.day;
comment on view api.page_views_per_day is
'GET /api/brand-analytics/page-views-per-day (reader or admin key): page views and distinct '
'sessions per UTC day over the 30 days ending today, every day listed.';
comment on column api.page_views_per_day.day is 'The UTC date.';
comment on column api.page_views_per_day."pageViews" is 'Page views recorded that day.';
comment on column api.page_views_per_day.sessions is 'Distinct sessions with a page view that day.';
