-- The consent audit's two-column rule in a shorter form (issue 13).
--
-- PostgreSQL 15 reads a table CHECK's stored node string again for every INSERT statement, then
-- simplifies and compiles it (ExecRelCheck). "event not in ('consent', 'request')" was stored as
-- an ARRAY[...] of two constants (1,279 characters), which the simplifier folds into an array
-- again each time. The events are a domain's (consent, request, erasure; db/schema/440), checked
-- before any table CHECK, so "not a consent or a request" is "an erasure": one comparison, 976
-- characters, 14.7k instructions fewer per submission (callgrind). The consent fields come first,
-- so a consent or a request row is decided by its two null tests.
--
-- The same rows pass and fail, with the same name, so a refusal reads as before (SQLSTATE 23514,
-- 'new row for relation "consent_audit" violates check constraint "consent_audit_consent_fields"');
-- pgTAP 030-consent-fields compares the two rules on every combination.
--
-- One ALTER TABLE: the old rule goes and the new one comes in the same statement, under one lock.
-- NOT VALID scans nothing: every stored row passed the rule it replaces, which refuses the same
-- rows. Squawk's warning is about that drop.
-- squawk-ignore-file ban-drop-constraint
alter table app.consent_audit
drop constraint consent_audit_consent_fields,
add constraint consent_audit_consent_fields check (
    (consent_type is not null and granted is not null) or event = 'erasure'
) not valid;
