"""Live brand metrics (issue 15) end to end: writes NOTIFY without personal data, the relay
(chorus_db/live.py) streams per-minute aggregates as Server-Sent Events through nginx for reader
keys, and a headless Chromium page (Debian's chromium) sees the events arrive after a POST.

The page reads the stream with fetch(), as a dashboard does: EventSource cannot send the
X-API-Key header. It is served by a small local server of the test, so it is cross-origin to
the API; Chromium runs with --disable-web-security for that (the API sends no CORS headers)."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import psycopg
import pytest
import requests

pytestmark = pytest.mark.http

LIVE = "/api/live/brand-metrics"


@pytest.fixture(scope="module")
def reader(http):
    return http.make_key("reader")


class EventReader:
    """The SSE events of one streaming response, read once (one line generator for its life)."""

    def __init__(self, response):
        # chunk_size=1: the default waits for 512 bytes before it yields a line.
        self.lines = response.iter_lines(chunk_size=1, decode_unicode=True)
        self.events: list[tuple[str | None, dict]] = []

    def until(self, done, timeout: float = 15.0) -> list:
        name, data = None, []
        deadline = time.monotonic() + timeout
        for raw in self.lines:
            line = raw.rstrip("\r")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                self.events.append((name, json.loads("\n".join(data))))
                name, data = None, []
                if done(self.events):
                    break
            if time.monotonic() > deadline:
                break
        return self.events


def count_of(event, kind):
    return (event.get("counts") or {}).get(kind, 0)


def count_before(snapshot_minutes: list, event: dict, kind: str) -> int:
    """What an event's minute counted of `kind` when the snapshot was taken: the snapshot's last
    minute's count, or 0 once the clock has passed into a later minute."""
    last = snapshot_minutes[-1] if snapshot_minutes else {}
    return count_of(last, kind) if event.get("minute") == last.get("minute") else 0


def test_the_stream_needs_a_reader_key(http):
    assert http.get(LIVE, timeout=5).status_code == 401
    wrong = http.get(LIVE, headers={"X-API-Key": "chk_wrong"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["code"] == "CHK01"
    assert http.post(LIVE, json={}, timeout=5).status_code == 405


def test_events_arrive_through_nginx_after_a_post(http, reader):
    with http.session.get(http.url(LIVE), headers={"X-API-Key": reader}, stream=True, timeout=20) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        reader_ = EventReader(response)
        (snapshot,) = reader_.until(lambda e: len(e) >= 1)
        assert snapshot[0] == "snapshot"
        minutes = snapshot[1]["minutes"]

        client = http.fresh_client()
        for _ in range(3):
            assert client.post("/api/page-views", json={"sessionId": "live-s", "path": "/live", "deviceType": "tablet"}).status_code == 201

        def last_of_each_minute(events):
            return {d["minute"]: d for n, d in events if n == "minute"}.values()

        # The three may straddle a minute's turn: each minute's last event holds its share.
        def gained(events, field):
            return sum(field(d) - field(d, before=True) for d in last_of_each_minute(events))

        def page_views(d, before=False):
            return count_before(minutes, d, "page_view") if before else count_of(d, "page_view")

        events = reader_.until(lambda e: gained(e[1:], page_views) >= 3)[1:]
    assert gained(events, page_views) >= 3
    assert sum(d["pageViewDevices"].get("tablet", 0) for d in last_of_each_minute(events)) >= 3
    # Three posts within the coalescing interval came as one event a minute they fell in, not three.
    assert len([n for n, _ in events if n == "minute"]) <= 2


def test_notifications_carry_no_personal_data(http):
    session = f"sess-personal-{secrets.token_hex(4)}"
    with psycopg.connect(http.db_url, autocommit=True) as conn:
        conn.execute("listen chorus_brand_metrics")
        client = http.fresh_client()
        client.post("/api/brand-engagement", json={"sessionId": session, "ctaClicks": [{"id": "contact"}]})
        client.post("/api/logo-heatmaps", json={"sessionId": session, "accessibilityTheme": "default",
                                                "points": [{"x": 0.5, "y": 0.5, "durationMs": 1}]})
        client.post("/api/page-views", json={"sessionId": session, "path": "/private?email=ada@example.org"})
        # A refused post notifies nothing.
        client.post("/api/page-views", json={"sessionId": session})
        payloads = []
        deadline = time.monotonic() + 10
        while len(payloads) < 3 and time.monotonic() < deadline:
            for notify in conn.notifies(timeout=1, stop_after=3 - len(payloads)):
                payloads.append(notify.payload)
    assert len(payloads) == 3
    kinds = sorted(json.loads(p)["kind"] for p in payloads)
    assert kinds == ["brand_engagement", "logo_heatmap", "page_view"]
    for payload in payloads:
        assert session not in payload and "ada@" not in payload and "/private" not in payload
        assert set(json.loads(payload)) <= {"kind", "at", "ctaClicks", "logoInteractions", "theme", "points", "deviceType"}


# -- a real browser --------------------------------------------------------------------------
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>live brand metrics</title></head>
<body><pre id="log"></pre>
<script>
const report = (what, body) => fetch('/' + what, {method: 'POST', body: JSON.stringify(body)});
(async () => {
  try {
    const response = await fetch(%(url)s, {headers: {'X-API-Key': %(key)s, 'Accept': 'text/event-stream'}});
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.search(/\\r?\\n\\r?\\n/)) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\\r?\\n\\r?\\n/, '');
        const name = (frame.match(/^event: ?(.*)$/m) || [])[1];
        const data = frame.split(/\\r?\\n/).filter(l => l.startsWith('data:')).map(l => l.slice(5).trim()).join('\\n');
        if (!data) continue;
        document.getElementById('log').textContent += name + ' ' + data + '\\n';
        await report(name === 'snapshot' ? 'ready' : 'seen', {event: name, data: JSON.parse(data)});
      }
    }
  } catch (error) {
    report('error', {message: String(error)});
  }
})();
</script></body></html>
"""


class PageServer:
    """Serves the page and collects what it reports (ready, seen, error)."""

    def __init__(self, page: str):
        self.reports: list[tuple[str, dict]] = []
        reports = self.reports

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                reports.append((self.path.strip("/"), json.loads(self.rfile.read(length) or b"{}")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/page.html"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, what: str, check=lambda d: True, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, data in list(self.reports):
                if name == "error":
                    pytest.fail(f"the page failed: {data}")
                if name == what and check(data):
                    return data
            time.sleep(0.1)
        pytest.fail(f"the page reported no {what} within {timeout:.0f} s: {self.reports}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_a_headless_chromium_page_sees_events_arrive_after_a_post(http, reader):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium not found: apt-get install chromium")
    page = PageServer(PAGE % {"url": json.dumps(http.url(LIVE)), "key": json.dumps(reader)})
    profile = tempfile.mkdtemp(prefix="chorus-chromium-")
    argv = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--disable-web-security", page.url,
    ]
    browser = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        snapshot = page.wait_for("ready", timeout=30)
        minutes = snapshot["data"]["minutes"]
        response = http.fresh_client().post("/api/logo-heatmaps", json={
            "sessionId": "chromium", "accessibilityTheme": "tritanopia", "points": [{"x": 0.2, "y": 0.8, "durationMs": 40}] * 7,
        })
        assert response.status_code == 201
        # Against the count of the event's own minute: comparing a new minute's 1 with the
        # previous minute's 1 once failed a run whose POST landed just after a minute began.
        seen = page.wait_for(
            "seen", lambda d: count_of(d["data"], "logo_heatmap") > count_before(minutes, d["data"], "logo_heatmap"), timeout=20
        )
        assert seen["event"] == "minute"
        assert seen["data"]["heatmapThemes"].get("tritanopia", 0) >= 1 and seen["data"]["heatmapPoints"] >= 7
    finally:
        os.killpg(browser.pid, signal.SIGTERM)
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()
        page.close()
        shutil.rmtree(profile, ignore_errors=True)
