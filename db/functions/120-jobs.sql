-- Whether pg_cron runs the project's jobs for this database. The build records it in
-- app.job_scheduler (chorus_db.build): 'local' when pg_cron is installed here, 'remote' when the
-- server's cron.database_name is another database and the jobs were scheduled there with
-- cron.schedule_in_database, 'none' when no job can run (then retention, counter purges and the
-- page-view partitions three months ahead all stop), 'not_applicable' for databases other than
-- the project's own (test copies). Health answers say so (app_logic.jobs_problem, 090-health).

comment on table app.job_scheduler is
'Where pg_cron runs the project''s jobs for this database (local, remote, none, not_applicable), as the last build found it.';
comment on column app.job_scheduler.placement is
'local: pg_cron is installed here; remote: scheduled from cron_database with cron.schedule_in_database; none: no job runs.';
comment on column app.job_scheduler.detail is 'Why no job runs, when placement is none.';
