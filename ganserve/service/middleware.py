"""One pure-ASGI middleware around every request: request ids, access logs and metrics, and
the guards that come before any route runs.

- 413: a body larger than ``max_body_bytes`` (by Content-Length, or counted as it arrives);
- 408: a body that has not fully arrived ``body_timeout_s`` after the request started (a
  client trickling its body cannot hold a connection, or a graceful shutdown, for long);
- 503 + Retry-After + ``Connection: close`` for new requests while the worker drains (health
  and metrics still answer, readiness with 503);
- 500: any unexpected exception becomes the JSON error shape with the request id, and its
  traceback is logged under that id;
- 499: a client that disconnected is an INFO line and a 499 in the metrics, never a 500.

Pure ASGI (not BaseHTTPMiddleware) so the endpoint still sees the client's disconnect.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from dataclasses import dataclass

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ganserve.service.errors import (
    BodyError,
    InternalError,
    NotReady,
    PayloadTooLarge,
    RequestTimeout,
    ServiceError,
    error_message,
)
from ganserve.service.observability import IN_FLIGHT, REQUEST_LATENCY, REQUESTS, request_id_var

log = logging.getLogger("ganserve.service.access")

_RID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
ALWAYS_ANSWER = ("/v2/health/", "/metrics")      # answered while draining
BODY_METHODS = ("POST", "PUT", "PATCH")
CLOSE = {"Connection": "close"}


class _RequestIds:
    """Request ids unique across processes and restarts, without a syscall per request
    (uuid4 read 16 random bytes from the kernel for each): a random prefix per process, then
    a counter."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._count = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():                # a new process (a forked worker)
            self._pid, self._prefix = os.getpid(), os.urandom(5).hex()
        return f"{self._prefix}{next(self._count):06x}"


_ids = _RequestIds()


@dataclass
class _Exchange:
    """What the middleware learns about one request while it runs."""
    rid: str
    status: int = 500
    started: bool = False
    body_done: bool = False
    disconnected: bool = False
    received: int = 0


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_s: float = 10.0,
                 large_bodies: dict[tuple[str, str], tuple[int, float]] | None = None):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        # (method, path) -> (bytes, seconds) for the routes that take large bodies (uploads)
        self.large_bodies = large_bodies or {}
        self._children: dict[tuple[str, str, int], tuple] = {}   # metric children by labels

    def _body_limits(self, scope: Scope) -> tuple[int, float]:
        return self.large_bodies.get((scope.get("method", ""), scope.get("path", "")),
                                     (self.max_body_bytes, self.body_timeout_s))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        ex = _Exchange(given if _RID.fullmatch(given) else _ids.next())
        token = request_id_var.set(ex.rid)
        scope.setdefault("state", {})["request_id"] = ex.rid
        t0 = time.perf_counter()
        IN_FLIGHT.inc()
        try:
            await self._handle(scope, receive, send, headers, ex, t0)
        finally:
            IN_FLIGHT.dec()
            self._record(scope, ex, time.perf_counter() - t0)
            request_id_var.reset(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send,
                      headers: dict[str, str], ex: _Exchange, t0: float) -> None:
        max_bytes, body_timeout_s = self._body_limits(scope)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                ex.status, ex.started = message["status"], True
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", ex.rid.encode("latin-1"))]
            await send(message)

        async def guarded_receive() -> Message:
            if ex.body_done:
                message = await receive()
            else:
                left = body_timeout_s - (time.perf_counter() - t0)
                try:
                    async with asyncio.timeout(max(left, 0.0)):
                        message = await receive()
                except TimeoutError:
                    raise BodyError(RequestTimeout(
                        f"the request body did not arrive within {body_timeout_s:g} s",
                        headers=CLOSE)) from None
            if message["type"] == "http.request":
                ex.received += len(message.get("body", b""))
                ex.body_done = not message.get("more_body", False)
                if ex.received > max_bytes:
                    raise BodyError(self._too_large(max_bytes))
            elif message["type"] == "http.disconnect":
                ex.disconnected = ex.body_done = True
            return message

        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await self._send_error(send_wrapper, scope, ex.rid, refusal)
            return
        try:
            await self.app(scope, guarded_receive, send_wrapper)
        except BodyError as e:          # raised outside FastAPI's body reading (a fallback)
            if not ex.started:
                await self._send_error(send_wrapper, scope, ex.rid, e.error)
        except asyncio.CancelledError:
            if not ex.disconnected:
                raise
            ex.status = 499             # cancelled after its client left: nobody to answer
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not ex.started:
                await self._send_error(send_wrapper, scope, ex.rid, InternalError(
                    f"unexpected server error; see the log under request id {ex.rid}"))
            ex.status = 500

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> ServiceError | None:
        """The error for a request answered before the app sees it, or None."""
        path = scope.get("path", "")
        app = scope.get("app")
        draining = bool(getattr(getattr(app, "state", None), "draining", False))
        if draining and not path.startswith(ALWAYS_ANSWER):
            return NotReady("the service is shutting down; retry on another replica",
                            headers={"Retry-After": "1", **CLOSE})
        length = headers.get("content-length", "")
        max_bytes = self._body_limits(scope)[0]
        if (scope.get("method") in BODY_METHODS and length.isascii() and length.isdigit()
                and int(length) > max_bytes):
            return self._too_large(max_bytes)
        return None

    @staticmethod
    def _too_large(max_bytes: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body larger than {max_bytes} bytes", headers=CLOSE)

    @staticmethod
    async def _send_error(send: Send, scope: Scope, rid: str, err: ServiceError) -> None:
        status, headers, body = error_message(err, rid, scope.get("path", ""))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, ex: _Exchange, elapsed: float) -> None:
        endpoint, model = self._labels(scope)
        key = (endpoint, model, ex.status)
        if (children := self._children.get(key)) is None:     # labels() costs a lock each
            children = (REQUESTS.labels(endpoint, model, str(ex.status)),
                        REQUEST_LATENCY.labels(endpoint, model))
            if len(self._children) < 10_000:                    # bounded, as the labels are
                self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
        level = logging.WARNING if ex.status == 500 else logging.INFO
        log.log(level, "%s %s -> %d in %.1f ms%s", scope.get("method"), scope.get("path"),
                ex.status, elapsed * 1000, " (client disconnected)" if ex.status == 499 else "")

    @staticmethod
    def _labels(scope: Scope) -> tuple[str, str]:
        route, params = scope.get("route"), scope.get("path_params", {})
        endpoint = getattr(route, "path", None)
        if route is None:               # refused before routing (413, draining 503)
            endpoint, params = _match(scope)
        endpoint = endpoint or "unmatched"
        name = params.get("name", "")
        registry = getattr(getattr(scope.get("app"), "state", None), "registry", None)
        if name and (registry is None or name not in registry.models):
            name = "unknown"
        return endpoint, name


def _match(scope: Scope) -> tuple[str | None, dict[str, str]]:
    """The path template (and its parameters) a request refused before routing would have
    reached, for its metric labels; from the app's documented paths."""
    state = getattr(scope.get("app"), "state", None)
    if state is None or not hasattr(scope.get("app"), "openapi"):
        return None, {}
    patterns = getattr(state, "path_patterns", None)
    if patterns is None:
        patterns = [(compile_path(p)[0], p) for p in scope["app"].openapi()["paths"]]
        state.path_patterns = patterns
    for regex, template in patterns:
        if m := regex.match(scope.get("path", "")):
            return template, m.groupdict()
    return None, {}


