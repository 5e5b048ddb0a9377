-- Tamper evidence of the consent audit: app_logic.verify_consent_chain() finds a row changed,
-- re-hashed or deleted behind the audit's back (as superuser with its triggers disabled),
-- and every role, the owner included, is refused UPDATE, DELETE and TRUNCATE.
begin;
select plan(26);

-- Two subjects with three rows each, interleaved as real traffic would be.
select app_logic.append_consent('subject-a', 'consent', 'gdpr', true, 'test', 'iphash-a', 'UA a');
select app_logic.append_consent('subject-b', 'consent', 'gdpr', true, 'test');
select app_logic.append_consent('subject-a', 'consent', 'marketing', true, 'test');
select app_logic.append_consent('subject-b', 'consent', 'marketing', false, 'test');
select app_logic.append_consent('subject-a', 'consent', 'marketing', false, 'test');
select app_logic.append_consent('subject-b', 'erasure', null, null, 'test');

select is_empty(
    'select * from app_logic.verify_consent_chain()',
    'an untouched audit verifies'
);

-- The owner is refused too (the tests run as superuser).
select throws_ok(
    $$ update app.consent_audit set granted = false where subject = 'subject-a' and seq = 1 $$,
    'CHA01', 'the consent audit is append-only: UPDATE is refused',
    'UPDATE is refused even for the owner'
);
select throws_ok(
    $$ delete from app.consent_audit where subject = 'subject-a' and seq = 2 $$,
    'CHA01', 'the consent audit is append-only: DELETE is refused',
    'DELETE is refused even for the owner'
);
select throws_ok(
    'truncate app.consent_audit',
    'CHA01', 'the consent audit is append-only: TRUNCATE is refused',
    'TRUNCATE is refused even for the owner'
);

-- Behind the audit's back: triggers off, as a superuser could. Each tampering runs in a
-- subtransaction that is rolled back after the verification saw it.
alter table app.consent_audit disable trigger user;

create function pg_temp.verify_after(p_tamper text, out subject text, out seq integer, out reason text)
language plpgsql volatile
as $$
begin
    begin
        execute p_tamper;
        select v.subject, v.seq, v.reason into subject, seq, reason from app_logic.verify_consent_chain() as v;
        raise exception 'undo the tampering' using errcode = 'CHT00';
    exception when sqlstate 'CHT00' then
        null;
    end;
end
$$;

select results_eq(
    $$ select * from pg_temp.verify_after(
        $t$ update app.consent_audit set granted = false where subject = 'subject-a' and seq = 1 $t$
    ) $$,
    $$ values ('subject-a', 1, 'row_hash does not match the row''s content: the row was changed') $$,
    'a changed consent value is detected on the changed row'
);

select results_eq(
    $$ select subject, seq from pg_temp.verify_after(
        $t$ update app.consent_audit set recorded_at = recorded_at - interval '1 day'
            where subject = 'subject-b' and seq = 2 $t$
    ) $$,
    $$ values ('subject-b', 2) $$,
    'a back-dated row is detected'
);

-- The forger recomputes the changed row's hash: the next row's link no longer matches.
select results_eq(
    $$ select * from pg_temp.verify_after(
        $t$ update app.consent_audit as a set
                granted = true,
                row_hash = app_logic.consent_row_hash(
                    a.subject, a.seq, a.event, a.consent_type, true, a.source, a.ip_hash, a.user_agent,
                    a.consent_text_version, a.recorded_at, a.prev_hash
                )
            where a.subject = 'subject-b' and a.seq = 2 $t$
    ) $$,
    $$ select 'subject-b', 3, format(
        'prev_hash does not match the hash of the row before it (id %s): one of them was altered', a.id
    ) from app.consent_audit as a where a.subject = 'subject-b' and a.seq = 2 $$,
    'a re-hashed row is detected through its successor''s prev_hash, which points at the row before it'
);

select results_eq(
    $$ select * from pg_temp.verify_after(
        $t$ delete from app.consent_audit where subject = 'subject-a' and seq = 2 $t$
    ) $$,
    $$ values ('subject-a', 3, 'seq 3 follows seq 1: 1 row(s) between them are missing') $$,
    'a deleted row in the middle of a chain is detected as a gap'
);

select results_eq(
    $$ select * from pg_temp.verify_after(
        $t$ delete from app.consent_audit where subject = 'subject-b' and seq = 1 $t$
    ) $$,
    $$ values ('subject-b', 2, 'the chain starts at seq 2: the rows before it are missing') $$,
    'a deleted first row is detected'
);

select results_eq(
    $$ select subject, seq from pg_temp.verify_after(
        $t$ update app.consent_audit set subject = 'subject-a', seq = 4 where subject = 'subject-b' and seq = 3 $t$
    ) $$,
    $$ values ('subject-a', 4) $$,
    'a row moved into another person''s chain is detected'
);

select results_eq(
    $$ select subject, seq from pg_temp.verify_after(
        $t$ update app.consent_audit set source = 'forged'
            where (subject = 'subject-b' and seq = 3) or (subject = 'subject-a' and seq = 2) $t$
    ) $$,
    $$ values ('subject-a', 2) $$,
    'with several broken rows the first one (by id) is named'
);

alter table app.consent_audit enable trigger user;

select is_empty(
    'select * from app_logic.verify_consent_chain()',
    'after the tampering is rolled back the audit verifies again'
);

-- A form submission appends its two consents in one go: the rows are those two single
-- appends would have written (same seq, values and time), chained in order.
select app_logic.append_consents(
    'subject-c', array['consent', 'consent'], array['gdpr', 'marketing'], array[true, false], 'test', 'iphash-c', 'UA c'
);
select app_logic.append_consent('subject-d', 'consent', 'gdpr', true, 'test', 'iphash-c', 'UA c');
select app_logic.append_consent('subject-d', 'consent', 'marketing', false, 'test', 'iphash-c', 'UA c');

select results_eq(
    $$ select seq, event, consent_type, granted, source, ip_hash, user_agent, consent_text_version, recorded_at,
            prev_hash is null
        from app.consent_audit where subject = 'subject-c' order by id $$,
    $$ select seq, event, consent_type, granted, source, ip_hash, user_agent, consent_text_version, recorded_at,
            prev_hash is null
        from app.consent_audit where subject = 'subject-d' order by id $$,
    'two rows appended at once equal two rows appended one by one, in id order'
);

select is_empty(
    'select * from app_logic.verify_consent_chain()',
    'rows appended at once verify'
);

select throws_ok(
    $$ select app_logic.append_consents('subject-e', array['consent'], array['gdpr', 'marketing'], array[true], 'test') $$,
    '22023', 'events, consent types and granted must have one entry per row',
    'arrays of different lengths are refused'
);

-- Rows appended at once continue a chain that has rows (subject-a's first three are above).
select app_logic.append_consents(
    'subject-a', array['consent', 'request', 'consent'], array['gdpr', 'marketing', 'marketing'], array[true, true, false],
    'test', 'iphash-a', 'UA a', 7
);
select results_eq(
    $$ select c.seq::integer, c.linked, c.consent_text_version::text
       from (
           select a.seq, a.submission_id, a.prev_hash = lag(a.row_hash) over (order by a.seq) as linked, a.consent_text_version
           from app.consent_audit as a where a.subject = 'subject-a'
       ) as c
       where c.submission_id = 7 order by c.seq $$,
    $$ values (4, true, '2026-01'::text), (5, true, '2026-01'), (6, true, '2026-01') $$,
    'three rows appended at once follow the chain''s end, each linked to the one before, with the text in force'
);
select is_empty(
    'select * from app_logic.verify_consent_chain()',
    'the continued chain verifies'
);

-- The value rules (domains since db/schema/440: a table CHECK is prepared again for every INSERT).
select throws_ok(
    $$ select app_logic.append_consents('subject-f', array['granted'], array['gdpr'], array[true], 'test') $$,
    '23514', null, 'an unknown event is refused'
);
select throws_ok(
    $$ select app_logic.append_consents('subject-f', array['consent'], array['newsletter'], array[true], 'test') $$,
    '23514', null, 'an unknown consent type is refused'
);
select throws_ok(
    $$ select app_logic.append_consents('subject-f', array['consent'], array['gdpr'], array[null::boolean], 'test') $$,
    '23514', null, 'a consent without granted is refused'
);
select throws_ok(
    $$ select app_logic.append_consent('subject-f', 'consent', 'gdpr', true, repeat('s', 51)) $$,
    '23514', null, 'a source longer than 50 characters is refused'
);
select throws_ok(
    $$ insert into app.consent_audit (subject, seq, event, source, row_hash) values ('subject-f', 0, 'erasure', 't', '\x00') $$,
    '23514', null, 'a seq below 1 is refused'
);
select app_logic.append_consent('subject-g', 'consent', 'gdpr', true, 'test', null, repeat('u', 600));
select is(
    (
        select char_length(user_agent) from app.consent_audit
        where subject = 'subject-g'
    ),
    512,
    'a user agent longer than 512 characters is kept to its first 512'
);
select throws_ok(
    $$ insert into app.consent_audit (subject, seq, event, source, user_agent, row_hash)
       values ('subject-h', 1, 'erasure', 't', repeat('u', 513), '\x00') $$,
    '23514', null, 'the audit refuses a user agent longer than 512 characters'
);
select ok(
    not has_function_privilege(
        'anon', 'app_logic.append_consents(text, text[], text[], boolean[], text, text, text, bigint)', 'execute'
    )
    and not has_function_privilege('reader', 'app_logic.append_consent(text, text, text, boolean, text, text, text)', 'execute')
    and not has_function_privilege('admin', 'app_logic.record_form_consent(text, boolean, bigint, boolean)', 'execute')
    and not has_function_privilege('anon', 'app_logic.request_marketing_confirmation(uuid)', 'execute')
    and not has_function_privilege('anon', 'app_logic.current_consent_text()', 'execute'),
    'no API role may run the consent writers (they are not SECURITY DEFINER: only the endpoints call them)'
);

select ok(
    not has_function_privilege('anon', 'app_logic.verify_consent_chain()', 'execute')
    and not has_function_privilege('reader', 'app_logic.verify_consent_chain()', 'execute')
    and not has_function_privilege('admin', 'app_logic.verify_consent_chain()', 'execute'),
    'no API role may run the verification (it reads every subject)'
);

select * from finish();
rollback;
