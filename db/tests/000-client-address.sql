-- The client address of a request (app_logic.client_ip, X-Real-IP as nginx sets it): a dotted
-- quad in canonical form takes the fast path without an exception block, everything else the
-- cast inside one; both must give what the cast gives, and null for what it refuses.
begin;
select plan(2);

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

select * from finish();
rollback;
