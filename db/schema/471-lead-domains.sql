-- The single-column checks of app.leads and app.lead_interactions as domains instead of table
-- CHECK constraints (issue 13), as db/schema/440 did for the consent audit.
--
-- PostgreSQL prepares a table's CHECK constraints again for every INSERT statement (each
-- expression read from the catalog, simplified and compiled): with 18 of them on app.leads about
-- 55 us of the one lead INSERT a submission makes, 7 us with the same rules as domains, whose
-- checks are prepared once per session and kept in the type cache. The rules and the SQLSTATE of
-- a refusal (23514) stay the same; the API refuses such values before any INSERT anyway.
--
-- No rewrite and no scan under the ACCESS EXCLUSIVE lock: each domain is created without its
-- check, the columns changed to it (binary coercible, so rows and plain indexes stay as they are),
-- and the check added NOT VALID: every row already stored passed the table constraint it
-- replaces. The two-column check is re-added NOT VALID for the same reason (changing the type of
-- a column it reads would otherwise validate it again over every lead).
-- email and session_id keep their table checks: leads_email_key (on lower(email)) and
-- leads_session_id_idx (partial) would be rebuilt over the whole table by a change of their
-- column's type (PostgreSQL reuses only indexes without expressions or predicates); the two
-- cost about 3 us per INSERT.
--
-- Squawk's three warnings are about what this file keeps: each dropped check comes back in the
-- same transaction (as its domain's, the two-column one NOT VALID), the type changes rewrite
-- nothing, and a NOT VALID domain check scans nothing.
-- squawk-ignore-file ban-drop-constraint, changing-column-type, ban-alter-domain-with-add-constraint

create domain app.lead_name as text;
comment on domain app.lead_name is 'A lead''s first or last name, 1 to 100 characters.';
create domain app.lead_phone as text;
comment on domain app.lead_phone is 'A phone number in E.164: +, country code, subscriber number, 7 to 15 digits.';
create domain app.lead_company as text;
comment on domain app.lead_company is 'A lead''s company, at most 200 characters.';
create domain app.lead_inquiry as text;
comment on domain app.lead_inquiry is 'What a lead would like to discuss, at most 5000 characters.';
create domain app.lead_source as text;
comment on domain app.lead_source is 'Where a lead came from: 1 to 50 lower-case letters, digits or underscores.';
create domain app.lead_theme as text;
comment on domain app.lead_theme is 'The colour theme a lead''s visitor used.';
create domain app.lead_contact as text;
comment on domain app.lead_contact is 'How a lead wants to be answered: email or phone.';
create domain app.lead_gdpr_consent as boolean;
comment on domain app.lead_gdpr_consent is 'Consent to processing a lead''s data: always true.';
create domain app.lead_counter as integer;
comment on domain app.lead_counter is 'A count or a duration of a lead''s visit: never negative.';
create domain app.lead_pages as jsonb;
comment on domain app.lead_pages is 'The paths a lead''s visitor viewed: a JSON array.';
create domain app.lead_web_vitals as jsonb;
comment on domain app.lead_web_vitals is 'Core Web Vitals of a lead''s visit: a JSON object.';
create domain app.lead_device as text;
comment on domain app.lead_device is 'The kind of device a lead was sent from: mobile, tablet or desktop.';
create domain app.lead_browser_info as jsonb;
comment on domain app.lead_browser_info is 'What a lead''s browser reported: a JSON object of at most 4096 bytes.';
create domain app.lead_interaction_kind as text;
comment on domain app.lead_interaction_kind is 'What a CRM history entry records: submission, resubmission, note, call, ...';
create domain app.lead_note as text;
comment on domain app.lead_note is 'The free text of a CRM history entry, at most 5000 characters.';

alter table app.leads
drop constraint leads_first_name_check,
drop constraint leads_last_name_check,
drop constraint leads_phone_check,
drop constraint leads_company_name_check,
drop constraint leads_inquiry_details_check,
drop constraint leads_lead_source_check,
drop constraint leads_accessibility_theme_check,
drop constraint leads_preferred_communication_check,
drop constraint leads_gdpr_consent_check,
drop constraint leads_logo_interactions_check,
drop constraint leads_time_on_site_check,
drop constraint leads_pages_viewed_check,
drop constraint leads_core_web_vitals_check,
drop constraint leads_device_type_check,
drop constraint leads_browser_info_check,
drop constraint leads_phone_needed;

alter table app.leads
alter column first_name type app.lead_name,
alter column last_name type app.lead_name,
alter column phone type app.lead_phone,
alter column company_name type app.lead_company,
alter column inquiry_details type app.lead_inquiry,
alter column lead_source type app.lead_source,
alter column accessibility_theme type app.lead_theme,
alter column preferred_communication type app.lead_contact,
alter column gdpr_consent type app.lead_gdpr_consent,
alter column logo_interactions type app.lead_counter,
alter column time_on_site type app.lead_counter,
alter column pages_viewed type app.lead_pages,
alter column core_web_vitals type app.lead_web_vitals,
alter column device_type type app.lead_device,
alter column browser_info type app.lead_browser_info;

alter table app.lead_interactions
drop constraint lead_interactions_kind_check,
drop constraint lead_interactions_note_check;

alter table app.lead_interactions
alter column kind type app.lead_interaction_kind,
alter column note type app.lead_note;

alter domain app.lead_name add constraint lead_name_check
check (char_length(value) between 1 and 100) not valid;
-- E.164: '+', country code, subscriber number, at most 15 digits in all.
alter domain app.lead_phone add constraint lead_phone_check check (value ~ '^\+[1-9][0-9]{6,14}$') not valid;
alter domain app.lead_company add constraint lead_company_check check (char_length(value) <= 200) not valid;
alter domain app.lead_inquiry add constraint lead_inquiry_check check (char_length(value) <= 5000) not valid;
alter domain app.lead_source add constraint lead_source_check check (value ~ '^[a-z0-9_]{1,50}$') not valid;
alter domain app.lead_theme add constraint lead_theme_check
check (value in ('default', 'protanopia', 'deuteranopia', 'tritanopia', 'achromatopsia')) not valid;
alter domain app.lead_contact add constraint lead_contact_check check (value in ('email', 'phone')) not valid;
alter domain app.lead_gdpr_consent add constraint lead_gdpr_consent_check check (value) not valid;
alter domain app.lead_counter add constraint lead_counter_check check (value >= 0) not valid;
alter domain app.lead_pages add constraint lead_pages_check check (jsonb_typeof(value) = 'array') not valid;
alter domain app.lead_web_vitals add constraint lead_web_vitals_check check (jsonb_typeof(value) = 'object') not valid;
alter domain app.lead_device add constraint lead_device_check
check (value in ('mobile', 'tablet', 'desktop')) not valid;
alter domain app.lead_browser_info add constraint lead_browser_info_check
check (jsonb_typeof(value) = 'object' and octet_length(value::text) <= 4096) not valid;
alter domain app.lead_interaction_kind add constraint lead_interaction_kind_check check (
    value in ('submission', 'resubmission', 'note', 'call', 'email', 'meeting', 'status_change')
) not valid;
alter domain app.lead_note add constraint lead_note_check check (char_length(value) <= 5000) not valid;

alter table app.leads add constraint leads_phone_needed
check (preferred_communication <> 'phone' or phone is not null) not valid;
