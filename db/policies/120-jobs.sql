-- The scheduler's state is read only through app_logic.jobs_problem() (health) and by the build.
revoke all on table app.job_scheduler from public;
