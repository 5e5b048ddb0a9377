-- Rate limits with frozen time: the seeded rules, the sliding window and its Retry-After, the
-- per-email rule, IPv6 /64 clients, counters without addresses in clear, and their purge; the
-- limits compiled into constants and the counters' one-bytea key (issue 13).
begin;
select plan(44);

-- One request of a client at a moment: what the limiter answers (null = admitted).
create function pg_temp.hit(p_ip text, p_at text, p_email text default null) returns jsonb
language plpgsql volatile
as $$
begin
    perform set_config('request.headers', jsonb_build_object('x-real-ip', p_ip)::text, true);
    perform set_config('app.frozen_now', p_at, true);
    perform set_config('response.status', '', true);
    perform set_config('response.headers', '', true);
    return app_logic.enforce_rate_limits('leads', p_email);
end
$$;

select results_eq(
    -- The contract's endpoints; other domains seed rules of their own (db/tests/2xx, 3xx).
    $$select action, scope::text, max_requests, window_seconds from app.rate_limit_rules
      where action in ('accessibility_preferences', 'brand_engagement', 'consent_links', 'leads', 'page_views') order by action, scope$$,
    $$ values ('accessibility_preferences', 'ip', 120, 60), ('brand_engagement', 'ip', 120, 60),
              ('consent_links', 'ip', 20, 600), ('leads', 'email', 3, 3600), ('leads', 'ip', 5, 600), ('page_views', 'ip', 120, 60) $$,
    'the contract''s default rules are seeded'
);

select is(pg_temp.hit('198.51.100.1', '2026-03-01 10:00:00+00'), null, 'request 1 of an IP is admitted');
select is(pg_temp.hit('198.51.100.1', '2026-03-01 10:01:00+00'), null, 'request 2 is admitted');
select is(pg_temp.hit('198.51.100.1', '2026-03-01 10:02:00+00'), null, 'request 3 is admitted');
select is(pg_temp.hit('198.51.100.1', '2026-03-01 10:03:00+00'), null, 'request 4 is admitted');
select is(pg_temp.hit('198.51.100.1', '2026-03-01 10:04:00+00'), null, 'request 5 is admitted');
select is(
    pg_temp.hit('198.51.100.1', '2026-03-01 10:05:00+00') ->> 'code', 'CHR01', 'request 6 within ten minutes is refused'
);
select is(current_setting('response.status'), '429', 'the refusal is answered 429, not raised');
select is(
    current_setting('response.headers')::jsonb, '[{"Retry-After": "300"}]',
    'Retry-After says when the oldest request leaves the window'
);
select is(
    pg_temp.hit('198.51.100.1', '2026-03-01 10:09:59.5+00') -> 'message', '"Too many requests: try again in 1 seconds."',
    'half a second before a slot frees, Retry-After is 1'
);
select is(pg_temp.hit('198.51.100.1', '2026-03-01 10:10:00+00'), null, 'ten minutes after request 1 a slot is free');
select is(
    (pg_temp.hit('198.51.100.1', '2026-03-01 10:10:01+00') is not null, current_setting('response.headers')),
    (true, '[{"Retry-After": "59"}]'::text),
    'the window slides: the next slot frees when request 2 leaves it'
);
select is(pg_temp.hit('198.51.100.2', '2026-03-01 10:10:01+00'), null, 'another IP is not affected');

select is(pg_temp.hit('2001:db8:1:2::1', '2026-03-01 11:00:00+00'), null, 'IPv6 host 1 of a /64');
select is(pg_temp.hit('2001:db8:1:2::2', '2026-03-01 11:00:00+00'), null, 'IPv6 host 2 of the same /64');
select is(pg_temp.hit('2001:db8:1:2:aaaa::3', '2026-03-01 11:00:00+00'), null, 'IPv6 host 3 of the same /64');
select is(pg_temp.hit('2001:db8:1:2:bbbb::4', '2026-03-01 11:00:00+00'), null, 'IPv6 host 4 of the same /64');
select is(pg_temp.hit('2001:db8:1:2:cccc::5', '2026-03-01 11:00:00+00'), null, 'IPv6 host 5 of the same /64');
select isnt(
    pg_temp.hit('2001:db8:1:2:ffff::6', '2026-03-01 11:00:00+00'), null, 'host 6 of the /64 is refused: one client'
);

select is(
    array[
        pg_temp.hit('192.0.2.1', '2026-03-01 12:00:00+00', 'Grace@Example.org') is null,
        pg_temp.hit('192.0.2.2', '2026-03-01 12:10:00+00', 'grace@example.org') is null,
        pg_temp.hit('192.0.2.3', '2026-03-01 12:20:00+00', ' GRACE@example.ORG') is null,
        pg_temp.hit('192.0.2.4', '2026-03-01 12:30:00+00', 'grace@example.org') is null
    ],
    array[true, true, true, false],
    'one email gets three requests per hour whatever the IP or letter case'
);
select is(current_setting('response.headers'), '[{"Retry-After": "1800"}]', 'the email rule has its own Retry-After');

select is_empty(
    $$ select 1 from app.rate_limit_counters as c
       where c::text ilike '%grace%' or c::text like '%198.51.100%' or c::text like '%2001:db8%' $$,
    'counters keep no email and no IP in clear'
);

select set_config('app.frozen_now', '2026-03-01 12:25:00+00', true);
select
    is(
        app_logic.purge_rate_limit_counters(app_logic.now())::integer, 5, 'the purge removes the counters whose window has passed'
    );
select set_config('app.frozen_now', '2026-03-01 13:19:59+00', true);
select
    is(
        app_logic.purge_rate_limit_counters(app_logic.now())::integer,
        2,
        'the IP counters of the 12:20 and 12:30 requests go at 12:30'
    );
select set_config('app.frozen_now', '2026-03-01 13:20:00+00', true);
select
    is(
        app_logic.purge_rate_limit_counters(app_logic.now())::integer,
        1,
        'the email counter lives until its newest hit is an hour old'
    );

select is_empty(
    $$ select r, t, p from unnest(array['anon', 'reader', 'admin']) as r,
       unnest(array['app.rate_limit_rules', 'app.rate_limit_counters']) as t,
       unnest(array['select', 'insert', 'update', 'delete', 'truncate']) as p
       where has_table_privilege(r, t, p) $$,
    'no API role can read or change the rules or the counters'
);
select is_empty(
    $$ select r from unnest(array['anon', 'reader', 'admin']) as r
       where has_function_privilege(r, 'app_logic.enforce_rate_limits(text, text, integer)', 'execute')
          or has_function_privilege(r, 'app_logic.purge_rate_limit_counters(timestamptz, integer)', 'execute') $$,
    'no API role can call the limiter or the purge directly'
);

-- The counters' key: the whole HMAC-SHA256 of action, scope and client, 32 bytes, the primary
-- key alone (db/schema/585).
select is(
    (
        select array_agg(a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod))
        from pg_index as i
        inner join pg_attribute as a on i.indrelid = a.attrelid and a.attnum = any(i.indkey)
        where i.indrelid = 'app.rate_limit_counters'::regclass and i.indisprimary
    ),
    array['subject bytea'],
    'the counters'' primary key is the subject alone, a bytea'
);
select pg_temp.hit('203.0.113.77', '2026-03-02 09:00:00+00', 'key.check@example.org');
select is(
    (
        select
            array_agg(c.scope::text || ' ' || (c.subject = extensions.hmac(
                convert_to('leads:' || c.scope || ':' || v.value, 'UTF8'),
                convert_to(app_logic.setting('hash_pepper'), 'UTF8'), 'sha256'
            ))::text || ' ' || octet_length(c.subject) order by c.scope)
        from app.rate_limit_counters as c
        inner join (values ('ip', '203.0.113.77/32'), ('email', 'key.check@example.org')) as v (scope, value) on c.scope = v.scope
        where c.action = 'leads' and c.expires_at > '2026-03-02 09:00:00+00'
    ),
    array['email true 32', 'ip true 32'],
    'a counter''s key is the whole HMAC of action, scope and network or email, never shortened'
);

-- The key hashes the text as it is (pgcrypto's hmac of text): the same HMAC of its UTF-8 bytes
-- only in a UTF-8 database, and so for an email outside ASCII too.
select is(current_setting('server_encoding'), 'UTF8', 'the database is UTF-8: a text''s bytes are its UTF-8');
select pg_temp.hit('203.0.113.79', '2026-03-02 09:00:30+00', 'Jürgen.Ñandú@例え.テスト');
select is(
    (
        select
            c.subject = extensions.hmac(
                convert_to('leads:email:' || lower('Jürgen.Ñandú@例え.テスト'), 'UTF8'),
                convert_to(app_logic.setting('hash_pepper'), 'UTF8'), 'sha256'
            )
        from app.rate_limit_counters as c
        where c.action = 'leads' and c.scope = 'email' and c.expires_at = '2026-03-02 10:00:30+00'
    ),
    true,
    'the key of an email outside ASCII is the HMAC of its lower-cased UTF-8 bytes'
);

-- An email of 1 to 254 characters (after trimming) is counted per email, whatever its bytes;
-- none other is (the IP rule still counts it).
create function pg_temp.email_counted(p_ip text, p_at text, p_email text) returns boolean
language plpgsql volatile
as $$
begin
    perform pg_temp.hit(p_ip, p_at, p_email);
    return exists (
        select from app.rate_limit_counters as c
        where c.subject = app_logic.rate_limit_subject('leads', 'email', lower(app_logic.trim_text(p_email)))
    );
end
$$;
select is(
    pg_temp.email_counted('203.0.113.80', '2026-03-02 09:02:00+00', repeat('é', 242) || '@example.org'),
    true,
    'an email of 254 characters is counted per email, though it is more than 254 bytes'
);
select is(
    pg_temp.email_counted('203.0.113.81', '2026-03-02 09:02:00+00', repeat('e', 243) || '@example.org'),
    false,
    'an email of 255 characters is not counted per email'
);
select is(
    pg_temp.email_counted('203.0.113.82', '2026-03-02 09:02:00+00', ' '), false, 'a blank email is not counted per email'
);
select isnt_empty(
    $$ select from app.rate_limit_counters as c
       where c.subject = app_logic.rate_limit_subject('leads', 'ip', '203.0.113.82/32') $$,
    'the IP of a request with a blank email is counted'
);

-- The limits compiled into constants: the same answers as the table, for every rule; nothing
-- for an action or scope without one.
select is_empty(
    $$ select r.action, r.scope from app.rate_limit_rules as r
       where app_logic.rate_limit_max(r.action, r.scope)::integer is distinct from r.max_requests
          or app_logic.rate_limit_window(r.action, r.scope)::integer is distinct from r.window_seconds $$,
    'every rule''s compiled max_requests and window_seconds are the table''s'
);
select is(
    array[
        app_logic.rate_limit_max('page_views', 'email'), app_logic.rate_limit_max('no_such_action', 'ip'),
        app_logic.rate_limit_window('no_such_action', 'ip')
    ],
    array[null, null, null]::text[],
    'no compiled limit where the table has no rule'
);

-- An admitted request reads no rule from the table: the scans of the table and of its indexes
-- in this transaction (an index scan counts on the index).
create function pg_temp.rule_scans() returns bigint
language sql stable
as $$
    select pg_stat_get_xact_numscans('app.rate_limit_rules'::regclass) + (
        select sum(pg_stat_get_xact_numscans(i.indexrelid))::bigint from pg_index as i
        where i.indrelid = 'app.rate_limit_rules'::regclass
    )
$$;

create function pg_temp.rule_scans_of_an_admitted_request() returns bigint
language plpgsql volatile
as $$
declare
    v_before bigint := pg_temp.rule_scans();
begin
    if pg_temp.hit('203.0.113.78', '2026-03-02 09:01:00+00', 'no.scan@example.org') is not null then
        return -1;
    end if;
    return pg_temp.rule_scans() - v_before;
end
$$;
select is(
    pg_temp.rule_scans_of_an_admitted_request(), 0::bigint,
    'an admitted request (IP and email) is counted without reading app.rate_limit_rules'
);

-- A change of the rules applies from the next request, in the same transaction: an UPDATE, a
-- DELETE (no rule: no limit) and an INSERT.
update app.rate_limit_rules set max_requests = 1
where action = 'leads' and scope = 'ip';
select is(
    array[
        pg_temp.hit('203.0.113.90', '2026-03-02 10:00:00+00') is null,
        pg_temp.hit('203.0.113.90', '2026-03-02 10:00:01+00') is null
    ],
    array[true, false],
    'an UPDATE of a rule is compiled at once: max_requests 1 admits one request'
);
delete from app.rate_limit_rules
where action = 'leads' and scope = 'ip';
insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values ('leads', 'ip', 2, 60);
select is(
    array[
        pg_temp.hit('203.0.113.91', '2026-03-02 11:00:00+00') is null,
        pg_temp.hit('203.0.113.91', '2026-03-02 11:00:01+00') is null,
        pg_temp.hit('203.0.113.91', '2026-03-02 11:00:02+00') is null,
        app_logic.rate_limit_window('leads', 'ip') = '60'
    ],
    array[true, true, false, true],
    'a DELETE and an INSERT of a rule are compiled at once too'
);

-- An admitted request whose every row took a slot ends at the first condition, which asks no
-- rule; the rest (a row without a rule) go to the second, which asks the compiled rules.
create function pg_temp.hit_action(p_action text, p_ip text, p_at text, p_email text default null) returns jsonb
language plpgsql volatile
as $$
begin
    perform set_config('request.headers', jsonb_build_object('x-real-ip', p_ip)::text, true);
    perform set_config('app.frozen_now', p_at, true);
    return app_logic.enforce_rate_limits(p_action, p_email);
end
$$;
select is(
    array[
        pg_temp.hit_action('no_rule_here', '203.0.113.92', '2026-03-02 12:00:00+00') is null,
        pg_temp.hit_action('no_rule_here', '203.0.113.92', '2026-03-02 12:00:01+00', 'none@example.org') is null,
        pg_temp.hit_action('no_rule_here', '203.0.113.92', '2026-03-02 12:00:02+00', 'none@example.org') is null,
        not exists (
            select from app.rate_limit_counters as c
            where c.action = 'no_rule_here'
        )
    ],
    array[true, true, true, true],
    'an action without a rule admits every request, with an email or without, and keeps no counter'
);
delete from app.rate_limit_rules
where action = 'leads' and scope = 'ip';
select is(
    array[
        pg_temp.hit('203.0.113.93', '2026-03-02 13:00:00+00', 'only.email@example.org') is null,
        pg_temp.hit('203.0.113.94', '2026-03-02 13:00:01+00', 'only.email@example.org') is null,
        pg_temp.hit('203.0.113.95', '2026-03-02 13:00:02+00') is null,
        pg_temp.hit('203.0.113.93', '2026-03-02 13:00:03+00', 'only.email@example.org') is null,
        pg_temp.hit('203.0.113.93', '2026-03-02 13:00:04+00', 'only.email@example.org') is null
    ],
    array[true, true, true, true, false],
    'an email rule alone counts the email (three an hour) and nothing per IP'
);
select is(
    current_setting('response.headers'), '[{"Retry-After": "3596"}]', 'the email rule alone says when its oldest hit leaves'
);
insert into app.rate_limit_rules (action, scope, max_requests, window_seconds) values ('leads', 'ip', 2, 60);
delete from app.rate_limit_rules
where action = 'leads' and scope = 'email';
select is(
    array[
        pg_temp.hit('203.0.113.96', '2026-03-02 14:00:00+00', 'only.ip@example.org') is null,
        pg_temp.hit('203.0.113.96', '2026-03-02 14:00:01+00', 'only.ip@example.org') is null,
        pg_temp.hit('203.0.113.96', '2026-03-02 14:00:02+00', 'other.ip@example.org') is null,
        pg_temp.hit('203.0.113.97', '2026-03-02 14:00:03+00', 'only.ip@example.org') is null
    ],
    array[true, true, false, true],
    'an IP rule alone counts the IP (two a minute) whatever the email, and nothing per email'
);

select * from finish();
rollback;
