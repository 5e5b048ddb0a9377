-- The retention job empties these tables by the hundred thousand rows a night (sessions never
-- linked to a lead); autovacuum then cleans every page and index they left dead, and at its
-- default pace (2 ms per 200 cost units) that vacuum was the largest part of the job's cost to the
-- requests served meanwhile (issue 13, goal 4). Alternated with submissions at 200/s on copies of
-- 150,000 dead rows of engagement: p99 during the vacuum 2.67 times the quiet p99 at 2 ms, 1.31 at
-- 8 ms (pair medians 6.57 and 1.94), the vacuum taking 12 s and 26 s. 8 ms is still faster than
-- PostgreSQL's default before version 12 (20 ms). Submissions' tables keep the default pace.
alter table app.brand_engagement set (autovacuum_vacuum_cost_delay = 8);
alter table app.accessibility_preferences set (autovacuum_vacuum_cost_delay = 8);
