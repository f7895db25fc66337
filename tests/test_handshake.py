"""The handshake room on real websockets connection objects over an in-memory transport: every
refusal in its order, what is slowed, what succeeds, and the per-address caps counted from accept."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Any, cast

import pytest
from websockets import Subprotocol
from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from ocpp_gw.config import GatewayConfig
from ocpp_gw.core.credentials import FailureThrottle, hash_password
from ocpp_gw.credential_store import CredentialStore, FileCredentials
from ocpp_gw.handshake import Handshake, remote_host, station_id_from_path
from ocpp_gw.metrics import GatewayMetrics
from tests.fakes import run

PASSWORD = "correct-horse-battery-staple"
BINARY_KEY = bytes(range(0xEC, 0x100))
"""A 1.6 AuthorizationKey of 20 raw bytes, not UTF-8."""
ADDRESS = "192.0.2.1"


class FakeTransport:
    def __init__(self, peer: tuple[str, int] | None, peercert: dict[str, Any] | None) -> None:
        self.extra: dict[str, Any] = {"peername": peer, "peercert": peercert}
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        return None


class FakeServer:
    """What a websockets connection asks of its server when it is made: somewhere to run its handler."""

    def __init__(self) -> None:
        self.handler_tasks: set[asyncio.Task[None]] = set()

    async def handler(self, connection: ServerConnection) -> None:
        return None


class RecordingThrottle(FailureThrottle):
    """The real throttle's decisions, recorded; the delays themselves are not waited for."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def delay(self, address: str, now: float) -> float:
        self.delays.append(super().delay(address, now))
        return 0.0


class Gate:
    """A handshake over a credentials file, with a clock and a station count the test sets."""

    def __init__(self, tmp_path: Path, accepting: bool = True, **options: Any) -> None:
        lines = [
            f"CP1 {hash_password(PASSWORD)} 1",
            f"CP2 {hash_password(PASSWORD)} 2",
            "CP3 revoked",
            "CP4 -",
            f"CP16 {hash_password(BINARY_KEY.hex().upper())}",
        ]
        path = tmp_path / "credentials"
        path.write_text("\n".join(lines) + "\n")
        self.clock = 100.0
        self.stations = 0
        self.accepting = accepting
        self.metrics = GatewayMetrics()
        self.handshake = Handshake(
            GatewayConfig(**options),
            CredentialStore(FileCredentials(path), None, ""),
            self.metrics,
            lambda: self.accepting,
            lambda: self.stations,
            lambda: self.clock,
        )
        self.throttle = RecordingThrottle()
        self.handshake.throttle = self.throttle
        self.server = FakeServer()

    def connection(self, address: str | None = ADDRESS, peercert: dict[str, Any] | None = None) -> ServerConnection:
        """A TCP connection accepted from ``address``, counted against it (needs a running loop)."""
        connection = self.handshake.connection_class(ServerProtocol(), cast(Server, self.server))
        transport = FakeTransport((address, 40000) if address is not None else None, peercert)
        connection.connection_made(cast(asyncio.Transport, transport))
        return connection

    async def check(
        self,
        path: str = "/ocpp/CP1",
        *headers: tuple[str, str],
        profile: int = 1,
        address: str = ADDRESS,
        peercert: dict[str, Any] | None = None,
    ) -> Response | None:
        request = Request(path, Headers(list(headers)))
        return await self.handshake.check_request(profile, self.connection(address, peercert), request)

    def refused(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("ocpp_gw_handshakes_refused_total", {"reason": reason})
        return 0.0 if value is None else value


def basic(username: str, password: bytes | str) -> tuple[str, str]:
    secret = password.encode() if isinstance(password, str) else password
    return ("Authorization", "Basic " + base64.b64encode(username.encode() + b":" + secret).decode())


def status(response: Response | None) -> int | None:
    return None if response is None else response.status_code


@pytest.mark.parametrize(
    ("path", "station_id"),
    [
        ("/ocpp/CP1", "CP1"),
        ("/CP-1?token=x", "CP-1"),
        ("/ocpp/CP%C3%A9", "CPé"),
        ("/ocpp/", None),
        ("/ocpp/CP%201", None),
        ("/ocpp/CP%2F1", None),
        ("/ocpp/CP%3A1", None),
        ("/ocpp/CP%zz", None),
        ("/ocpp/CP%ff", None),
        ("/ocpp/" + "x" * 49, None),
    ],
)
def test_the_station_id_is_the_decoded_last_path_segment_when_it_is_a_valid_identity(
    path: str, station_id: str | None
) -> None:
    assert station_id_from_path(path) == station_id


def test_a_gateway_that_is_not_ready_answers_503_before_anything_else(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path, accepting=False)
        response = await gate.check("/not a station/")
        assert response is not None and response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert gate.refused("not_ready") == 1 and gate.throttle.delays == []

    run(test)


def test_a_path_without_a_station_id_gets_400_slowed_more_at_each_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def test() -> None:
        gate = Gate(tmp_path)
        for _ in range(3):
            response = await gate.check("/ocpp/bad%zz")
            assert response is not None and response.status_code == 400
            assert response.body == b"The last path segment must be a station id.\n"
        assert gate.throttle.delays == [0.0, 0.1, 0.2]
        assert gate.refused("bad_station_id") == 3
        refusals = [r for r in caplog.records if r.getMessage() == "refused: invalid station id in path"]
        assert refusals[0].__dict__["path"] == "/ocpp/bad%zz"
        # Another address is not slowed by this one's failures.
        await gate.check("/ocpp/", address="192.0.2.99")
        assert gate.throttle.delays[-1] == 0.0

    run(test)


def test_two_authorization_headers_get_400(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path)
        response = await gate.check("/ocpp/CP1", basic("CP1", PASSWORD), basic("CP1", "other-password-123"))
        assert response is not None and response.status_code == 400
        assert response.body == b"One Authorization header, please.\n"
        assert gate.refused("bad_request") == 1 and gate.throttle.delays == [0.0]

    run(test)


def test_an_address_over_its_handshake_rate_gets_429_and_others_go_on(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path, handshake_rate_per_address=1.0)
        answers = [status(await gate.check("/ocpp/CP1", basic("CP1", PASSWORD))) for _ in range(3)]
        assert answers == [None, None, 429]  # a burst of two
        response = await gate.check("/ocpp/CP1", basic("CP1", PASSWORD))
        assert response is not None and response.headers["Retry-After"] == "1"
        assert gate.refused("address_rate") == 2
        assert status(await gate.check("/ocpp/CP1", basic("CP1", PASSWORD), address="192.0.2.2")) is None
        gate.clock += 1.0
        assert status(await gate.check("/ocpp/CP1", basic("CP1", PASSWORD))) is None

    run(test)


def test_a_full_gateway_answers_503(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path, max_connections=5)
        gate.stations = 4
        assert status(await gate.check("/ocpp/CP1", basic("CP1", PASSWORD))) is None
        gate.stations = 5
        response = await gate.check("/ocpp/CP1", basic("CP1", PASSWORD))
        assert response is not None and response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert gate.refused("max_connections") == 1

    run(test)


@pytest.mark.parametrize(
    ("profile", "station", "headers", "expected"),
    [
        (1, "CP9", [basic("CP9", PASSWORD)], 404),  # unknown
        (1, "CP2", [basic("CP2", PASSWORD)], 403),  # must use profile 2
        (0, "CP1", [], 403),  # has credentials: no profile 0
        (1, "CP1", [basic("CP1", "wrong-password-0000")], 401),
        (1, "CP1", [basic("CP2", PASSWORD)], 401),  # username is another station's
        (1, "CP1", [], 401),
        (1, "CP3", [basic("CP3", PASSWORD)], 401),  # revoked
        (3, "CP4", [], 401),  # no client certificate
    ],
)
def test_authentication_refusals_answer_their_status_and_401_asks_for_basic(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    profile: int,
    station: str,
    headers: list[tuple[str, str]],
    expected: int,
) -> None:
    async def test() -> None:
        gate = Gate(tmp_path)
        response = await gate.check(f"/ocpp/{station}", *headers, profile=profile)
        assert response is not None and response.status_code == expected
        assert ("WWW-Authenticate" in response.headers) is (expected == 401)
        if expected == 401:
            assert response.headers["WWW-Authenticate"] == 'Basic realm="OCPP", charset="UTF-8"'
        assert gate.refused(f"auth_{expected}") == 1 and gate.throttle.delays == [0.0]
        [warning] = [r for r in caplog.records if r.getMessage() == "refused: authentication"]
        assert warning.__dict__["station_id"] == station and warning.__dict__["profile"] == profile

    run(test)


def test_the_right_credentials_pass_and_clear_the_addresss_failures(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path)
        await gate.check("/ocpp/CP1", basic("CP1", "wrong-password-0000"))
        assert await gate.check("/ocpp/CP1", basic("CP1", PASSWORD)) is None
        await gate.check("/ocpp/CP1", basic("CP1", "wrong-password-0000"))
        assert gate.throttle.delays == [0.0, 0.0]  # the success reset the doubling

    run(test)


def test_a_client_certificate_naming_the_station_passes_profile_3(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path)
        certificate = {"subject": ((("commonName", "CP4"),),)}
        assert await gate.check("/ocpp/CP4", profile=3, peercert=certificate) is None
        certificate = {"subject": ((("commonName", "CP5"),),)}
        assert status(await gate.check("/ocpp/CP4", profile=3, peercert=certificate)) == 403

    run(test)


def test_a_1_6_station_may_send_its_binary_authorization_key(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path)
        key = basic("CP16", BINARY_KEY)
        offers_16 = ("Sec-WebSocket-Protocol", "ocpp2.0.1, ocpp1.6")
        assert await gate.check("/ocpp/CP16", key, offers_16) is None
        response = await gate.check("/ocpp/CP16", key, ("Sec-WebSocket-Protocol", "ocpp2.0.1"))
        assert status(response) == 401
        # The key's hex, as a CSMS configures it, is also its password as text.
        assert await gate.check("/ocpp/CP16", basic("CP16", BINARY_KEY.hex().upper())) is None

    run(test)


def test_the_gateways_handshake_rate_is_spent_only_by_authenticated_requests(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path, handshake_rate=1.0)
        assert status(await gate.check("/ocpp/CP9", basic("CP9", PASSWORD))) == 404
        assert await gate.check("/ocpp/CP1", basic("CP1", PASSWORD)) is None
        response = await gate.check("/ocpp/CP1", basic("CP1", PASSWORD))
        assert response is not None and response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert gate.refused("handshake_rate") == 1
        gate.clock += 1.0
        assert await gate.check("/ocpp/CP1", basic("CP1", PASSWORD)) is None

    run(test)


def test_the_subprotocol_is_the_stations_first_choice_the_gateway_speaks(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path, subprotocols=("ocpp1.6", "ocpp2.0.1"))
        connection = gate.connection()
        offered = [Subprotocol("ocpp2.1"), Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6")]
        assert gate.handshake.select_subprotocol(connection, offered) == "ocpp2.0.1"
        assert gate.handshake.select_subprotocol(connection, [Subprotocol("ocpp2.1")]) is None

    run(test)


def test_an_address_over_its_open_connections_is_closed_at_accept(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path, max_connections_per_address=2, max_handshakes_per_address=0)
        first, second, third = (gate.connection() for _ in range(3))
        transports = [cast(FakeTransport, c.transport) for c in (first, second, third)]
        assert [t.aborted for t in transports] == [False, False, True]
        assert gate.refused("address_connections") == 1
        assert not cast(FakeTransport, gate.connection("192.0.2.2").transport).aborted
        third.connection_lost(None)  # not counted: nothing to give back
        first.connection_lost(None)
        assert not cast(FakeTransport, gate.connection().transport).aborted
        assert cast(FakeTransport, gate.connection().transport).aborted

    run(test)


def test_an_address_over_its_unfinished_handshakes_is_closed_until_one_completes(tmp_path: Path) -> None:
    async def test() -> None:
        gate = Gate(tmp_path, max_connections_per_address=0, max_handshakes_per_address=1)
        first = gate.connection()
        refused = gate.connection()
        assert cast(FakeTransport, refused.transport).aborted and gate.refused("address_handshakes") == 1
        gate.handshake.opened(first)
        gate.handshake.opened(first)  # once only
        gate.handshake.opened(refused)  # never counted
        second = gate.connection()
        assert not cast(FakeTransport, second.transport).aborted
        assert gate.handshake.addresses.handshakes == {ADDRESS: 1}
        first.connection_lost(None)  # an open station: its handshake was already given back
        assert gate.handshake.addresses.handshakes == {ADDRESS: 1}
        second.connection_lost(None)  # still handshaking
        assert gate.handshake.addresses.handshakes == {} and gate.handshake.addresses.connections == {}

    run(test)


def test_a_connection_without_a_peer_address_counts_as_an_unknown_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def test() -> None:
        caplog.set_level(logging.WARNING, logger="ocpp_gw")
        gate = Gate(tmp_path)
        connection = gate.connection(address=None)
        assert remote_host(connection) == "?"
        assert gate.handshake.addresses.connections == {"?": 1}
        await gate.handshake.check_request(1, connection, Request("/ocpp/", Headers()))
        assert [r.__dict__["address"] for r in caplog.records if r.name == "ocpp_gw"] == ["?"]

    run(test)
