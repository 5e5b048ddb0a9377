-- The consent audit's text version checked by a domain instead of a foreign key (issue 13).
--
-- The foreign key consent_audit_text_fkey checked every row appended (two per submission) with an
-- RI query through SPI, its executor set up and the text locked FOR KEY SHARE: 59k instructions of
-- a submission's 2.08M (callgrind, session 10; the domain's check costs 9k of them back). The
-- column is now the domain app.consent_text_version, whose check app_logic.compile_consent_text_at
-- writes from app.consent_texts on every change of the table (the list of versions, and a refusal
-- in the key's SQLSTATE and words for any other) and which PostgreSQL prepares once per session.
-- Deleting a text a row names, or changing its version, is refused by a trigger on the texts in
-- the key's words (db/functions/030-consent.sql).
--
-- No rewrite and no scan under the lock: the domain has no check yet, so the column changes to it
-- as it is (binary coercible; no index reads it), and the compile adds the check NOT VALID: every
-- stored row passed the key it replaces. Squawk's warnings are about that drop and type change.
-- squawk-ignore-file ban-drop-constraint, changing-column-type
create domain app.consent_text_version as text;
comment on domain app.consent_text_version is
'The version of the consent text a consent-audit row names: one of app.consent_texts (checked by a compiled list).';

alter table app.consent_audit
drop constraint consent_audit_text_fkey,
alter column consent_text_version type app.consent_text_version;
