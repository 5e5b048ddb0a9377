"""The UTF-8 checks nginx runs on the query string and the forwarded headers
(chorus_db.routes.utf8_pattern): a header passes exactly when it is UTF-8 without control
characters (tab aside); a query string when its raw bytes are printable ASCII or UTF-8, every
% starts an escape, and it decodes to UTF-8 without NUL. PCRE without UTF mode and Python's re read these byte
patterns the same way, so Python's decoder is the oracle."""

from __future__ import annotations

import random
import re
import urllib.parse

import pytest

from chorus_db.routes import nginx_routes_conf, utf8_pattern

QUERY = re.compile(utf8_pattern(True).replace("\\\\", "\\").encode("latin-1"))
HEADER = re.compile(utf8_pattern(False).replace("\\\\", "\\").encode("latin-1"))


def _text_ok(data: bytes, tab: bool) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    allowed_controls = {"\t"} if tab else set()
    return not any((ord(c) < 0x20 and c not in allowed_controls) or ord(c) == 0x7F for c in text)


def header_expected(value: bytes) -> bool:
    return _text_ok(value, tab=True)


def query_expected(value: bytes) -> bool:
    if re.search(rb"%(?![0-9A-Fa-f]{2})", value):
        return False  # a % that starts no escape
    raw_ok = all(b >= 0x80 or (0x20 <= b <= 0x7E) for b in value)
    if not raw_ok:
        return False
    # Percent-encoded control characters are text PostgreSQL takes; only NUL is not.
    decoded = urllib.parse.unquote_to_bytes(value)
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in decoded


SAMPLES = [
    b"", b"select=id", b"caf\xc3\xa9", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80", b"a\tb", b"a\x01b", b"a\x7fb", b"%C3%A9", b"%FF", b"%c0%af", b"%ED%A0%80", b"%e2%82%ac",
    b"%F0%9F%98%80", b"%", b"%z1", b"%0", b"%00", b"%09", b"%20", b"%7F", b"%E2\x82%AC", b"\xe2%82\xac",
]


@pytest.mark.parametrize("value", SAMPLES)
def test_the_checks_agree_with_the_utf8_decoder_on_edge_cases(value):
    assert bool(HEADER.match(value)) == header_expected(value), value
    assert bool(QUERY.match(value)) == query_expected(value), value


def test_the_checks_agree_with_the_utf8_decoder_on_random_bytes():
    rng = random.Random(20261201)
    alphabet = [b"%", b"a", b"=", b"\t", b"\x00", b"\x7f"] + [bytes([b]) for b in range(0x80, 0x100)]
    alphabet += [f"%{b:02X}".encode() for b in range(0x100)] + ["é€😀".encode()]
    for _ in range(20000):
        value = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
        assert bool(HEADER.match(value)) == header_expected(value), value
        assert bool(QUERY.match(value)) == query_expected(value), value


def test_a_long_value_is_checked_in_linear_time():
    import time

    value = "é".encode() * 4000
    started = time.perf_counter()
    assert HEADER.match(value) and QUERY.match(value)
    assert not HEADER.match(value + b"\xff")
    assert time.perf_counter() - started < 0.5


def test_the_rendered_maps_carry_the_patterns():
    conf = nginx_routes_conf()
    assert f'"~{utf8_pattern(True)}" 0;' in conf and f'"~{utf8_pattern(False)}" 0;' in conf
