-- The rate-limit counters keyed by one bytea (issue 13): the whole HMAC-SHA256 of the action,
-- the scope and the client network or email, as 32 bytes (app_logic.rate_limit_subject), instead
-- of the primary key (action, scope, subject as 64 hex characters). The limiter's upsert probes
-- and writes this index for every limited request: one comparison of 32 bytes at each step
-- instead of three of text under the database's collation, and no hex encoding. The action and
-- the scope stay columns (retention, metrics, GDPR read them).
-- The counters are emptied first: the old keys cannot become the new ones (the hash now covers
-- the action), and counters are short-lived (unlogged: a crash forgets them too, which only
-- forgives). So an upgrade forgives the windows running then. An empty table: no rewrite, and
-- the new index is built at once (so the primary key needs no NOT VALID step).
-- squawk-ignore-file ban-drop-constraint, changing-column-type, constraint-missing-not-valid, adding-serial-primary-key-field

truncate app.rate_limit_counters;
alter table app.rate_limit_counters drop constraint rate_limit_counters_pkey;
alter table app.rate_limit_counters alter column subject type bytea using decode(subject, 'hex');
alter table app.rate_limit_counters add constraint rate_limit_counters_pkey primary key (subject);
