-- The consent audit: what an accepted submission records, the per-subject hash chain, the
-- append-only guarantee for every role (the owner included) and that API roles cannot touch it.
begin;
select plan(17);

delete from app.rate_limit_rules
where action = 'leads';
select set_config(
    'request.headers', '{"x-real-ip": "2001:db8:1:2::abcd", "user-agent": "pgtap-agent"}', true
);
select set_config('app.frozen_now', '2026-03-01 10:00:00+00', true);
-- The text in force is the newest published one (app.consent_texts): February's, in March.
insert into app.consent_texts (version, body, sha256, valid_from)
values ('2026-02', 'Text of February.', sha256(convert_to('Text of February.', 'UTF8')), '2026-02-01');

select api.submit_lead(
    '{"firstName": "Ada", "lastName": "L", "email": "Ada@Example.org", "gdprConsent": true, "marketingConsent": true}'
);
select api.submit_lead('{"firstName": "Ada", "lastName": "L", "email": "ada@example.ORG", "gdprConsent": true}');

select results_eq(
    $$ select seq::integer, event::text, consent_type::text, granted, source::text, user_agent::text, consent_text_version::text
       from app.consent_audit order by seq $$,
    $$ values (1, 'consent', 'gdpr', true, 'web_form', 'pgtap-agent', '2026-02'),
              (2, 'request', 'marketing', true, 'web_form', 'pgtap-agent', '2026-02'),
              (3, 'consent', 'gdpr', true, 'web_form', 'pgtap-agent', '2026-02'),
              (4, 'consent', 'marketing', false, 'web_form', 'pgtap-agent', '2026-02') $$,
    'each submission records GDPR and marketing consent with source, user agent and text version'
);
select is(
    (select array_agg(distinct subject) from app.consent_audit),
    array[app_logic.pseudonym('ada@example.org')],
    'the subject is the pseudonym of the lower-cased email, one chain per person'
);
select is(
    (select array_agg(distinct ip_hash) from app.consent_audit),
    array[app_logic.pseudonym('2001:db8:1:2::abcd')],
    'the IP is kept as the pseudonym of the full address'
);
select is(
    (
        select count(*)::integer from app.consent_audit
        where recorded_at = '2026-03-01 10:00:00+00'
    ),
    4,
    'the time of each consent is recorded'
);
select ok(
    app_logic.consent_chain_is_intact(app_logic.pseudonym('ada@example.org')),
    'the subject''s hash chain is intact'
);
select is(
    (
        select count(*)::integer from app.consent_audit as a
        inner join app.consent_audit as b on a.subject = b.subject and b.seq = a.seq + 1
        where b.prev_hash = a.row_hash
    ),
    3,
    'each row is chained to its predecessor'
);

select throws_ok(
    'update app.consent_audit set granted = false', 'CHA01', 'the consent audit is append-only: UPDATE is refused',
    'the owner cannot update the audit'
);
select throws_ok(
    'delete from app.consent_audit', 'CHA01', 'the consent audit is append-only: DELETE is refused',
    'the owner cannot delete from the audit'
);
select throws_ok(
    'truncate app.consent_audit', 'CHA01', 'the consent audit is append-only: TRUNCATE is refused',
    'the owner cannot truncate the audit'
);
set local session_replication_role = replica;
select throws_ok(
    'delete from app.consent_audit', 'CHA01', 'the consent audit is append-only: DELETE is refused',
    'the guard holds with session_replication_role = replica'
);
reset session_replication_role;
select is((select count(*)::integer from app.consent_audit), 4, 'the audit still holds every row');

-- Tampering (possible only by dropping the guard) is evident from the chain.
alter table app.consent_audit disable trigger consent_audit_append_only;
update app.consent_audit set granted = false
where seq = 2;
select ok(
    not app_logic.consent_chain_is_intact(app_logic.pseudonym('ada@example.org')),
    'a changed row breaks the chain'
);
alter table app.consent_audit enable always trigger consent_audit_append_only;

grant execute on all functions in schema public to anon, reader, admin;
grant all on all tables in schema pg_temp to anon, reader, admin;
grant all on all sequences in schema pg_temp to anon, reader, admin;
select is_empty(
    $$ select r, p from unnest(array['anon', 'reader', 'admin']) as r,
       unnest(array['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger']) as p
       where has_table_privilege(r, 'app.consent_audit', p) $$,
    'no API role holds any privilege on the audit'
);
set local role reader;
select throws_ok(
    $$ insert into app.consent_audit (subject, seq, event, source, row_hash) values ('x', 9, 'erasure', 'x', '\x00') $$,
    '42501', 'permission denied for table consent_audit', 'reader cannot write to the audit'
);
reset role;
set local role admin;
select throws_ok(
    'select * from app.consent_audit', '42501', 'permission denied for table consent_audit', 'admin cannot read the audit'
);
select throws_ok(
    $$ select app_logic.append_consent('x', 'consent', 'gdpr', true, 'web_form') $$,
    '42501', 'permission denied for function append_consent', 'admin cannot append to the audit directly'
);
reset role;

-- The pepper is read once for both HMACs of a form's consent (the address's and the email's):
-- one read of app.settings, not one per use.
create temporary table settings_reads on commit drop as
select t.seq_scan + t.idx_scan as reads
from pg_stat_xact_user_tables as t
where t.relid = 'app.settings'::regclass;
select app_logic.record_form_consent('pepper.once@example.org', false, null);
select is(
    (
        select t.seq_scan + t.idx_scan
        from pg_stat_xact_user_tables as t
        where t.relid = 'app.settings'::regclass
    ) - (select r.reads from settings_reads as r),
    1::bigint,
    'recording a form''s consents reads the pepper once'
);

select * from finish();
rollback;
