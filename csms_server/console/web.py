"""The console's web server (aiohttp): the page, its live updates (server-sent events) and its commands.

- ``GET /``: the page (static files shipped in the package); ``/?token=...`` stores a token in a cookie.
- ``GET /api/catalogue``: the actions and example payloads of the command form, per OCPP version.
- ``GET /api/events?station=ID``: a snapshot, then every 250 ms the stations that changed and the
  selected station's new timeline entries. A page that falls behind is dropped; it reconnects.
- ``GET /api/stations/ID``: one station with its timeline and transaction, as JSON.
- ``POST /api/stations/ID/call``: ``{"action": ..., "payload": {...}}``, sent with :func:`csms_server.call.call`
  (the code of ``csms-server call``); the answer is the call's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp_sse import sse_response

from ocpp_gw.config import Config
from ocpp_gw.kafka_clients import check_access
from ocpp_gw.kafka_topics import ensure_topics
from ocpp_gw.sdk import CsmsClient

from ..call import call
from .access import REALM, TOKEN_COOKIE, check_command, check_credentials, check_host, token_matches
from .commands import command_catalogue
from .follower import Follower
from .model import ConsoleModel

log = logging.getLogger("csms_server.console")

STATIC = Path(__file__).parent / "static"
BROADCAST_INTERVAL = 0.25
VIEWER_BACKLOG = 40
"""Updates a page may fall behind (10 s) before it is dropped and reconnects for a fresh snapshot."""
MAX_COMMANDS = 16
"""Commands waiting for their answers at once; more are refused (429)."""
MAX_BODY = 256 * 1024
STOP_SECONDS = 5.0
"""How long a stopping console lets commands in flight wait for their answers."""
ACTION = re.compile(r"[A-Za-z0-9]{1,64}")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(eq=False)
class Viewer:
    """A page following the console live, and the station it shows."""

    station_id: str | None
    updates: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(VIEWER_BACKLOG))


class Console:
    """``csms-server console``: follows the topics into a :class:`ConsoleModel` and serves it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = config.console
        settings = self.settings
        self.model = ConsoleModel(settings.max_stations, settings.timeline_entries, settings.timeline_bytes)
        self.viewers: set[Viewer] = set()
        self.client: CsmsClient | None = None
        self._commands = asyncio.Semaphore(MAX_COMMANDS)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.on_response_prepare.append(_secure_headers)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/api/catalogue", self._catalogue)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/stations/{station_id}", self._station)
        app.router.add_post("/api/stations/{station_id}/call", self._call)
        return app

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        kafka = self.config.kafka
        await check_access(kafka)
        routes = (kafka.routes_topic,)
        await ensure_topics(kafka, kafka.in_messages_topic, kafka.out_messages_topic, *routes, compacted=routes)
        follower = Follower(kafka, self.model, settings.history_seconds)
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=STOP_SECONDS)
        try:
            await follower.start()
            async with CsmsClient(kafka) as client:
                self.client = client
                broadcasting = asyncio.create_task(self._broadcast(), name="console-broadcast")
                try:
                    await runner.setup()
                    await web.TCPSite(runner, settings.host, settings.port).start()
                    host = f"[{settings.host}]" if ":" in settings.host else settings.host
                    log.info("console ready", extra={"url": f"http://{host}:{settings.port}/"})
                    stopping = asyncio.ensure_future(stop.wait())
                    await asyncio.wait((stopping, follower.task, broadcasting), return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                    for task in (follower.task, broadcasting):
                        if task.done():
                            task.result()  # a task that should never end did: stop, and say why
                finally:
                    broadcasting.cancel()
                    for viewer in self.viewers:
                        _replace_backlog(viewer, None)
                    await runner.cleanup()  # before the client stops, so commands in flight can still be answered
        finally:
            await follower.stop()

    # Access.

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        settings = self.settings
        refusal = check_host(settings, request.host)
        if refusal is None and request.path == "/" and "token" in request.query:
            if not token_matches(settings, request.query["token"]):
                raise web.HTTPUnauthorized(text="wrong token")
            opened = web.HTTPSeeOther("/")
            opened.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="Strict", path="/")
            raise opened
        refusal = refusal or check_credentials(settings, request.headers)
        refusal = refusal or check_command(request.method, request.headers)
        if refusal is not None:
            headers = {"WWW-Authenticate": REALM} if refusal.challenge else None
            return web.json_response({"error": refusal.reason}, status=refusal.status, headers=headers)
        return await handler(request)

    # Pages and data.

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def _catalogue(self, request: web.Request) -> web.StreamResponse:
        return _json(command_catalogue())

    async def _station(self, request: web.Request) -> web.StreamResponse:
        view = self.model.station_view(request.match_info["station_id"])
        if view is None:
            return _json({"error": "no such station"}, status=404)
        return _json(view)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self.viewers) >= self.settings.max_viewers:
            return _json({"error": "too many pages follow this console"}, status=503)
        viewer = Viewer(request.query.get("station") or None)
        self.viewers.add(viewer)
        try:
            async with sse_response(request, send_timeout=10) as events:
                snapshot = {
                    "stations": [station.summary() for station in self.model.stations.values()],
                    "view": self.model.station_view(viewer.station_id) if viewer.station_id else None,
                }
                await events.send(orjson.dumps(snapshot).decode(), event="snapshot")
                closed = asyncio.ensure_future(events.wait())
                while True:
                    update = asyncio.ensure_future(viewer.updates.get())
                    await asyncio.wait((update, closed), return_when=asyncio.FIRST_COMPLETED)
                    if not update.done():
                        update.cancel()
                        break
                    data = update.result()
                    if data is None:
                        break
                    await events.send(data.decode(), event="update")
                closed.cancel()
                return events
        except (ConnectionError, TimeoutError):
            return web.Response(status=204)
        finally:
            self.viewers.discard(viewer)

    async def _broadcast(self) -> None:
        while True:
            await asyncio.sleep(BROADCAST_INTERVAL)
            if not (self.model.changed or self.model.fresh):
                continue
            changed = set(self.model.changed)
            summaries, fresh = self.model.take_changes()
            stations = orjson.dumps(summaries)
            for viewer in self.viewers:
                station_id = viewer.station_id
                update: dict[str, Any] = {
                    "entries": [entry.to_json() for entry in fresh if entry.station_id == station_id]
                }
                if station_id is not None and station_id in changed:
                    update["transaction"] = self.model.transaction_view(station_id)
                try:
                    viewer.updates.put_nowait(b'{"stations":' + stations + b"," + orjson.dumps(update)[1:])
                except asyncio.QueueFull:
                    _replace_backlog(viewer, None)

    # Commands.

    async def _call(self, request: web.Request) -> web.StreamResponse:
        station_id = request.match_info["station_id"]
        try:
            body = await request.json(loads=orjson.loads)
        except ValueError:
            return _json({"error": "the body is not JSON"}, status=400)
        action = body.get("action") if isinstance(body, dict) else None
        payload = body.get("payload", {}) if isinstance(body, dict) else None
        if not isinstance(action, str) or not ACTION.fullmatch(action):
            return _json({"error": "action must be an OCPP action name"}, status=400)
        if not isinstance(payload, dict):
            return _json({"error": "payload must be a JSON object"}, status=400)
        if self._commands.locked() or self.client is None:
            return _json({"error": "too many commands waiting for answers"}, status=429)
        async with self._commands:
            outcome = await call(self.client, station_id, action, payload, self.config.csms.call_timeout)
        log.info("console command", extra={"station_id": station_id, "action": action, "outcome": outcome.status})
        return _json(outcome.to_json())


def _json(document: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")


def _replace_backlog(viewer: Viewer, last: bytes | None) -> None:
    """Empty a page's backlog and leave only ``last`` (None: close its stream)."""
    while not viewer.updates.empty():
        viewer.updates.get_nowait()
    with contextlib.suppress(asyncio.QueueFull):
        viewer.updates.put_nowait(last)


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
