"""The console's access rules, its command catalogue and its web layer, without Kafka (a fake SDK client)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from csms_server.console.access import TOKEN_COOKIE, check_command, check_credentials, check_host, host_name
from csms_server.console.commands import EXAMPLES, command_catalogue, station_actions
from csms_server.console.web import Console
from ocpp_gw.config import Config, ConfigError, ConsoleConfig
from ocpp_gw.core.protocol import OcppVersion
from ocpp_gw.schemas import load_ocpp_schemas
from ocpp_gw.sdk import CallTimeout

Client = TestClient[web.Request, web.Application]
LOCAL = ConsoleConfig()
TOKEN = ConsoleConfig(host="0.0.0.0", token="s3cret-token")
BASIC = ConsoleConfig(host="10.0.0.5", username="ops", password="pa:ss")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("host", "name"), [("localhost:8080", "localhost"), ("[::1]:8080", "::1"), ("127.0.0.1", "127.0.0.1"), ("[bad", "")]
)
def test_host_names(host: str, name: str) -> None:
    assert host_name(host) == name


def test_a_console_on_loopback_answers_only_loopback_host_names() -> None:
    assert check_host(LOCAL, "localhost:8080") is None and check_host(LOCAL, "[::1]:8080") is None
    refused = check_host(LOCAL, "rebound.example:8080")
    assert refused is not None and refused.status == 421
    assert check_host(TOKEN, "console.example:8080") is None, "a console bound elsewhere relies on its credentials"


def test_credentials_are_required_when_bound_elsewhere() -> None:
    with pytest.raises(ConfigError, match="token, or username and password"):
        ConsoleConfig(host="0.0.0.0")
    with pytest.raises(ConfigError, match="set both or neither"):
        ConsoleConfig(username="ops")
    assert check_credentials(LOCAL, {}) is None


def test_a_token_is_taken_from_the_bearer_header_or_the_cookie() -> None:
    assert check_credentials(TOKEN, {"Authorization": "Bearer s3cret-token"}) is None
    assert check_credentials(TOKEN, {"Cookie": f"{TOKEN_COOKIE}=s3cret-token; other=1"}) is None
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": f"{TOKEN_COOKIE}=wrong"}, {"Cookie": "\x00;;="}):
        refused = check_credentials(TOKEN, headers)
        assert refused is not None and refused.status == 401 and not refused.challenge


def test_basic_credentials_are_checked_and_asked_for() -> None:
    assert check_credentials(BASIC, {"Authorization": basic("ops", "pa:ss")}) is None
    for authorization in (basic("ops", "pa"), basic("root", "pa:ss"), "Basic !!!", "Basic " + "gA==", "Bearer x"):
        refused = check_credentials(BASIC, {"Authorization": authorization})
        assert refused is not None and refused.status == 401 and refused.challenge


def test_commands_must_be_json_from_the_console_s_own_origin() -> None:
    json_headers = {"Content-Type": "application/json; charset=utf-8", "Host": "localhost:8080"}
    assert check_command("GET", {}) is None
    assert check_command("POST", json_headers) is None
    assert check_command("POST", {**json_headers, "Origin": "http://localhost:8080"}) is None
    assert check_command("POST", {**json_headers, "Origin": "https://localhost:8080"}) is None, "behind a TLS proxy"
    form = check_command("POST", {"Content-Type": "application/x-www-form-urlencoded"})
    assert form is not None and form.status == 415
    for origin in ("http://evil.example", "http://localhost:8081", "null", "file://localhost:8080", "http://[bad"):
        elsewhere = check_command("POST", {**json_headers, "Origin": origin})
        assert elsewhere is not None and elsewhere.status == 403, origin


def test_every_example_payload_is_valid_for_its_version() -> None:
    schemas = load_ocpp_schemas(tuple(OcppVersion))
    for version, examples in EXAMPLES.items():
        for action, payload in examples.items():
            name = action if version is OcppVersion.V16 else f"{action}Request"
            schema = {k: v for k, v in schemas[(version, name)].items() if k != "$schema"}
            jsonschema.validate(payload, schema)
            assert action in station_actions(version)


def test_the_catalogue_offers_csms_commands_not_station_messages() -> None:
    catalogue = command_catalogue()
    assert set(catalogue) == {"ocpp1.6", "ocpp2.0.1", "ocpp2.1"}
    v201 = catalogue["ocpp2.0.1"]["actions"]
    assert v201[:2] == ["Reset", "TriggerMessage"] and "SetVariables" in v201 and "DataTransfer" in v201
    assert "BootNotification" not in v201 and "Heartbeat" not in v201
    assert "RemoteStartTransaction" in catalogue["ocpp1.6"]["actions"]


class FakeClient:
    """What the console needs of :class:`ocpp_gw.sdk.CsmsClient`: ``send_call``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def send_call(self, station_id: str, action: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.calls.append((station_id, action, payload))
        if action == "Slow":
            raise CallTimeout("no answer")
        return {"status": "Accepted"}


def serve(settings: ConsoleConfig, test: Callable[[Client, Console], Awaitable[None]]) -> None:
    async def run() -> None:
        console = Console(Config(console=settings))
        console.client = FakeClient()  # type: ignore[assignment]
        async with TestClient(TestServer(console.app())) as client:
            await test(client, console)

    asyncio.run(run())


def test_the_page_and_its_files_are_served_with_a_strict_policy() -> None:
    async def test(client: Client, console: Console) -> None:
        page = await client.get("/", headers={"Host": "localhost"})
        assert page.status == 200 and "ocpp-gw console" in await page.text()
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
        for path in ("/static/console.js", "/static/console.css", "/static/vendor/uPlot.iife.min.js"):
            assert (await client.get(path, headers={"Host": "localhost"})).status == 200, path
        assert (await client.get("/", headers={"Host": "evil.example"})).status == 421

    serve(LOCAL, test)


def test_a_command_from_the_page_is_sent_and_its_outcome_returned() -> None:
    async def test(client: Client, console: Console) -> None:
        headers = {"Host": "localhost:8080", "Origin": "http://localhost:8080"}
        sent = await client.post("/api/stations/CP%201/call", json={"action": "Reset", "payload": {}}, headers=headers)
        outcome = await sent.json()
        assert outcome["status"] == "answered" and outcome["answer"] == {"status": "Accepted"}
        assert console.client.calls == [("CP 1", "Reset", {})]  # type: ignore[union-attr]
        slow = await client.post("/api/stations/CP/call", json={"action": "Slow"}, headers=headers)
        assert (await slow.json())["status"] == "timeout"
        for body in ({"action": "<script>"}, {"action": "Reset", "payload": []}, ["Reset"]):
            refused = await client.post("/api/stations/CP/call", json=body, headers=headers)
            assert refused.status == 400, body
        raw = await client.post(
            "/api/stations/CP/call", data="{", headers={**headers, "Content-Type": "application/json"}
        )
        assert raw.status == 400
        cross = await client.post(
            "/api/stations/CP/call", json={"action": "Reset"}, headers={**headers, "Origin": "http://evil.example"}
        )
        assert cross.status == 403 and len(console.client.calls) == 2  # type: ignore[union-attr]

    serve(LOCAL, test)


def test_a_token_opens_the_page_once_and_is_kept_in_a_cookie() -> None:
    async def test(client: Client, console: Console) -> None:
        assert (await client.get("/api/catalogue")).status == 401
        assert (await client.get("/?token=wrong", allow_redirects=False)).status == 401
        opened = await client.get("/?token=s3cret-token", allow_redirects=False)
        assert opened.status == 303 and opened.headers["Location"] == "/"
        cookie = opened.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        catalogue = await client.get("/api/catalogue")  # the client keeps the cookie, like a browser
        assert catalogue.status == 200 and "ocpp2.1" in await catalogue.json()

    serve(TOKEN, test)


def test_live_updates_start_with_a_snapshot_and_bring_the_selected_station_s_entries() -> None:
    async def test(client: Client, console: Console) -> None:
        from tests.test_console_model import station_frame

        console.model.observe_in(station_frame([2, "h1", "Heartbeat", {}]), 1)
        console.model.take_changes()  # broadcast before this page came
        broadcasting = asyncio.create_task(console._broadcast())
        events = await client.get("/api/events?station=CP_1", headers={"Host": "localhost"})
        assert events.headers["Content-Type"].startswith("text/event-stream")
        snapshot = await _next_event(events)
        assert snapshot[0] == "snapshot" and snapshot[1]["view"]["timeline"][0]["action"] == "Heartbeat"
        console.model.observe_in(station_frame([2, "h2", "Heartbeat", {}]), 2)
        console.model.observe_in(station_frame([2, "x1", "Heartbeat", {}], station_id="CP_2"), 3)
        name, update = await _next_event(events)
        assert name == "update" and [e["message_id"] for e in update["entries"]] == ["h2"]
        assert {s["id"] for s in update["stations"]} == {"CP_1", "CP_2"}
        broadcasting.cancel()
        events.close()

    serve(LOCAL, test)


def test_followers_beyond_the_limit_are_refused() -> None:
    async def test(client: Client, console: Console) -> None:
        first = await client.get("/api/events", headers={"Host": "localhost"})
        assert (await _next_event(first))[0] == "snapshot"
        second = await client.get("/api/events", headers={"Host": "localhost"})
        assert second.status == 503
        first.close()

    serve(ConsoleConfig(max_viewers=1), test)


async def _next_event(response: Any) -> tuple[str, Any]:
    name, data = "", ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\r\n")
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data += line.split(":", 1)[1].strip()
        elif not line and name:
            return name, json.loads(data)


def test_a_record_the_model_cannot_take_is_skipped_and_the_follower_goes_on() -> None:
    from aiokafka import TopicPartition
    from aiokafka.structs import ConsumerRecord

    from csms_server.console.follower import Follower
    from csms_server.console.model import ConsoleModel
    from ocpp_gw.config import KafkaConfig
    from ocpp_gw.core.envelope import Origin, frame_record

    def consumed(station_id: str, offset: int) -> ConsumerRecord[bytes, bytes]:
        value = frame_record(
            Origin(station_id, OcppVersion.V201, "gw"),
            "",
            reply_partition=0,
            frame_text=f'[2, "h{offset}", "Heartbeat", {{}}]',
            message_type=2,
            message_id=f"h{offset}",
            action="Heartbeat",
            source="station",
        )
        return ConsumerRecord("messages_in", 0, offset, offset, 0, station_id.encode(), value, None, 0, 0, [])

    class Batches:
        def __init__(self) -> None:
            self.batches = [{TopicPartition("messages_in", 0): [consumed("BAD", 0), consumed("GOOD", 1)]}]

        async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
            if self.batches:
                return self.batches.pop()
            await asyncio.Event().wait()
            return {}

    class Fragile(ConsoleModel):
        def observe_in(self, record: Any, time_ms: int) -> None:
            if record.station_id == "BAD":
                raise OverflowError("a value the model cannot take")
            super().observe_in(record, time_ms)

    async def run() -> None:
        model = Fragile()
        follower = Follower(KafkaConfig(), model, 60)
        await follower.stop()  # its Kafka clients are never started here
        follower._consumer = Batches()
        reading = asyncio.create_task(follower._read())
        deadline = asyncio.get_running_loop().time() + 5
        while "GOOD" not in model.stations and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert "GOOD" in model.stations and follower.skipped == 1 and not reading.done()
        reading.cancel()

    asyncio.run(run())
