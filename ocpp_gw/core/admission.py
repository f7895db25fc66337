"""Admission control decisions: token buckets for handshake and message rates (pure, clock passed in)."""

from __future__ import annotations


class TokenBucket:
    """Allows ``rate`` events per second on average and bursts of up to ``burst``."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the event is over the limit."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class AddressLimits:
    """Per remote address: open connections, handshakes in progress and a handshake rate.

    One address must not take what all the others need: its connections and unfinished
    handshakes are capped, and its handshakes draw on a bucket of its own before the gateway's
    shared one. A limit of 0 turns that check off (a load balancer that hides station addresses
    makes every station one address). Memory is bounded: counts exist only for addresses with an
    open connection, and at most ``max_addresses`` buckets are kept (the oldest dropped first).
    """

    def __init__(
        self,
        max_connections: int,
        max_handshakes: int,
        rate: float,
        burst: float,
        max_addresses: int = 100_000,
    ) -> None:
        self.max_connections, self.max_handshakes = max_connections, max_handshakes
        self.rate, self.burst, self.max_addresses = rate, burst, max_addresses
        self.connections: dict[str, int] = {}
        self.handshakes: dict[str, int] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def connection_opened(self, address: str) -> str | None:
        """Count a new TCP connection from ``address``; the name of the cap it exceeds, if any (then it
        is not counted and must be closed)."""
        if self.max_connections and self.connections.get(address, 0) >= self.max_connections:
            return "address_connections"
        if self.max_handshakes and self.handshakes.get(address, 0) >= self.max_handshakes:
            return "address_handshakes"
        self.connections[address] = self.connections.get(address, 0) + 1
        self.handshakes[address] = self.handshakes.get(address, 0) + 1
        return None

    def handshake_ended(self, address: str) -> None:
        _decrement(self.handshakes, address)

    def connection_closed(self, address: str, handshaking: bool) -> None:
        _decrement(self.connections, address)
        if handshaking:
            _decrement(self.handshakes, address)

    def take_handshake(self, address: str, now: float) -> bool:
        """Spend one of the address's handshake tokens; False when it has none left."""
        if not self.rate:
            return True
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
            while len(self._buckets) >= self.max_addresses:
                del self._buckets[next(iter(self._buckets))]
        self._buckets[address] = bucket
        return bucket.take(now)


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
