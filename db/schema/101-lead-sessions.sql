-- Which lead owns which browser session: claimed once, by the first submission that names it.

create table app.lead_sessions (
    session_id text primary key check (char_length(session_id) between 1 and 100),
    lead_id uuid not null references app.leads (id) on delete cascade,
    claimed_at timestamptz not null
);
create index lead_sessions_lead_idx on app.lead_sessions (lead_id);
alter table app.lead_sessions enable row level security;

insert into app.lead_sessions (session_id, lead_id, claimed_at)
select distinct on (c.session_id)
    c.session_id,
    c.lead_id,
    c.claimed_at
from (
    select
        l.session_id,
        l.id as lead_id,
        l.created_at as claimed_at
    from app.leads as l
    where l.session_id is not null
    union all
    select
        btrim(i.details ->> 'sessionId') as session_id,
        i.lead_id,
        i.created_at
    from app.lead_interactions as i
    where i.kind = 'resubmission' and char_length(btrim(i.details ->> 'sessionId')) between 1 and 100
    union all
    select
        p.session_id,
        p.lead_id,
        p.created_at
    from app.accessibility_preferences as p
    where p.lead_id is not null
    union all
    select
        e.session_id,
        e.lead_id,
        e.created_at
    from app.brand_engagement as e
    where e.lead_id is not null
) as c
order by c.session_id, c.claimed_at, c.lead_id;
