-- The brand audit log (issue 14): every INSERT, UPDATE and DELETE on brand data, append-only.
-- Tables join it with one line: select app_logic.attach_brand_audit('app.<table>') in their
-- db/policies file (db/functions/320-brand-audit.sql).

create table app.brand_audit (
    id bigint generated always as identity primary key,
    table_name text not null,
    -- The row's primary key, {column: value}.
    row_key jsonb not null check (jsonb_typeof(row_key) = 'object'),
    operation text not null check (operation in ('INSERT', 'UPDATE', 'DELETE')),
    -- Changed columns only, {column: {"old": ..., "new": ...}}; an INSERT has no old, a DELETE
    -- no new. Secrets (API key hashes, the pepper) are recorded as changed, never by value.
    changes jsonb not null check (jsonb_typeof(changes) = 'object'),
    -- Who: the request's role (anon, reader, admin) or the database role; the API key; the job.
    actor_role text not null,
    actor_api_key_id bigint,
    actor_job text,
    -- The PostgREST path of the request that made the change, when one did.
    request_path text,
    -- Whose data it is, so erasure finds the entries: the lead and the browser session.
    lead_id uuid,
    session_id text,
    recorded_at timestamptz not null default now()
);
comment on table app.brand_audit is
'Every change to brand data (what, old and new values, who, when); append-only, erased values replaced by a marker.';
create index brand_audit_recorded_idx on app.brand_audit (recorded_at);
create index brand_audit_table_idx on app.brand_audit (table_name, recorded_at);
create index brand_audit_lead_idx on app.brand_audit (lead_id) where lead_id is not null;
create index brand_audit_session_idx on app.brand_audit (session_id) where session_id is not null;
alter table app.brand_audit enable row level security;

-- The kind check is a pattern since 200-ab-tests.sql: a new kind needs no change to it.

insert into app.retention_rules (kind, keep_for, condition) values
(
    'brand_audit', interval '2 years',
    'Entries of the brand audit log older than keep_for: long enough to answer for any change of the data it '
    'covers, whose own periods are at most 2 years for unlinked data.'
),
(
    'outbox', interval '30 days',
    'Outbox messages sent or given up more than keep_for ago (their bodies are gone once sent; this removes the '
    'record of delivery).'
),
(
    'consent_tokens', interval '30 days',
    'Confirmation links used or expired more than keep_for ago. Withdraw links live as long as their lead.'
);
