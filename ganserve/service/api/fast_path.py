"""The hot inference routes without FastAPI's per-request machinery, for well-formed requests.

``POST /v1/models/{name}/sample`` (and ``/conditional``) and ``POST /v2/models/{name}[/versions
/{v}]/infer`` are where a server spends its life. For each of their requests FastAPI matches
the path against the routes in turn, resolves the dependencies and validates four kinds of
parameter for each: measured (yappi, n=1 ``/sample``) a third of the event loop's time, more
than the handler itself. This layer, inside ``ServiceMiddleware`` (request ids, metrics, body
limits and draining all still apply), serves a request of those routes itself when it is
well-formed: the route's own path pattern, parameters within their lengths, a JSON body that
parses and validates. It calls the route's own handler code with the route's own dependency
functions, in FastAPI's order (the JSON body is parsed first, then the dependencies run, then
the body is validated), and a ``ServiceError`` is answered by the app's own handler for it.

Anything else -- a body that does not parse or validate, another content type, an over-long
path parameter, a root path -- goes on to the FastAPI route with its body replayed, so every
validation error keeps one code path and one shape. ``tests/service/test_fast_path.py`` checks
that both ways answer the same. A route without a body model (``/v2 .../infer`` reads its own
body) is not read ahead: its key and model checks come before its body, as in FastAPI.

What this skips of FastAPI, for these routes only: ``app.dependency_overrides`` and FastAPI's
own per-route telemetry (neither is used here; a test overriding a dependency of these routes
must go through another route, or remove this layer as the test above does).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from annotated_types import MaxLen
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ganserve.service.api.deps import Serving, is_json
from ganserve.service.auth import bearer
from ganserve.service.errors import ServiceError, service_error_response

Handle = Callable[[Request, Serving, dict[str, str], Any], Awaitable[Response]]


@dataclass(frozen=True)
class Hot:
    """A route the fast path serves: ``handle(request, serving, path_params, body)`` is the
    route's handler code; ``serving`` its dependency (key check, registry); ``body_model``
    the JSON body's model (None: the handler reads the body itself, any content type)."""
    handle: Handle
    serving: Callable[[Request, Any], Awaitable[Serving]]
    body_model: type[BaseModel] | None = None


@dataclass(frozen=True)
class _Route:
    route: APIRoute
    hot: Hot
    max_lengths: dict[str, int]


def _max_lengths(route: APIRoute) -> dict[str, int]:
    """The path parameters' ``max_length`` (FastAPI answers a longer one with its 422)."""
    out = {}
    for field in route.dependant.path_params:
        limits = [m.max_length for m in field.field_info.metadata if isinstance(m, MaxLen)]
        out[field.alias] = min(limits) if limits else 1 << 30
    return out


class FastPath:
    """ASGI: the ``hot`` routes (by endpoint) of ``routers``, which the app includes as they
    are (no extra prefix)."""

    def __init__(self, app: ASGIApp, routers: list[APIRouter],
                 hot: dict[Callable[..., Any], Hot]):
        self.app = app
        self.routes = [_Route(r, hot[r.endpoint], _max_lengths(r))
                       for router in routers for r in router.routes
                       if isinstance(r, APIRoute) and r.endpoint in hot and "POST" in r.methods]
        if len(self.routes) != len(hot):
            raise ValueError("a hot endpoint is not a POST route of the routers given")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            for hot in self.routes:
                if (m := hot.route.path_regex.match(scope["path"])) is not None:
                    await self._serve(scope, receive, send, hot, m.groupdict())
                    return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, hot: _Route,
                     params: dict[str, str]) -> None:
        if not all(len(v) <= hot.max_lengths.get(k, 0) for k, v in params.items()):
            await self.app(scope, receive, send)          # FastAPI's 422 for the parameter
            return
        scope["route"], scope["path_params"] = hot.route, params
        if hot.hot.body_model is None:      # the handler reads the body, after the checks
            await self._answer(scope, receive, send, hot.hot, params, None)
            return
        messages = await _read_body(receive)
        replay = _replaying(messages, receive)
        if messages[-1]["type"] != "http.request":       # cut short by a disconnect
            await self.app(scope, replay, send)
            return
        body = b"".join(m.get("body", b"") for m in messages)
        await self._answer(scope, replay, send, hot.hot, params, body)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, hot: Hot,
                      params: dict[str, str], body: bytes | None) -> None:
        request = Request(scope, receive)
        try:
            response = await self._direct(request, hot, params, body)
        except ServiceError as e:
            response = service_error_response(request, e)
        if response is None:                     # FastAPI answers, as if we were not here
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    @staticmethod
    async def _direct(request: Request, hot: Hot, params: dict[str, str], body: bytes | None
                      ) -> Response | None:
        """The response, or None where FastAPI must answer (its validation errors)."""
        parsed: Any = None
        if hot.body_model is not None:
            if not is_json(request.headers.get("content-type", "")):
                return None
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):    # FastAPI words the error
                return None
        serving = await hot.serving(request, await bearer(request))
        if hot.body_model is not None:
            try:
                parsed = hot.body_model.model_validate(parsed)
            except ValidationError:
                return None
        return await hot.handle(request, serving, params, parsed)


async def _read_body(receive: Receive) -> list[Message]:
    """The request body's messages, up to the last one or a disconnect (the middleware's
    receive enforces the body's size and time)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out ``messages`` again, then the connection's own (a
    disconnect)."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()
    return replay
