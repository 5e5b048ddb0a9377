-- The two analytics GETs that read encrypted fields, as PostgREST 12.2 runs GET
-- /accessibility_usage and /design_effectiveness for a reader key, with the clock frozen at the
-- end of the window the run reads (__window_end__, filled in by the run; field-level encryption's benchmark,
-- chorus_db/bench/encryption.py). Read-only, like PostgREST's GET. Run with -M prepared.
begin isolation level read committed read only;
select
    set_config('search_path', '"api", "public"', true),
    set_config('role', 'reader', true),
    set_config('request.jwt.claims', '{"role":"reader"}', true),
    set_config('request.method', 'GET', true),
    set_config('app.frozen_now', '__window_end__', true);
select coalesce(json_agg(t), '[]') from (select * from "api"."accessibility_usage") as t;
select coalesce(json_agg(t), '[]') from (select * from "api"."design_effectiveness") as t;
commit;
