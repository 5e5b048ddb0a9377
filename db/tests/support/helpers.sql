-- The pgTAP helpers every test file uses, loaded once into the pgTAP database before pg_prove
-- runs the files (chorus_db.testing.run_pgtap). They live in schema tap, outside what the build
-- makes, and every API role may call them, as the tests switch roles the way PostgREST does.

create schema tap;
comment on schema tap is 'pgTAP helpers of db/tests (tests only; never in a built database).';

-- A call as a role, the way PostgREST makes it (role and response.status per transaction):
-- {"status": the status the call set or null, "body": what it returned}.
create function tap.call_as(p_role text, p_call text) returns jsonb
language plpgsql volatile
as $$
declare
    v_body jsonb;
begin
    perform set_config('response.status', '', true);
    perform set_config('role', p_role, true);
    execute 'select ' || p_call into v_body;
    reset role;
    return jsonb_build_object('status', nullif(current_setting('response.status'), '')::integer, 'body', v_body);
end
$$;

-- The same with the query string nginx forwards in X-Chorus-Query (the query-string GETs of
-- db/functions/201-query-strings.sql) as the only request header.
create function tap.call_with_query(p_role text, p_call text, p_query text default null) returns jsonb
language plpgsql volatile
as $$
begin
    perform set_config('request.headers', coalesce(jsonb_build_object('x-chorus-query', p_query)::text, '{}'), true);
    return tap.call_as(p_role, p_call);
end
$$;

-- The errors list of a call, as the current role; side-effect free: whatever the call stored
-- is rolled back with the block's subtransaction.
create function tap.errors_of(p_call text) returns jsonb
language plpgsql volatile
as $$
declare
    v_body jsonb;
begin
    execute 'select ' || p_call into v_body;
    raise sqlstate 'TSTRB';
exception when sqlstate 'TSTRB' then
    return v_body -> 'errors'; -- variables survive the rollback of the block
end
$$;

-- One {field, message} problem, as the validator writes it.
create function tap.one_error(p_field text, p_message text) returns jsonb
language sql immutable
as $$
    select jsonb_build_array(jsonb_build_object('field', p_field, 'message', p_message))
$$;

-- The fields a rule finds wrong in a body, sorted and distinct.
create function tap.bad_fields(p_body jsonb, p_rule jsonb) returns text[]
language sql stable
as $$
    select coalesce(array_agg(distinct p ->> 'field' order by p ->> 'field'), '{}')
    from jsonb_array_elements(app_logic.validate(p_body, p_rule)) as p
$$;

-- A valid POST /api/leads body with some fields replaced.
create function tap.lead(p_overrides jsonb default '{}') returns jsonb
language sql immutable
as $$
    select '{"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "gdprConsent": true}'::jsonb
        || p_overrides
$$;

-- The errors of submitting tap.lead(overrides) as the current role, nothing kept. The body is
-- passed as jsonb, never printed into a statement: tests of huge numbers depend on it.
create function tap.lead_errors(p_overrides jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_body jsonb;
begin
    v_body := api.submit_lead(tap.lead(p_overrides));
    raise sqlstate 'TSTRB';
exception when sqlstate 'TSTRB' then
    return v_body -> 'errors';
end
$$;

-- The plan of a query as text (EXPLAIN VERBOSE, no costs): what a test of inlining reads.
create function tap.plan_of(p_query text) returns text
language plpgsql volatile
as $$
declare
    v_line text;
    v_plan text := '';
begin
    for v_line in execute 'explain (verbose, costs off) ' || p_query loop
        v_plan := v_plan || v_line || E'\n';
    end loop;
    return v_plan;
end
$$;

grant usage on schema tap to anon, reader, admin;
grant execute on all functions in schema tap to anon, reader, admin;
-- pgTAP's own functions, for assertions made while a test has switched to an API role.
grant execute on all functions in schema public to anon, reader, admin;
