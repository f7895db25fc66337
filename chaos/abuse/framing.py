"""WebSocket framing (RFC 6455) and permessage-deflate (RFC 7692), as a client writes and reads them.

Pure and low level: encodes any frame, including ones no honest client sends (unmasked, reserved
bits, lying lengths), so that probes can be put on the wire byte for byte. Imports nothing from
the package.
"""

from __future__ import annotations

import zlib

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1 = 0x4


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` (fast for large payloads)."""
    if not data:
        return data
    size = len(data)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x00\x00\x00\x00",
    length: int | None = None,
) -> bytes:
    """One frame as a client writes it; ``mask=None`` leaves it unmasked (illegal from a client),
    ``length`` overrides the announced payload length."""
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    size = len(payload) if length is None else length
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes([first, mask_bit | size])
    elif size < 65536:
        head = bytes([first, mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + size.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


class Deflate:
    """permessage-deflate (RFC 7692) as negotiated: no context takeover on our side."""

    def __init__(self, client_bits: int, server_no_context: bool) -> None:
        self.client_bits = max(9, min(15, client_bits))
        self.server_no_context = server_no_context
        self._inflater = zlib.decompressobj(-15)

    def compress(self, data: bytes) -> bytes:
        deflater = zlib.compressobj(wbits=-self.client_bits)
        body = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        return body[:-4] if body.endswith(b"\x00\x00\xff\xff") else body

    def decompress(self, data: bytes) -> bytes:
        if self.server_no_context:
            self._inflater = zlib.decompressobj(-15)
        return self._inflater.decompress(data + b"\x00\x00\xff\xff")

    @classmethod
    def from_header(cls, value: str) -> Deflate | None:
        """The agreement in a server's Sec-WebSocket-Extensions header, if it accepted permessage-deflate."""
        for offer in value.split(","):
            params = [part.strip() for part in offer.split(";")]
            if params[0] != "permessage-deflate":
                continue
            bits, no_context = 15, False
            for param in params[1:]:
                key, _, val = param.partition("=")
                if key.strip() == "client_max_window_bits" and val.strip().strip('"').isdigit():
                    bits = int(val.strip().strip('"'))
                elif key.strip() == "server_no_context_takeover":
                    no_context = True
            return cls(bits, no_context)
        return None
