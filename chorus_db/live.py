"""The live brand-metrics relay: LISTEN on PostgreSQL, per-minute aggregates, Server-Sent Events.

Every accepted brand-engagement, logo-heatmap and page-view write notifies channel
`chorus_brand_metrics` (db/functions/230-live-metrics.sql) with a payload free of personal
data. This process listens to it (psycopg's asynchronous connection, already the project's
PostgreSQL driver), adds the notifications up per UTC minute, and streams the minutes to every
connected dashboard with sse-starlette (Starlette's maintained SSE response: keep-alive pings,
disconnect handling, the text/event-stream framing). nginx puts it at GET /api/live/brand-metrics
after checking the reader key (auth_request), with buffering off (deploy/nginx/api.conf.template).

Why Server-Sent Events, not a WebSocket: the stream only goes from server to browser; SSE is
plain HTTP, so nginx proxies it with its usual timeouts and headers, the key check is the same
as for every other endpoint, and clients reconnect by themselves.

Bounded whatever the traffic: a client gets one `snapshot` event on connect (the last minutes)
and then, every CHORUS_LIVE_INTERVAL seconds (default 2) while anything changed, one `minute`
event for each minute that changed meanwhile, oldest first (one, or two at the turn of a
minute: the last counts of the minute that ended are sent too, not lost to the next one's),
plus a ping comment every 15 s. Memory holds CHORUS_LIVE_MINUTES minutes.

Run by `invoke up` (chorus_db.stack) and as the live-relay service of docker-compose.yml:
`python -m chorus_db.live` with CHORUS_LIVE_DATABASE_URL (the authenticator's URL: LISTEN
needs no privilege; or CHORUS_LIVE_DATABASE_URL_FILE, a file holding it), and CHORUS_LIVE_HOST and
CHORUS_LIVE_PORT, or CHORUS_LIVE_SOCKET (a unix socket path, as in compose).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sys
from collections import OrderedDict

CHANNEL = "chorus_brand_metrics"
KINDS = ("page_view", "brand_engagement", "logo_heatmap")
log = logging.getLogger("chorus_db.live")


def _minute_of(at: float) -> int:
    return int(at // 60) * 60


def _iso(minute: int) -> str:
    return dt.datetime.fromtimestamp(minute, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:00Z")


class Aggregator:
    """Per-minute counts of the notifications; `version` grows with every one added, and each
    minute remembers the version of its last change (what a stream sends next)."""

    def __init__(self, keep_minutes: int = 10):
        self.keep_minutes = keep_minutes
        self.minutes: OrderedDict[int, dict] = OrderedDict()
        self.minute_version: dict[int, int] = {}
        self.version = 0
        self.changed = asyncio.Event()

    @staticmethod
    def _empty(minute: int) -> dict:
        return {"minute": _iso(minute), "counts": dict.fromkeys(KINDS, 0), "heatmapPoints": 0, "ctaClicks": 0,
                "heatmapThemes": {}, "pageViewDevices": {}}

    def add(self, payload: dict) -> None:
        kind = payload.get("kind")
        if kind not in KINDS or not isinstance(payload.get("at"), (int, float)):
            return
        minute = _minute_of(payload["at"])
        bucket = self.minutes.get(minute)
        if bucket is None:
            bucket = self.minutes[minute] = self._empty(minute)
            self.minutes = OrderedDict(sorted(self.minutes.items()))
            while len(self.minutes) > self.keep_minutes:
                self.minute_version.pop(self.minutes.popitem(last=False)[0], None)
            if minute not in self.minutes:
                return  # older than every minute kept
        bucket["counts"][kind] += 1
        if kind == "logo_heatmap":
            bucket["heatmapPoints"] += int(payload.get("points") or 0)
            theme = str(payload.get("theme") or "unknown")[:20]
            bucket["heatmapThemes"][theme] = bucket["heatmapThemes"].get(theme, 0) + 1
        elif kind == "page_view":
            device = str(payload.get("deviceType") or "unknown")[:20]
            bucket["pageViewDevices"][device] = bucket["pageViewDevices"].get(device, 0) + 1
        elif kind == "brand_engagement":
            bucket["ctaClicks"] += int(payload.get("ctaClicks") or 0)
        self.version += 1
        self.minute_version[minute] = self.version
        self.changed.set()

    def changed_since(self, version: int) -> list[dict]:
        """The minutes changed after `version`, oldest first: at most the minutes kept."""
        return [bucket for minute, bucket in self.minutes.items() if self.minute_version.get(minute, 0) > version]

    def recent(self) -> list[dict]:
        return list(self.minutes.values())


async def listen(dsn: str, aggregator: Aggregator, ready: asyncio.Event | None = None) -> None:
    """LISTEN forever; reconnect after a lost connection (notifications meanwhile are lost)."""
    import psycopg

    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute(f"listen {CHANNEL}")
                log.info("listening on %s", CHANNEL)
                if ready is not None:
                    ready.set()
                async for notify in conn.notifies():
                    try:
                        aggregator.add(json.loads(notify.payload))
                    except (ValueError, TypeError):
                        log.warning("ignored a notification that is not a JSON object")
        except (OSError, psycopg.Error) as exc:
            log.warning("lost the database (%s); reconnecting in 1 s", exc)
            await asyncio.sleep(1)


def create_app(dsn: str, interval: float = 2.0, keep_minutes: int = 10):
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    aggregator = Aggregator(keep_minutes)
    ready = asyncio.Event()

    async def stream(request):
        async def events():
            yield {"event": "snapshot", "data": json.dumps({"minutes": aggregator.recent()})}
            sent = aggregator.version
            while True:
                aggregator.changed.clear()
                if aggregator.version == sent:
                    await aggregator.changed.wait()
                # Coalesce: whatever arrives within the interval goes out as one event a minute.
                await asyncio.sleep(interval)
                changed, sent = aggregator.changed_since(sent), aggregator.version
                for bucket in changed:
                    yield {"event": "minute", "data": json.dumps(bucket)}

        return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})

    async def health(request):
        status = 200 if ready.is_set() else 503
        return JSONResponse({"status": "ok" if status == 200 else "starting", "endpoint": "live-relay"}, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(listen(dsn, aggregator, ready))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return Starlette(routes=[Route("/api/live/brand-metrics", stream), Route("/health", health)], lifespan=lifespan)


def main() -> int:
    dsn = os.environ.get("CHORUS_LIVE_DATABASE_URL")
    url_file = os.environ.get("CHORUS_LIVE_DATABASE_URL_FILE")
    if not dsn and url_file:
        try:
            dsn = open(url_file).read().strip()
        except OSError as exc:
            print(f"cannot read CHORUS_LIVE_DATABASE_URL_FILE {url_file} ({exc.strerror}): run the build step first.",
                  file=sys.stderr)
            return 1
    if not dsn:
        print("CHORUS_LIVE_DATABASE_URL is not set: give the relay the authenticator's database URL (or a file of it "
              "in CHORUS_LIVE_DATABASE_URL_FILE).", file=sys.stderr)
        return 1
    try:
        import uvicorn
    except ImportError:
        print("uvicorn is not installed: run `pip install -e .` in the checkout, then start the relay again.", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(dsn, float(os.environ.get("CHORUS_LIVE_INTERVAL", "2")), int(os.environ.get("CHORUS_LIVE_MINUTES", "10")))
    socket_path = os.environ.get("CHORUS_LIVE_SOCKET")
    if socket_path:
        # A unix socket (compose): nginx reaches it by path, never by a host name it would
        # resolve once. Made here so nginx's workers, another user, may connect (mode 666).
        import socket

        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(socket_path)
        os.chmod(socket_path, 0o666)
        uvicorn.run(app, fd=sock.fileno(), log_level="warning")
    else:
        uvicorn.run(app, host=os.environ.get("CHORUS_LIVE_HOST", "127.0.0.1"),
                    port=int(os.environ.get("CHORUS_LIVE_PORT", "3002")), log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
