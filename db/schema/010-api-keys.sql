-- API keys: opaque secrets sent in X-API-Key; only their SHA-256 is stored.

create table app.api_keys (
    id bigint generated always as identity primary key,
    name text not null check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    role text not null check (role in ('reader', 'admin')),
    key_hash bytea not null unique check (octet_length(key_hash) = 32),
    -- The first characters of the key, so an operator can tell keys apart without the secret.
    key_prefix text not null,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);
comment on table app.api_keys is 'API keys for reader and admin clients; the secret itself is never stored.';
-- A name is reusable once its key is revoked.
create unique index api_keys_active_name_key on app.api_keys (name) where revoked_at is null;
alter table app.api_keys enable row level security;
