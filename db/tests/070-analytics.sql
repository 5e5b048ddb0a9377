-- Brand analytics: the three views on a known set of rows (numbers worked out by hand), their
-- time windows under a frozen clock, and who may read them.
begin;
select plan(24);

select set_config('app.frozen_now', '2030-03-20 12:00:00+00', true);

insert into app.brand_engagement (session_id, core_web_vitals, scroll_depth_percentage, cta_clicks, created_at) values
('s1', '{"lcp": 1000, "fid": 10, "cls": 0.125}', 50, '["a", "b"]', '2030-03-19 12:00:00+00'),
('s2', '{"lcp": 2000, "cls": 0.375, "inp": 200}', 70, '[]', '2030-03-18 12:00:00+00'),
('s2', '{"lcp": 3000, "fid": 30, "ttfb": 500}', 90, '["a"]', '2030-03-19 12:00:00+00'),
('s3', '{"lcp": 4000}', null, '["x", "y", "z"]', '2030-03-13 13:00:00+00'),
-- exactly 7 days old: outside the performance window, inside the 30-day one
('s4', '{"lcp": 100000}', 10, '[]', '2030-03-13 12:00:00+00'),
-- in the future of the frozen clock, and older than 30 days: outside every window
('s5', '{"lcp": 99999}', 100, '["a"]', '2030-03-20 13:00:00+00'),
('s6', '{"lcp": 99999}', 100, '["a"]', '2030-02-18 11:00:00+00'),
-- written around the endpoint's validation: a non-number metric is not a sample
('s7', '{"lcp": "fast"}', 30, '[]', '2030-03-17 12:00:00+00');

insert into app.accessibility_preferences (session_id, accessibility_theme, session_duration, created_at) values
('p1', 'protanopia', 1000, '2030-03-19 12:00:00+00'),
('p2', 'protanopia', 3000, '2030-02-19 12:00:00+00'),
('p3', 'protanopia', null, '2030-03-18 12:00:00+00'),
('p4', 'default', 999, '2030-02-18 12:00:00+00'),
('p5', 'tritanopia', 600, '2030-03-15 12:00:00+00'),
('p6', 'achromatopsia', 5, '2030-03-21 12:00:00+00');

-- lcp 1000, 2000, 3000, 4000: mean 2500, p75 at rank 2.25: 3000 + 0.25 * 1000 = 3250.
-- fid 10, 30: mean 20, p75 10 + 0.75 * 20 = 25. cls 0.125, 0.375: mean 0.25, p75 0.3125.
select is(
    (tap.call_as('reader', '(select jsonb_agg(t) from api.brand_performance as t)') -> 'body'),
    '[
        {"metric": "lcp", "sampleCount": 4, "mean": 2500, "p75": 3250},
        {"metric": "fid", "sampleCount": 2, "mean": 20, "p75": 25},
        {"metric": "cls", "sampleCount": 2, "mean": 0.25, "p75": 0.3125},
        {"metric": "inp", "sampleCount": 1, "mean": 200, "p75": 200},
        {"metric": "ttfb", "sampleCount": 1, "mean": 500, "p75": 500}
    ]'::jsonb,
    'performance: mean, p75 and sample count per metric over the 7 days before the frozen clock'
);
-- Sessions s1, s2, s3, s4, s7. Deepest scroll 50, 90, -, 10, 30: mean 45.
-- Most CTA clicks 2, 1, 3, 0, 0: mean 1.2.
select is(
    (tap.call_as('admin', '(select jsonb_agg(t) from api.design_effectiveness as t)') -> 'body'),
    '[{"sessions": 5, "meanScrollDepthPercentage": 45, "meanCtaClicksPerSession": 1.2}]'::jsonb,
    'design: each session once, with its deepest scroll and most CTA clicks, over 30 days'
);
select is(
    (tap.call_as('reader', '(select jsonb_agg(t) from api.accessibility_usage as t)') -> 'body'),
    '[
        {"accessibilityTheme": "default", "sessions": 0, "meanSessionDuration": null},
        {"accessibilityTheme": "protanopia", "sessions": 3, "meanSessionDuration": 2000},
        {"accessibilityTheme": "deuteranopia", "sessions": 0, "meanSessionDuration": null},
        {"accessibilityTheme": "tritanopia", "sessions": 1, "meanSessionDuration": 600},
        {"accessibilityTheme": "achromatopsia", "sessions": 0, "meanSessionDuration": null}
    ]'::jsonb,
    'accessibility usage: sessions and mean duration per theme over 30 days, every theme listed'
);

select set_config('app.frozen_now', '2031-01-01 00:00:00+00', true);
select is(
    (tap.call_as('reader', '(select jsonb_agg(t) from api.brand_performance as t where metric = ''lcp'')') -> 'body'),
    '[{"metric": "lcp", "sampleCount": 0, "mean": null, "p75": null}]'::jsonb,
    'performance: a metric without samples in the window has count 0 and no mean'
);
select is(
    (tap.call_as('reader', '(select jsonb_agg(t) from api.design_effectiveness as t)') -> 'body'),
    '[{"sessions": 0, "meanScrollDepthPercentage": null, "meanCtaClicksPerSession": null}]'::jsonb,
    'design: no sessions in the window, no means'
);

-- The analytics views, for the checks that hold for each.
create temporary table analytics_views (name) as
values
('brand_performance'), ('accessibility_usage'), ('design_effectiveness'), ('leads_per_day'), ('leads_per_source'),
('page_views_per_day');

-- anon is refused (401) on each, one assertion each.
select
    throws_ok(
        format($$ select (tap.call_as('anon', '(select count(*) from api.%I)') -> 'body') $$, v.name),
        '42501', format('permission denied for view %s', v.name), format('anon may not read api.%s (401)', v.name)
    )
from analytics_views as v
order by v.name;
select ok(
    (
        select bool_and(has_table_privilege(r, 'api.' || v, 'select') and not has_table_privilege(r, 'api.' || v, 'insert'))
        from unnest(array['reader', 'admin']) as r
        cross join unnest(array['brand_performance', 'accessibility_usage', 'design_effectiveness']) as v
    ),
    'reader and admin may select the three views and nothing more'
);
select is(
    (
        select array_agg(c.relname::text order by c.relname) from pg_class as c
        where
            c.relnamespace = 'api'::regnamespace and c.relkind = 'v'
            and c.relname in ('brand_performance', 'accessibility_usage', 'design_effectiveness')
            and 'security_invoker=true' = any(c.reloptions)
    ),
    '{accessibility_usage,brand_performance,design_effectiveness}',
    'the three views run with the caller''s rights'
);
-- The dashboard's daily counts: 30 UTC days ending on the frozen clock's date, every day
-- listed, a row at the window's edges counted once, rows after the clock not at all.
select set_config('app.frozen_now', '2030-03-20 12:00:00+00', true);
insert into app.leads (first_name, last_name, email, lead_source, gdpr_consent, created_at) values
('A', 'A', 'a@example.com', 'contact_form', true, '2030-03-20 00:00:00+00'),
('B', 'B', 'b@example.com', 'contact_form', true, '2030-03-20 11:59:59+00'),
('C', 'C', 'c@example.com', 'webinar', true, '2030-03-19 23:59:59+00'),
-- the first instant of the window (2030-02-19 00:00 UTC), and the last one before it
('D', 'D', 'd@example.com', 'webinar', true, '2030-02-19 00:00:00+00'),
('E', 'E', 'e@example.com', 'webinar', true, '2030-02-18 23:59:59+00'),
-- after the frozen clock: not yet
('F', 'F', 'f@example.com', 'partner', true, '2030-03-20 12:00:01+00');
select is(
    (tap.call_as('reader', '(select jsonb_agg(t) from api.leads_per_day as t where leads > 0)') -> 'body'),
    '[{"day": "2030-02-19", "leads": 1}, {"day": "2030-03-19", "leads": 1}, {"day": "2030-03-20", "leads": 2}]'::jsonb,
    'leads per day: UTC days of the window, nothing before it or after the clock'
);
select is(
    (tap.call_as(
        'reader', $$(select jsonb_build_array(count(*), min(day), max(day), sum(leads)) from api.leads_per_day)$$
    ) -> 'body'),
    '[30, "2030-02-19", "2030-03-20", 4]'::jsonb,
    'leads per day: exactly the 30 days ending today are listed, zeros included'
);
select is(
    (tap.call_as('admin', '(select jsonb_agg(t) from api.leads_per_source as t)') -> 'body'),
    '[{"leadSource": "contact_form", "leads": 2}, {"leadSource": "webinar", "leads": 2}]'::jsonb,
    'leads per source: the same window, largest first, then by name'
);
select app_logic.ensure_page_view_partitions(0);
insert into app.page_views (session_id, path, viewed_at) values
('v1', '/', '2030-03-20 01:00:00+00'),
('v1', '/contact', '2030-03-20 02:00:00+00'),
('v2', '/', '2030-03-20 03:00:00+00'),
('v1', '/', '2030-03-19 03:00:00+00'),
('v3', '/', '2030-03-20 12:30:00+00');
select is(
    (tap.call_as('reader', '(select jsonb_agg(t) from api.page_views_per_day as t where "pageViews" > 0)') -> 'body'),
    '[{"day": "2030-03-19", "pageViews": 1, "sessions": 1}, {"day": "2030-03-20", "pageViews": 3, "sessions": 2}]'::jsonb,
    'page views per day: views and distinct sessions per UTC day, nothing after the clock'
);
select throws_ok(
    $$ select (tap.call_as('reader', '(select count(path) from app.page_views)') -> 'body') $$,
    '42501', 'permission denied for table page_views', 'reader may not read page-view paths'
);
select is_empty(
    $$ select c.relname || '.' || a.attname from pg_class as c
       join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0
       where c.relnamespace = 'api'::regnamespace
         and c.relname in (select v.name from analytics_views as v)
         and (col_description(c.oid, a.attnum) is null or a.attname !~ '^[a-z][A-Za-z0-9]*$') $$,
    'every column of the analytics views is documented and camelCase'
);

-- GET /api/api-key and GET /api/consent-text.
select app_logic.create_api_key('dash-reader', 'reader') is not null as made_a_key;
select set_config('app.api_key_id', (
    select id::text from app.api_keys
    where name = 'dash-reader'
), true);
select is(
    (tap.call_as('reader', '(select api.current_api_key() - ''keyPrefix'')') -> 'body'),
    '{"name": "dash-reader", "role": "reader"}'::jsonb,
    'current_api_key names the key of this request and its role'
);
select ok(
    (tap.call_as('reader', '(select api.current_api_key())') -> 'body') ->> 'keyPrefix' ~ '^chk_[0-9a-f]{6}$',
    'current_api_key shows the key''s 10-character prefix only'
);
select throws_ok(
    $$ select (tap.call_as('anon', '(select api.current_api_key())') -> 'body') $$,
    '42501', 'permission denied for function current_api_key', 'anon has no key to ask about (401)'
);
insert into app.consent_texts (version, body, sha256, valid_from)
values ('2030-02', 'February 2030.', sha256(convert_to('February 2030.', 'UTF8')), app_logic.now() - interval '1 second');
select is(
    (tap.call_as('anon', '(select api.current_consent_text())') -> 'body'),
    '{"version": "2030-02"}'::jsonb,
    'anyone reads the version of the consent text the audit records'
);

-- security_invoker: RLS of the tables applies to reader through the view.
select set_config('app.frozen_now', '2030-03-20 12:00:00+00', true);
drop policy brand_engagement_analytics_read on app.brand_engagement;
select is(
    (tap.call_as('reader', '(select "sampleCount" from api.brand_performance where metric = ''lcp'')') -> 'body'),
    '0'::jsonb, 'without the read policy, reader sees no engagement rows (RLS applies through the view)'
);

select * from finish();
rollback;
