"""Dependencies: settings, registry, and the per-request guard (deadline + disconnect)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from ganserve.service.auth import Credentials, require_key_for_inference
from ganserve.service.datasets import DatasetService
from ganserve.service.errors import (
    ClientDisconnected,
    DeadlineExceeded,
    NotReady,
    UnsupportedMediaType,
)
from ganserve.service.jobs import JobService
from ganserve.service.registry import Registry
from ganserve.service.settings import Settings

T = TypeVar("T")


# async dependencies: FastAPI runs plain `def` ones in a thread pool, a hop per request
async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    if not registry.scanned:
        raise NotReady("the service is starting: models are loading", headers={"Retry-After": "1"})
    return registry


def is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/")
                                          and mime.endswith("+json"))


async def require_json(request: Request) -> None:
    """415 for a JSON-body route sent another Content-Type (curl -d sends form encoding) or
    none at all (which FastAPI would not read as JSON either)."""
    ctype = request.headers.get("content-type") or "(none)"
    if not is_json(ctype):
        raise UnsupportedMediaType(f"the body must be JSON: send Content-Type: "
                                   f"application/json (got {ctype[:80]!r})")


async def get_jobs(request: Request) -> JobService:
    return request.app.state.jobs


async def get_datasets(request: Request) -> DatasetService:
    datasets: DatasetService | None = getattr(request.app.state, "datasets", None)
    if datasets is None:
        raise NotReady("the service is starting", headers={"Retry-After": "1"})
    return datasets


@dataclass(frozen=True)
class Serving:
    """What an inference handler needs, from one dependency (which ``api.fast_path`` calls
    directly for the hot routes): the key check, then the registry once it has loaded."""
    registry: Registry
    settings: Settings


async def get_serving(request: Request, creds: Credentials) -> Serving:
    """The inference key check (GANSERVE_INFERENCE_NEEDS_KEY), then the loaded registry."""
    await require_key_for_inference(request, creds)
    return await _serving(request)


async def get_serving_json(request: Request, creds: Credentials) -> Serving:
    """``get_serving`` for a route whose body must be JSON (415 otherwise, after the key)."""
    await require_key_for_inference(request, creds)
    await require_json(request)
    return await _serving(request)


async def _serving(request: Request) -> Serving:
    return Serving(await get_registry(request), request.app.state.settings)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ServingDep = Annotated[Serving, Depends(get_serving)]
ServingJsonDep = Annotated[Serving, Depends(get_serving_json)]
JobsDep = Annotated[JobService, Depends(get_jobs)]
DatasetsDep = Annotated[DatasetService, Depends(get_datasets)]
RegistryDep = Annotated[Registry, Depends(get_registry)]


def deadline_for(settings: Settings) -> float:
    return time.monotonic() + settings.request_deadline_s


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def guarded(request: Request, work: Awaitable[T], deadline: float) -> T:
    """Run ``work`` until done, the deadline (504) or the client disconnecting (dropped).

    One watcher task waits for the client's disconnect and cancels this request's task; the
    cancellation reaches the batcher's futures, whose rows are then skipped.
    """
    current = asyncio.current_task()
    gone = {"client": False, "done": False}

    def on_disconnect(t: asyncio.Task) -> None:
        # the callback may already be scheduled when the work finishes: a client that leaves
        # after its result is ready must not cancel the rendering of a response nobody reads
        if gone["done"]:
            return
        if not t.cancelled() and t.exception() is None:
            gone["client"] = True
            current.cancel()

    watcher = asyncio.ensure_future(_wait_disconnect(request))
    watcher.add_done_callback(on_disconnect)
    timeout = max(0.0, deadline - time.monotonic())
    try:
        async with asyncio.timeout(timeout):
            return await work
    except TimeoutError:
        raise DeadlineExceeded(f"no answer within the {timeout:.1f} s deadline") from None
    except asyncio.CancelledError:
        if gone["client"]:
            current.uncancel()          # handled: the task is not being cancelled any more
            raise ClientDisconnected("client disconnected; its rows were dropped") from None
        raise
    finally:
        gone["done"] = True
        watcher.remove_done_callback(on_disconnect)
        watcher.cancel()
