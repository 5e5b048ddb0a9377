-- How a form's consents are written (issue 13): PL/pgSQL runs a PERFORM as a SELECT through
-- SPI, an executor set up again in every transaction, while a condition is a simple expression.
-- So submit_lead calls record_form_consent, and record_form_consent calls append_consent_rows,
-- in an IF; what is left is the read of the pepper and the one INSERT (callgrind: 10k
-- instructions of a submission fewer than the two PERFORMs). Counted by plpgsql_check's profiler.
begin;
select plan(5);

create extension plpgsql_check;

create function pg_temp.statements(p_function regprocedure) returns jsonb
language sql volatile
as $$
    select coalesce(jsonb_object_agg(s.stmtname, s.runs), '{}')
    from (
        select p.stmtname, sum(p.exec_stmts) as runs
        from plpgsql_profiler_function_statements_tb(p_function) as p
        where p.exec_stmts > 0 and p.stmtname <> 'statement block'
        group by p.stmtname
    ) as s
$$;

-- No limit in the way, the profiler on, a client address for the IP's hash.
delete from app.rate_limit_rules
where action = 'leads';
select
    set_config('plpgsql_check.profiler', 'on', true) as profiler,
    set_config('request.headers', '{"x-real-ip": "203.0.113.41", "user-agent": "pgtap calls"}', true) as headers;
set local role anon;
select api.submit_lead(tap.lead('{"email": "calls@example.org"}'));
reset role;

select is(
    (select pg_temp.statements('api.submit_lead(jsonb)') -> 'PERFORM'),
    null,
    'a new lead''s submission runs no PERFORM: the consent is recorded in a condition'
);
select is(
    pg_temp.statements('app_logic.record_form_consent(text, boolean, bigint, boolean)'),
    '{"SQL statement": 1, "IF": 1}'::jsonb,
    'record_form_consent runs one query (the pepper) and calls the append in a condition'
);
select is(
    pg_temp.statements(
        'app_logic.append_consent_rows(text, text, text, text, bigint, text, text, boolean, boolean, text, text, boolean)'
    ),
    '{"SQL statement": 1, "IF": 1}'::jsonb,
    'the append takes the lock in a condition and runs one INSERT'
);
select is(
    (
        select jsonb_agg(jsonb_build_array(a.seq, a.event, a.consent_type, a.granted, a.source) order by a.seq)
        from app.consent_audit as a
        where a.subject = app_logic.person_pseudonym('calls@example.org')
    ),
    '[[1, "consent", "gdpr", true, "web_form"], [2, "consent", "marketing", false, "web_form"]]'::jsonb,
    'the submission''s two consents are in the audit'
);
select ok(
    app_logic.consent_chain_is_intact(app_logic.person_pseudonym('calls@example.org')),
    'and their chain is intact'
);

select * from finish();
rollback;
