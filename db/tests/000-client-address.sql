-- The client address of a request (app_logic.client_ip, X-Real-IP as nginx sets it): a dotted
-- quad in canonical form takes the fast path (an inlined expression), everything else the
-- checks and the cast inside an exception block (parse_client_ip); both must give what the cast
-- gives, and null for what it refuses. The inlined client_ip and client_network must answer
-- exactly what the full checks (the former PL/pgSQL functions, now parse_client_ip and
-- parse_client_network) answer, on valid and hostile values, and only X-Real-IP counts.
-- The values the pre-request keeps (one header read per request) answer the same, and once kept
-- they are what the request reads, whatever request.headers says later.
begin;
select plan(16);

create temporary table addresses (raw text, expected inet) on commit drop;
insert into addresses values
('203.0.113.10', '203.0.113.10'),
('0.0.0.0', '0.0.0.0'),
('255.255.255.255', '255.255.255.255'),
('010.1.2.3', '10.1.2.3'),
('00.0.0.0', '0.0.0.0'),
('1.2.3.256', null),
('1.2.3', null),
('1.2.3.4.5', null),
('999.1.1.1', null),
('abc', null),
('::ffff:192.0.2.1', '192.0.2.1'),
('2001:db8:1:2::abcd', '2001:db8:1:2::abcd'),
('::1', '::1'),
('10.0.0.1/8', null),
(' 10.0.0.1', null),
('1', null),
('', null),
(repeat('1', 46), null);

create function pg_temp.client_ip_of(p_raw text) returns inet
language plpgsql volatile
as $$
begin
    perform set_config('request.headers', jsonb_build_object('x-real-ip', p_raw)::text, true);
    return app_logic.client_ip();
end
$$;

select is_empty(
    $$ select a.raw from addresses as a where pg_temp.client_ip_of(a.raw) is distinct from a.expected $$,
    'every X-Real-IP value gives the address the inet cast gives (IPv4-mapped as IPv4), or null when it refuses it'
);

select is(
    (select pg_temp.client_ip_of('198.51.100.7') || ''),
    '198.51.100.7/32',
    'a canonical dotted quad is the /32 host it names'
);

create function pg_temp.network_of(p_raw text) returns inet
language plpgsql volatile
as $$
begin
    perform set_config('request.headers', jsonb_build_object('x-real-ip', p_raw)::text, true);
    return app_logic.client_network();
end
$$;

-- Hostile values: random strings over the characters an address may hold (the slow path's
-- every branch), spoofing and Unicode variants, huge values.
create temporary table hostile (raw text) on commit drop;
insert into hostile select raw from addresses;
select setseed(0.13);
insert into hostile
select string_agg(substr('0123456789.:abcdefABCDEF', 1 + floor(random() * 24)::integer, 1), '')
from generate_series(1, 3000) as g (n) cross join lateral generate_series(1, 1 + (n % 47)) as c (i)
group by g.n;
insert into hostile
select format('%s.%s.%s.%s', a, b, c, d)
from (
    select
        (random() * 300)::integer as a,
        (random() * 260)::integer as b,
        (random() * 256)::integer as c,
        (random() * 1000)::integer as d
    from generate_series(1, 500)
) as q;
insert into hostile
select
    array_to_string(
        array(
            select to_hex((random() * 65535)::integer) from generate_series(1, 1 + (n % 8))
            where n > 0
        ),
        case when n % 3 = 0 then '::' else ':' end
    ) || case when n % 5 = 0 then ':1.2.3.4' else '' end
from generate_series(1, 600) as n;
insert into hostile values
('1.2.3.04'), ('01.2.3.4'), ('1.2.3.4.'), ('.1.2.3.4'), ('1..2.3'), ('1.2.3.4 '), (E'1.2.3.4\n'), (E'1.2.3.4\t'),
('1.2.3.4, 5.6.7.8'), ('5.6.7.8,1.2.3.4'), ('1.2.3.4:8080'), ('[::1]'), ('[::1]:80'), ('fe80::1%eth0'),
('::ffff:1.2.3.4'), ('::FFFF:1.2.3.4'), ('::ffff:0102:0304'), ('0:0:0:0:0:ffff:102:304'), ('::'), ('::0'),
('2001:db8::'), ('2001:DB8:0:0:8:800:200C:417A'), ('2001:db8::1/64'), ('1.2.3.4/32'), ('1.2.3.4/0'),
('::ffff:255.255.255.255'), ('::1.2.3.4'), ('64:ff9b::1.2.3.4'), ('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'),
('１.２.３.４'), ('١.٢.٣.٤'), ('𝟏.𝟐.𝟑.𝟒'), (E'1.2.3.4\u200b'), (E'\ufeff1.2.3.4'), ('1․2․3․4'), ('unknown'),
('localhost'), ('127.0.0.1'), ('0x7f.0.0.1'), ('2130706433'), ('0177.0.0.1'), ('1e1.0.0.1'), ('-1.2.3.4'),
('+1.2.3.4'), ('1.2.3.4\'), ('"1.2.3.4"'), ('null'), (repeat('1', 45)), (repeat('1.', 22) || '1'),
(repeat(':', 45)), (repeat('a', 100000)), (repeat('1.2.3.4', 10000)), (''), (' '), (null);

select is_empty(
    $$ select h.raw from hostile as h where pg_temp.client_ip_of(h.raw) is distinct from app_logic.parse_client_ip(h.raw) $$,
    'client_ip''s inlined path answers what the full checks (parse_client_ip) answer, for every valid and hostile value'
);
select is_empty(
    $$ select h.raw from hostile as h where pg_temp.network_of(h.raw) is distinct from app_logic.parse_client_network(h.raw) $$,
    'client_network''s inlined path answers what the full checks answer, for every valid and hostile value'
);
select ok(
    (
        select count(*) from hostile
        where family(app_logic.parse_client_ip(raw)) = 4
    ) > 100
    and (
        select count(*) from hostile
        where family(app_logic.parse_client_ip(raw)) = 6
    ) > 50
    and (
        select count(*) from hostile
        where app_logic.parse_client_ip(raw) is null
    ) > 1000,
    'the comparison covers IPv4, IPv6 and refused values'
);

-- Only X-Real-IP counts (nginx overwrites it): forwarding headers a client sends change nothing.
select is(
    (
        select array_agg(coalesce(host(app_logic.client_network()), '-') order by n) from (
            select
                n,
                set_config('request.headers', h, true) as applied
            from unnest(array[
                '{"x-real-ip": "203.0.113.9", "x-forwarded-for": "198.51.100.1"}',
                '{"x-forwarded-for": "198.51.100.1", "forwarded": "for=198.51.100.1", "x-client-ip": "198.51.100.1"}',
                '{"x-real-ip": "198.51.100.1", "x-real-ip": "203.0.113.9"}',
                '{"X-Real-IP": "198.51.100.1"}',
                '{"x-real-ip": ["198.51.100.1"]}',
                '{"x-real-ip": {"ip": "198.51.100.1"}}',
                '{"x-real-ip": 3405803777}',
                '{"x-real-ip": "2001:db8:1:2:3:4:5:6", "x-forwarded-for": "2001:db8:9:9::1"}',
                ''
            ]) with ordinality as t (h, n)
        ) as s
    ),
    array['203.0.113.9', '-', '203.0.113.9', '-', '-', '-', '-', '2001:db8:1:2::', '-'],
    'only X-Real-IP names the client; other forwarding headers, other spellings and JSON values are ignored'
);
select is(
    (select pg_temp.network_of('2001:db8:1:2:aaaa:bbbb:cccc:dddd') || ''),
    '2001:db8:1:2::/64',
    'an IPv6 client counts as its /64'
);


-- The one header read: what the pre-request keeps, read back. request.headers is changed after
-- keeping, to headers without an address or user agent (so an absent or refused value, which is
-- read from the headers again, stays absent, as the headers of a request never change): an
-- answer read from the headers again instead of the kept value would be null. The kept values
-- are cleared after, so the other checks of this file read the headers.
create function pg_temp.clear_kept() returns void
language sql volatile
as $$
    select
        set_config('app.request_client_ip', '', true)
        || set_config('app.request_client_network', '', true)
        || set_config('app.request_user_agent', '', true)
$$;

create function pg_temp.kept_of(p_raw text) returns inet[]
language plpgsql volatile
as $$
declare
    v_kept inet[];
begin
    perform set_config('request.headers', jsonb_build_object('x-real-ip', p_raw)::text, true);
    perform app_logic.keep_request_headers(app_logic.request_headers(), app_logic.dotted_quad(app_logic.request_header('x-real-ip')));
    perform set_config('request.headers', '{"x-real-ip": "not an address"}', true);
    v_kept := array[app_logic.client_ip(), app_logic.client_network()];
    perform pg_temp.clear_kept();
    return v_kept;
end
$$;

select is_empty(
    $$
    select h.raw from hostile as h
    where pg_temp.kept_of(h.raw) is distinct from array[app_logic.parse_client_ip(h.raw), app_logic.parse_client_network(h.raw)]
    $$,
    'the address and network the pre-request keeps are what the full checks answer, for every valid and hostile value'
);

create function pg_temp.kept_user_agent_of(p_headers jsonb) returns text
language plpgsql volatile
as $$
declare
    v_kept text;
begin
    perform set_config('request.headers', p_headers::text, true);
    perform app_logic.keep_request_headers(app_logic.request_headers(), app_logic.dotted_quad(app_logic.request_header('x-real-ip')));
    perform set_config('request.headers', '{"x-real-ip": "not an address"}', true);
    v_kept := coalesce(app_logic.request_user_agent(), '(null)');
    perform pg_temp.clear_kept();
    return v_kept;
end
$$;

select is(
    (
        select array_agg(pg_temp.kept_user_agent_of(h) order by n)
        from unnest(array[
            '{"user-agent": "Mozilla/5.0 (X11)"}', '{"user-agent": ""}', '{"user-agent": "="}', '{"user-agent": "==x="}',
            '{"user-agent": "\u00e9\u200b\ud83d\ude00"}', '{"x-real-ip": "1.2.3.4"}', '{"user-agent": null}',
            '{"User-Agent": "spelled"}', '{"user-agent": ["a"]}', '{}'
        ]::jsonb[]) with ordinality as t (h, n)
    ),
    array[
        'Mozilla/5.0 (X11)', '(null)', '=', '==x=', E'\u00e9\u200b\U0001F600', '(null)', '(null)', '(null)', '["a"]',
        '(null)'
    ],
    'the user agent kept is what request_header(''user-agent'') reads: null when absent or empty, marks kept as text'
);

select is(
    (
        select array_agg(coalesce(pg_temp.kept_user_agent_of(h), '-') order by n)
        from
            unnest(array['{"user-agent": "x"}', '{"user-agent": ""}', '{"user-agent": "=="}']::jsonb[])
            with ordinality as t (h, n)
    ),
    (
        select array_agg(coalesce(app_logic.request_user_agent(), '(null)') order by n)
        from
            unnest(array['{"user-agent": "x"}', '{"user-agent": ""}', '{"user-agent": "=="}']::jsonb[])
            with ordinality as t (h, n)
        cross join lateral (select set_config('request.headers', h::text, true)) as applied
    ),
    'without a kept value (no pre-request in this transaction) the user agent is read from the headers'
);

-- The pre-request itself keeps them, as the role PostgREST runs it as.
create function pg_temp.after_pre_request(p_headers text) returns text[]
language plpgsql volatile
as $$
declare
    v_seen text[];
begin
    perform set_config('request.method', 'POST', true);
    perform set_config('request.path', '/rpc/submit_lead', true);
    perform set_config('request.headers', p_headers, true);
    set local role anon;
    perform app_logic.pre_request();
    reset role;
    perform set_config('request.headers', '{"x-real-ip": "not an address"}', true);
    v_seen := array[host(app_logic.client_ip()), app_logic.client_network()::text, app_logic.request_user_agent()];
    perform pg_temp.clear_kept();
    return v_seen;
end
$$;

select is(
    pg_temp.after_pre_request('{"x-real-ip": "203.0.113.5", "user-agent": "Agent/1", "x-forwarded-for": "198.51.100.1"}'),
    array['203.0.113.5', '203.0.113.5/32', 'Agent/1'],
    'after the pre-request the address, network and user agent are the ones it read, not the headers read again'
);
select is(
    pg_temp.after_pre_request('{"x-real-ip":"203.0.113.5","user-agent":"Agent/1 (é)","x-forwarded-for":"198.51.100.1"}'),
    array['203.0.113.5', '203.0.113.5/32', 'Agent/1 (é)'],
    'headers as PostgREST writes them (read from their text, issue 13 session 11) keep the same address, network and agent'
);
select is(
    pg_temp.after_pre_request(
        '{"user-agent": "", "app.request_client_ip": "=198.51.100.1", "app.request_client_network": "=198.51.100.0/24"}'
    ),
    array[null, null, null]::text[],
    'a request without an address keeps none: headers named like the kept settings change nothing'
);

-- A dotted quad's network is not kept (one set_config fewer per request, issue 13): the readers
-- append /32 to the kept address. An address kept with its network (IPv6) reads that network.
create function pg_temp.network_kept_and_read(p_raw text) returns text[]
language plpgsql volatile
as $$
declare
    v_seen text[];
begin
    perform set_config('request.headers', jsonb_build_object('x-real-ip', p_raw)::text, true);
    perform app_logic.keep_request_headers(app_logic.request_headers(), app_logic.dotted_quad(p_raw));
    perform set_config('request.headers', '{"x-real-ip": "not an address"}', true);
    v_seen := array[current_setting('app.request_client_network', true), app_logic.client_network_text()];
    perform pg_temp.clear_kept();
    return v_seen;
end
$$;
select is(
    pg_temp.network_kept_and_read('203.0.113.6'), array['', '203.0.113.6/32'],
    'a dotted quad keeps no network, and the readers answer its /32 from the kept address'
);
select is(
    pg_temp.network_kept_and_read('2001:db8:1:2::7'), array['2001:db8:1:2::/64', '2001:db8:1:2::/64'],
    'an IPv6 address keeps its /64, and the readers answer that'
);

-- The readers are inlined and read the kept setting; their path through the headers is a
-- function call that runs only without one (inlined, its nodes were set up in every transaction).
select ok(
    tap.plan_of($$ select app_logic.client_ip(), app_logic.client_network(), app_logic.request_user_agent() $$)
    ~ (
        'current_setting\(''app\.request_client_ip''.*client_ip_from_headers\(\)'
        || '.*current_setting\(''app\.request_client_network''.*client_network_text_from_headers\(\)'
    )
    and tap.plan_of($$ select app_logic.client_ip(), app_logic.client_network(), app_logic.request_user_agent() $$)
    !~ 'request\.headers|\mclient_ip\(\)|\mclient_network(_text)?\(\)|\mrequest_user_agent\(\)',
    'client_ip, client_network and request_user_agent are inlined, read the kept settings, and parse no headers'
);

select * from finish();
rollback;
