-- The consent audit: appended to by the endpoints, never changed.
--
-- Tamper evidence: each row's hash covers its content and the previous row's hash of the same
-- subject. Chaining per subject (not one global chain) means two people's submissions never
-- wait for each other; within a subject an advisory lock orders the appends.

-- STABLE, as json_build_array and to_char are: the planner then inlines it into the INSERT of
-- append_consent_rows (declared IMMUTABLE over a stable body, it was parsed and planned per call).
create function app_logic.consent_row_hash(
    p_subject text, p_seq integer, p_event text, p_consent_type text, p_granted boolean,
    p_source text, p_ip_hash text, p_user_agent text, p_text_version text,
    p_recorded_at timestamptz, p_prev_hash bytea, p_submission_id bigint default null
) returns bytea
language sql stable
as $$
    -- A JSON array is an unambiguous serialisation: no separator can be forged inside a field.
    -- The submission id joined the row later: a row without one hashes as rows always did.
    -- The text is what jsonb_build_array(...)::text gave when the chain began (the same escaping
    -- and ", " between elements, checked in db/tests/030-consent-append.sql); json_build_array
    -- writes it directly, without building a jsonb value first (about 10k instructions a row).
    -- One array of the eleven, its closing bracket replaced by ", <id>]" when there is an id: a
    -- CASE between an eleven- and a twelve-element array set up both arrays and their arguments
    -- in every transaction (callgrind: 8k instructions of a submission). The last element is
    -- the previous hash in hex or null, so the array's text ends in exactly one "]"; bytes, not
    -- characters, are trimmed (left(..., -1) counts characters: 12k a row).
    select sha256(rtrim(convert_to(json_build_array(
        p_subject, p_seq, p_event, p_consent_type, p_granted, p_source, p_ip_hash, p_user_agent,
        p_text_version, to_char(p_recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        encode(p_prev_hash, 'hex')
    )::text, 'UTF8'), '\x5d'::bytea) || convert_to(coalesce(', ' || p_submission_id, '') || ']', 'UTF8'))
$$;
comment on function app_logic.consent_row_hash(
    text, integer, text, text, boolean, text, text, text, text, timestamptz, bytea, bigint
) is 'The hash a consent_audit row must carry, given its content and its predecessor''s hash.';

-- The version of the consent text in force at a time: the newest text whose valid_from has
-- passed. Compiled from app.consent_texts into one CASE (newest first) by the trigger below, so
-- the audit's INSERT inlines it and reads no table for it: the sub-select over the texts it
-- replaced, an index scan set up again in every transaction, cost about 44k instructions of a
-- submission's 2.94M (callgrind). A text valid from a future time is in the CASE already and
-- takes effect then without another compile. The times are written in ISO with their offset
-- (DateStyle ISO, UTC), which every DateStyle reads back to the microsecond; infinity as well.
-- db/tests/030-consent-text-compiled.sql holds it against the query on awkward times and texts.
create function app_logic.compile_consent_text_at() returns void
language plpgsql volatile
set datestyle = 'ISO, YMD'
set timezone = 'UTC'
as $$
declare
    v_cases text;
    v_versions text;
begin
    select
        string_agg(format('when p_at >= %L::timestamptz then %L::text', t.valid_from, t.version), ' ' order by t.valid_from desc),
        string_agg(quote_literal(t.version), ', ' order by t.version)
    into v_cases, v_versions
    from app.consent_texts as t;
    execute format(
        $f$
        create or replace function app_logic.consent_text_at(p_at timestamptz) returns text
        language sql stable
        as $b$
            select %s
        $b$
        $f$,
        coalesce('case ' || v_cases || ' end', 'null::text')
    );
    comment on function app_logic.consent_text_at(timestamptz) is
    'The version of the consent text in force at p_at (the newest valid_from not after it), compiled from '
    'app.consent_texts; null before the first.';
    -- The versions an audit row may name (see app.consent_text_version below). NOT VALID: no scan
    -- of the audit; every stored row names a text, as the check before this one (or the foreign key
    -- before the domain) held, and a text still named cannot be deleted. The domain's change
    -- reaches other sessions at commit, as a changed table constraint does. With no text at all
    -- the list is null and drops out of the format: every version is refused.
    alter domain app.consent_text_version drop constraint if exists consent_text_version_known;
    execute format(
        'alter domain app.consent_text_version add constraint consent_text_version_known '
        'check (value is null or %s app_logic.refuse_unknown_consent_text(value)) not valid',
        'value in (' || v_versions || ') or'
    );
end
$$;
comment on function app_logic.compile_consent_text_at() is
'Compile app.consent_texts into app_logic.consent_text_at and the check of the domain app.consent_text_version '
'(run by the trigger on every change of the table).';

-- The text an audit row names is one of app.consent_texts. A foreign key checked that with an
-- RI query for every row appended, through SPI (its executor set up, the text found and locked
-- FOR KEY SHARE): 59k instructions of a submission's 2.08M, both rows (issue 13, session 10,
-- callgrind, a copy without the key). The column is the domain app.consent_text_version
-- (db/schema/770) instead, whose check the compile above writes from the table; PostgreSQL
-- prepares a domain's check once per session, so a row costs a comparison (9k a submission:
-- 2,080,613 -> 2,030,305). What the key refused stays refused, with its SQLSTATE (23503), message
-- and detail: an unknown version here, a text still named below. db/tests/030-consent-text-check.sql
-- holds each refusal to the key's wording.
create function app_logic.refuse_unknown_consent_text(p_version text) returns boolean
language plpgsql
as $$
begin
    raise exception 'insert or update on table "consent_audit" violates foreign key constraint "consent_audit_text_fkey"'
        using errcode = '23503',
        detail = format('Key (consent_text_version)=(%s) is not present in table "consent_texts".', p_version),
        schema = 'app', table = 'consent_audit', constraint = 'consent_audit_text_fkey';
end
$$;
comment on function app_logic.refuse_unknown_consent_text(text) is
'Refuse a consent-audit row naming a text version app.consent_texts does not hold (the domain check''s last resort).';

-- The key's other half: a text an audit row names is neither deleted nor given another version.
-- The audit is locked first (SHARE ROW EXCLUSIVE, until the change commits): an append under way,
-- which checked its version before the change, commits before the rows are read, and none starts
-- until the compile's new check is committed. Texts change rarely; the key instead locked the
-- text named in every submission.
create function app_logic.tg_consent_texts__refuse_named() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'UPDATE' and new.version = old.version then
        return null;
    end if;
    lock table app.consent_audit in share row exclusive mode;
    -- NO ACTION, as the key: a version the same statement deleted and inserted again is there.
    if
        exists (select from app.consent_audit as a where a.consent_text_version = old.version)
        and not exists (select from app.consent_texts as t where t.version = old.version)
    then
        -- The table named is the key's (the audit), as PostgreSQL names it for either half.
        raise exception
            'update or delete on table "consent_texts" violates foreign key constraint "consent_audit_text_fkey" on table "consent_audit"'
            using errcode = '23503',
            detail = format('Key (version)=(%s) is still referenced from table "consent_audit".', old.version),
            schema = 'app', table = 'consent_audit', constraint = 'consent_audit_text_fkey';
    end if;
    return null;
end
$$;
comment on function app_logic.tg_consent_texts__refuse_named() is
'Refuse deleting a consent text, or changing its version, while a consent-audit row names it.';

create trigger consent_texts_named
after update of version or delete on app.consent_texts
for each row execute function app_logic.tg_consent_texts__refuse_named();

-- In the same transaction as the change: the CREATE OR REPLACE invalidates every plan that
-- inlined the function before, in this session at once and in the others at commit.
create trigger consent_texts_compile
after insert or update or delete or truncate on app.consent_texts
for each statement execute function app_logic.tg_compile('compile_consent_text_at');

select app_logic.compile_consent_text_at();

-- The one INSERT that appends to a chain: one row, or two (a form submission records two
-- consents), after the subject's lock. Row 1 gets seq last + 1 and the chain end's hash as its
-- predecessor, row 2 seq last + 2 and row 1's hash. Two rows as a VALUES list over the chain's
-- end and row 1's hash, not a recursive CTE over arrays: a recursive plan and its array
-- subscripts are set up again in every transaction (about 90k instructions of a submission's
-- 4.1M, callgrind).
-- Not SECURITY DEFINER: no API role may execute it, and its callers (the endpoints, the GDPR
-- tasks, retention) run as the owner; each SECURITY DEFINER call with SET search_path costs a
-- GUC nest level and a search path recomputation, paid only by the entry points.
create function app_logic.append_consent_rows(
    p_subject text, p_source text, p_ip_hash text, p_user_agent text, p_submission_id bigint,
    p_event text, p_consent_type text, p_granted boolean,
    p_second boolean default false, p_event2 text default null, p_consent_type2 text default null,
    p_granted2 boolean default null
) returns void
language plpgsql volatile
as $$
begin
    -- A statement of its own: READ COMMITTED takes a statement's snapshot before it runs, so a
    -- read in the locking statement itself could miss the row the lock's previous holder committed.
    -- An IF over the call, not PERFORM: PL/pgSQL evaluates a condition as a simple expression,
    -- while PERFORM runs a query through SPI (its executor set up again in every transaction:
    -- about 10k instructions of a submission, callgrind). The lock is taken all the same.
    if pg_advisory_xact_lock(hashtextextended('consent_audit:' || p_subject, 0)) is null then
        null;
    end if;
    -- Rows in chain order (the VALUES list's), so ids ascend with seq.
    insert into app.consent_audit (
        subject, seq, event, consent_type, granted, source, ip_hash, user_agent,
        consent_text_version, recorded_at, prev_hash, row_hash, submission_id
    )
    select
        p_subject, r.seq, r.event, r.consent_type, r.granted, p_source, p_ip_hash, f.user_agent,
        r.text_version, f.recorded_at, r.prev_hash, r.row_hash, p_submission_id
    from (
        -- The chain's end as stored (seq 0 and no hash for a new subject), the time, the text in
        -- force then, and row 1's hash, which row 2 links to. The time is read once, below: the
        -- text's CASE compares that column, not a second reading of the clock (its expression is
        -- set up again in every transaction). Row 1's hash is computed here, beside the chain's
        -- end, rather than in a lateral of its own: a plan node fewer, its result and its join
        -- (5.7k instructions of a submission, callgrind, against the copies of coalesce and the
        -- text's CASE it repeats).
        -- A consent or a request names the text; an erasure none (the event domain allows those
        -- three: one comparison, not a list, 2.4k).
        select
            t.recorded_at,
            t.user_agent,
            app_logic.consent_text_at(t.recorded_at) as text_version,
            coalesce(e.seq, 0) as seq,
            e.row_hash,
            app_logic.consent_row_hash(
                p_subject, coalesce(e.seq, 0) + 1, p_event, p_consent_type, p_granted, p_source, p_ip_hash,
                t.user_agent, case when p_event <> 'erasure' then app_logic.consent_text_at(t.recorded_at) end,
                t.recorded_at, e.row_hash, p_submission_id
            ) as row_hash1
        -- The user agent cut to 512 characters by the cast, as left(p_user_agent, 512) cut it: the
        -- cast returns a value of at most 512 bytes as it is, where left counted its characters
        -- (issue 13, session 11, callgrind: left cost 6.2k of a submission with a browser's user
        -- agent of 111 characters, the cast 0.04k; pgTAP 020-leads-domain-checks, 030-consent-append).
        from (select app_logic.now() as recorded_at, p_user_agent::varchar(512)::text as user_agent offset 0) as t
        left join lateral (
            select a.seq, a.row_hash from app.consent_audit as a
            where a.subject = p_subject
            order by a.seq desc limit 1
        ) as e on true
        offset 0
    ) as f
    cross join lateral (
        values
        (
            1, f.seq + 1, p_event, p_consent_type, p_granted,
            case when p_event <> 'erasure' then f.text_version end, f.row_hash, f.row_hash1
        ),
        (
            2, f.seq + 2, p_event2, p_consent_type2, p_granted2,
            case when p_event2 <> 'erasure' then f.text_version end, f.row_hash1,
            app_logic.consent_row_hash(
                p_subject, f.seq + 2, p_event2, p_consent_type2, p_granted2, p_source, p_ip_hash, f.user_agent,
                case when p_event2 <> 'erasure' then f.text_version end, f.recorded_at, f.row_hash1,
                p_submission_id
            )
        )
    ) as r (n, seq, event, consent_type, granted, text_version, prev_hash, row_hash)
    where r.n = 1 or p_second;
end
$$;
comment on function app_logic.append_consent_rows(
    text, text, text, text, bigint, text, text, boolean, boolean, text, text, boolean
) is
'Append one row (or two, with p_second) to a subject''s consent audit chain, chained to its previous row.';

-- Several rows of one subject in one go: two at a time, each pair after the last.
create function app_logic.append_consents(
    p_subject text, p_events text[], p_consent_types text[], p_granted boolean[], p_source text,
    p_ip_hash text default null, p_user_agent text default null, p_submission_id bigint default null
) returns void
language plpgsql volatile
as $$
declare
    v_rows integer := cardinality(p_events);
begin
    if v_rows is distinct from cardinality(p_consent_types) or v_rows is distinct from cardinality(p_granted) then
        raise exception 'events, consent types and granted must have one entry per row' using errcode = '22023';
    end if;
    -- Null arrays append nothing, as the recursive INSERT before them did.
    for i in 1 .. coalesce(v_rows, 0) by 2 loop
        perform app_logic.append_consent_rows(
            p_subject, p_source, p_ip_hash, p_user_agent, p_submission_id, p_events[i], p_consent_types[i], p_granted[i],
            i < v_rows, p_events[i + 1], p_consent_types[i + 1], p_granted[i + 1]
        );
    end loop;
end
$$;
comment on function app_logic.append_consents(text, text[], text[], boolean[], text, text, text, bigint) is
'Append rows (one per array entry) to the consent audit in one go, chained to the subject''s previous row.';

create function app_logic.append_consent(
    p_subject text, p_event text, p_consent_type text, p_granted boolean, p_source text,
    p_ip_hash text default null, p_user_agent text default null
) returns void
language plpgsql volatile
as $$
begin
    perform app_logic.append_consent_rows(p_subject, p_source, p_ip_hash, p_user_agent, null, p_event, p_consent_type, p_granted);
end
$$;
comment on function app_logic.append_consent(text, text, text, boolean, text, text, text) is
'Append one row to the consent audit, chained to the subject''s previous row.';

create function app_logic.tg_consent_audit__refuse_change() returns trigger
language plpgsql
as $$
begin
    raise exception 'the consent audit is append-only: % is refused', tg_op
        using errcode = 'CHA01', hint = 'Erasure appends an erasure record instead of changing rows.';
end
$$;

select app_logic.declare_append_only('app.consent_audit', 'app_logic.tg_consent_audit__refuse_change');

-- TRUNCATE app.consent_texts CASCADE reached the audit through the foreign key, and this guard
-- refused it: it still does (a TRUNCATE without CASCADE is refused by consent_tokens' key).
create trigger consent_texts_no_truncate
before truncate on app.consent_texts
for each statement execute function app_logic.tg_consent_audit__refuse_change();

-- True when every row of the subject's chain carries the hash its content and predecessor
-- give, with no gap in seq: what an auditor runs to check that nothing was altered.
create function app_logic.consent_chain_is_intact(p_subject text) returns boolean
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select coalesce(bool_and(
        a.seq = a.position
        and a.prev_hash is not distinct from a.expected_prev
        and a.row_hash = app_logic.consent_row_hash(
            a.subject, a.seq, a.event, a.consent_type, a.granted, a.source, a.ip_hash, a.user_agent,
            a.consent_text_version, a.recorded_at, a.prev_hash, a.submission_id
        )
    ), true)
    from (
        select
            c.*,
            row_number() over (order by c.seq) as position,
            lag(c.row_hash) over (order by c.seq) as expected_prev
        from app.consent_audit as c
        where c.subject = p_subject
    ) as a
$$;
comment on function app_logic.consent_chain_is_intact(text) is
'Whether a subject''s consent records are complete and unaltered (hash chain and sequence).';

-- The hash of the client IP kept with a consent: the full address (never the /64 used for rate
-- limits), pseudonymised with the secret pepper.
create function app_logic.client_ip_hash() returns text
language sql stable
as $$
    select app_logic.pseudonym(host(app_logic.client_ip()))
$$;
comment on function app_logic.client_ip_hash() is 'Pseudonym of the request''s client IP; null without one.';

-- What a web-form submission consents to: GDPR processing (always true, the form requires it)
-- and marketing as ticked, with the request's IP hash and user agent and the submission's id.
-- A marketing consent that did not take effect (a known address asked for it) is a 'request'.
-- Two statements in all: one read of the pepper for both HMACs (app_logic.person_pseudonym and
-- app_logic.client_ip_hash say the same), and append_consent_rows' INSERT (both rows, one lock).
-- The append is called in an IF condition, as submit_lead calls this function: PL/pgSQL
-- evaluates a condition as a simple expression, while PERFORM runs a SELECT through SPI, its
-- executor set up again in every transaction.
create function app_logic.record_form_consent(
    p_email text, p_marketing boolean, p_submission_id bigint, p_marketing_is_request boolean default false
) returns void
language plpgsql volatile
as $$
declare
    v_subject text;
    v_ip_hash text;
begin
    -- Without a pepper no row: the subject stays null and the INSERT refuses it (fail closed).
    select app_logic.pseudonym(lower(p_email), k.value), app_logic.pseudonym(host(app_logic.client_ip()), k.value)
    into v_subject, v_ip_hash
    from app.settings as k
    where k.key = 'hash_pepper';
    if app_logic.append_consent_rows(
        v_subject, 'web_form', v_ip_hash, app_logic.request_user_agent(), p_submission_id, 'consent', 'gdpr', true,
        true, case when p_marketing_is_request then 'request' else 'consent' end, 'marketing', p_marketing
    ) is null then
        null;
    end if;
end
$$;
comment on function app_logic.record_form_consent(text, boolean, bigint, boolean) is
'Append the GDPR and marketing consent (or marketing request) of one accepted form submission to the consent audit.';

comment on column app.consent_audit.event is
'consent: a consent given or withdrawn that took effect; request: a submission asked for a consent that did not '
'take effect by itself (a known address asking for marketing); erasure: the person''s data was erased.';
comment on column app.consent_audit.granted is 'For consent: granted (true) or withdrawn (false); for request: what was asked.';
comment on column app.consent_audit.submission_id is
'The lead_interactions id of the form submission that wrote the row (kept after erasure removes it); null otherwise.';

-- GET /api/consent-text: the version of the consent text the audit records with every
-- submission, so a form can show the version a person agrees to (the reference form, issue 17).
create function api.current_consent_text() returns jsonb
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select jsonb_build_object('version', app_logic.consent_text_at(app_logic.now()))
$$;
comment on function api.current_consent_text() is
'GET /api/consent-text (no key): {"version"} of the consent text that POST /api/leads records '
'in the consent audit.';

create function app_logic.current_consent_text_response() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object", "description": "The consent text in force.",
        "required": ["version"], "additionalProperties": false,
        "properties": {"version": {"type": "string", "description": "Its version, as the consent audit records it."}}
    }'::jsonb
$$;
comment on function app_logic.current_consent_text_response() is 'OpenAPI schema of what GET /api/consent-text answers.';
