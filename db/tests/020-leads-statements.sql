-- The statements api.submit_lead runs for a new lead (issue 13): PL/pgSQL sets up every
-- expression it reaches again in each transaction, so the body's cost follows the number of
-- statements run. Counted by plpgsql_check's profiler: 12 for a new address without a session
-- (the block, screening, spam test, the marketing flag, the loop and its one statement and exit,
-- consent, the confirmation test and the answer); the lead's row comes from the body inside the
-- INSERT (app_logic.lead_values), so only a known address builds its fields as JSON, in its
-- branch, where it also claims its session.
begin;
select plan(3);

create extension plpgsql_check;
select set_config('plpgsql_check.profiler', 'on', true);
delete from app.rate_limit_rules
where action = 'leads';
select set_config('request.headers', '{"x-real-ip": "203.0.113.40", "user-agent": "pgtap"}', true);

set local role anon;
select api.submit_lead(tap.lead());
reset role;
select is(
    (select sum(p.exec_stmts)::integer from plpgsql_profiler_function_tb('api.submit_lead(jsonb)') as p),
    12,
    'a new lead runs 12 statements of submit_lead''s body'
);

select plpgsql_profiler_reset('api.submit_lead(jsonb)');
set local role anon;
select api.submit_lead(tap.lead('{"firstName": "Mallory", "sessionId": "stmt-known"}'));
reset role;
select is(
    (select sum(p.exec_stmts)::integer from plpgsql_profiler_function_tb('api.submit_lead(jsonb)') as p),
    21,
    'a known address runs the lookup, the withdrawal test, the cancellation, the resubmission and the claim besides'
);
select is(
    app_logic.session_lead(
        'stmt-known'), (
        select l.id from app.leads as l
        where l.email = 'ada@example.org'
    ),
    'the known address claims the session its resubmission named'
);

select * from finish();
rollback;
