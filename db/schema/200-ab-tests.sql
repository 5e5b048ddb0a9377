-- A/B tests of design elements (issue 15): the tests an admin defines, their weighted
-- variants, which variant each browser session was shown (its exposure) and the conversions
-- of exposed sessions. Sessions are the same opaque ids the other session endpoints use.
-- Also: the retention and rate-limit rules every brand-intelligence table needs (rows below).

create table app.ab_tests (
    id bigint generated always as identity primary key,
    name text not null unique check (name ~ '^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$'),
    -- The conversion kind the test is judged by: lead, cta_click or a custom slug.
    goal text not null check (goal ~ '^[a-z][a-z0-9_]{0,49}$'),
    starts_at timestamptz not null,
    ends_at timestamptz,
    stopped_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (ends_at > starts_at)
);
comment on table app.ab_tests is
'A/B tests of design elements: a name, the conversion kind it is judged by, when it runs.';
comment on column app.ab_tests.goal is 'The conversion kind (lead, cta_click or a custom slug) the test is judged by.';
comment on column app.ab_tests.stopped_at is 'When an admin stopped the test; a stopped test assigns nothing more.';
alter table app.ab_tests enable row level security;

create table app.ab_test_variants (
    test_id bigint not null references app.ab_tests (id) on delete cascade,
    -- 1 is the control: uplift is measured against it.
    position integer not null check (position between 1 and 10),
    name text not null check (name ~ '^[a-z0-9](?:[a-z0-9_-]{0,48}[a-z0-9])?$'),
    design jsonb not null check (jsonb_typeof(design) = 'object'),
    weight numeric not null check (weight > 0 and weight <= 1000000),
    primary key (test_id, position),
    unique (test_id, name)
);
comment on table app.ab_test_variants is
'The variants of a test (2 to 10), in order; sessions are assigned in proportion to the weights.';
alter table app.ab_test_variants enable row level security;

create table app.ab_test_exposures (
    test_id bigint not null references app.ab_tests (id) on delete cascade,
    session_id text not null check (char_length(session_id) between 1 and 100),
    position integer not null,
    exposed_at timestamptz not null default now(),
    primary key (test_id, session_id),
    foreign key (test_id, position) references app.ab_test_variants (test_id, position) on delete cascade
);
comment on table app.ab_test_exposures is
'The first assignment of a session to a variant of a test; only exposed sessions convert.';
-- GDPR finds a person's rows by session; the lead trigger finds a session's tests.
create index ab_test_exposures_session_idx on app.ab_test_exposures (session_id);
create index ab_test_exposures_exposed_idx on app.ab_test_exposures (exposed_at);
alter table app.ab_test_exposures enable row level security;

create table app.ab_test_conversions (
    test_id bigint not null,
    session_id text not null,
    kind text not null check (kind ~ '^[a-z][a-z0-9_]{0,49}$'),
    converted_at timestamptz not null default now(),
    primary key (test_id, session_id, kind),
    foreign key (test_id, session_id) references app.ab_test_exposures (test_id, session_id) on delete cascade
);
comment on table app.ab_test_conversions is
'Conversions of exposed sessions, at most one per session and kind.';
create index ab_test_conversions_session_idx on app.ab_test_conversions (session_id);
alter table app.ab_test_conversions enable row level security;

-- The retention kinds were a closed list; each domain now adds its own rows (and a
-- app_logic.purge_<kind> function), so the check only keeps the names well-formed.
-- app.retention_rules holds one row per kind: dropping the old list and checking the new
-- pattern scans a handful of rows, however the locks are taken.
-- squawk-ignore ban-drop-constraint
alter table app.retention_rules drop constraint retention_rules_kind_check;
-- squawk-ignore constraint-missing-not-valid
alter table app.retention_rules add constraint retention_rules_kind_check check (kind ~ '^[a-z][a-z0-9_]{0,62}$');

insert into app.retention_rules (kind, keep_for, condition) values
(
    'ab_test_exposures', interval '400 days',
    'Exposures (and the conversions of those sessions) older than keep_for; the tests and variants stay.'
),
(
    'ab_tests', interval '3 years',
    'Tests stopped or ended longer ago than keep_for, with their variants, exposures and conversions.'
);

insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values
('ab_test_assignment', 'ip', 120, 60),
('ab_test_conversions', 'ip', 120, 60),
('ab_tests', 'ip', 60, 60);
