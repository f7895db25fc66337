"""Steps for the TLS cipher suites: a gateway with an RSA and an ECDSA certificate, and stations offering one suite."""

from __future__ import annotations

import ssl
import uuid

from behave import given, then, when
from behave.runner import Context
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from environment import station_password
from steps.security_steps import _basic
from support.pki import make_server_pki
from support.processes import Program
from support.station import Station, boot_payload

from ocpp_gw.core.credentials import StationCredentials, hash_password
from ocpp_gw.credential_store import FileCredentials
from testing.harness import csms_env, gateway_env, topics_env

TLS_GATEWAY_PORT, TLS_GATEWAY_STATUS_PORT, TLS_CSMS_STATUS_PORT = 19402, 19409, 19419
TLS_STATIONS = ("CP_TLS_RSA", "CP_TLS_ECDSA")
OPENSSL_NAMES = {
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
}


@given("a gateway whose profile 2 listener has an RSA and an ECDSA certificate")
def step_two_certificate_gateway(context: Context) -> None:
    suffix = uuid.uuid4().hex[:8]
    context.tls_pki = make_server_pki(context.log_dir / f"pki-{suffix}")
    credentials = context.log_dir / f"credentials-{suffix}"
    for station_id in TLS_STATIONS:
        FileCredentials(credentials).write(
            station_id, StationCredentials(hash_password(station_password(station_id)), 2)
        )
    topics = {"OCPPGW_KAFKA__SERVERS": context.kafka_servers, **topics_env("tls", suffix)}
    pki = context.tls_pki
    gateway_settings = gateway_env(
        topics,
        TLS_GATEWAY_PORT,
        TLS_GATEWAY_STATUS_PORT,
        f"gw-tls-{suffix}",
        security_profile="2",
        tls_cert_file=f"{pki / 'server-rsa.pem'},{pki / 'server-ecdsa.pem'}",
        tls_key_file=f"{pki / 'server-rsa.key'},{pki / 'server-ecdsa.key'}",
        credentials_file=str(credentials),
    )
    csms = Program(f"tls-csms-{suffix}", "csms_server", csms_env(topics, TLS_CSMS_STATUS_PORT), context.log_dir)
    context.add_cleanup(csms.stop)
    gateway = Program(f"tls-gateway-{suffix}", "ocpp_gw", gateway_settings, context.log_dir)
    context.add_cleanup(gateway.stop)
    for program, needle in ((gateway, "gateway ready"), (csms, "csms ready")):
        program.wait_for_log(needle, timeout=90)


@when('"{station_id}" connects to it over TLS 1.2 offering only {suite}')
def step_connect_with_suite(context: Context, station_id: str, suite: str) -> None:
    tls = ssl.create_default_context(cafile=str(context.tls_pki / "ca.pem"))
    tls.maximum_version = ssl.TLSVersion.TLSv1_2
    tls.set_ciphers(OPENSSL_NAMES[suite])
    station = Station(
        f"wss://127.0.0.1:{TLS_GATEWAY_PORT}/ocpp",
        station_id,
        ["ocpp2.0.1"],
        ssl=tls,
        headers=_basic(station_id, station_password(station_id)),
    )
    context.stations[station_id] = station
    assert station.protocol == "ocpp2.0.1", station.protocol


@then('the connection of "{station_id}" uses {suite} and the {key_type} certificate')
def step_uses_suite(context: Context, station_id: str, suite: str, key_type: str) -> None:
    tls = context.stations[station_id].connection.socket
    cipher, version, _ = tls.cipher()
    assert (cipher, version) == (OPENSSL_NAMES[suite], "TLSv1.2"), (cipher, version)
    key = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).public_key()
    expected = {"RSA": rsa.RSAPublicKey, "ECDSA": ec.EllipticCurvePublicKey}[key_type]
    assert isinstance(key, expected), type(key)


@then('"{station_id}" boots and is {status}')
def step_boots(context: Context, station_id: str, status: str) -> None:
    station = context.stations[station_id]
    message_id = station.call("BootNotification", boot_payload("ocpp2.0.1", "OpenVendor", "TlsCharger"))
    frame = station.receive()
    assert frame[:2] == [3, message_id] and frame[2]["status"] == status, frame
