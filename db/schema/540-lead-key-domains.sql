-- app.leads' last two single-column CHECKs, email's and session_id's, as domains (issue 13), as
-- db/schema/471 made the others: a table CHECK is read from the catalog, simplified and compiled
-- again for every INSERT statement, a domain's check once per session. Measured with callgrind
-- per framed submission: the email check cost 52k instructions, the session id's 21k (2% of a
-- submission); the rule and the SQLSTATE of a refusal (23514) stay the same. app.lead_sessions,
-- which a submission naming a session writes, checks its session_id with the same domain (its
-- primary key, on the plain column, is kept as it is).
--
-- 471 left these two because a change of their column's type rebuilds the indexes that read them
-- (PostgreSQL reuses only an index without expressions or predicate): leads_email_key, on
-- lower(email), and the partial leads_session_id_idx, built again under the ACCESS EXCLUSIVE lock
-- this transaction holds. The rows are not rewritten (text to a domain over text is binary
-- coercible) nor checked (each check is added NOT VALID: every stored row passed the table
-- constraint it replaces). The type change, both rebuilds included, took 0.24 and 0.28 s for
-- 100,000 leads (half of them with a session id) on the 2-core development machine at load 4.5;
-- submissions wait for it, none fails.
--
-- Squawk's warnings are about what this file keeps: each dropped check comes back in the same
-- transaction (as its domain's), and a NOT VALID domain check scans nothing.
-- squawk-ignore-file ban-drop-constraint, changing-column-type, ban-alter-domain-with-add-constraint

create domain app.lead_email as text;
comment on domain app.lead_email is 'A lead''s email address, 3 to 254 characters; unique whatever its letter case.';
create domain app.lead_session_id as text;
comment on domain app.lead_session_id is 'The session id a lead was sent from, 1 to 100 characters.';

alter table app.leads
drop constraint leads_email_check,
drop constraint leads_session_id_check;

alter table app.leads
alter column email type app.lead_email,
alter column session_id type app.lead_session_id;

alter table app.lead_sessions drop constraint lead_sessions_session_id_check;
alter table app.lead_sessions alter column session_id type app.lead_session_id;

alter domain app.lead_email add constraint lead_email_check
check (char_length(value) between 3 and 254) not valid;
alter domain app.lead_session_id add constraint lead_session_id_check
check (char_length(value) between 1 and 100) not valid;
