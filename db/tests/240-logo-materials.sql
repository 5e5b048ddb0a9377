-- Logo materials: anyone reads them with an ETag and Cache-Control, a matching If-None-Match is
-- 304, an admin edit merges and changes the ETag, and nobody else may edit.
begin;
select plan(7);

create function pg_temp.call_as(p_role text, p_call text, p_query text default null, p_inm text default null)
returns jsonb
language plpgsql volatile as $$
declare
    v_body jsonb;
begin
    perform set_config('response.status', '', true);
    perform set_config('response.headers', '', true);
    perform set_config(
        'request.headers', jsonb_strip_nulls(jsonb_build_object('x-chorus-query', p_query, 'if-none-match', p_inm))::text, true
    );
    perform set_config('role', p_role, true);
    execute 'select ' || p_call into v_body;
    reset role;
    return jsonb_build_object(
        'status', nullif(current_setting('response.status'), '')::integer, 'body', v_body,
        'headers', nullif(current_setting('response.headers'), '')::jsonb
    );
end
$$;

create temporary table answer on commit drop as
select pg_temp.call_as('anon', $$api.logo_materials('{}')$$, 'theme=tritanopia') as a;

select is((select a -> 'body' ->> 'theme' from answer), 'tritanopia', 'anon reads one theme''s material');
select is(
    (select a -> 'headers' -> 1 ->> 'Cache-Control' from answer), 'public, max-age=60',
    'Cache-Control max-age comes from app.settings'
);
select is(
    pg_temp.call_as(
        'anon', $$api.logo_materials('{}')$$, 'theme=tritanopia', (select a -> 'headers' -> 0 ->> 'ETag' from answer)
    ) -> 'status',
    '304', 'a matching If-None-Match is 304'
);
select is(
    pg_temp.call_as('admin', $$api.update_logo_material('{"theme": "tritanopia", "material": {"opacity": 0.5}}')$$)
    -> 'body' -> 'material' ->> 'opacity',
    '0.5', 'an admin edits one setting'
);
select is(
    (
        select material ->> 'baseColor' from app.logo_materials
        where accessibility_theme = 'tritanopia'
    ), '#dc2626',
    'the settings left out are kept'
);
select isnt(
    pg_temp.call_as('anon', $$api.logo_materials('{}')$$, 'theme=tritanopia') -> 'headers' -> 0 ->> 'ETag',
    (select a -> 'headers' -> 0 ->> 'ETag' from answer), 'the edit changes the ETag'
);
select throws_ok(
    $$select pg_temp.call_as('reader', $q$api.update_logo_material('{}')$q$)$$, '42501', null, 'a reader may not edit'
);

select * from finish();
rollback;
