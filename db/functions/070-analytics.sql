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

-- Accessibility themes chosen by sessions started in the last 30 days (all five themes).
create view api.accessibility_usage with (security_invoker = true) as
select
    themes.theme as "accessibilityTheme",
    count(p.created_at)::integer as sessions,
    avg(p.session_duration)::double precision as "meanSessionDuration"
from (
    values (1, 'default'), (2, 'protanopia'), (3, 'deuteranopia'), (4, 'tritanopia'), (5, 'achromatopsia')
) as themes (position, theme)
-- The theme is encrypted (db/functions/045-field-encryption.sql): the window's rows, decrypted.
left join app_logic.opened_preference_themes(app_logic.now() - interval '30 days', app_logic.now()) as p
    on themes.theme = p.accessibility_theme
group by themes.position, themes.theme
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
create view api.design_effectiveness with (security_invoker = true) as
with per_session as (
    select
        e.session_id,
        max(e.scroll_depth_percentage) as scroll_depth,
        max(e.cta_clicks) as cta_clicks
    -- The CTA clicks are encrypted (db/functions/045-field-encryption.sql): counted decrypted.
    from app_logic.opened_engagement_counts(app_logic.now() - interval '30 days', app_logic.now()) as e
    group by e.session_id
)

select
    count(*)::integer as sessions,
    avg(scroll_depth)::double precision as "meanScrollDepthPercentage",
    avg(cta_clicks)::double precision as "meanCtaClicksPerSession"
from per_session;
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
