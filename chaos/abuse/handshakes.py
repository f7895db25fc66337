"""2. Handshake abuse, the pure part: the hostile opening handshakes and the outcomes each may have.

The expectations come from the README and RFC 6455; :mod:`.handshake_io` runs the cases.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from .client import new_key, upgrade_request
from .oracle import MAX_STATION_ID_LENGTH, VERSIONS


@dataclass(frozen=True, slots=True)
class HandshakeCase:
    """One opening handshake attempt and the outcomes a correct gateway may give it.

    Outcomes: ``101`` (switched, with ``protocol`` when given), ``101+<code>`` (switched without a
    subprotocol, then closed with code), an HTTP status (``400``) or class (``4xx``), ``eof``
    (closed without a response). ``mode``: ``once`` writes ``request`` and reads the reply;
    ``stall`` writes it (a partial request) and waits for the gateway to give up; ``drip``
    writes it a byte at a time, too slowly to finish within the handshake timeout.
    """

    name: str
    request: bytes
    expect: frozenset[str]
    protocol: str | None = None
    mode: str = "once"
    key: str = ""


def outcome_ok(observed: str, expected: frozenset[str]) -> bool:
    """True when the ``observed`` outcome is one of ``expected`` (``4xx`` covers any 4xx status)."""
    if observed in expected:
        return True
    return len(observed) == 3 and observed.isdigit() and f"{observed[0]}xx" in expected


def handshake_cases(host: str, port: int, prefix: str = "/ocpp") -> list[HandshakeCase]:
    """The handshake abuse cases (pure), with the expectations of the README and RFC 6455."""
    cases: list[HandshakeCase] = []
    busy = {"503"}

    def case(
        name: str,
        path: str,
        expect: set[str],
        *,
        subprotocols: Iterable[str] = ("ocpp2.0.1",),
        protocol: str | None = None,
        drop: Iterable[str] = (),
        extra: Iterable[tuple[str, str]] = (),
        may_be_busy: bool = True,
    ) -> None:
        key = new_key()
        request = upgrade_request(host, port, path, key=key, subprotocols=subprotocols, drop=drop, extra=extra)
        outcomes = expect | busy if may_be_busy else expect
        cases.append(HandshakeCase(name, request, frozenset(outcomes), protocol, "once", key))

    for version in VERSIONS:
        case(
            f"valid_{version}",
            f"{prefix}/HS_OK_{version.replace('.', '')}",
            {"101"},
            subprotocols=[version],
            protocol=version,
            may_be_busy=False,
        )
    case("preference_order", f"{prefix}/HS_PREF", {"101"}, subprotocols=["ocpp2.1", "ocpp1.6"], protocol="ocpp2.1")
    case("id_48_chars", f"{prefix}/{'H' * MAX_STATION_ID_LENGTH}", {"101"}, protocol="ocpp2.0.1")
    case("id_49_chars", f"{prefix}/{'H' * (MAX_STATION_ID_LENGTH + 1)}", {"400"})
    case("id_1000_chars", f"{prefix}/{'H' * 1000}", {"400"})
    case("id_request_line_9000", f"{prefix}/{'H' * 9000}", {"4xx"}, may_be_busy=False)
    case("id_colon", f"{prefix}/HS:COLON", {"400"})
    case("id_colon_encoded", f"{prefix}/HS%3ACOLON", {"400"})
    case("id_nul_encoded", f"{prefix}/HS%00NUL", {"400"})
    case("id_newline_encoded", f"{prefix}/HS%0ANL", {"400"})
    case("id_del_encoded", f"{prefix}/HS%7FDEL", {"400"})
    case("id_bad_percent_zz", f"{prefix}/HS%zzBAD", {"400"})
    case("id_bad_percent_trailing", f"{prefix}/HS_BAD%", {"400"})
    case("id_bad_percent_short", f"{prefix}/HS_BAD%4", {"400"})
    case("id_percent_invalid_utf8", f"{prefix}/HS%ff%feBAD", {"400"})
    case("id_slash_encoded", f"{prefix}/HS%2FSLASH", {"400"})
    case("id_space_encoded_49", f"{prefix}/{'%20' * 49}", {"400"})
    case("id_percent_utf8_ok", f"{prefix}/HS_%C3%A9", {"101"}, protocol="ocpp2.0.1")
    case("path_dotdot", f"{prefix}/../HS_DOTDOT", {"101"}, protocol="ocpp2.0.1")
    case("path_trailing_slash", f"{prefix}/HS_TRAIL/", {"400"})
    case("path_double_slash", "//", {"400"})
    case("path_root", "/", {"400"})
    case("path_empty_id", f"{prefix}/", {"400"})
    case("path_query", f"{prefix}/HS_QUERY?a=1&b=%zz", {"101"}, protocol="ocpp2.0.1")
    case("path_fragment", f"{prefix}/HS_FRAG#frag", {"101", "400"})
    case("path_absolute_form", f"http://{host}:{port}{prefix}/HS_ABS", {"101", "4xx", "eof"})
    # "*" has no slash: the whole target is the last segment, and "*" is a valid identifierString.
    case("path_asterisk", "*", {"101", "400", "eof"})
    cases.append(
        HandshakeCase(
            "path_raw_non_ascii",
            upgrade_request(host, port, f"{prefix}/HS_RAW", key=new_key(), subprotocols=["ocpp2.0.1"]).replace(
                b"HS_RAW", b"HS_\xc3\xa9\xff"
            ),
            frozenset({"400", "eof"}),
        )
    )
    case("missing_upgrade", f"{prefix}/HS_NOUP", {"4xx"}, drop=["upgrade"])
    case("missing_connection", f"{prefix}/HS_NOCONN", {"4xx"}, drop=["connection"])
    case("missing_key", f"{prefix}/HS_NOKEY", {"4xx"}, drop=["sec-websocket-key"])
    case("bad_key", f"{prefix}/HS_BADKEY", {"4xx"}, drop=["sec-websocket-key"], extra=[("Sec-WebSocket-Key", "short")])
    case(
        "duplicate_key",
        f"{prefix}/HS_DUPKEY",
        {"4xx"},
        extra=[("Sec-WebSocket-Key", new_key())],
    )
    case("missing_version", f"{prefix}/HS_NOVER", {"4xx"}, drop=["sec-websocket-version"])
    case(
        "wrong_version",
        f"{prefix}/HS_BADVER",
        {"4xx"},
        drop=["sec-websocket-version"],
        extra=[("Sec-WebSocket-Version", "8")],
    )
    case(
        "duplicate_subprotocol_headers",
        f"{prefix}/HS_DUPPROTO",
        {"101"},
        subprotocols=["ocpp1.6"],
        extra=[("Sec-WebSocket-Protocol", "ocpp2.0.1")],
    )
    case(
        "repeated_subprotocol",
        f"{prefix}/HS_REPPROTO",
        {"101"},
        subprotocols=["ocpp2.0.1", "ocpp2.0.1"],
        protocol="ocpp2.0.1",
    )
    case("unknown_subprotocols_only", f"{prefix}/HS_UNKPROTO", {"101+1002"}, subprotocols=["ocpp9.9", "chat"])
    case("no_subprotocol", f"{prefix}/HS_NOPROTO", {"101+1002"}, subprotocols=[])
    case("subprotocol_wrong_case", f"{prefix}/HS_CASEPROTO", {"101+1002", "101"}, subprotocols=["OCPP2.0.1"])
    case(
        "empty_subprotocol_header",
        f"{prefix}/HS_EMPTYPROTO",
        {"101+1002", "4xx"},
        subprotocols=[],
        extra=[("Sec-WebSocket-Protocol", "")],
    )
    case(
        "garbage_authorization",
        f"{prefix}/HS_AUTH",
        {"101", "401"},
        extra=[("Authorization", "Basic !!!not-base64!!!")],
    )
    case(
        "long_header_line", f"{prefix}/HS_LONGHDR", {"4xx", "eof"}, extra=[("X-Fuzz", "a" * 10_000)], may_be_busy=False
    )
    case(
        "too_many_headers",
        f"{prefix}/HS_MANYHDR",
        {"4xx", "eof"},
        extra=[(f"X-F{i}", "x") for i in range(200)],
        may_be_busy=False,
    )
    garbage = random.Random(7).randbytes(600)
    cases += [
        HandshakeCase("garbage", garbage, frozenset({"eof", "4xx"})),
        HandshakeCase(
            "tls_client_hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), frozenset({"eof", "4xx"})
        ),
        HandshakeCase("empty_lines", b"\r\n\r\n", frozenset({"eof", "4xx"})),
        HandshakeCase(
            "http_1_0",
            upgrade_request(host, port, f"{prefix}/HS_H10", key=new_key(), subprotocols=["ocpp2.0.1"]).replace(
                b"HTTP/1.1", b"HTTP/1.0"
            ),
            frozenset({"eof", "4xx", "505"}),
        ),
        HandshakeCase(
            "post_method",
            upgrade_request(host, port, f"{prefix}/HS_POST", key=new_key(), subprotocols=["ocpp2.0.1"]).replace(
                b"GET ", b"POST ", 1
            ),
            frozenset({"eof", "4xx"}),
        ),
        HandshakeCase(
            "request_body",
            upgrade_request(
                host,
                port,
                f"{prefix}/HS_BODY",
                key=new_key(),
                subprotocols=["ocpp2.0.1"],
                extra=[("Content-Length", "5")],
            )
            + b"hello",
            frozenset({"eof", "4xx"}),
        ),
        HandshakeCase(
            "bare_lf_lines",
            upgrade_request(host, port, f"{prefix}/HS_LF", key=new_key(), subprotocols=["ocpp2.0.1"]).replace(
                b"\r\n", b"\n"
            ),
            frozenset({"eof", "4xx", "timeout_close"}),
            mode="stall",
        ),
        HandshakeCase(
            "half_request",
            upgrade_request(host, port, f"{prefix}/HS_HALF", key=new_key(), subprotocols=["ocpp2.0.1"])[:60],
            frozenset({"timeout_close"}),
            mode="stall",
        ),
        HandshakeCase("silent_client", b"", frozenset({"timeout_close"}), mode="stall"),
        HandshakeCase(
            "drip_request",
            upgrade_request(host, port, f"{prefix}/HS_DRIP", key=new_key(), subprotocols=["ocpp2.0.1"]),
            frozenset({"timeout_close"}),
            mode="drip",
        ),
    ]
    return cases
