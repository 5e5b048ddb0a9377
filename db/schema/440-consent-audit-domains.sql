-- The consent audit's single-column checks as domains instead of table CHECK constraints (issue 13).
--
-- PostgreSQL prepares a table's CHECK constraints again for every INSERT statement (each
-- expression read from the catalog, simplified and compiled): about 20 us of the one audit
-- INSERT a submission makes. A domain's checks are prepared once per session and kept in the
-- type cache. The rules and the SQLSTATE of a refusal (23514) stay the same.
--
-- No rewrite and no scan under the ACCESS EXCLUSIVE lock: each domain is created without its
-- check, the column changed to it (binary coercible, so rows and indexes stay as they are), and
-- the check added NOT VALID: every row already stored passed the table constraint it replaces.
-- The two-column check is re-added NOT VALID for the same reason (changing the type of a column
-- it reads would otherwise validate it again over the whole audit).
--
-- Squawk's three warnings are about what this file keeps: each dropped check comes back in the
-- same transaction (as its domain's, the last one NOT VALID), the type change rewrites nothing,
-- and a NOT VALID domain check scans nothing.
-- squawk-ignore-file ban-drop-constraint, changing-column-type, ban-alter-domain-with-add-constraint

create domain app.consent_event as text;
comment on domain app.consent_event is 'What a consent-audit row records: consent, request or erasure.';
create domain app.consent_kind as text;
comment on domain app.consent_kind is 'The consent a consent-audit row is about: gdpr or marketing.';
create domain app.consent_seq as integer;
comment on domain app.consent_seq is 'A position in a subject''s consent chain, from 1.';
create domain app.consent_source as text;
comment on domain app.consent_source is 'Where a consent-audit row came from (web_form, email_confirmation, ...).';
create domain app.consent_user_agent as text;
comment on domain app.consent_user_agent is 'The user agent kept with a consent, at most 512 characters.';

alter table app.consent_audit
drop constraint consent_audit_event_check,
drop constraint consent_audit_consent_type_check,
drop constraint consent_audit_seq_check,
drop constraint consent_audit_source_check,
drop constraint consent_audit_user_agent_check,
drop constraint consent_audit_consent_fields;

alter table app.consent_audit
alter column event type app.consent_event,
alter column consent_type type app.consent_kind,
alter column seq type app.consent_seq,
alter column source type app.consent_source,
alter column user_agent type app.consent_user_agent;

alter domain app.consent_event add constraint consent_event_check
check (value in ('consent', 'request', 'erasure')) not valid;
alter domain app.consent_kind add constraint consent_kind_check
check (value in ('gdpr', 'marketing')) not valid;
alter domain app.consent_seq add constraint consent_seq_check check (value >= 1) not valid;
alter domain app.consent_source add constraint consent_source_check check (char_length(value) <= 50) not valid;
alter domain app.consent_user_agent add constraint consent_user_agent_check
check (char_length(value) <= 512) not valid;

alter table app.consent_audit add constraint consent_audit_consent_fields check (
    event not in ('consent', 'request') or (consent_type is not null and granted is not null)
) not valid;
