-- (5, baseline) A page view inserted straight into the partitioned table.
insert into app.page_views (session_id, path, referrer_host, device_type, duration_ms)
values ('s' || gen_random_uuid(), '/ecosystem', 'www.example.com', 'desktop', 5300);
