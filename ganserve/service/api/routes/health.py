"""Open Inference Protocol health endpoints (KServe / Triton): 200 when true, else an error
in the service's one shape (503 not ready, 404 unknown model).

Namesakes, one concept at several layers (health): ``ganserve.service.api.routes.health``: the
HTTP routes; ``ganserve.service.schemas.health``: the HTTP bodies.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request

from ganserve.service.errors import ModelUnavailable, NotReady, error_responses
from ganserve.service.registry import LoadedVersion
from ganserve.service.schemas.health import Health, ModelReady

router = APIRouter(prefix="/v2", tags=["health"])


@router.get("/health/live", response_model=Health, response_model_exclude_none=True,
            responses=error_responses(), summary="The process is up")
async def live() -> Health:
    return Health(live=True)


@router.get("/health/ready", response_model=Health, response_model_exclude_none=True,
            responses=error_responses(),
            summary="Every loadable model is loaded and warm, at least one is servable, and "
                    "not draining (else 503)")
async def ready(request: Request) -> Health:
    state = request.app.state
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
    return Health(ready=True, draining=False)


@router.get("/models/{name}/ready", response_model=ModelReady, responses=error_responses(
    404, 422), summary="This model has a loaded version (404 unknown, 503 none loaded)")
async def model_ready(request: Request,
                      name: str = Path(max_length=128, description="model name",
                                       json_schema_extra={"x-capability": "any"})
                      ) -> ModelReady:
    registry = request.app.state.registry
    versions = registry.versions_of(name)
    if not any(isinstance(v, LoadedVersion) for v in versions.values()):
        raise ModelUnavailable(f"{name}: no version could be loaded", field="name",
                               headers={"Retry-After": "5"})
    return ModelReady(name=name, ready=True)
