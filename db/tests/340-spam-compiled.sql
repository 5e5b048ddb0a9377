-- The spam rules compiled (db/functions/340-spam.sql): app_logic.spam_rule answers what
-- app.spam_rules holds, after every kind of change; app_logic.spam_screen_needed is false only
-- where screen_spam answers null and changes nothing, for hostile and valid bodies under every
-- kind of rule; it is inlined and folded into its caller's plan, which follows a change of the
-- rules; and a submission with nothing to check reads no rule.
begin;
select plan(9);

select set_config('app.frozen_now', '2030-01-01 10:00:00+00', true);

-- Bodies: valid, and every way a honeypot, form token or ALTCHA payload can be sent.
create temporary table bodies (body jsonb) on commit drop;
insert into bodies
select tap.lead(extra::jsonb)
from unnest(array[
    '{}', '{"website": ""}', '{"website": " "}', '{"website": "   "}', '{"website": "x"}',
    '{"website": "http://spam.example"}', E'{"website": "\\t"}', E'{"website": "\\u00a0"}',
    E'{"website": "\\u200b"}', '{"website": null}', '{"website": 0}', '{"website": false}',
    '{"website": []}', '{"website": {}}', '{"website": [[[[[[[[[[1]]]]]]]]]]}', '{"Website": "x"}',
    '{"website ": "x"}', '{"hp": "x"}', '{"hp": ""}', '{"formToken": null}', '{"formToken": ""}',
    '{"formToken": 1}', '{"formToken": {}}', '{"formToken": "x"}', '{"formtoken": "x"}',
    '{"altcha": "x"}', '{"altcha": null}', '{"altcha": "e30="}', '{"website": "", "formToken": "x", "altcha": "x"}'
]) as extra;
insert into bodies values ('{}'), ('[]'), ('null'), ('"website"'), ('{"website": "x"}');
-- A form token of this server, old enough and too young; a correct ALTCHA solution.
insert into bodies
select tap.lead(jsonb_build_object('formToken', app_logic.issue_form_token_handler('{}') ->> 'formToken'));
select set_config('app.frozen_now', '2030-01-01 10:00:10+00', true);
insert into bodies
select tap.lead(jsonb_build_object('formToken', app_logic.issue_form_token_handler('{}') ->> 'formToken'));
insert into bodies
select
    tap.lead(jsonb_build_object('altcha', encode(convert_to(jsonb_build_object(
        'algorithm', 'SHA-256', 'number', 5, 'salt', s.salt,
        'challenge', encode(sha256(convert_to(s.salt || '5', 'UTF8')), 'hex'),
        'signature', app_logic.spam_hmac(encode(sha256(convert_to(s.salt || '5', 'UTF8')), 'hex'))
    )::text, 'UTF8'), 'base64')))
from (select 'cafe?expires=' || extract(epoch from timestamptz '2030-01-01 11:00:00+00')::bigint || '&' as salt) as s;

-- Inlined and folded: with the seeded rule a caller's plan holds the honeypot's and the token's
-- tests on the body, no rule, no call.
select matches(
    tap.plan_of($$ select app_logic.spam_screen_needed('leads', current_setting('x.b', true)::jsonb) $$),
    '^(?!.*(spam_rule|spam_screen_needed|action)).*''website''.*''formToken''',
    'spam_screen_needed is inlined into its caller and its rule folded into the plan: no function called, no rule read'
);

-- A submission with nothing for the rule to check reads no rule; one that fills in the
-- honeypot does (it is dropped quietly).
delete from app.rate_limit_rules
where action = 'leads';
select set_config('request.headers', '{"x-real-ip": "203.0.113.30", "user-agent": "pgtap"}', true);
create temporary table rule_reads (name text, reads bigint) on commit drop;
create function pg_temp.rule_reads() returns bigint
language sql volatile
as $$
    select coalesce(t.seq_scan, 0) + coalesce(t.idx_scan, 0) from pg_stat_xact_user_tables as t
    where t.relid = 'app.spam_rules'::regclass
$$;
insert into rule_reads values ('before', pg_temp.rule_reads());
set local role anon;
select api.submit_lead(tap.lead('{"sessionId": "spam-plain"}'));
reset role;
insert into rule_reads values ('plain', pg_temp.rule_reads());
set local role anon;
select api.submit_lead(tap.lead('{"email": "bot@example.org", "website": "http://spam.example"}'));
reset role;
insert into rule_reads values ('honeypot', pg_temp.rule_reads());
select is(
    (
        select array_agg(r.reads - b.reads order by r.name desc) from rule_reads as r cross join rule_reads as b
        where b.name = 'before' and r.name <> 'before'
    ),
    array[0, 1]::bigint[],
    'a plain submission reads no spam rule; one that fills in the honeypot reads its rule'
);
select is(
    (select array_agg(l.email::text) from app.leads as l), array['ada@example.org'],
    'the plain submission is stored, the honeypot''s is not'
);

-- A plan a connection keeps (PostgREST prepares its statements) follows a change of the rules.
set local plan_cache_mode = force_generic_plan;
prepare needed (jsonb) as select app_logic.spam_screen_needed('leads', $1) as needed;
create temporary table kept_before on commit drop as execute needed('{"hp": "x"}');
update app.spam_rules set honeypot_field = 'hp'
where action = 'leads';
create temporary table kept_after on commit drop as execute needed('{"hp": "x"}');
select is(
    (select b.needed::text || ' ' || a.needed::text from kept_before as b cross join kept_after as a),
    'false true',
    'a kept plan follows an UPDATE of the rules at its next execution'
);
deallocate needed;
reset plan_cache_mode;

-- One answer (body, response.status, challenges used), in a subtransaction rolled back after it,
-- so that neither path sees what the other did.
create function pg_temp.answer(p_compiled boolean, p_action text, p_body jsonb) returns text
language plpgsql volatile
as $$
declare
    v_answer text;
begin
    begin
        perform set_config('response.status', '', true);
        if p_compiled then
            v_answer := (
                case when app_logic.spam_screen_needed(p_action, p_body) then app_logic.screen_spam(p_action, p_body) end
            )::text;
        else
            v_answer := app_logic.screen_spam(p_action, p_body)::text;
        end if;
        v_answer := format(
            '%s|%s|%s', v_answer, current_setting('response.status', true), (select count(*) from app.used_challenges)
        );
        raise exception using errcode = 'P0099', message = v_answer;
    exception when sqlstate 'P0099' then
        return sqlerrm;
    end;
end
$$;

-- Every kind of rule: as seeded, without a honeypot, requiring a token, proof of work, all of
-- them, another endpoint's only, none; each written by a statement the trigger follows.
create temporary table answers (rule text, action text, body jsonb, by_table text, compiled text) on commit drop;
create temporary table compiled_rules (rule text, action text, compiled jsonb, stored jsonb) on commit drop;
create function pg_temp.compare(p_rule text) returns void
language plpgsql volatile
as $$
begin
    insert into compiled_rules
    select p_rule, a.action, app_logic.spam_rule(a.action)::jsonb, (select to_jsonb(r) from app.spam_rules as r where r.action = a.action)
    from (select r.action from app.spam_rules as r union select 'leads' union select 'other') as a;
    insert into answers
    select p_rule, a.action, b.body, pg_temp.answer(false, a.action, b.body), pg_temp.answer(true, a.action, b.body)
    from bodies as b cross join unnest(array['leads', 'other', '', null]) as a (action);
end
$$;

update app.spam_rules set honeypot_field = 'website'
where action = 'leads';
select pg_temp.compare('seeded');
update app.spam_rules set honeypot_field = null
where action = 'leads';
select pg_temp.compare('no honeypot');
update app.spam_rules set honeypot_field = 'hp', form_token_required = true
where action = 'leads';
select pg_temp.compare('token required');
update app.spam_rules set form_token_required = false, proof_of_work = true
where action = 'leads';
select pg_temp.compare('proof of work');
update app.spam_rules set honeypot_field = 'website', form_token_required = true, min_seconds = 0
where action = 'leads';
select pg_temp.compare('everything');
insert into app.spam_rules (action, honeypot_field) values ('other', 'website');
delete from app.spam_rules
where action = 'leads';
select pg_temp.compare('another endpoint only');
truncate app.spam_rules;
select pg_temp.compare('none');

select is_empty(
    'select rule, action from compiled_rules where compiled is distinct from stored',
    'the compiled rules answer what app.spam_rules holds after every insert, update, delete and truncate'
);
select is_empty(
    'select rule, action, body, by_table, compiled from answers where by_table is distinct from compiled',
    'screen_spam behind spam_screen_needed answers what screen_spam alone answers, for every body and rule'
);
select ok(
    (
        select count(*) from bodies) > 35 and (
        select count(distinct rule) from compiled_rules
        where stored is not null
    ) = 6,
    'the comparison covers the hostile bodies and six kinds of rule'
);
select is(
    (
        select array_agg(a.answer order by a.answer) from (
            select distinct split_part(by_table, '|', 2) || ' ' || split_part(by_table, '|', 3) as answer
            from answers
            where by_table not like '%altcha%'
        ) as a
    ),
    array[' 0', ' 1', '201 0'],
    'the bodies meet every answer: null, null with a solution used, the quiet 201'
);
select ok(
    exists (
        select from answers
        where by_table like '%"altcha"%|400|0'
    ),
    'and the 400 naming altcha'
);

select * from finish();
rollback;
