-- The consent audit's last table CHECK, consent_audit_consent_fields (a consent or a request
-- names its consent type and says granted), as an index that must stay empty (issue 13, session
-- 11), as db/schema/670 made leads_phone_needed. PostgreSQL reads a table CHECK from its stored
-- node string (985 characters for this one), simplifies and compiles it again for every INSERT
-- statement (ExecConstraints): 35.4k instructions of a framed submission (callgrind, 2.00M), 24k
-- of them stringToNode. An index's predicate is kept parsed in the relation cache, and only
-- copied and compiled per statement: this index costs 14.2k, so a submission takes 21.2k fewer.
--
-- The index covers exactly the rows the CHECK refused (no consent type or no granted, and not an
-- erasure: event is NOT NULL and the null tests are never null, so the predicate is true exactly
-- where the CHECK was false; an erasure is tested last, as a submission's rows fail the first
-- test). Its key is the constant false cast to a domain whose check refuses false (a key built
-- from the columns only cost 1.1k more to copy): a row the index would hold cannot be written, by
-- an INSERT, an UPDATE (a change of any of the three columns is not HOT, so the index is
-- maintained; the audit's guard refuses updates anyway), COPY or ON CONFLICT alike, and the index
-- holds no entry. The refusal keeps its SQLSTATE (23514, check_violation) and its constraint
-- name, consent_audit_consent_fields (the error's constraint field); its message now reads 'value
-- for domain app.consent_fields_given violates check constraint "consent_audit_consent_fields"',
-- and the error names the domain where it named the table. Two differences, both about rows
-- refused either way: an index entry is made after the row's unique key is checked, so a row
-- both refused here and repeating a (subject, seq) is refused as the duplicate (23505) where the
-- CHECK came first, and an INSERT ... ON CONFLICT DO NOTHING of such a row whose (subject, seq)
-- is taken inserts nothing without an error; nothing is stored in any case.
-- pgTAP 030-consent-fields (every combination of event, consent type and granted, inserted and
-- updated) and tests/test_consent.py (INSERT, ON CONFLICT, COPY) hold the refusals.
--
-- The CHECK is dropped in the same transaction that creates the index. Building the index reads
-- the audit under a SHARE lock (appends wait, reads go on) and evaluates the key only for a row
-- the predicate holds, of which the CHECK left none (every stored row passed it or the rule it
-- replaced, which refused the same rows: db/schema/650). It took 31 and 41 ms for 200,000 audit
-- rows on the 2-core development machine at load 4.5; appends wait for it, none fails. The build
-- runs in one transaction, so the index cannot be built CONCURRENTLY.
-- Squawk's warnings are about what this file keeps: the dropped CHECK comes back in the same
-- transaction as the index, and the new domain's constraint binds no column yet.
-- squawk-ignore-file ban-drop-constraint, ban-create-domain-with-constraint

create domain app.consent_fields_given as boolean constraint consent_audit_consent_fields check (value);
comment on domain app.consent_fields_given is
'The key of consent_audit_consent_fields_idx (the constant false): refuses it, so no consent or request '
'lacks its consent type or granted.';

alter table app.consent_audit drop constraint consent_audit_consent_fields;
-- squawk-ignore require-concurrent-index-creation
create index consent_audit_consent_fields_idx on app.consent_audit (
    ((false)::app.consent_fields_given)
)
where (consent_type is null or granted is null) and event <> 'erasure';
comment on index app.consent_audit_consent_fields_idx is
'Always empty: its key''s domain refuses a consent or a request without its consent type or granted '
'(was the CHECK consent_audit_consent_fields).';
