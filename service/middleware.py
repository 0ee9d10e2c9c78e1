"""One pure-ASGI middleware: request ids, body-size limit (413), metrics and access logs.

Pure ASGI (not BaseHTTPMiddleware) so the endpoint still sees the client's disconnect.
"""

from __future__ import annotations

import logging
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ErrorBody, ErrorResponse
from service.observability import IN_FLIGHT, REQUEST_LATENCY, REQUESTS, request_id_var

log = logging.getLogger("service.access")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = {"code": 500, "started": False}
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        IN_FLIGHT.inc()
        try:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body_bytes:
                await self._too_large(send_wrapper, rid)
            else:
                await self.app(scope, limited_receive, send_wrapper)
        except BodyTooLarge:
            if not status["started"]:
                await self._too_large(send_wrapper, rid)
        finally:
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - t0
            endpoint, model = self._labels(scope)
            REQUESTS.labels(endpoint, model, str(status["code"])).inc()
            REQUEST_LATENCY.labels(endpoint, model).observe(elapsed)
            log.info("%s %s -> %d in %.1f ms", scope.get("method"), scope.get("path"),
                     status["code"], elapsed * 1000)
            request_id_var.reset(token)

    async def _too_large(self, send: Send, rid: str) -> None:
        body = ErrorResponse(error=ErrorBody(
            code="payload_too_large", request_id=rid,
            message=f"request body larger than {self.max_body_bytes} bytes")).model_dump_json(
                exclude_none=True).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _labels(scope: Scope) -> tuple[str, str]:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        name = scope.get("path_params", {}).get("name", "")
        registry = getattr(getattr(scope.get("app"), "state", None), "registry", None)
        if name and (registry is None or name not in registry.models):
            name = "unknown"
        return endpoint, name
