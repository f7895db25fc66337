"""Who may use the console, decided per request from its headers alone (pure, so it is tested exactly).

- Bound to loopback, the console answers only requests whose ``Host`` is a loopback name, so a web
  page elsewhere cannot reach it through DNS rebinding.
- With a token or Basic credentials configured (required when not bound to loopback), every request
  carries them: ``Authorization: Bearer``, ``Authorization: Basic``, or the token cookie that
  ``/?token=...`` sets.
- A command (POST) must be JSON and, when the browser names its ``Origin``, come from the console's
  own host and port: a form on another site can neither send JSON nor pass the check (no cross-site
  reset). The scheme is not compared, so the console works behind a TLS-terminating proxy.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from ocpp_gw.config import LOOPBACK_HOSTS, ConsoleConfig

TOKEN_COOKIE = "ocpp_console_token"
REALM = 'Basic realm="ocpp-gw console", charset="UTF-8"'


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    challenge: bool = False
    """Ask the browser for Basic credentials (``WWW-Authenticate``)."""


def host_name(host: str) -> str:
    """The name part of a ``Host`` header: ``localhost:8080`` -> ``localhost``, ``[::1]:8080`` -> ``::1``."""
    try:
        return urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return ""


def check_host(settings: ConsoleConfig, host: str) -> Refusal | None:
    if settings.local and host_name(host) not in LOOPBACK_HOSTS:
        return Refusal(421, "this console answers only to localhost names")
    return None


def check_credentials(settings: ConsoleConfig, headers: Mapping[str, str]) -> Refusal | None:
    """None when no credentials are configured or the request carries the right ones."""
    if not (settings.token or settings.password):
        return None
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if settings.token:
        offered = value.strip() if scheme.lower() == "bearer" else _cookie(headers.get("Cookie", ""))
        if offered and _same(offered, settings.token):
            return None
    if settings.password and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if _same(user, settings.username) & _same(password, settings.password):
            return None
    return Refusal(401, "credentials required", challenge=bool(settings.password))


def check_command(method: str, headers: Mapping[str, str]) -> Refusal | None:
    """A state-changing request must be JSON from the console's own page (when the browser says where from)."""
    if method in ("GET", "HEAD"):
        return None
    if headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
        return Refusal(415, "commands must be sent as application/json")
    origin = headers.get("Origin")
    if origin is not None and _netloc(origin) != headers.get("Host", "").lower():
        return Refusal(403, "commands are accepted only from the console's own page")
    return None


def _netloc(origin: str) -> str | None:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return None
    return parts.netloc.lower() if parts.scheme in ("http", "https") else None


def token_matches(settings: ConsoleConfig, offered: str) -> bool:
    return bool(settings.token) and _same(offered, settings.token)


def _cookie(header: str) -> str:
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(header)
    except Exception:
        return ""
    morsel = cookie.get(TOKEN_COOKIE)
    return morsel.value if morsel is not None else ""


def _same(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode(), expected.encode())
