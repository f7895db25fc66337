"""Steps for the security profiles: real TLS, real Basic auth, credentials rotated through Kafka."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
from collections.abc import Callable

from behave import given, then, when
from behave.runner import Context
from environment import SECURED_PORTS, station_password
from support.station import Station, expect_close
from websockets.exceptions import InvalidStatus, WebSocketException

from testing.harness import ROOT, wait_until


def _url(profile: int) -> str:
    scheme = "wss" if profile >= 2 else "ws"
    return f"{scheme}://127.0.0.1:{SECURED_PORTS[profile]}/ocpp"


def _client_tls(context: Context, certificate: str | None) -> ssl.SSLContext:
    tls = ssl.create_default_context(cafile=str(context.pki / "ca.pem"))
    if certificate:
        tls.load_cert_chain(context.pki / f"client-{certificate}.pem", context.pki / f"client-{certificate}.key")
    return tls


def _basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def _attempt(context: Context, connect: Callable[[], Station]) -> None:
    """Try the handshake; remember the station, the HTTP refusal or the TLS failure."""
    context.outcome = None
    try:
        station = connect()
    except InvalidStatus as refused:
        context.outcome = refused.response
        return
    except (OSError, EOFError, WebSocketException) as failed:
        context.outcome = failed
        return
    context.stations[f"{station.station_id}#{len(context.stations)}"] = station
    context.outcome = station


@when('"{station_id}" connects to the profile {profile:d} listener as "{username}" with the {password} password')
def step_basic(context: Context, station_id: str, profile: int, username: str, password: str) -> None:
    secret = {"right": station_password(station_id), "wrong": "not-the-password-0123456789"}.get(password)
    headers = _basic(username, secret) if secret is not None and username != "-" else None
    tls = _client_tls(context, None) if profile >= 2 else None
    _attempt(context, lambda: Station(_url(profile), station_id, ["ocpp2.0.1"], ssl=tls, headers=headers))


@when('"{station_id}" connects to the profile 3 listener with the {certificate} client certificate')
def step_certificate(context: Context, station_id: str, certificate: str) -> None:
    tls = _client_tls(context, None if certificate == "no" else certificate)
    _attempt(context, lambda: Station(_url(3), station_id, ["ocpp2.0.1"], ssl=tls))


@then("the handshake is accepted")
def step_accepted(context: Context) -> None:
    station = context.outcome
    assert isinstance(station, Station), f"refused: {station!r}"
    message_id = station.call("Heartbeat", {})
    answer = station.receive()
    assert answer[:2] == [3, message_id], answer


@then("the handshake is refused with HTTP {status:d}")
def step_refused(context: Context, status: int) -> None:
    response = context.outcome
    assert not isinstance(response, Station | Exception | None), f"not an HTTP refusal: {response!r}"
    assert response.status_code == status, response.status_code
    if status == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Basic realm="), response.headers
    assert b"password" not in response.body.lower() and b"station" not in response.body.lower(), response.body


@then("the handshake is refused by TLS")
def step_refused_by_tls(context: Context) -> None:
    assert isinstance(context.outcome, Exception) and not isinstance(context.outcome, InvalidStatus), context.outcome


def _set_credentials(context: Context, *args: str, store: str = "kafka") -> None:
    env = {**os.environ, **context.secured_env, "OCPPGW_LOGGING__FORMAT": "json"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocpp_gw",
            "--config",
            str(ROOT / "config.cfg"),
            "credentials",
            *args,
            "--store",
            store,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@given('the password of "{station_id}" is set to "{password}" through the Kafka topic')
@when('the password of "{station_id}" is set to "{password}" through the Kafka topic')
def step_set_password(context: Context, station_id: str, password: str) -> None:
    _set_credentials(context, "set", station_id, "--password", password)


@when('the credentials of "{station_id}" are revoked through the Kafka topic')
def step_revoke(context: Context, station_id: str) -> None:
    _set_credentials(context, "revoke", station_id)


def _connect_profile_1(context: Context, station_id: str, password: str) -> None:
    _attempt(context, lambda: Station(_url(1), station_id, ["ocpp2.0.1"], headers=_basic(station_id, password)))


@then('"{station_id}" connects to the profile 1 listener with "{password}"')
def step_connects_with(context: Context, station_id: str, password: str) -> None:
    def accepted() -> bool:
        _connect_profile_1(context, station_id, password)
        return isinstance(context.outcome, Station)

    wait_until(accepted, 15, f"{station_id} to be accepted with the new password", interval=0.2)
    step_accepted(context)


@then('"{station_id}" is refused on the profile 1 listener with "{password}"')
def step_refused_with(context: Context, station_id: str, password: str) -> None:
    _connect_profile_1(context, station_id, password)
    step_refused(context, 401)


@then('"{station_id}" is refused with HTTP {status:d} on the profile 1 listener with "{password}"')
def step_refused_status_with(context: Context, station_id: str, status: int, password: str) -> None:
    def refused() -> bool:
        _connect_profile_1(context, station_id, password)
        return not isinstance(context.outcome, Station | Exception | None) and context.outcome.status_code == status

    wait_until(refused, 15, f"{station_id} to be refused with {status}", interval=0.2)
    step_refused(context, status)


@given('"{station_id}" is connected on the profile 1 listener with its password')
def step_connected_with_password(context: Context, station_id: str) -> None:
    context.first = Station(
        _url(1), station_id, ["ocpp2.0.1"], headers=_basic(station_id, station_password(station_id))
    )
    context.stations[f"first:{station_id}"] = context.first


@given('"{station_id}" is connected on the profile 1 listener with "{password}"')
def step_connected_with(context: Context, station_id: str, password: str) -> None:
    step_connects_with(context, station_id, password)
    context.first = context.outcome


@when('"{station_id}" connects to the profile 0 listener without credentials')
def step_profile_0(context: Context, station_id: str) -> None:
    _attempt(context, lambda: Station(context.gateway_url, station_id, ["ocpp2.0.1"]))


@then("the first connection still answers a Heartbeat")
def step_first_still_answers(context: Context) -> None:
    message_id = context.first.call("Heartbeat", {})
    answer = context.first.receive()
    assert answer[:2] == [3, message_id], answer


@when('"{station_id}" connects to the profile 1 listener speaking ocpp1.6 with its key as 20 raw bytes')
def step_binary_key(context: Context, station_id: str) -> None:
    key = bytes.fromhex(station_password(station_id))
    token = base64.b64encode(station_id.encode() + b":" + key).decode()
    headers = {"Authorization": f"Basic {token}"}
    _attempt(context, lambda: Station(_url(1), station_id, ["ocpp1.6"], headers=headers))


@when('"{station_id}" is revoked in the credentials file')
def step_revoke_in_file(context: Context, station_id: str) -> None:
    _set_credentials(context, "revoke", station_id, store="file")


@then("the first connection is closed with 1008 within 5 s")
def step_first_closed(context: Context) -> None:
    expect_close(context.first.connection, 1008, "credentials changed", timeout=5)
