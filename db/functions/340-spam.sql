-- Spam protection beyond rate limits (issue 14): the rules of app.spam_rules applied to a POST
-- body after its rate limit and validation. Two kinds of answer:
--   * quiet: a filled-in honeypot, or a form token too young, expired, forged or missing where
--     required: the same 201 a real submission gets, nothing stored, the rate-limit slot used;
--     a bot learns nothing to adapt to;
--   * loud: a missing, wrong, expired or replayed ALTCHA solution is a 400 naming `altcha`,
--     since a real browser solved it and its user should hear why the form failed.
-- Form tokens and challenges are signed with the setting spam_hmac_key, and stateless (but for
-- their per-address rate-limit counters, rules form_token and challenge) until a
-- challenge is solved (app.used_challenges makes it single use).

create function app_logic.spam_hmac(p_text text) returns text
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
    select app_logic.pseudonym(p_text, app_logic.setting('spam_hmac_key'))
$$;
comment on function app_logic.spam_hmac(text) is 'HMAC-SHA256 (hex) of a text with the spam key: signs tokens and challenges.';

-- GET /api/form-token: "<issued, unix seconds>.<nonce>.<signature>". Like the challenge below it
-- is rate-limited per address (rule form_token), so it is a query-string GET (nginx sends it as
-- a POST of {}; db/functions/201-query-strings.sql): a GET runs read-only and could not count.
-- Its parameters' rule, no_query_parameters_rule, is named by its route (db/routes.toml).

create function app_logic.issue_form_token_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_payload text;
begin
    v_payload := extract(epoch from date_trunc('second', app_logic.now()))::bigint::text
        || '.' || encode(extensions.gen_random_bytes(12), 'hex');
    return jsonb_build_object('formToken', v_payload || '.' || app_logic.spam_hmac('form:' || v_payload));
end
$$;
-- The body is nginx's {}: counted against the rate limit, then the query string must be empty.
select app_logic.declare_post(
    'issue_form_token', 'form_token', 'app_logic.query_string_body_rule',
    'app_logic.issue_form_token_handler', 'app_logic.no_query_parameters'
);
comment on function api.issue_form_token(jsonb) is
'GET /api/form-token (no key): a signed form token to send back as formToken with the form. A submission '
'sent sooner than the endpoint''s minimum time after it, or with an expired or forged token, is dropped quietly '
'(the same 201, nothing stored). 429 CHR01 over the rate limit (30 per client IP per minute by default); 400 '
'naming any query parameter (it takes none).';

-- GET /api/challenge: an ALTCHA challenge (the widget's "challengeurl" format): the client finds
-- number with SHA-256(salt || number) = challenge, and sends back base64 of the JSON
-- {algorithm, challenge, number, salt, signature} as altcha. No parameters either (its route
-- names no_query_parameters_rule).

create function app_logic.issue_challenge_handler(p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_rule app.spam_rules;
    v_salt text;
    v_number integer;
    v_challenge text;
begin
    select r.* into v_rule from app.spam_rules as r where r.action = 'leads';
    v_rule.pow_max_number := coalesce(v_rule.pow_max_number, 100000);
    v_salt := encode(extensions.gen_random_bytes(12), 'hex') || '?expires='
        || extract(epoch from app_logic.now() + coalesce(v_rule.challenge_ttl, interval '10 minutes'))::bigint || '&';
    -- Uniform in 0..max from 4 random bytes (the bias of the modulo is below 1 in 400).
    v_number := (('x' || encode(extensions.gen_random_bytes(4), 'hex'))::bit(32)::bigint % (v_rule.pow_max_number + 1))::integer;
    v_challenge := encode(sha256(convert_to(v_salt || v_number::text, 'UTF8')), 'hex');
    return jsonb_build_object(
        'algorithm', 'SHA-256', 'challenge', v_challenge, 'maxnumber', v_rule.pow_max_number, 'salt', v_salt,
        'signature', app_logic.spam_hmac(v_challenge)
    );
end
$$;
-- The body is nginx's {}: counted against the rate limit, then the query string must be empty.
select app_logic.declare_post(
    'issue_challenge', 'challenge', 'app_logic.query_string_body_rule',
    'app_logic.issue_challenge_handler', 'app_logic.no_query_parameters'
);
comment on function api.issue_challenge(jsonb) is
'GET /api/challenge (no key): an ALTCHA proof-of-work challenge (algorithm, challenge, maxnumber, salt with its '
'expiry, signature). Where the endpoint''s spam rule asks for proof of work, POST /api/leads needs its solution '
'as altcha; each solution is accepted once. 429 CHR01 over the rate limit (30 per client IP per minute by '
'default); 400 naming any query parameter (it takes none).';

-- Why an ALTCHA payload is refused, or null when it is a fresh, correct solution (which it
-- then uses up).
create function app_logic.altcha_problem(p_payload text, p_rule app.spam_rules) returns text
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
    v_solution jsonb;
    v_expires bigint;
begin
    if p_payload is null then
        return 'altcha is required: solve the challenge of GET /api/challenge and send its payload.';
    end if;
    begin
        v_solution := convert_from(decode(p_payload, 'base64'), 'UTF8')::jsonb;
    exception when others then
        return 'altcha must be the base64 payload of a solved challenge.';
    end;
    if jsonb_typeof(v_solution) <> 'object' or jsonb_typeof(v_solution -> 'number') <> 'number'
        or jsonb_typeof(v_solution -> 'salt') <> 'string' or jsonb_typeof(v_solution -> 'challenge') <> 'string'
        or jsonb_typeof(v_solution -> 'signature') <> 'string' or v_solution ->> 'algorithm' is distinct from 'SHA-256'
        or (v_solution ->> 'number')::numeric not between 0 and p_rule.pow_max_number
        or (v_solution ->> 'number')::numeric <> trunc((v_solution ->> 'number')::numeric) then
        return 'altcha must be the base64 payload of a solved challenge.';
    end if;
    if v_solution ->> 'signature' <> app_logic.spam_hmac(v_solution ->> 'challenge')
        or v_solution ->> 'challenge' <> encode(sha256(convert_to(
            (v_solution ->> 'salt') || ((v_solution ->> 'number')::numeric)::bigint::text, 'UTF8'
        )), 'hex') then
        return 'altcha is not a correct solution of a challenge of this server.';
    end if;
    v_expires := substring(v_solution ->> 'salt' from '[?&]expires=([0-9]{1,12})(&|$)')::bigint;
    if v_expires is null or to_timestamp(v_expires) <= app_logic.now() then
        return 'altcha solves a challenge that has expired: get a new one.';
    end if;
    insert into app.used_challenges (challenge_hash, expires_at)
    values (sha256(convert_to(v_solution ->> 'challenge', 'UTF8')), to_timestamp(v_expires))
    on conflict do nothing;
    if not found then
        return 'altcha was used already: solve a new challenge.';
    end if;
    return null;
end
$$;
comment on function app_logic.altcha_problem(text, app.spam_rules) is
'Why an ALTCHA payload is refused (a sentence naming altcha), or null for a fresh correct solution, then used up.';

-- Whether a form token is signed by us and was issued between max_age and min_seconds ago.
create function app_logic.form_token_passes(p_token text, p_rule app.spam_rules) returns boolean
language plpgsql stable
as $$
declare
    v_parts text[];
    v_issued timestamptz;
begin
    if p_token is null or p_token !~ '^[0-9]{1,12}\.[0-9a-f]{24}\.[0-9a-f]{64}$' then
        return false;
    end if;
    v_parts := string_to_array(p_token, '.');
    if v_parts[3] <> app_logic.spam_hmac('form:' || v_parts[1] || '.' || v_parts[2]) then
        return false;
    end if;
    v_issued := to_timestamp(v_parts[1]::bigint);
    return v_issued <= app_logic.now() - make_interval(secs => p_rule.min_seconds)
        and v_issued > app_logic.now() - p_rule.form_token_max_age;
end
$$;
comment on function app_logic.form_token_passes(text, app.spam_rules) is
'Whether a form token is ours, old enough (min_seconds) and not expired (form_token_max_age).';

-- The rules compiled into one constant (issue 13), as the route keys are (005-routes): a JSON
-- object from action to its app.spam_rules row, written again by the trigger below after every
-- change of the table, in the same transaction. Most submissions fill in no honeypot and send no
-- form token, and the rule of their endpoint asks for neither: app_logic.spam_screen_needed
-- answers that inlined into submit_lead's expression, where the constant folds away when the
-- plan is made, so such a submission reads no rule (the rule's query and screen_spam's call cost
-- about 35k instructions). Replacing the function invalidates every plan that inlined it: an open
-- connection follows an UPDATE of the rules at its next request.
create function app_logic.compile_spam_rules() returns void
language plpgsql volatile
as $$
declare
    v_rules jsonb;
begin
    select coalesce(jsonb_object_agg(r.action, to_jsonb(r)), '{}') into v_rules from app.spam_rules as r;
    perform app_logic.compile_json_lookup('spam_rule(p_action text)', 'p_action', v_rules);
    comment on function app_logic.spam_rule(text) is
    'The app.spam_rules row of an action as JSON text, compiled from the table; null for an action without a rule.';
end
$$;
comment on function app_logic.compile_spam_rules() is
'Compile app.spam_rules into app_logic.spam_rule (run by the trigger on every change of the table).';

create trigger spam_rules_compile
after insert or update or delete or truncate on app.spam_rules
for each statement execute function app_logic.tg_compile('compile_spam_rules');

select app_logic.compile_spam_rules();

-- Whether screen_spam can answer anything but null for this body: its endpoint has a rule, and
-- the body fills in its honeypot, or sends a form token, or the rule requires a token or proof
-- of work. Each term is screen_spam's own condition, read from the compiled rule; false means
-- screen_spam would return null having changed nothing (db/tests/340-spam-compiled.sql compares
-- the two on hostile and valid bodies under every kind of rule).
create function app_logic.spam_screen_needed(p_action text, p_body jsonb) returns boolean
language sql stable
as $$
    select coalesce(
        coalesce(btrim(p_body ->> (app_logic.spam_rule(p_action)::jsonb ->> 'honeypot_field')), '') <> ''
        or (p_body ? 'formToken' and app_logic.spam_rule(p_action) is not null)
        or (app_logic.spam_rule(p_action)::jsonb ->> 'form_token_required')::boolean
        or (app_logic.spam_rule(p_action)::jsonb ->> 'proof_of_work')::boolean,
        false
    )
$$;
comment on function app_logic.spam_screen_needed(text, jsonb) is
'Whether app_logic.screen_spam has anything to check in this body under the action''s compiled rule (else it answers null).';

-- The step after screen_request: the answer to give (a quiet 201 or a 400 on altcha), or null
-- to go on. Runs before anything is stored; callers skip it where spam_screen_needed is false.
create function app_logic.screen_spam(p_action text, p_body jsonb) returns jsonb
language plpgsql volatile
as $$
declare
    v_rule app.spam_rules;
    v_problem text;
begin
    select r.* into v_rule from app.spam_rules as r where r.action = p_action;
    if not found then
        return null;
    end if;
    if v_rule.honeypot_field is not null and coalesce(btrim(p_body ->> v_rule.honeypot_field), '') <> '' then
        return app_logic.respond(201, jsonb_build_object('status', 'received'));
    end if;
    if (p_body ? 'formToken' or v_rule.form_token_required)
        and not app_logic.form_token_passes(p_body ->> 'formToken', v_rule) then
        return app_logic.respond(201, jsonb_build_object('status', 'received'));
    end if;
    if v_rule.proof_of_work then
        v_problem := app_logic.altcha_problem(p_body ->> 'altcha', v_rule);
        if v_problem is not null then
            return app_logic.reject_invalid(app_logic.problem('altcha', v_problem));
        end if;
    end if;
    return null;
end
$$;
comment on function app_logic.screen_spam(text, jsonb) is
'Apply the endpoint''s spam rule to a valid body: a quiet 201 (honeypot, form token), a 400 on altcha, or null.';

-- What the two GET endpoints answer, for the OpenAPI document (app_logic.<name>_response()).
create function app_logic.issue_form_token_response() returns jsonb
language sql immutable
as $$
    select '{"type": "object", "description": "A signed form token.", "required": ["formToken"], "properties": {"formToken": {"type": "string",
        "description": "Send it back as formToken with the form."}}}'::jsonb
$$;
comment on function app_logic.issue_form_token_response() is 'The answer of GET /api/form-token (OpenAPI schema).';

create function app_logic.issue_challenge_response() returns jsonb
language sql immutable
as $$
    select '{"type": "object", "description": "An ALTCHA challenge.",
        "required": ["algorithm", "challenge", "maxnumber", "salt", "signature"],
        "properties": {
            "algorithm": {"type": "string", "enum": ["SHA-256"], "description": "The hash of the puzzle."},
            "challenge": {"type": "string", "description": "SHA-256 (hex) of salt and the secret number."},
            "maxnumber": {"type": "integer", "description": "The largest number to try."},
            "salt": {"type": "string", "description": "Random hex, then ?expires=<unix seconds>&."},
            "signature": {"type": "string", "description": "HMAC-SHA256 of challenge by the server."}
        }}'::jsonb
$$;
comment on function app_logic.issue_challenge_response() is 'The answer of GET /api/challenge (OpenAPI schema).';

select app_logic.declare_purge(
    'used_challenges', 'app.used_challenges', 'expires_at', 'Retention: forget solved challenges that expired before the cutoff.'
);
