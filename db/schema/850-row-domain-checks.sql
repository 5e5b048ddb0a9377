-- Cheaper checks of the same rules for the domains of the rows a submission writes (issue 13,
-- session 11, callgrind per framed submission, fresh builds of main be6a507 and this change in one
-- cluster). Every rule accepts and refuses exactly the values it did, each constraint keeps its
-- name, so a refusal reads as before (SQLSTATE 23514, 'value for domain ... violates check
-- constraint "..."'); pgTAP 020-leads-domain-checks compares each with the rule it replaces.
--
-- PostgreSQL compiles a domain's check into every statement that writes the column (function
-- lookups and permission checks per call in it), then runs it for each value:
-- * A JSON array or object as containment of the empty one, one call where jsonb_typeof and its
--   comparison were two (jsonb_typeof(v) = 'array' exactly when v @> '[]': a scalar, stored as a
--   one-element pseudo-array, contains no array, and an object contains no array; likewise for
--   objects): three function set-ups fewer per submission, about -1k (within the noise of a build).
-- * A source's length in bytes: a value of [a-z0-9_] has one byte per character, and any other
--   value is refused by the pattern, so the rule is the same; octet_length reads the header where
--   char_length counted the characters.
-- * An upper bound of characters as value::varchar(N) = value: the cast returns the value itself
--   when it holds at most N bytes (so at most N characters) and cuts it to N characters only when
--   longer, where char_length counted every character of every value (a browser's user agent is
--   111 characters, in both audit rows), and an inquiry of 5,000 characters is no longer counted
--   character by character. Null stays null, which a check passes, as before.
-- All of it with the append's user agent cut by a cast (db/functions/030-consent.sql): 1,945,315
-- → 1,943,250 per framed submission (−2.1k, −0.1%: means of 6 and 4 builds; char_length 4.4k →
-- 2.1k), and 1,972,425 → 1,961,301 (−11.1k, −0.6%) with a browser's request
-- (chorus_db.bench.common BROWSER_REQUEST: char_length 8.8k → 2.1k, left 6.2k → 0).
--
-- NOT VALID scans nothing: every stored value passed the check it replaces, which refuses the
-- same values. Squawk's warnings are about that: each check comes back in the same transaction.
-- squawk-ignore-file ban-drop-constraint, ban-alter-domain-with-add-constraint

alter domain app.lead_pages drop constraint lead_pages_check;
alter domain app.lead_pages add constraint lead_pages_check check (value @> '[]') not valid;
alter domain app.lead_web_vitals drop constraint lead_web_vitals_check;
alter domain app.lead_web_vitals add constraint lead_web_vitals_check check (value @> '{}') not valid;
alter domain app.lead_browser_info drop constraint lead_browser_info_check;
alter domain app.lead_browser_info add constraint lead_browser_info_check
check (value @> '{}' and octet_length(value::text) <= 4096) not valid;

alter domain app.lead_source drop constraint lead_source_check;
alter domain app.lead_source add constraint lead_source_check
check (value ~ '^[a-z0-9_]+$' and octet_length(value) <= 50) not valid;

alter domain app.lead_company drop constraint lead_company_check;
alter domain app.lead_company add constraint lead_company_check check (value::varchar(200) = value) not valid;
alter domain app.lead_inquiry drop constraint lead_inquiry_check;
alter domain app.lead_inquiry add constraint lead_inquiry_check check (value::varchar(5000) = value) not valid;
alter domain app.lead_note drop constraint lead_note_check;
alter domain app.lead_note add constraint lead_note_check check (value::varchar(5000) = value) not valid;
alter domain app.consent_source drop constraint consent_source_check;
alter domain app.consent_source add constraint consent_source_check check (value::varchar(50) = value) not valid;
alter domain app.consent_user_agent drop constraint consent_user_agent_check;
alter domain app.consent_user_agent add constraint consent_user_agent_check
check (value::varchar(512) = value) not valid;
