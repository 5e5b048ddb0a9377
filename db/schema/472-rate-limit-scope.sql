-- The scope of a rate-limit rule and of a counter as a domain instead of a table CHECK on each
-- (issue 13), as db/schema/440 and 471 did: the limiter's upsert writes a counter row for every
-- limited request, and a table CHECK is prepared again for every such statement, a domain's once
-- per session. One rule for both tables. No rewrite and no scan: the domain is created without its
-- check, the columns changed to it (binary coercible; both primary keys are plain indexes, which
-- PostgreSQL keeps), the check added NOT VALID (every stored row passed the checks it replaces).
-- squawk-ignore-file ban-drop-constraint, changing-column-type, ban-alter-domain-with-add-constraint

create domain app.rate_limit_scope as text;
comment on domain app.rate_limit_scope is 'What a rate limit counts by: the client''s network (ip) or the email.';

alter table app.rate_limit_rules drop constraint rate_limit_rules_scope_check;
alter table app.rate_limit_rules alter column scope type app.rate_limit_scope;
alter table app.rate_limit_counters drop constraint rate_limit_counters_scope_check;
alter table app.rate_limit_counters alter column scope type app.rate_limit_scope;

alter domain app.rate_limit_scope add constraint rate_limit_scope_check check (value in ('ip', 'email')) not valid;
