-- Page views: anyone may record one; reader and admin keys read them only as daily counts
-- (api.page_views_per_day in 070-analytics), so they get SELECT on the two columns the counts
-- use and never the path or referrer. The partitions are made here for the current and the
-- next three months, and every day by a pg_cron job.

grant execute on function api.record_page_view(jsonb) to anon, reader, admin;

grant select (session_id, viewed_at) on app.page_views to reader, admin;
create policy page_views_analytics_read on app.page_views
for select to reader, admin
using (true);
comment on policy page_views_analytics_read on app.page_views is
'Reader and admin keys count page views (api.page_views_per_day); anon reads none.';

select app_logic.ensure_page_view_partitions(3) as partitions_created;

select app_logic.declare_job(
    'chorus_website:page-view-partitions', '17 3 * * *',
    'select app_logic.ensure_page_view_partitions(3)'
);
