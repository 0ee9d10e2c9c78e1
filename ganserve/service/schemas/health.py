"""The Open Inference Protocol health bodies.

Namesakes, one concept at several layers (health): ``ganserve.service.api.routes.health``: the
HTTP routes; ``ganserve.service.schemas.health``: the HTTP bodies.
"""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    live: bool | None = None
    ready: bool | None = None
    draining: bool | None = None


class ModelReady(BaseModel):
    name: str
    ready: bool
