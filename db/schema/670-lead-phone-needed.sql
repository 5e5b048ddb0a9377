-- app.leads' last table CHECK, leads_phone_needed (answering by phone needs a phone number), as
-- an index that must stay empty (issue 13). PostgreSQL reads a table CHECK from its stored node
-- string (749 characters for this one), simplifies and compiles it again for every INSERT
-- statement: 25k instructions of a framed submission (callgrind, 2.32M). An index's predicate
-- is kept parsed in the relation cache and only copied and compiled per statement: about 4k.
--
-- The index covers exactly the rows the CHECK refused (answered by phone, no phone number), and
-- its key is cast to a domain whose check refuses every value: a row the index would hold cannot
-- be written, by an INSERT, an UPDATE (a change of either column is not HOT, so the index is
-- maintained), COPY or ON CONFLICT alike, and the index holds no entry. The refusal keeps its
-- SQLSTATE (23514, check_violation) and names leads_phone_needed: 'value for domain
-- app.lead_phone_needed violates check constraint "leads_phone_needed"'. The API refuses such a
-- body before any INSERT anyway, naming preferredCommunication (submit_lead_checks). One
-- difference: an INSERT ... ON CONFLICT DO NOTHING of such a row whose address is already stored
-- now inserts nothing without an error (the CHECK ran before the conflict was seen); either way
-- nothing is stored.
-- pgTAP 020-leads-domains: inserts and updates of both columns, refused and stored.
--
-- The CHECK is dropped in the same transaction that creates the index. Building the index reads
-- the table under a SHARE lock (writes wait, reads go on) and evaluates the key only for a row
-- the predicate holds, of which the CHECK left none. The build runs in one transaction, so the
-- index cannot be built CONCURRENTLY.
-- Squawk's warnings are about what this file keeps: the dropped CHECK comes back in the same
-- transaction as the index, and the new domain's constraint binds no column yet.
-- squawk-ignore-file ban-drop-constraint, ban-create-domain-with-constraint

create domain app.lead_phone_needed as boolean constraint leads_phone_needed check (value);
comment on domain app.lead_phone_needed is
'The key of leads_phone_needed_idx: refuses every value, so no lead answered by phone lacks a number.';

alter table app.leads drop constraint leads_phone_needed;
-- squawk-ignore require-concurrent-index-creation
create index leads_phone_needed_idx on app.leads (((phone is not null)::app.lead_phone_needed))
where preferred_communication = 'phone' and phone is null;
comment on index app.leads_phone_needed_idx is
'Always empty: its key''s domain refuses a lead answered by phone without a phone number (was the CHECK leads_phone_needed).';
