"""The raw client: opening handshakes and WebSocket connections over bare asyncio streams.

No WebSocket library, so that anything can be written and every reaction seen: the HTTP reply
to a handshake (or how the attempt ended without one), and the peer's messages, close frame or
lost connection as events in arrival order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import ssl
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    Deflate,
    apply_mask,
    close_payload,
    encode_frame,
)


@dataclass(frozen=True, slots=True)
class Message:
    text: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer's close frame (1005 when it had no code)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Lost:
    """The TCP connection ended without a close frame: ``how`` is eof, reset or a protocol fault."""

    how: str


Event = Message | Closed | Lost


@dataclass
class HttpReply:
    """The server's answer to an opening handshake, or how the attempt ended without one."""

    status: int | None
    headers: list[tuple[str, str]]
    ending: str
    """``response`` (a status line and headers came), ``eof``, ``garbage`` (bytes, then the end, or an
    endless head), ``reset``, ``timeout``, ``refused`` (no TCP connection) or ``bad Sec-WebSocket-Accept``."""
    elapsed: float
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept a server must return for ``key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


def upgrade_request(
    host: str,
    port: int,
    path: str,
    *,
    key: str,
    subprotocols: Iterable[str] = (),
    deflate: bool = False,
    drop: Iterable[str] = (),
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    """An opening handshake request; ``drop`` leaves out headers by (lower-case) name."""
    headers = [
        ("Host", f"{host}:{port}"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    offered = list(subprotocols)
    if offered:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(offered)))
    if deflate:
        headers.append(
            (
                "Sec-WebSocket-Extensions",
                "permessage-deflate; client_max_window_bits; server_no_context_takeover; client_no_context_takeover",
            )
        )
    dropped = {name.lower() for name in drop}
    lines = [f"GET {path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in dropped]
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


async def http_exchange(
    host: str, port: int, request: bytes, timeout: float, *, ssl_context: ssl.SSLContext | None = None
) -> HttpReply:
    """Connect, write ``request``, read the response head; the streams stay open on a response."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl_context), timeout)
    except (OSError, TimeoutError):
        return HttpReply(None, [], "refused", time.monotonic() - started)
    writer.write(request)
    return await read_http_reply(reader, writer, started, timeout)


async def read_http_reply(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, started: float, timeout: float
) -> HttpReply:
    """Read a response head; EOF, reset or timeout before one is reported as the ``ending``."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(0.0, started + timeout - time.monotonic()))
    except asyncio.IncompleteReadError as error:
        _abort(writer)
        return HttpReply(None, [], "eof" if not error.partial else "garbage", time.monotonic() - started)
    except (ConnectionError, OSError):
        _abort(writer)
        return HttpReply(None, [], "reset", time.monotonic() - started)
    except asyncio.LimitOverrunError:
        _abort(writer)
        return HttpReply(None, [], "garbage", time.monotonic() - started)
    except TimeoutError:
        _abort(writer)
        return HttpReply(None, [], "timeout", time.monotonic() - started)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
    return HttpReply(status, headers, "response", time.monotonic() - started, reader, writer)


def _abort(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.transport.abort()


async def wait_eof(reader: asyncio.StreamReader, timeout: float) -> str:
    """Read and drop until the server ends the connection: ``eof``, ``reset`` or ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.0, deadline - time.monotonic()))
            if not chunk:
                return "eof"
    except (ConnectionError, OSError):
        return "reset"
    except TimeoutError:
        return "timeout"


class RawConnection:
    """An open WebSocket over bare streams: writes any bytes, reports events in arrival order.

    Pings are answered; a close frame is echoed (unless we sent one) and reported as
    :class:`Closed`; the end of TCP without a close frame is reported as :class:`Lost`.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        subprotocol: str | None,
        deflate: Deflate | None,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.subprotocol, self.deflate = subprotocol, deflate
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.close_sent = False
        self.close_received: Closed | None = None
        self.tcp_end = ""
        self.server_faults: list[str] = []
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        path: str,
        subprotocols: list[str],
        *,
        deflate: bool = False,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> tuple[RawConnection | None, HttpReply]:
        """Handshake; the connection when the server switched protocols (101), and its reply."""
        key = new_key()
        request = upgrade_request(host, port, path, key=key, subprotocols=subprotocols, deflate=deflate)
        reply = await http_exchange(host, port, request, timeout, ssl_context=ssl_context)
        if reply.status != 101 or reply.reader is None or reply.writer is None:
            _abort(reply.writer)
            return None, reply
        if reply.header("Sec-WebSocket-Accept") != accept_key(key):
            _abort(reply.writer)
            reply.ending = "bad Sec-WebSocket-Accept"
            return None, reply
        agreed = Deflate.from_header(reply.header("Sec-WebSocket-Extensions") or "") if deflate else None
        return cls(reply.reader, reply.writer, reply.header("Sec-WebSocket-Protocol"), agreed), reply

    def write(self, data: bytes) -> None:
        """Write raw bytes (one or more frames) in one piece, so they never interleave with a pong."""
        if not self.writer.is_closing():
            self.writer.write(data)

    def send_text(self, text: str) -> None:
        self.write(encode_frame(OP_TEXT, text.encode(), mask=os.urandom(4)))

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()

    async def close(self, code: int = 1000, timeout: float = 5.0) -> None:
        """Close handshake from our side (if the server has not closed), then wait for the TCP end."""
        if not self.close_sent and self.close_received is None:
            self.close_sent = True
            self.write(encode_frame(OP_CLOSE, close_payload(code), mask=os.urandom(4)))
            await self.drain()
        await self.finish(timeout)

    async def finish(self, timeout: float = 5.0) -> str:
        """Wait until the server ends TCP (``eof``/``reset``), or give up (``timeout``); always releases the socket."""
        try:
            if not self._task.done():
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self.tcp_end = self.tcp_end or "timeout"
        finally:
            self.abort()
        return self.tcp_end

    def abort(self) -> None:
        self._task.cancel()
        _abort(self.writer)

    async def _read_loop(self) -> None:
        fragments: list[bytes] = []
        compressed = False
        try:
            while True:
                b0, b1 = await self.reader.readexactly(2)
                fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0xF
                size = b1 & 0x7F
                if size == 126:
                    size = int.from_bytes(await self.reader.readexactly(2), "big")
                elif size == 127:
                    size = int.from_bytes(await self.reader.readexactly(8), "big")
                if b1 & 0x80:
                    self.server_faults.append("masked frame from the server")
                    mask = await self.reader.readexactly(4)
                    payload = apply_mask(await self.reader.readexactly(size), mask)
                else:
                    payload = await self.reader.readexactly(size)
                if self.close_received is not None:
                    continue
                if opcode == OP_PING:
                    if not self.close_sent:
                        self.write(encode_frame(OP_PONG, payload, mask=os.urandom(4)))
                    continue
                if opcode == OP_PONG:
                    continue
                if opcode == OP_CLOSE:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    self.close_received = Closed(code, payload[2:].decode("utf-8", "replace"))
                    self.events.put_nowait(self.close_received)
                    if not self.close_sent:
                        self.close_sent = True
                        self.write(encode_frame(OP_CLOSE, payload[:2], mask=os.urandom(4)))
                    continue
                if opcode in (OP_TEXT, OP_BINARY):
                    fragments, compressed = [payload], bool(rsv & RSV1)
                elif opcode == OP_CONT:
                    fragments.append(payload)
                else:
                    self.server_faults.append(f"frame with opcode {opcode} from the server")
                    continue
                if fin:
                    data = b"".join(fragments)
                    if compressed and self.deflate is not None:
                        data = self.deflate.decompress(data)
                    try:
                        self.events.put_nowait(Message(data.decode("utf-8")))
                    except UnicodeDecodeError:
                        self.server_faults.append("server message is not UTF-8")
                        self.events.put_nowait(Message(data.decode("utf-8", "replace")))
                    fragments = []
        except asyncio.IncompleteReadError:
            self.tcp_end = "eof"
        except (ConnectionError, OSError):
            self.tcp_end = "reset"
        except zlib.error:
            self.tcp_end = "bad deflate data from the server"
        except Exception as error:  # a bug here must show as a finding, not as a silent hang
            self.tcp_end = f"client fault {error!r}"
        if self.close_received is None:
            self.events.put_nowait(Lost(self.tcp_end))


async def next_event(connection: RawConnection, deadline: float) -> Event | None:
    """The connection's next event, or None at ``deadline`` (a loop time from time.monotonic())."""
    try:
        return await asyncio.wait_for(connection.events.get(), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return None


def split_url(url: str) -> tuple[str, int, str, ssl.SSLContext | None]:
    """Host, port, path (without trailing slash) and TLS context of a ``ws://`` or ``wss://`` URL."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    context = ssl.create_default_context() if secure else None
    if context is not None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80), parts.path.rstrip("/"), context
