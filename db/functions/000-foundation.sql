-- Foundation logic every endpoint uses: the two declarative schemas, the request context
-- PostgREST sets, response helpers, the rule-driven validator and the job declaration.
-- This folder is re-applied from scratch on every build that changes it (chorus_db/build.py).

create schema app_logic;
comment on schema app_logic is 'Functions and internal views; rebuilt from db/functions on every change.';

create schema api;
comment on schema api is
'The HTTP API of the lead-capture backend: the only schema PostgREST exposes. Views and functions only.';

-- Tests freeze time by setting app.frozen_now; requests never can (PostgREST sets only request.*).
create function app_logic.now() returns timestamptz
language sql stable
as $$
    select coalesce(nullif(current_setting('app.frozen_now', true), '')::timestamptz, now())
$$;
comment on function app_logic.now() is 'now(), unless a test froze the clock with app.frozen_now.';

-- PL/pgSQL, not SQL: a SECURITY DEFINER SQL function is never inlined, so each call site parsed
-- and planned its query again in every transaction; PL/pgSQL keeps the plan for the session.
-- A submission reads settings six times (pepper, consent text version).
create function app_logic.setting(p_key text) returns text
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
begin
    return (select s.value from app.settings as s where s.key = p_key);
end
$$;
comment on function app_logic.setting(text) is 'An operator setting from app.settings.';

-- request.headers is JSON with lower-cased names; on a pooled connection it can be ''.
create function app_logic.request_headers() returns jsonb
language sql stable
as $$
    select coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb
$$;

create function app_logic.request_header(p_name text) returns text
language sql stable
as $$
    select nullif(app_logic.request_headers() ->> lower(p_name), '')
$$;

-- A header's value read from the text of request.headers without parsing the JSON: the
-- characters after "<name>":" up to the next double quote ('' when the text holds no such key;
-- null for a null text). The pre-request's public path reads X-Real-IP and User-Agent so
-- (issue 13, session 11): a JSON parse of what nginx forwards from a browser costs 26k
-- instructions, these reads 5k (callgrind). It is the value itself in a text without a
-- backslash, as PostgREST writes request.headers (one flat object of string values, unique
-- names, no spaces): without an escape every double quote opens or closes a string, so
-- "<name>":" is that key and its value's opening quote, and the next one closes the value.
-- Only such a text gets here (the pre-request routes any other to the JSON), and headers
-- written with spaces give '', which the pre-request treats as no dotted quad: it parses the
-- JSON. db/tests/010-pre-request-paths.sql compares both reads on hostile headers.
create function app_logic.header_text_value(p_headers text, p_name text) returns text
language sql immutable
as $$
    select split_part(split_part(p_headers, '"' || p_name || '":"', 2), '"', 1)
$$;
comment on function app_logic.header_text_value(text, text) is
'The raw JSON text of a header''s value in request.headers as PostgREST writes it; empty when absent.';

-- The client's address as nginx saw it: nginx overwrites X-Real-IP with the TCP peer, so the
-- header is trusted and nothing else is. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a
-- dual-stack socket reports) is the IPv4 client it stands for.
--
-- Two paths with one answer. A dotted quad in canonical form, what nearly every request carries,
-- always casts: app_logic.dotted_quad picks it out, and the pre-request keeps it as it is
-- (keep_request_headers, below). Anything else goes to parse_client_ip, PL/pgSQL, which checks
-- the value and casts it inside an exception block. db/tests/000-client-address.sql holds both
-- against the full checks on hostile input.

-- The value itself when it is a dotted quad in canonical form, else null. A match (~), not
-- substring: the fully anchored pattern matches the whole value or nothing, and a match that
-- needs no position costs half (callgrind: 15.6k instructions against 31k).
create function app_logic.dotted_quad(p_raw text) returns text
language sql immutable
as $$
    select case
        when p_raw ~ '^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$'
            then p_raw
    end
$$;
comment on function app_logic.dotted_quad(text) is 'The value when it is an IPv4 address as a canonical dotted quad, else null.';

create function app_logic.parse_client_ip(p_raw text) returns inet
language plpgsql immutable
as $$
declare
    v_ip inet;
begin
    -- A length and a negated class, not '^[...]{2,45}$': a bounded repeat is the slow case of
    -- PostgreSQL's regex engine (4 us of a 6 us call).
    if p_raw is null or char_length(p_raw) not between 2 and 45 or p_raw ~ '[^0-9A-Fa-f:.]' then
        return null;
    end if;
    if app_logic.dotted_quad(p_raw) is not null then
        return p_raw::inet;
    end if;
    begin
        v_ip := p_raw::inet;
    exception when invalid_text_representation then
        return null;
    end;
    if family(v_ip) = 6 and v_ip << '::ffff:0:0/96'::inet then
        v_ip := '0.0.0.0'::inet + (v_ip - '::ffff:0:0'::inet);
    end if;
    return v_ip;
end
$$;
comment on function app_logic.parse_client_ip(text) is
'An X-Real-IP value as an address, IPv4-mapped addresses as IPv4; null when absent or malformed.';

-- An IPv6 host owns a whole /64, so it counts as one client.
create function app_logic.parse_client_network(p_raw text) returns inet
language plpgsql immutable
as $$
declare
    v_ip inet := app_logic.parse_client_ip(p_raw);
begin
    if family(v_ip) = 6 then
        return network(set_masklen(v_ip, 64));
    end if;
    return set_masklen(v_ip, 32);
end
$$;
comment on function app_logic.parse_client_network(text) is
'An X-Real-IP value as the client it counts as: the IPv4 address or the IPv6 /64; null when absent or malformed.';

-- The one place the address and the user agent a request keeps are written (issue 13, session
-- 12): the pre-request's text path, keep_quad_headers and keep_parsed_address all call it. A
-- volatile SQL function of one expression using each argument once, so PostgreSQL inlines it
-- into its callers' expressions: no call node of its own (pg_stat_user_functions counts no call
-- of it with track_functions = all).
create function app_logic.keep_client_settings(p_address text, p_user_agent text) returns text
language sql volatile
as $$
    select set_config('app.request_client_ip', p_address, true) || set_config('app.request_user_agent', p_user_agent, true)
$$;
comment on function app_logic.keep_client_settings(text, text) is
'Keep the client address and the user agent given for the rest of the transaction (the pre-request''s settings).';

-- The address of a value that is not a canonical dotted quad, checked in full: '' when refused.
create function app_logic.keep_parsed_address(p_raw text, p_user_agent text) returns text
language plpgsql volatile
as $$
begin
    return app_logic.keep_client_settings(coalesce(app_logic.parse_client_ip(p_raw)::text, ''), p_user_agent)
        || set_config('app.request_client_network', coalesce(app_logic.parse_client_network(p_raw)::text, ''), true);
end
$$;
comment on function app_logic.keep_parsed_address(text, text) is
'Keep the address and network of an X-Real-IP value that is no canonical dotted quad, and the user agent '
'(keep_request_headers).';

-- One header read per request (issue 13). A submission read request.headers four times (the
-- API key in the pre-request, the address for the limiter and for the consent rows, the user
-- agent), each a JSON parse, and matched the address against app_logic.dotted_quad's regular
-- expression twice (about 30k instructions each). So the pre-request, which reads the headers
-- anyway, keeps what the rest of the request reads of them in transaction-local settings
-- app.request_client_ip, app.request_client_network and app.request_user_agent, and client_ip,
-- client_network and request_user_agent read those. A client cannot set them: PostgREST sets
-- only request.* (headers and cookies arrive as JSON inside them), role, search_path and
-- timezone; app.request_* is written only here (db/tests/000-client-address.sql, and
-- tests/test_http_rate_limits.py through nginx).
-- An empty or unset setting (no pre-request ran in this transaction: a job, psql, a test; or the
-- request had no such header) is read from request.headers as before, through a PL/pgSQL
-- function, which gives the same answer: the headers a request carries do not change. Not
-- inlined because PL/pgSQL sets up the state of every node of an expression again in every
-- transaction, a branch that does not run too: the readers' single COALESCE costs little.
--
-- p_quad: app_logic.dotted_quad of the X-Real-IP header, passed in by the caller (a variable):
-- used twice here, so an expression in its place would run its regular expression twice.
-- The network is kept as text in the form inet prints it ('198.51.100.7/32': the limiter's
-- counter key hashes that text, client_network_text). A dotted quad's is not kept: it is the
-- address with '/32' appended, what its cast and set_masklen(.., 32) print, and
-- client_network_text appends it to the kept address when no network is kept (one set_config
-- fewer for every public request; callgrind: 3.3k instructions a pre-request, issue 13, session
-- 10). Only the pre-request keeps either, once per transaction, so a kept address without a
-- kept network is a dotted quad's. Anything else is checked in full by
-- keep_parsed_address, a call: its checks' nodes are set up only when it runs (a dotted quad
-- skips it), where inlined they were set up in every transaction. keep_quad_headers is the
-- dotted quad's arm alone. The pre-request's public branch no longer calls it: since session 11
-- it keeps the same two settings from the text of request.headers (header_text_value), through
-- keep_client_settings as both arms here do, so each setting's name is written in one place.
create function app_logic.keep_quad_headers(p_headers jsonb, p_quad text) returns text
language sql volatile
as $$
    select app_logic.keep_client_settings(p_quad, coalesce(p_headers ->> 'user-agent', ''))
$$;
comment on function app_logic.keep_quad_headers(jsonb, text) is
'keep_request_headers for headers whose X-Real-IP is the canonical dotted quad p_quad (never null).';

create function app_logic.keep_request_headers(p_headers jsonb, p_quad text) returns text
language sql volatile
as $$
    select case
        when p_quad is null
            then app_logic.keep_parsed_address(p_headers ->> 'x-real-ip', coalesce(p_headers ->> 'user-agent', ''))
        else app_logic.keep_quad_headers(p_headers, p_quad)
    end
$$;
comment on function app_logic.keep_request_headers(jsonb, text) is
'Keep the client address, its network and the user agent of these request headers for the rest of the '
'transaction (the pre-request''s one header read).';

-- The readers' path without a kept value: request_header, in PL/pgSQL so that it stays a call.
create function app_logic.read_request_header(p_name text) returns text
language plpgsql stable
as $$
begin
    return app_logic.request_header(p_name);
end
$$;
comment on function app_logic.read_request_header(text) is 'request_header as a call its callers do not inline.';

-- The address readers' path without a kept value, each one call: the parse and the header read
-- as two calls (and a cast) were nodes set up in every transaction that reads the address
-- (callgrind: 2.9k instructions a limiter call).
create function app_logic.client_ip_from_headers() returns inet
language plpgsql stable
as $$
begin
    return app_logic.parse_client_ip(app_logic.request_header('x-real-ip'));
end
$$;
comment on function app_logic.client_ip_from_headers() is 'client_ip read from request.headers (no kept value), as a call.';

create function app_logic.client_network_text_from_headers() returns text
language plpgsql stable
as $$
begin
    return app_logic.parse_client_network(app_logic.request_header('x-real-ip'))::text;
end
$$;
comment on function app_logic.client_network_text_from_headers() is
'client_network_text read from request.headers (no kept value), as a call.';

create function app_logic.client_ip() returns inet
language sql stable
as $$
    select coalesce(
        nullif(current_setting('app.request_client_ip', true), '')::inet, app_logic.client_ip_from_headers()
    )
$$;
comment on function app_logic.client_ip() is
'Client IP address from X-Real-IP (set by nginx), IPv4-mapped addresses as IPv4; null when absent or malformed.';

-- The network as text, as the limiter hashes it (no cast to inet and back), and client_network
-- from it: the kept network, else the kept address of a dotted quad as its /32 (keep_quad_headers
-- keeps no network), else read from the headers.
create function app_logic.client_network_text() returns text
language sql stable
as $$
    select coalesce(
        nullif(current_setting('app.request_client_network', true), ''),
        nullif(current_setting('app.request_client_ip', true), '') || '/32',
        app_logic.client_network_text_from_headers()
    )
$$;
comment on function app_logic.client_network_text() is
'app_logic.client_network as text (''198.51.100.7/32'', ''2001:db8:1:2::/64''); null when absent or malformed.';

create function app_logic.client_network() returns inet
language sql stable
as $$
    select app_logic.client_network_text()::inet
$$;
comment on function app_logic.client_network() is
'Client IPv4 address or IPv6 /64 from X-Real-IP (set by nginx); null when absent or malformed.';

create function app_logic.request_user_agent() returns text
language sql stable
as $$
    select coalesce(nullif(current_setting('app.request_user_agent', true), ''), app_logic.read_request_header('user-agent'))
$$;
comment on function app_logic.request_user_agent() is 'The request''s User-Agent header; null when absent or empty.';

-- The keyed hash (pseudonyms, spam signatures; the rate-limit keys are the same HMAC of the text
-- as it is, 040-rate-limits): HMAC-SHA256 of a text's UTF-8 bytes with a text key, as 32 bytes.
-- Inlined into its callers like them.
create function app_logic.hmac_sha256(p_value text, p_key text) returns bytea
language sql stable
as $$
    select extensions.hmac(convert_to(p_value, 'UTF8'), convert_to(p_key, 'UTF8'), 'sha256')
$$;
comment on function app_logic.hmac_sha256(text, text) is 'HMAC-SHA256 of a text (UTF-8) with a key, 32 bytes.';

-- IPs and emails are pseudonymised with a secret pepper so they cannot be recovered by hashing
-- every IPv4 address or a list of known emails.
create function app_logic.pseudonym(p_value text, p_pepper text) returns text
language sql stable
as $$
    select encode(app_logic.hmac_sha256(p_value, p_pepper), 'hex')
$$;
comment on function app_logic.pseudonym(text, text) is
'HMAC-SHA256 of a value with the pepper given (read once by a caller that hashes several values), hex.';

create function app_logic.pseudonym(p_value text) returns text
language sql stable
as $$
    select app_logic.pseudonym(p_value, app_logic.setting('hash_pepper'))
$$;
comment on function app_logic.pseudonym(text) is 'HMAC-SHA256 of a value with the secret pepper, hex.';

-- A lookup compiled into a constant (the route keys of 005-routes, the role timeouts of
-- 010-api-keys): app_logic.<p_signature>, a STABLE SQL function answering one key of p_values,
-- written again by CREATE OR REPLACE. Callers inline it, so a request reads no table, and the
-- replacement invalidates every cached plan that inlined it: a connection PostgREST keeps open
-- follows a build at its next request. p_signature and p_key are the build's own text, never input.
create function app_logic.compile_json_lookup(p_signature text, p_key text, p_values jsonb) returns void
language plpgsql volatile
as $$
begin
    execute format(
        $f$
        create or replace function app_logic.%s returns text
        language sql stable
        as $b$
            select %L::jsonb ->> (%s)
        $b$
        $f$,
        p_signature, p_values, p_key
    );
end
$$;
comment on function app_logic.compile_json_lookup(text, text, jsonb) is
'Write app_logic.<signature> as an inlinable SQL function answering p_values ->> (key expression).';

-- The statement trigger of a table a function is compiled from (app_logic.routes,
-- app.rate_limit_rules, app.spam_rules, app.consent_texts): runs app_logic.<its argument>(), the
-- compiler, after any change, in the same transaction. Compiles of one table take turns: two
-- transactions replacing the same function at once fail with "tuple concurrently updated", and the
-- one that waits reads the rows the other committed (each statement of this function takes a new
-- snapshot under READ COMMITTED). Under REPEATABLE READ or SERIALIZABLE the compile would read the
-- transaction's first snapshot and could write a function without a change another transaction
-- committed since, so such a change is refused (and with it the statement).
create function app_logic.tg_compile() returns trigger
language plpgsql volatile
as $$
begin
    if current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'change %.% under READ COMMITTED (the default): this transaction is %',
            tg_table_schema, tg_table_name, upper(current_setting('transaction_isolation'))
        using errcode = '25001', hint = 'Run the change in a transaction without SET TRANSACTION ISOLATION LEVEL.';
    end if;
    perform pg_advisory_xact_lock(hashtextextended('app_logic.tg_compile:' || tg_argv[0], 0));
    execute format('select app_logic.%I()', tg_argv[0]);
    return null;
end
$$;
comment on function app_logic.tg_compile() is
'Statement trigger: run the compiler app_logic.<first trigger argument>() after a change of the table.';

-- Answering 4xx by setting response.status (instead of raising) keeps the transaction, and
-- with it the rate-limit counters, committed.
-- One SQL expression, so the planner inlines it into the caller's expression (a PL/pgSQL call
-- cost a submission about 14k instructions). set_config is volatile, so the condition runs in
-- full every time, in order (headers only when given); coalesce keeps the answer p_body even
-- when set_config returns null.
create function app_logic.respond(p_status integer, p_body jsonb, p_headers jsonb default null) returns jsonb
language sql volatile
as $$
    select case
        when
            coalesce(set_config('response.status', p_status::text, true), '') is not null
            and (p_headers is null or coalesce(set_config('response.headers', p_headers::text, true), '') is not null)
            then p_body
    end
$$;
comment on function app_logic.respond(integer, jsonb, jsonb) is
'Set the HTTP status (and headers, a JSON array of one-key objects) and return the body.';

create function app_logic.error_body(p_code text, p_message text, p_details text default null, p_hint text default null)
returns jsonb
language sql immutable
as $$
    select jsonb_build_object('code', p_code, 'message', p_message, 'details', p_details, 'hint', p_hint)
$$;
comment on function app_logic.error_body(text, text, text, text) is 'An error in PostgREST''s shape.';

-- A 400 naming every bad field: message names them, details has one sentence per problem.
create function app_logic.reject_invalid(p_problems jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_fields text[] := array(select distinct p ->> 'field' from jsonb_array_elements(p_problems) as p order by 1);
    v_message text;
begin
    if jsonb_array_length(p_problems) = 1 then
        v_message := p_problems -> 0 ->> 'message';
    else
        v_message := format('%s fields are invalid: %s.', cardinality(v_fields), array_to_string(v_fields, ', '));
    end if;
    return app_logic.respond(
        400,
        app_logic.error_body(
            'CHV01',
            v_message,
            (select string_agg(p ->> 'message', ' ') from jsonb_array_elements(p_problems) as p),
            'Correct the fields named in details and send the request again.'
        )
        || jsonb_build_object('errors', p_problems)
    );
end
$$;
comment on function app_logic.reject_invalid(jsonb) is
'Answer 400 with the problems found by app_logic.validate; nothing is stored.';

create function app_logic.problem(p_field text, p_message text) returns jsonb
language sql immutable
as $$
    select jsonb_build_array(jsonb_build_object('field', p_field, 'message', p_message))
$$;

-- Unicode-aware trimming: besides ASCII whitespace, every Unicode space (NBSP, ideographic
-- space, ...) and the invisible format characters (zero-width space and joiners, word joiner,
-- BOM, bidi marks and controls, Hangul fillers, braille blank) at either end. A name made only
-- of such characters trims to '' and fails its minLength. btrim with a set, not a regex: cheap.
-- The set is a function of its own because the rule compiler (001) writes it into its patterns.
create function app_logic.trim_characters() returns text
language sql immutable parallel safe
as $$
    select E' \t\n\r\u000b\u000c\u0085\u00a0\u00ad\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5'
        || E'\u180b\u180c\u180d\u180e\u180f\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a'
        || E'\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u202f\u205f\u2060\u2061'
        || E'\u2062\u2063\u2064\u2065\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\u2800\u3000'
        || E'\u3164\ufeff\uffa0'
$$;
comment on function app_logic.trim_characters() is
'The characters app_logic.trim_text removes at either end (whitespace and invisible characters).';

-- Inlined into its caller, with the set folded into a constant when the plan is made.
create function app_logic.trim_text(p_text text) returns text
language sql immutable parallel safe
as $$
    select btrim(p_text, app_logic.trim_characters())
$$;
comment on function app_logic.trim_text(text) is
'The text without leading and trailing whitespace or invisible characters (Unicode spaces, zero-width, bidi, BOM).';

-- Characters no text field may hold: C0 controls (a multi-line field keeps tab, LF, CR), DEL,
-- the C1 controls U+0080-U+009F, and the bidi embeddings, overrides and isolates that reorder
-- what a reader sees (U+202A-U+202E, U+2066-U+2069); a single-line field also refuses the
-- Unicode line and paragraph separators. The ranges, as a regular expression's bracket contents,
-- are a function of their own because the rule compiler (001) writes them into its patterns.
create function app_logic.control_characters(p_multiline boolean) returns text
language sql immutable parallel safe
as $$
    select case when p_multiline
        then '\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069'
        else '\u0001-\u001f\u007f-\u009f\u2028-\u202e\u2066-\u2069'
    end
$$;
comment on function app_logic.control_characters(boolean) is
'The characters no text field may hold, as the contents of a regular expression''s brackets.';

-- With a constant p_multiline (every compiled rule), the pattern folds into a constant when the
-- plan is made.
create function app_logic.has_control_characters(p_text text, p_multiline boolean default false) returns boolean
language sql immutable parallel safe
as $$
    select p_text ~ ('[' || app_logic.control_characters(p_multiline) || ']')
$$;
comment on function app_logic.has_control_characters(text, boolean) is
'Whether the text holds a control character (C0, DEL, C1) or a bidi embedding, override or isolate.';

-- Free-form JSON (browserInfo, ctaClicks, timeSpentPerSection) is checked by shape before it is
-- measured, and nothing is converted to text for it: the jsonpath walks read the binary form.
-- Depth first, with a walk that stops at the limit, so the other walks recurse at most that far.
-- A number is bounded in magnitude both ways, so its text is never much longer than what was
-- sent: 1e131071 is 9 bytes in the body and 131,072 characters as text.
create function app_logic.free_json_problem(p_field text, p_value jsonb) returns jsonb
language plpgsql immutable
as $$
begin
    if jsonb_path_exists(p_value, 'strict $.**{11}') then
        return app_logic.problem(p_field, format('%s must be nested at most 10 levels deep.', p_field));
    end if;
    if jsonb_path_exists(
        p_value, 'strict $.** ? (@.type() == "number" && (@ >= 1e15 || @ <= -1e15 || (@ != 0 && @ > -1e-15 && @ < 1e-15)))'
    ) then
        return app_logic.problem(p_field, format(
            '%s may hold only numbers below 10^15 in magnitude, and none closer to 0 than 10^-15 but 0 itself.', p_field
        ));
    end if;
    -- The scale too, read from the binary numeric (never printed): 0e-16383 is zero, and the
    -- size check would print it as 16,385 characters (60 KB of them: 100 MB of text, 0.8 s).
    if exists (
        select from jsonb_path_query(p_value, 'strict $.** ? (@.type() == "number")') as n (v)
        where scale(n.v::numeric) > 32
    ) then
        return app_logic.problem(p_field, format('%s may hold only numbers of at most 32 digits after the decimal point.', p_field));
    end if;
    if jsonb_path_exists(
        p_value, 'strict $.** ? (@.type() == "string" && @ like_regex "[\\u0001-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]")'
    ) or jsonb_path_exists(
        p_value,
        'strict $.** ? (@.type() == "object").keyvalue() ? (@.key like_regex "[\\u0001-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]")'
    ) then
        return app_logic.problem(p_field, format('%s must be free of control characters.', p_field));
    end if;
    return '[]'::jsonb;
end
$$;
comment on function app_logic.free_json_problem(text, jsonb) is
'Problems of free-form JSON: nesting beyond 10 levels, numbers of absurd magnitude, control characters.';

-- maxBytes marks free-form JSON (an object or an array): its shape is bounded before its text
-- is measured.
create function app_logic.free_json_size_problem(p_field text, p_value jsonb, p_rule jsonb) returns jsonb
language plpgsql stable
as $$
declare
    v_problems jsonb;
begin
    if not p_rule ? 'maxBytes' then
        return '[]'::jsonb;
    end if;
    v_problems := app_logic.free_json_problem(p_field, p_value);
    if jsonb_array_length(v_problems) = 0 and octet_length(p_value::text) > (p_rule ->> 'maxBytes')::integer then
        return app_logic.problem(p_field, format('%s must be at most %s bytes of JSON.', p_field, p_rule ->> 'maxBytes'));
    end if;
    return v_problems;
end
$$;
comment on function app_logic.free_json_size_problem(text, jsonb, jsonb) is
'Problems of a free-form JSON value against its rule''s maxBytes (shape first, then size); [] without maxBytes.';

-- The shape of an address and where its dots may not be, functions of their own because the
-- rule compiler (001) writes them into its patterns.
create function app_logic.email_pattern() returns text
language sql immutable parallel safe
as $$
    select '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$'
$$;
comment on function app_logic.email_pattern() is 'The shape of an email address (one @, a dotted domain), a regular expression.';

create function app_logic.email_dots_pattern() returns text
language sql immutable parallel safe
as $$
    select '^\.|\.\.|\.@'
$$;
comment on function app_logic.email_dots_pattern() is
'Where an email address may not have a dot (first, doubled, before the @), a regular expression.';

-- Email: one @, a dotted domain, no spaces; the length rules come from RFC 5321: a local part
-- of at most 64 characters, domain labels of at most 63, at most 254 in all. The lengths are
-- checked apart from the shape: bounded repeats ({1,64}, {0,61}) inside the pattern made
-- PostgreSQL's regex engine take about 20 us per address, the largest cost of validating a lead.
-- The domain holds only letters, digits, '-' and '.', so a label longer than 63 is a run of 64.
create function app_logic.is_valid_email(p_email text) returns boolean
language sql immutable
as $$
    select p_email ~ app_logic.email_pattern()
        and strpos(p_email, '@') <= 65
        and substr(p_email, strpos(p_email, '@') + 1) !~ '[A-Za-z0-9-]{64}'
        and p_email !~ app_logic.email_dots_pattern()
        and char_length(p_email) <= 254
$$;

-- One value against one rule. Rules use JSON Schema's words (type, minLength, maxLength,
-- pattern, enum, minimum, maximum, maxItems, items, properties, additionalProperties, const)
-- plus: trim (Unicode-aware, lengths after trimming), multiline (a string may hold tab, LF and
-- CR; no string holds any other control character), maxBytes (free-form JSON: bounded shape, then
-- the size of its text), patternText (the pattern in words, for the message), and the types
-- email and phone. The same rules feed the
-- OpenAPI document, so the documentation cannot disagree with the checks.
create function app_logic.check_value(p_field text, p_value jsonb, p_rule jsonb) returns jsonb
language plpgsql stable
as $$
declare
    v_type text := p_rule ->> 'type';
    v_actual text := jsonb_typeof(p_value);
    v_text text;
    v_number numeric;
    v_len integer;
    v_min integer := (p_rule ->> 'minLength')::integer;
    v_max integer := (p_rule ->> 'maxLength')::integer;
    v_problems jsonb := '[]'::jsonb;
    v_key text;
    v_item jsonb;
    v_index integer := 0;
    v_sub jsonb;
begin
    if v_type in ('string', 'email', 'phone') then
        if v_actual <> 'string' then
            return app_logic.problem(p_field, format('%s must be a string.', p_field));
        end if;
        v_text := p_value #>> '{}';
        if coalesce((p_rule ->> 'trim')::boolean, false) then
            v_text := app_logic.trim_text(v_text);
        end if;
        v_len := char_length(v_text);
        if v_min is not null and v_max is not null and (v_len < v_min or v_len > v_max) then
            return app_logic.problem(p_field, format('%s must be between %s and %s characters.', p_field, v_min, v_max));
        elsif v_max is not null and v_len > v_max then
            return app_logic.problem(p_field, format('%s must be at most %s characters.', p_field, v_max));
        elsif v_min is not null and v_len < v_min then
            return app_logic.problem(p_field, format('%s must be at least %s characters.', p_field, v_min));
        end if;
        if app_logic.has_control_characters(v_text, coalesce((p_rule ->> 'multiline')::boolean, false)) then
            return app_logic.problem(p_field, format('%s must be free of control characters.', p_field));
        end if;
        if p_rule ? 'enum' and not (p_rule -> 'enum') ? v_text then
            return app_logic.problem(p_field, format(
                '%s must be one of: %s.', p_field,
                (select string_agg(e, ', ') from jsonb_array_elements_text(p_rule -> 'enum') as e)
            ));
        end if;
        if p_rule ? 'pattern' and v_text !~ (p_rule ->> 'pattern') then
            return app_logic.problem(p_field, format(
                '%s must be %s.', p_field, coalesce(p_rule ->> 'patternText', 'in the expected format')
            ));
        end if;
        if v_type = 'email' and not app_logic.is_valid_email(v_text) then
            return app_logic.problem(p_field, format('%s must be a valid email address.', p_field));
        end if;
        if v_type = 'phone' then
            v_text := (select p.problem from app_logic.phone_to_e164(v_text) as p);
            if v_text is not null then
                return app_logic.problem(p_field, format('%s %s', p_field, v_text));
            end if;
        end if;
        return v_problems;
    elsif v_type = 'boolean' then
        if v_actual <> 'boolean' then
            return app_logic.problem(p_field, format('%s must be true or false.', p_field));
        end if;
        if p_rule ? 'const' and p_value <> p_rule -> 'const' then
            return app_logic.problem(p_field, format('%s must be %s.', p_field, p_rule ->> 'const'));
        end if;
        return v_problems;
    elsif v_type in ('integer', 'number') then
        if v_actual <> 'number' then
            return app_logic.problem(p_field, format('%s must be a number.', p_field));
        end if;
        v_number := p_value::numeric;
        if v_type = 'integer' and v_number <> trunc(v_number) then
            return app_logic.problem(p_field, format('%s must be a whole number.', p_field));
        end if;
        -- 1e-16000 and 0e-16000 are 8 bytes in the body, within every range, and 16,000
        -- characters once stored and printed (a jsonb column, a numeric, every answer showing
        -- it). A double from JavaScript above 10^-15 has at most 31 digits after the point.
        if scale(v_number) > 32 then
            return app_logic.problem(p_field, format('%s must have at most 32 digits after the decimal point.', p_field));
        end if;
        if (p_rule ? 'minimum' and v_number < (p_rule ->> 'minimum')::numeric)
            or (p_rule ? 'maximum' and v_number > (p_rule ->> 'maximum')::numeric) then
            return app_logic.problem(p_field, case
                when p_rule ? 'minimum' and p_rule ? 'maximum' then
                    format('%s must be between %s and %s.', p_field, p_rule ->> 'minimum', p_rule ->> 'maximum')
                when p_rule ? 'minimum' then format('%s must be at least %s.', p_field, p_rule ->> 'minimum')
                else format('%s must be at most %s.', p_field, p_rule ->> 'maximum')
            end);
        end if;
        return v_problems;
    elsif v_type = 'object' then
        if v_actual <> 'object' then
            return app_logic.problem(p_field, format('%s must be an object.', p_field));
        end if;
        v_sub := app_logic.free_json_size_problem(p_field, p_value, p_rule);
        if jsonb_array_length(v_sub) > 0 then
            return v_sub;
        end if;
        -- Nested: with the sub-select in the same condition, it ran as a query for every object.
        if p_rule ? 'maxProperties' then
            if (select count(*) from jsonb_object_keys(p_value)) > (p_rule ->> 'maxProperties')::integer then
                return app_logic.problem(
                    p_field, format('%s must have at most %s entries.', p_field, p_rule ->> 'maxProperties')
                );
            end if;
        end if;
        if p_rule ? 'properties' or p_rule ? 'additionalProperties' then
            return app_logic.validate(p_value, p_rule, p_field || '.');
        end if;
        return v_problems;
    elsif v_type = 'array' then
        if v_actual <> 'array' then
            return app_logic.problem(p_field, format('%s must be an array.', p_field));
        end if;
        if p_rule ? 'maxItems' and jsonb_array_length(p_value) > (p_rule ->> 'maxItems')::integer then
            return app_logic.problem(p_field, format('%s must have at most %s items.', p_field, p_rule ->> 'maxItems'));
        end if;
        v_sub := app_logic.free_json_size_problem(p_field, p_value, p_rule);
        if jsonb_array_length(v_sub) > 0 then
            return v_sub;
        end if;
        if p_rule ? 'items' then
            for v_item in select e from jsonb_array_elements(p_value) as e loop
                v_sub := app_logic.check_value(format('%s[%s]', p_field, v_index), v_item, p_rule -> 'items');
                v_problems := v_problems || v_sub;
                v_index := v_index + 1;
                -- One bad item is enough to name the field; do not flood the answer.
                exit when jsonb_array_length(v_problems) >= 5;
            end loop;
        end if;
        return v_problems;
    elsif v_type is null then
        return v_problems; -- any JSON value
    end if;
    raise exception 'unknown rule type % for %', v_type, p_field using errcode = 'CHX01';
end
$$;
comment on function app_logic.check_value(text, jsonb, jsonb) is
'Problems (a JSON array of {field, message}) of one value against one rule; [] when it passes.';

-- A JSON object against an object rule: unknown keys, missing required keys, then each field.
create function app_logic.validate(p_body jsonb, p_rule jsonb, p_prefix text default '') returns jsonb
language plpgsql stable
as $$
declare
    v_problems jsonb := '[]'::jsonb;
    v_properties jsonb := coalesce(p_rule -> 'properties', '{}'::jsonb);
    v_required jsonb := coalesce(p_rule -> 'required', '[]'::jsonb);
    v_extra jsonb := coalesce(p_rule -> 'additionalProperties', 'false'::jsonb);
    v_key text;
    v_value jsonb;
begin
    if p_body is null or jsonb_typeof(p_body) <> 'object' then
        return app_logic.problem(
            coalesce(nullif(rtrim(p_prefix, '.'), ''), 'body'),
            format('%s must be a JSON object.', coalesce(nullif(rtrim(p_prefix, '.'), ''), 'The request body'))
        );
    end if;
    for v_key, v_value in select k, v from jsonb_each(p_body) as e (k, v) loop
        if v_properties ? v_key then
            -- null is the same as leaving the field out; required fields are checked below.
            if jsonb_typeof(v_value) <> 'null' then
                v_problems := v_problems || app_logic.check_value(p_prefix || v_key, v_value, v_properties -> v_key);
            end if;
        elsif jsonb_typeof(v_extra) = 'object' then
            if char_length(v_key) > 100 then
                v_problems := v_problems || app_logic.problem(p_prefix || left(v_key, 100), format(
                    '%s keys must be at most 100 characters.', coalesce(nullif(rtrim(p_prefix, '.'), ''), 'The body')
                ));
            elsif app_logic.has_control_characters(v_key) then
                v_problems := v_problems || app_logic.problem(coalesce(nullif(rtrim(p_prefix, '.'), ''), 'body'), format(
                    '%s keys must be free of control characters.', coalesce(nullif(rtrim(p_prefix, '.'), ''), 'The body')
                ));
            else
                v_problems := v_problems || app_logic.check_value(p_prefix || v_key, v_value, v_extra);
            end if;
        else
            v_problems := v_problems || app_logic.problem(
                p_prefix || left(v_key, 100), format('%s is not a known field.', p_prefix || left(v_key, 100))
            );
        end if;
        exit when jsonb_array_length(v_problems) >= 20;
    end loop;
    -- By index, not `for ... in select`: a loop over a query is a statement run per call.
    for i in 0..jsonb_array_length(v_required) - 1 loop
        v_key := v_required ->> i;
        if jsonb_typeof(coalesce(p_body -> v_key, 'null'::jsonb)) = 'null' then
            v_problems := v_problems || app_logic.problem(p_prefix || v_key, format('%s is required.', p_prefix || v_key));
        end if;
    end loop;
    return v_problems;
end
$$;
comment on function app_logic.validate(jsonb, jsonb, text) is
'Problems of a JSON object against an object rule (properties, required, additionalProperties).';

-- The opening of every public POST: count the request against the rate limits (first, so bad
-- input counts too), validate the body against the endpoint's rule, then, only for a body the
-- rule passed, the endpoint's own checks (p_checks: a function from the body to more problems,
-- e.g. a cross-field rule or a lookup). The answer to give (429 or 400), or null to go on.
create function app_logic.screen_request(
    p_action text, p_body jsonb, p_rule jsonb, p_email text default null, p_checks regproc default null,
    p_cost integer default 1, p_passes boolean default null
) returns jsonb
language plpgsql volatile
as $$
declare
    v_problems jsonb;
    v_limited jsonb := app_logic.enforce_rate_limits(p_action, p_email, p_cost);
begin
    if v_limited is not null then
        return v_limited;
    end if;
    -- The caller's compiled answer (app_logic.compile_rule) for the rule and the checks: a body
    -- known to pass needs neither the interpreter nor the hook.
    if p_passes then
        return null;
    end if;
    v_problems := app_logic.validate(p_body, p_rule);
    if jsonb_array_length(v_problems) = 0 and p_checks is not null then
        execute format('select %s($1)', p_checks) using p_body into v_problems;
    end if;
    if jsonb_array_length(v_problems) > 0 then
        return app_logic.reject_invalid(v_problems);
    end if;
    return null;
end
$$;
comment on function app_logic.screen_request(text, jsonb, jsonb, text, regproc, integer, boolean) is
'Rate limit (the request counting as p_cost), validate, then the endpoint''s own checks (p_checks), of a POST '
'body (skipped when p_passes says the compiled rule passed it): the 429 or 400 answer, or null when the request '
'may proceed.';

-- Field readers for a body the rule passed: before validation a field may hold anything
-- (1e30 overflows an integer, a number read as text may be 131,072 characters long).

-- Trimmed text of a field, or null when absent, JSON null or blank.
create function app_logic.text_field(p_body jsonb, p_key text) returns text
language sql immutable
as $$
    select nullif(app_logic.trim_text(p_body ->> p_key), '')
$$;
comment on function app_logic.text_field(jsonb, text) is
'A validated text field, trimmed (app_logic.trim_text); null when absent, JSON null or blank.';

-- Via numeric, because JSON may spell a whole number 1.0. The value is one the rule passed (a
-- number, JSON null or absent), so its text, null for both of the others, is all it needs: half
-- the expression nodes of a test of its JSON type, each set up again in every transaction
-- (issue 13: 11k -> 6k instructions a field).
create function app_logic.integer_field(p_body jsonb, p_key text) returns integer
language sql immutable
as $$
    select (p_body ->> p_key)::numeric::integer
$$;
comment on function app_logic.integer_field(jsonb, text) is
'A validated whole-number field as integer; null when absent or JSON null.';

-- As integer_field: a value the rule passed (true, false, JSON null or absent) read by its text.
create function app_logic.boolean_field(p_body jsonb, p_key text) returns boolean
language sql immutable
as $$
    select (p_body ->> p_key)::boolean
$$;
comment on function app_logic.boolean_field(jsonb, text) is 'A validated boolean field; null when absent or JSON null.';

-- A public POST is declared in one line: api.<p_function>(jsonb), as the owner (SECURITY
-- DEFINER, pinned search_path), opens as every public POST does (app_logic.screen_request with
-- the action, the rule p_rule() (or p_rule(body), for a body of two shapes, such as one item or
-- a batch of them) and the checks hook p_checks), answers a refusal as it is (or
-- through p_refusal, for an endpoint that answers in its own media type), and hands a body that
-- passed to p_handler(body), which holds only the endpoint's own logic and returns its answer
-- (the endpoint returns what the handler returns). The handler is not SECURITY DEFINER and no
-- web role may call it: it runs only as the endpoint, on the endpoint's search_path.
create function app_logic.declare_post(
    p_function text, p_action text, p_rule regproc, p_handler regproc, p_checks regproc default null,
    p_refusal regproc default null
) returns void
language plpgsql volatile
-- Here a regproc prints schema-qualified: the generated body names every function so.
set search_path = pg_catalog, pg_temp
as $$
begin
    execute format($template$
create function api.%I(jsonb) returns %s
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $body$
declare
    p_body alias for $1;
    v_refusal jsonb;
begin
    v_refusal := app_logic.screen_request(%L, p_body, %s(%s), p_checks => %L);
    if v_refusal is not null then
        return %s;
    end if;
    return %s(p_body);
end
$body$
$template$,
        p_function, (select format_type(f.prorettype, null) from pg_proc as f where f.oid = p_handler),
        p_action, p_rule,
        (select case when f.pronargs = 1 then 'p_body' else '' end from pg_proc as f where f.oid = p_rule), p_checks,
        case when p_refusal is null then 'v_refusal' else format('%s(v_refusal)', p_refusal) end,
        p_handler
    );
    -- A handler without a comment of its own gets the one every handler could have.
    if obj_description(p_handler, 'pg_proc') is null then
        execute format(
            'comment on function %s(jsonb) is %L', p_handler,
            format('What api.%s does with a body that passed its screening (app_logic.declare_post).', p_function)
        );
    end if;
end
$$;
comment on function app_logic.declare_post(text, text, regproc, regproc, regproc, regproc) is
'Create api.<p_function>(jsonb), a public POST: screen_request(p_action, body, p_rule() or p_rule(body), '
'checks p_checks), then p_handler(body) for a body that passed.';

-- An append-only table: p_guard (a trigger function that refuses, or lets its own maintenance
-- through) runs before every UPDATE and DELETE row (<table>_append_only) and before TRUNCATE
-- (<table>_no_truncate). ENABLE ALWAYS: the guard fires even with session_replication_role =
-- replica, the switch a superuser would otherwise use to silence ordinary triggers.
create function app_logic.declare_append_only(p_table regclass, p_guard regproc) returns void
language plpgsql volatile
-- Here a regclass and a regproc print schema-qualified.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name text := (select c.relname from pg_class as c where c.oid = p_table);
begin
    execute format(
        'create trigger %I before update or delete on %s for each row execute function %s()',
        v_name || '_append_only', p_table, p_guard
    );
    execute format(
        'create trigger %I before truncate on %s for each statement execute function %s()',
        v_name || '_no_truncate', p_table, p_guard
    );
    execute format('alter table %s enable always trigger %I', p_table, v_name || '_append_only');
    execute format('alter table %s enable always trigger %I', p_table, v_name || '_no_truncate');
end
$$;
comment on function app_logic.declare_append_only(regclass, regproc) is
'Guard a table with p_guard before every UPDATE, DELETE and TRUNCATE, enabled ALWAYS (even for replica sessions).';

-- Rules of fields several endpoints share ------------------------------------------------

-- The body nginx sends with a query-string GET (db/functions/201-query-strings.sql): {} (a
-- client cannot send one through nginx).
create function app_logic.query_string_body_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object", "description": "Empty: the parameters are in the query string.", "additionalProperties": false
    }'::jsonb
$$;
comment on function app_logic.query_string_body_rule() is 'Rule of the body of a query-string GET: an empty object.';

create function app_logic.session_id_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "string", "trim": true, "minLength": 1, "maxLength": 100,
        "description": "The browser session''s opaque id; the data belongs to the first lead whose submission named the session."
    }'::jsonb
$$;
comment on function app_logic.session_id_rule() is 'Rule of a sessionId field: 1 to 100 characters after trimming.';

-- The largest value an integer column holds: a bigger number is a 400, not an overflow.
create function app_logic.counter_rule(p_description text) returns jsonb
language sql immutable
as $$
    select jsonb_build_object(
        'type', 'integer', 'minimum', 0, 'maximum', 2147483647, 'description', p_description
    )
$$;
comment on function app_logic.counter_rule(text) is 'Rule of a non-negative integer field that fits an integer column.';

-- Core Web Vitals: timings in milliseconds (at most an hour), CLS unitless.
create function app_logic.core_web_vitals_rule() returns jsonb
language sql immutable
as $$
    select '{
        "type": "object",
        "description": "Core Web Vitals measured on the page: lcp, fid, inp, ttfb in milliseconds, cls unitless.",
        "properties": {
            "lcp": {"type": "number", "minimum": 0, "maximum": 3600000, "description": "Largest Contentful Paint, ms."},
            "fid": {"type": "number", "minimum": 0, "maximum": 3600000, "description": "First Input Delay, ms."},
            "cls": {"type": "number", "minimum": 0, "maximum": 100, "description": "Cumulative Layout Shift, unitless."},
            "inp": {"type": "number", "minimum": 0, "maximum": 3600000, "description": "Interaction to Next Paint, ms."},
            "ttfb": {"type": "number", "minimum": 0, "maximum": 3600000, "description": "Time to First Byte, ms."}
        },
        "additionalProperties": false
    }'::jsonb
$$;
comment on function app_logic.core_web_vitals_rule() is 'Rule of a coreWebVitals object: known metrics only, each >= 0.';

-- One escape for every page and picture the database writes: HTML (consent links) and SVG (the
-- logo heatmap). The apostrophe as a numeric reference, which HTML and XML both read, so the text
-- is safe in content and in an attribute value whichever quote the attribute uses.
create function app_logic.html_escape(p_text text) returns text
language sql immutable
as $$
    select replace(replace(replace(replace(replace(p_text, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
comment on function app_logic.html_escape(text) is 'Text made safe to place in HTML or XML content and attribute values.';

-- CSV (Accept: text/csv, GET of any view) --------------------------------------------------
-- PostgREST 12 serves text/csv with an aggregate over anyelement that returns the domain
-- "text/csv" (a media type handler), in place of its built-in CSV, which printed cells such as
-- =HYPERLINK(...) as they were stored: a spreadsheet runs them (CSV injection). OWASP's rule:
-- a text cell that starts with =, +, -, @, tab or carriage return gets a leading single quote,
-- and every text cell is quoted with its double quotes doubled (RFC 4180). Numbers, booleans
-- and null stay bare. Values are written as JSON writes them (true, ISO 8601 times).
-- PostgREST finds a handler by the media type its domain is named after: hence the name.
create domain api."text/csv" as text; -- noqa: RF05
comment on domain api."text/csv" is -- noqa: RF05
'The text/csv media type: what api.csv_agg returns (a PostgREST media type handler).';

create function app_logic.csv_cell(p_value json) returns text
language sql immutable parallel safe
as $$
    select case json_typeof(p_value)
        when 'null' then ''
        when 'number' then p_value::text
        when 'boolean' then p_value::text
        when 'string' then '"' || replace(
            case when p_value #>> '{}' ~ '^[-=+@\t\r]' then '''' else '' end || (p_value #>> '{}'), '"', '""'
        ) || '"'
        else '"' || replace(p_value::text, '"', '""') || '"'
    end
$$;
comment on function app_logic.csv_cell(json) is
'One CSV cell of a JSON value: text quoted, with a leading '' when it could start a spreadsheet formula.';

create function app_logic.csv_line(p_row json, p_header boolean) returns text
language sql immutable parallel safe
as $$
    select string_agg(
        case when p_header then app_logic.csv_cell(to_json(e.key)) else app_logic.csv_cell(e.value) end, ','
        order by e.n
    )
    from json_each(p_row) with ordinality as e (key, value, n)
$$;
comment on function app_logic.csv_line(json, boolean) is 'The CSV line of a row given as a JSON object, or its header line.';

-- The rows (or a function's result) as CSV: a header from the first row's keys, then a line
-- per row. A value that is no row (a function's jsonb) is one column, its JSON keys if an object.
create function app_logic.csv_agg_final(p_rows anyarray) returns api."text/csv" -- noqa: RF05
language sql immutable parallel safe
as $$
    select coalesce((
        select app_logic.csv_line((array_agg(u.r order by u.n))[1], true) || E'\n'
            || string_agg(app_logic.csv_line(u.r, false), E'\n' order by u.n)
        from (
            select case when json_typeof(e.r) = 'object' then e.r else json_build_object('value', e.r) end, e.n
            from json_array_elements(to_json(p_rows)) with ordinality as e (r, n)
        ) as u (r, n)
    ), '')::api."text/csv"
$$;
comment on function app_logic.csv_agg_final(anyarray) is 'Final function of api.csv_agg: the collected rows as CSV text.';

-- The rows are collected by the built-in array_append, which appends in place inside an
-- aggregate (linear time); a plpgsql or SQL transition copies the state on every row, which is
-- quadratic. A language internal function needs a superuser: without one the build uses a SQL
-- wrapper, which is right but slower on long answers (db-max-rows caps them at 1000 rows).
do $csv$
begin
    execute 'create function app_logic.csv_push(anyarray, anyelement) returns anyarray '
        'language internal immutable parallel safe as ''array_append''';
exception when insufficient_privilege then
    execute 'create function app_logic.csv_push(p_rows anyarray, p_row anyelement) returns anyarray '
        'language sql immutable parallel safe as ''select array_append(p_rows, p_row)''';
end
$csv$;
comment on function app_logic.csv_push(anyarray, anyelement) is 'Transition of api.csv_agg: array_append.';

create aggregate api.csv_agg(anyelement) ( -- noqa: LT01
    sfunc = app_logic.csv_push,
    stype = anyarray,
    finalfunc = app_logic.csv_agg_final
);
comment on aggregate api.csv_agg(anyelement) is -- noqa: LT01
'PostgREST''s text/csv handler for every view: RFC 4180 CSV with a header line; a text cell that could start a '
'spreadsheet formula (=, +, -, @, tab, CR) gets a leading single quote (OWASP).';

-- pg_cron jobs are declared by db/policies and reconciled by the build: cron.schedule upserts
-- by name, and the build unschedules the project's jobs that were not declared this time.
create function app_logic.declare_job(p_name text, p_schedule text, p_command text) returns void
language plpgsql volatile
as $$
begin
    if p_name not like 'chorus_website:%' then
        raise exception 'job name % must start with chorus_website:', p_name using errcode = 'CHX02';
    end if;
    if to_regclass('pg_temp.chorus_declared_jobs') is not null then
        -- format(): the table exists only during a build, so it is not checked statically.
        execute format(
            'insert into %I.%I (jobname, schedule, command) values ($1, $2, $3) on conflict do nothing',
            'pg_temp', 'chorus_declared_jobs'
        ) using p_name, p_schedule, p_command;
    end if;
    if exists (select from pg_extension where extname = 'pg_cron') then
        execute format('select %I.schedule($1, $2, $3)', 'cron') using p_name, p_schedule, p_command;
    end if;
end
$$;
comment on function app_logic.declare_job(text, text, text) is
'Schedule a project pg_cron job (name prefixed chorus_website:); a no-op where pg_cron is absent.';
