"""Whether this process should take traffic: not draining, every loadable model loaded, and
something servable (unless an empty store is intended). One rule for the HTTP readiness
endpoint and the gRPC ServerReady."""

from __future__ import annotations

from typing import Any

from ganserve.service.errors import NotReady


def check_ready(state: Any) -> None:
    """Raise NotReady (503, with Retry-After) saying why ``state`` (the app's) is not ready."""
    if state.draining:
        raise NotReady("draining: the service is shutting down", draining=True,
                       headers={"Retry-After": "1"})
    if not state.registry.ready:
        raise NotReady("starting: models are loading", draining=False,
                       headers={"Retry-After": "1"})
    settings = state.settings
    if not state.registry.loaded() and not settings.allow_empty_store:
        # ready means able to serve: a replica with nothing to serve takes no traffic
        raise NotReady(f"the model store ({settings.models_dir}) holds no servable model; "
                       "export one there (or set GANSERVE_ALLOW_EMPTY_STORE=true to accept "
                       "traffic anyway)", draining=False, empty_store=True,
                       headers={"Retry-After": "5"})
