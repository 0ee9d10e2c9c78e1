"""uvicorn's httptools protocol plus a header timeout, and one send per response.

uvicorn times out idle keep-alive connections and we time out slow bodies (408), but nothing
bounded the time to send a request's *headers*: a connection that says nothing, or trickles a
header byte every few seconds (slowloris), was held for ever, each holding a file descriptor.
Here a new connection, and each new request on it, must finish its headers within
``GANSERVE_HEADER_TIMEOUT_S`` or the connection is closed (there is no request yet to answer).

uvicorn writes a response's head and its body with one ``transport.write`` each: two
syscalls and, with TCP_NODELAY, two segments per small response. ``CoalescingTransport``
sends what one turn of the event loop wrote in one go, so a small response costs one
syscall (over loopback, the kernel's receive side runs in that syscall too: measured ~8% of
an n=1 /sample's event-loop time).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ganserve.service.settings import get_settings

log = logging.getLogger(__name__)


class CoalescingTransport:
    """A transport whose writes of one event-loop turn leave in one ``write`` of the real
    one (at the end of the turn, or before a close). Everything else is the real one's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, lines) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(get_settings().header_timeout_s,
                                                  self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.info("closing %s: request headers not received within %g s", self.client,
                     get_settings().header_timeout_s)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._arm_header_timer()            # a silent connection

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()            # a request whose headers trickle in

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)
