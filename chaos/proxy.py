"""A TCP proxy under the tests' control, standing in for the network between a gateway and Kafka.

``pause()`` stops moving bytes in both directions while keeping the connections open (a stalled
link: the peers' buffers fill and their requests time out); ``drop()`` aborts every connection
(a broken link); ``resume()`` lets bytes flow again.
"""

from __future__ import annotations

import asyncio
import contextlib


class StallingProxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.listen_port, self.target_port = host, listen_port, target_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.connections: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> StallingProxy:
        self._server = await asyncio.start_server(self._serve, self.host, self.listen_port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()

    def pause(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def drop(self) -> None:
        for writer in list(self.connections):
            writer.transport.abort()
        self.connections.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await self.flowing.wait()
        try:
            broker_reader, broker_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self.connections.update((client_writer, broker_writer))
        pumps = [
            asyncio.create_task(self._pump(client_reader, broker_writer)),
            asyncio.create_task(self._pump(broker_reader, client_writer)),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for writer in (client_writer, broker_writer):
            self.connections.discard(writer)
            writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while True:
                await self.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    return
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
