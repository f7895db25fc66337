"""Station authentication for security profiles 1-3 (OCPP 2.0.1 part 2, A00-A02): pure decisions.

Profile 1 is HTTP Basic over ws, 2 is Basic over TLS, 3 is TLS with a client certificate; 0 means
no security (development only), and only for stations no store knows: one profile per station
(A00.FR.001/002), so a station with any record cannot skip its credentials. A station's stored
record holds a salted password hash and, optionally, the profile it must use; or it is a
revocation marker, refused everywhere. An OCPP 1.6 station may send its 20-byte AuthorizationKey
as raw bytes (OCPP-J 1.6 §6.2.2), which match a stored password equal to the key's 40 hex
characters (the form a CSMS configures, errata §3.12).

Why salted SHA-256 and not a slow password hash: station passwords are 16-40 random characters
(OCPP's BasicAuthPassword / AuthorizationKey), so even 16 characters from the 94 printable ones
leave about 2^104 guesses; stretching adds nothing against that, while a reconnect storm of
10,000 stations must be checked in milliseconds (one SHA-256 is about a microsecond; bcrypt or
scrypt at a useful cost would take minutes of CPU). The salt keeps equal passwords from having
equal hashes and defeats precomputed tables; comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

SCHEME = "sha256"
MIN_PASSWORD_LENGTH = 16
MAX_PASSWORD_LENGTH = 40
BINARY_KEY_LENGTH = 20
"""OCPP-J 1.6 §6.2.2: the AuthorizationKey a 1.6 station sends is 20 raw bytes."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``sha256$<salt hex>$<digest hex>`` of ``password``."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored hash; constant-time in the digest comparison."""
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != SCHEME:
        return False
    candidate = hashlib.sha256(salt + password.encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def generate_password(length: int = 32) -> str:
    """A random password of ``length`` URL-safe characters (within OCPP's 16-40)."""
    return secrets.token_urlsafe(length)[:length]


@dataclass(frozen=True, slots=True)
class StationCredentials:
    """What the credential store knows of one station."""

    password_hash: str | None
    profile: int | None = None
    revoked: bool = False
    """A revocation marker (or a tombstone still in the topic): refused whatever the policy allows."""

    def encode(self) -> bytes:
        if self.revoked:
            return orjson.dumps({"revoked": True})
        document: dict[str, Any] = {"password_hash": self.password_hash}
        if self.profile is not None:
            document["profile"] = self.profile
        return orjson.dumps(document)

    @classmethod
    def decode(cls, value: bytes) -> StationCredentials:
        try:
            document = orjson.loads(value)
            password_hash = document.get("password_hash")
            profile = document.get("profile")
            revoked = document.get("revoked", False)
        except (orjson.JSONDecodeError, AttributeError) as error:
            raise ValueError(f"not a credentials record: {error}") from error
        if not isinstance(revoked, bool):
            raise ValueError("revoked must be true or false")
        if revoked:
            return cls(None, revoked=True)
        if password_hash is not None and not isinstance(password_hash, str):
            raise ValueError("password_hash must be a string")
        if profile is not None and profile not in (0, 1, 2, 3):
            raise ValueError("profile must be 0-3")
        return cls(password_hash, profile)


def parse_basic_raw(header: str | None) -> tuple[str, bytes] | None:
    """(username, password bytes) from an ``Authorization: Basic ...`` header, or None.

    The username (a station id, which has no ':') must be UTF-8; the password is whatever follows
    the first ':', any bytes (a 1.6 station's binary key may hold ':', NUL or 0xFF)."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except binascii.Error:
        return None
    username, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return username.decode(), password
    except UnicodeDecodeError:
        return None


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic ...`` header when both are UTF-8, or None."""
    credentials = parse_basic_raw(header)
    if credentials is None:
        return None
    username, password = credentials
    try:
        return username, password.decode()
    except UnicodeDecodeError:
        return None


def _password_forms(password: bytes, binary_key: bool) -> list[str]:
    """The stored passwords ``password`` may stand for: its UTF-8 text and, for a 20-byte binary key, its hex."""
    forms = []
    with contextlib.suppress(UnicodeDecodeError):
        forms.append(password.decode())
    if binary_key and len(password) == BINARY_KEY_LENGTH:
        forms += [password.hex().upper(), password.hex()]
    return forms


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """The operator's choices that shape the checks."""

    allow_unknown_stations: bool = False
    username_must_match: bool = True
    operator_name: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused: HTTP status and a reason for logs and counters (never for the peer)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The parts of a verified client certificate the checks need."""

    common_name: str | None
    organization: str | None
    san_names: tuple[str, ...]
    ambiguous_subject: bool = False
    """The subject has more than one CN or more than one O: which one the CA checked is unknowable, so refused."""


def authorize(
    profile: int,
    station_id: str,
    record: StationCredentials | None,
    policy: AuthPolicy,
    authorization: str | None = None,
    certificate: ClientCertificate | None = None,
    cert_identity: str = "cn",
    *,
    binary_key: bool = False,
) -> Refusal | None:
    """None when the station may connect on a listener of ``profile``; otherwise the refusal.

    TLS itself has already refused untrusted and expired certificates on a profile 3 listener.
    ``binary_key`` (an OCPP 1.6 station): a 20-byte Basic password also matches a stored password
    equal to its hex form, upper or lower case.
    """
    if record is not None and record.revoked:
        return Refusal(401, "credentials revoked")
    if profile == 0:
        if record is not None:
            return Refusal(403, "station has credentials; profile 0 not allowed")
        return None
    if record is None and not policy.allow_unknown_stations:
        return Refusal(404, "unknown station")
    if record is not None and record.profile is not None and record.profile != profile:
        return Refusal(403, f"station must use security profile {record.profile}")
    if profile == 3:
        return _check_certificate(station_id, certificate, policy, cert_identity)
    credentials = parse_basic_raw(authorization)
    passwords = _password_forms(credentials[1], binary_key) if credentials is not None else []
    if credentials is None or not passwords:
        return Refusal(401, "no basic credentials")
    if policy.username_must_match and credentials[0] != station_id:
        return Refusal(401, "username does not match the station id")
    if record is None:
        return None
    stored = record.password_hash
    if stored is None or not any([verify_password(stored, password) for password in passwords]):
        return Refusal(401, "wrong password")
    return None


def _check_certificate(
    station_id: str, certificate: ClientCertificate | None, policy: AuthPolicy, cert_identity: str
) -> Refusal | None:
    if certificate is None:
        return Refusal(401, "no client certificate")
    if certificate.ambiguous_subject:
        return Refusal(403, "certificate subject has more than one CN or O")
    names = certificate.san_names if cert_identity == "san" else (certificate.common_name or "",)
    if station_id not in names:
        return Refusal(403, f"certificate {cert_identity} does not match the station id")
    if policy.operator_name and certificate.organization != policy.operator_name:
        return Refusal(403, "certificate organization does not match the operator")
    return None


def certificate_from_peercert(peercert: dict[str, Any] | None) -> ClientCertificate | None:
    """Read the subject CN and O and the DNS/URI SAN entries from ``ssl``'s ``getpeercert()``.

    A subject with two CNs (or two Os) is marked ambiguous: a CA usually checks the first, and a
    reader that takes another one could be fooled."""
    if not peercert:
        return None
    subject = [(key, value) for rdn in peercert.get("subject", ()) for key, value in rdn]
    names = [value for key, value in subject if key == "commonName"]
    organizations = [value for key, value in subject if key == "organizationName"]
    sans = tuple(value for kind, value in peercert.get("subjectAltName", ()) if kind in ("DNS", "URI"))
    return ClientCertificate(
        names[0] if names else None,
        organizations[0] if organizations else None,
        sans,
        ambiguous_subject=len(names) > 1 or len(organizations) > 1,
    )


class FailureThrottle:
    """Slows down addresses that keep failing authentication, with bounded memory.

    Each failure within ``window`` seconds doubles the delay before the next refusal from that
    address is answered, from ``base`` up to ``cap`` seconds; at most ``max_addresses`` are tracked.
    """

    def __init__(self, base: float = 0.1, cap: float = 3.0, window: float = 60.0, max_addresses: int = 10_000) -> None:
        self.base, self.cap, self.window, self.max_addresses = base, cap, window, max_addresses
        self._failures: dict[str, tuple[int, float]] = {}

    def delay(self, address: str, now: float) -> float:
        count, last = self._failures.get(address, (0, 0.0))
        if count == 0 or now - last > self.window:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (count - 1)))

    def failed(self, address: str, now: float) -> None:
        count, last = self._failures.pop(address, (0, 0.0))
        self._failures[address] = (1 if now - last > self.window else count + 1, now)
        while len(self._failures) > self.max_addresses:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
