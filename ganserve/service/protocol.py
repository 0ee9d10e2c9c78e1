"""uvicorn's httptools protocol plus a header timeout.

uvicorn times out idle keep-alive connections and we time out slow bodies (408), but nothing
bounded the time to send a request's *headers*: a connection that says nothing, or trickles a
header byte every few seconds (slowloris), was held for ever, each holding a file descriptor.
Here a new connection, and each new request on it, must finish its headers within
``GANSERVE_HEADER_TIMEOUT_S`` or the connection is closed (there is no request yet to answer).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ganserve.service.settings import get_settings

log = logging.getLogger(__name__)


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
        super().connection_made(transport)
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
