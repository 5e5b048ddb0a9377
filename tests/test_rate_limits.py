"""Rate limits (issue 4) at the SQL level: windows, Retry-After, resets, concurrency, privacy.

Time is frozen per request (the helper's frozen_now); nothing here sleeps.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import psycopg

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def lead(n: int | str, **extra) -> dict:
    return {"firstName": "Ada", "lastName": "L", "email": f"ada{n}@example.org", "gdprConsent": True, **extra}


def post(api, n, seconds, **kwargs):
    return api.post("/api/leads", lead(n), frozen_now=at(seconds), **kwargs)


def test_the_sixth_lead_from_one_ip_in_ten_minutes_gets_429_with_retry_after(api, db):
    for n in range(5):
        assert post(api, n, n * 10).status == 201
    response = post(api, 5, 100)
    assert response.status == 429
    assert response.headers == {"Retry-After": "500"}
    assert response.body["code"] == "CHR01"
    assert response.body["message"] == "Too many requests: try again in 500 seconds."
    assert db.execute("select count(*) from app.leads").fetchone()[0] == 5


def test_a_slot_frees_exactly_when_the_oldest_request_leaves_the_window(api):
    for n in range(5):
        assert post(api, n, n * 60).status == 201  # T0, +60, +120, +180, +240
    assert post(api, 10, 599).headers == {"Retry-After": "1"}
    assert post(api, 11, 600).status == 201  # the request of T0 has left the window
    blocked = post(api, 12, 601)
    assert blocked.status == 429 and blocked.headers == {"Retry-After": "59"}  # the next frees at +660
    assert post(api, 13, 660).status == 201


def test_the_window_slides_so_a_burst_across_a_boundary_is_still_limited(api):
    for n in range(5):
        assert post(api, n, 599).status == 201
    # A fixed 10-minute window would reset at +600 and admit five more at once.
    assert post(api, 5, 601).headers == {"Retry-After": "598"}
    assert post(api, 6, 1198.5).headers == {"Retry-After": "1"}
    assert post(api, 7, 1199).status == 201  # ten minutes after the burst


def test_retrying_while_blocked_does_not_prolong_the_block(api):
    for n in range(5):
        post(api, n, 0)
    for second in (1, 100, 300, 599):
        assert post(api, f"r{second}", second).status == 429
    assert post(api, "late", 600).status == 201


def test_requests_rejected_for_bad_input_use_up_the_limit(api, db):
    for n in range(5):
        response = api.post("/api/leads", lead(n, deviceType="fridge"), frozen_now=at(n))
        assert response.status == 400
    assert post(api, "good", 10).status == 429
    assert db.execute("select count(*) from app.leads").fetchone()[0] == 0
    assert post(api, "good", 600).status == 201


def test_non_object_bodies_use_up_the_limit_too(api):
    for n in range(5):
        assert api.post("/api/leads", raw_body="[]", frozen_now=at(n)).status == 400
    assert post(api, "good", 10).status == 429


def test_one_email_gets_three_per_hour_whatever_the_ip_or_letter_case(api, db):
    spellings = ["ada@example.org", "ADA@example.org", " Ada@Example.Org ", "ada@EXAMPLE.org"]
    statuses = [
        api.post("/api/leads", lead(0, email=e), client_ip=f"198.51.100.{i}", frozen_now=at(i * 60)).status
        for i, e in enumerate(spellings)
    ]
    assert statuses == [201, 201, 201, 429]
    again = lead(0, email="ada@example.org")
    retry = api.post("/api/leads", again, client_ip="198.51.100.99", frozen_now=at(1000))
    assert retry.headers == {"Retry-After": "2600"}
    assert api.post("/api/leads", again, client_ip="198.51.100.99", frozen_now=at(3600)).status == 201
    assert api.post("/api/leads", lead("other"), client_ip="198.51.100.98", frozen_now=at(1000)).status == 201


def test_an_ipv6_client_is_counted_per_64(api):
    for n in range(5):
        assert post(api, n, n, client_ip=f"2001:db8:1:2::{n + 1}").status == 201
    assert post(api, 5, 10, client_ip="2001:db8:1:2:ffff:ffff:ffff:ffff").status == 429
    assert post(api, 6, 10, client_ip="2001:db8:1:3::1").status == 201


def test_an_ipv4_mapped_address_counts_as_that_ipv4_client(api):
    for n in range(5):
        assert post(api, n, n, client_ip="198.51.100.7").status == 201
    assert post(api, 5, 10, client_ip="::ffff:198.51.100.7").status == 429


def test_forwarding_headers_a_client_sends_do_not_change_who_it_is(api):
    for n in range(5):
        post(api, n, n)
    spoofed = post(api, 5, 10, headers={"X-Forwarded-For": "192.0.2.1", "Forwarded": "for=192.0.2.1"})
    assert spoofed.status == 429


def test_distinct_clients_have_their_own_limits(api):
    for n in range(5):
        post(api, n, n, client_ip="198.51.100.1")
    assert post(api, 5, 10, client_ip="198.51.100.1").status == 429
    assert post(api, 6, 10, client_ip="198.51.100.2").status == 201


def test_rules_change_without_a_deploy(api, db):
    db.execute("update app.rate_limit_rules set max_requests = 1 where action = 'leads' and scope = 'ip'")
    assert post(api, 0, 0).status == 201
    assert post(api, 1, 1).status == 429
    db.execute("delete from app.rate_limit_rules where action = 'leads'")
    assert all(post(api, n, 2).status == 201 for n in range(2, 10))


def test_simultaneous_requests_of_one_client_admit_exactly_the_limit(api, db):
    db.execute("update app.rate_limit_rules set max_requests = 7 where action = 'leads' and scope = 'ip'")
    clients = 30
    barrier = threading.Barrier(clients)

    def one(n: int) -> int:
        barrier.wait()
        return post(api, n, 0).status

    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(one, range(clients)))
    assert statuses.count(201) == 7
    assert statuses.count(429) == clients - 7
    assert db.execute("select count(*) from app.leads").fetchone()[0] == 7
    (hits,) = db.execute("select hits from app.rate_limit_counters where scope = 'ip'").fetchone()
    assert len(hits) == 7


def test_simultaneous_requests_refused_by_one_rule_give_the_other_its_slots_back(api, db):
    # One email from one address, all at once: the email rule (3) refuses before the IP rule (5)
    # would, and each refused request gives back the IP slot its upsert took. Exactly 3 are
    # admitted and the IP log holds exactly their 3 hits, however the requests interleave.
    clients = 12
    barrier = threading.Barrier(clients)

    def one(_n: int):
        barrier.wait()
        return api.post("/api/leads", lead("same"), client_ip="198.51.100.77", frozen_now=at(0))

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, range(clients)))
    statuses = [a.status for a in answers]
    assert statuses.count(201) == 3 and statuses.count(429) == clients - 3
    assert {a.headers.get("Retry-After") for a in answers if a.status == 429} == {"3600"}
    logs = dict(db.execute("select scope::text, cardinality(hits) from app.rate_limit_counters").fetchall())
    assert logs == {"ip": 3, "email": 3}
    assert db.execute("select count(*) from app.leads").fetchone()[0] == 1  # one email, one lead
    # The IP still has its 2 slots: two other emails from it are admitted, the next one is not.
    assert [post(api, n, 1, client_ip="198.51.100.77").status for n in range(3)] == [201, 201, 429]


def _waiting_on_a_lock(db) -> bool:
    return db.execute(
        "select exists (select from pg_stat_activity where datname = current_database()"
        " and usename = 'authenticator' and wait_event_type = 'Lock')"
    ).fetchone()[0]


def test_a_client_in_flight_blocks_only_itself(api, db, db_url):
    post(api, 0, 0, client_ip="198.51.100.1")
    post(api, 1, 0, client_ip="198.51.100.2")
    with psycopg.connect(db_url) as holder:  # an unfinished request of client 1 holds its row
        holder.execute(
            "select * from app.rate_limit_counters where scope = 'ip'"
            " and subject = app_logic.rate_limit_subject('leads', 'ip', '198.51.100.1/32') for update"
        )
        with ThreadPoolExecutor(2) as pool:
            other = pool.submit(post, api, 2, 1, client_ip="198.51.100.2")
            assert other.result(timeout=30).status == 201  # not blocked by client 1
            same = pool.submit(post, api, 3, 1, client_ip="198.51.100.1")
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(db):  # poll for the event, do not guess a duration
                assert time.monotonic() < deadline, "client 1's second request never queued on its row"
                time.sleep(0.01)
            assert not same.done()
            holder.execute("commit")
            assert same.result(timeout=30).status == 201


def test_counters_keep_no_email_or_ip_in_clear(api, db):
    api.post("/api/leads", lead(0, email="Secret.Person@Example.org"), client_ip="198.51.100.42")
    api.post("/api/leads", lead(0, email="nobody"), client_ip="198.51.100.42")
    rows = db.execute("select * from app.rate_limit_counters").fetchall()
    assert {r[1] for r in rows} == {"ip", "email"}
    dump = str(rows).lower()
    for secret in ("secret.person", "example.org", "198.51.100.42", "nobody"):
        assert secret not in dump


def test_stale_counters_are_purged_and_live_ones_kept(api, db):
    post(api, 0, 0)
    post(api, 1, 0, client_ip="198.51.100.2")
    post(api, 2, 500, client_ip="198.51.100.2")

    def purge(seconds: float) -> int:
        db.execute("select set_config('app.frozen_now', %s, false)", (at(seconds),))
        return db.execute("select app_logic.purge_rate_limit_counters(app_logic.now())").fetchone()[0]

    assert purge(599) == 0
    assert purge(600) == 1  # client 1's IP counter; client 2 hit again at +500
    # The email counters live an hour; client 2's IP counter until +1100.
    assert purge(1100) == 1
    assert purge(3600) == 2  # ada0's and ada1's email counters
    assert purge(4100) == 1
    assert db.execute("select count(*) from app.rate_limit_counters").fetchone()[0] == 0
