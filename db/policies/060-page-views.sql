-- Page views: anyone may record one; nobody reads them over HTTP (no analytics view yet), so
-- no role gets a table privilege or a policy, on purpose. The partitions are made here for the
-- current and the next three months, and every day by a pg_cron job.

grant execute on function api.record_page_view(jsonb) to anon, reader, admin;

select app_logic.ensure_page_view_partitions(3) as partitions_created;

select app_logic.declare_job(
    'chorus_website:page-view-partitions', '17 3 * * *',
    'select app_logic.ensure_page_view_partitions(3)'
);
