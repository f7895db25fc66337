"""Security profile checks (OCPP 2.0.1 part 2, A00-A02): hashing, Basic auth, certificates, throttling."""

from __future__ import annotations

import base64
from pathlib import Path

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
from ocpp_gw.credential_store import FileCredentials

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
