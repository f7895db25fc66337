"""Security profile checks (OCPP 2.0.1 part 2, A00-A02): hashing, Basic auth, certificates, throttling."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from ocpp_gw.core.credentials import (
    AuthPolicy,
    ClientCertificate,
    FailureThrottle,
    StationCredentials,
    authorize,
    certificate_from_peercert,
    generate_password,
    hash_password,
    parse_basic,
    verify_password,
)
from ocpp_gw.core.protocol import valid_station_id
from ocpp_gw.credential_store import FileCredentials, read_credentials_file

PASSWORD = "s3cret-s3cret-s3cret"
RECORD = StationCredentials(hash_password(PASSWORD))
STRICT = AuthPolicy()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_hashes_are_salted_and_verify_only_the_right_password() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("sha256$")
    assert verify_password(first, PASSWORD) and verify_password(second, PASSWORD)
    assert not verify_password(first, PASSWORD + "x")
    assert not verify_password("garbage", PASSWORD) and not verify_password("md5$00$00", PASSWORD)
    assert 16 <= len(generate_password()) <= 40


def test_basic_header_parsing() -> None:
    assert parse_basic(basic("CP_1", "a:b")) == ("CP_1", "a:b")
    for header in (None, "", "Bearer x", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()):
        assert parse_basic(header) is None


@pytest.mark.parametrize("profile", [1, 2])
def test_basic_auth_profiles(profile: int) -> None:
    assert authorize(profile, "CP_1", RECORD, STRICT, basic("CP_1", PASSWORD)) is None
    refusal = authorize(profile, "CP_1", RECORD, STRICT, basic("CP_1", "wrong-password-here"))
    assert refusal is not None and refusal.status == 401
    refusal = authorize(profile, "CP_1", RECORD, STRICT, basic("CP_2", PASSWORD))
    assert refusal is not None and refusal.status == 401
    refusal = authorize(profile, "CP_1", RECORD, STRICT, None)
    assert refusal is not None and refusal.status == 401
    assert authorize(profile, "CP_1", RECORD, AuthPolicy(username_must_match=False), basic("other", PASSWORD)) is None


def test_unknown_stations_get_404_unless_allowed() -> None:
    refusal = authorize(1, "CP_X", None, STRICT, basic("CP_X", PASSWORD))
    assert refusal is not None and refusal.status == 404
    assert authorize(1, "CP_X", None, AuthPolicy(allow_unknown_stations=True), basic("CP_X", PASSWORD)) is None
    assert authorize(0, "CP_X", None, STRICT) is None


def test_a_station_on_the_wrong_profile_is_refused() -> None:
    record = StationCredentials(hash_password(PASSWORD), profile=2)
    refusal = authorize(1, "CP_1", record, STRICT, basic("CP_1", PASSWORD))
    assert refusal is not None and refusal.status == 403
    assert authorize(2, "CP_1", record, STRICT, basic("CP_1", PASSWORD)) is None


def test_client_certificate_identity() -> None:
    record = StationCredentials(None, profile=3)
    good = ClientCertificate("CP_1", "Operator", ("cp-1.example",))
    assert authorize(3, "CP_1", record, STRICT, certificate=good) is None
    assert authorize(3, "CP_2", record, STRICT, certificate=good) is not None
    assert authorize(3, "cp-1.example", record, STRICT, certificate=good, cert_identity="san") is None
    assert authorize(3, "CP_1", record, AuthPolicy(operator_name="Operator"), certificate=good) is None
    refusal = authorize(3, "CP_1", record, AuthPolicy(operator_name="Other"), certificate=good)
    assert refusal is not None and refusal.status == 403
    refusal = authorize(3, "CP_1", record, STRICT, certificate=None)
    assert refusal is not None and refusal.status == 401


def test_peercert_reading() -> None:
    peercert = {
        "subject": ((("commonName", "CP_1"),), (("organizationName", "Op"),)),
        "subjectAltName": (("DNS", "cp-1.example"), ("IP Address", "127.0.0.1")),
    }
    assert certificate_from_peercert(peercert) == ClientCertificate("CP_1", "Op", ("cp-1.example",))
    assert certificate_from_peercert(None) is None


def test_records_round_trip_and_reject_garbage() -> None:
    record = StationCredentials(hash_password(PASSWORD), 2)
    assert StationCredentials.decode(record.encode()) == record
    for bad in (b"nope", b'{"password_hash": 1}', b'{"profile": 7}', b"[]"):
        with pytest.raises(ValueError):
            StationCredentials.decode(bad)


def test_failures_slow_an_address_down_with_a_cap_and_bounded_memory() -> None:
    throttle = FailureThrottle(base=0.1, cap=1.0, window=60, max_addresses=3)
    assert throttle.delay("a", 0) == 0
    for n in range(6):
        throttle.failed("a", n)
    assert throttle.delay("a", 6) == 1.0
    assert throttle.delay("a", 100) == 0
    throttle.succeeded("a")
    assert throttle.delay("a", 7) == 0
    for address in "bcdef":
        throttle.failed(address, 0)
    assert len(throttle._failures) == 3


def test_file_store_writes_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    store = FileCredentials(path)
    assert store.get("CP_1") is None
    FileCredentials(path).write("CP_1", RECORD)
    assert FileCredentials(path).get("CP_1") == RECORD
    FileCredentials(path).write("CP_1", None)
    assert FileCredentials(path).get("CP_1") is None


def test_revoked_stations_are_refused_even_when_unknown_stations_are_allowed() -> None:
    revoked = StationCredentials(None, revoked=True)
    lenient = AuthPolicy(allow_unknown_stations=True)
    for profile in (0, 1, 2, 3):
        refusal = authorize(profile, "CP_1", revoked, lenient, basic("CP_1", PASSWORD))
        assert refusal is not None and refusal.status == 401


def test_a_station_pinned_to_a_profile_is_refused_on_a_profile_0_listener() -> None:
    refusal = authorize(0, "CP_1", StationCredentials(None, profile=3), STRICT)
    assert refusal is not None and refusal.status == 403


# Attacks seen in the field: each test below failed before its fix.


@pytest.mark.parametrize(
    "record",
    [
        StationCredentials(hash_password(PASSWORD)),
        StationCredentials(None),
        StationCredentials(hash_password(PASSWORD), profile=1),
    ],
)
def test_a_station_with_any_credentials_is_refused_on_a_profile_0_listener(record: StationCredentials) -> None:
    for policy in (STRICT, AuthPolicy(allow_unknown_stations=True)):
        refusal = authorize(0, "CP_1", record, policy)
        assert refusal is not None and refusal.status == 403 and "profile 0" in refusal.reason
    assert authorize(0, "CP_UNKNOWN", None, STRICT) is None


def test_revocation_is_a_durable_record_in_the_topic() -> None:
    revoked = StationCredentials(None, revoked=True)
    assert orjson.loads(revoked.encode()) == {"revoked": True}
    assert StationCredentials.decode(revoked.encode()) == revoked
    assert StationCredentials.decode(b'{"revoked": false, "password_hash": null}') == StationCredentials(None)
    with pytest.raises(ValueError):
        StationCredentials.decode(b'{"revoked": "yes"}')


def test_revocation_is_a_durable_line_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    FileCredentials(path).write("CP_1", RECORD)
    FileCredentials(path).write("CP_1", StationCredentials(None, revoked=True))
    assert "CP_1 revoked" in path.read_text().splitlines()
    assert read_credentials_file(path)["CP_1"] == StationCredentials(None, revoked=True)
    assert FileCredentials(path).get("CP_1") == StationCredentials(None, revoked=True)
    FileCredentials(path).write("CP_1", RECORD)
    assert FileCredentials(path).get("CP_1") == RECORD
    path.write_text("CP_1 revoked 2\n")
    with pytest.raises(ValueError):
        read_credentials_file(path)


@pytest.mark.parametrize(
    "station_id", ["a b", "a\tb", "a\nb", "a\rb", "a\x0bb", "a\x1cb", "a\x85b", "a\u00a0b", "a\u2028b", "a#b", "#"]
)
def test_station_ids_have_no_whitespace_or_comment_character(station_id: str, tmp_path: Path) -> None:
    assert not valid_station_id(station_id)
    with pytest.raises(ValueError):
        FileCredentials(tmp_path / "credentials").write(station_id, RECORD)
    assert not (tmp_path / "credentials").exists()


def test_station_id_rules_kept() -> None:
    for station_id in ("CP_1", "RDAM|123", "a*-_=+|@.", "a" * 48, "é"):
        assert valid_station_id(station_id)
    for station_id in ("", "a" * 49, "a:b", "a/b", "a\x00b"):
        assert not valid_station_id(station_id)


@pytest.mark.parametrize(
    "subject",
    [
        ((("commonName", "CP_1"),), (("commonName", "CP_2"),), (("organizationName", "Op"),)),
        ((("commonName", "CP_2"), ("commonName", "CP_1")), (("organizationName", "Op"),)),
        ((("commonName", "CP_1"),), (("organizationName", "Op"),), (("organizationName", "Other"),)),
    ],
)
def test_certificates_with_two_common_names_or_organizations_are_refused(subject: Any) -> None:
    certificate = certificate_from_peercert({"subject": subject, "subjectAltName": (("DNS", "CP_1"),)})
    record = StationCredentials(None, profile=3)
    for station_id in ("CP_1", "CP_2"):
        for identity in ("cn", "san"):
            for policy in (STRICT, AuthPolicy(operator_name="Op")):
                refusal = authorize(3, station_id, record, policy, certificate=certificate, cert_identity=identity)
                assert refusal is not None and refusal.status == 403


KEY = bytes.fromhex("0001020304050607FFFFFFCCCCCCCCCCCCCCCCCC")
COLON_KEY = b":\x00\xff" + bytes(range(1, 18))


def raw_basic(user: str, password: bytes) -> str:
    return "Basic " + base64.b64encode(user.encode() + b":" + password).decode()


@pytest.mark.parametrize("key", [KEY, COLON_KEY, b"A" * 20], ids=["ff", "colon", "ascii"])
@pytest.mark.parametrize("stored", [str.upper, str.lower])
def test_ocpp16_binary_authorization_key(key: bytes, stored: Callable[[str], str]) -> None:
    assert len(key) == 20
    record = StationCredentials(hash_password(stored(key.hex())))
    for profile in (1, 2):
        assert authorize(profile, "AL1000", record, STRICT, raw_basic("AL1000", key), binary_key=True) is None
        # The text form of the key still works, with or without binary keys.
        for text in (key.hex().upper(), key.hex().lower()):
            if text == stored(text):
                assert authorize(profile, "AL1000", record, STRICT, basic("AL1000", text)) is None
                assert authorize(profile, "AL1000", record, STRICT, basic("AL1000", text), binary_key=True) is None
        wrong = bytes([key[0] ^ 1]) + key[1:]
        refusal = authorize(profile, "AL1000", record, STRICT, raw_basic("AL1000", wrong), binary_key=True)
        assert refusal is not None and refusal.status == 401
        refusal = authorize(profile, "AL1000", record, STRICT, raw_basic("AL1000", key[:19]), binary_key=True)
        assert refusal is not None and refusal.status == 401
        refusal = authorize(profile, "AL1000", record, STRICT, raw_basic("AL1000", key), binary_key=False)
        assert refusal is not None and refusal.status == 401
        refusal = authorize(profile, "AL1000", record, STRICT, raw_basic("AL1001", key), binary_key=True)
        assert refusal is not None and refusal.status == 401


def test_text_passwords_do_not_match_a_hex_form_without_binary_keys() -> None:
    record = StationCredentials(hash_password(KEY.hex()))
    refusal = authorize(1, "AL1000", record, STRICT, raw_basic("AL1000", KEY))
    assert refusal is not None and refusal.status == 401
    text_record = StationCredentials(hash_password("é-password-0123456789"))
    for binary_key in (False, True):
        header = basic("CP_1", "é-password-0123456789")
        assert authorize(1, "CP_1", text_record, STRICT, header, binary_key=binary_key) is None
