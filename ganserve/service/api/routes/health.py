"""Open Inference Protocol health endpoints (KServe / Triton): 200 when true, else an error
in the protocol's shape, ``{"error": "..."}`` (503 not ready, 404 unknown model).

Namesakes, one concept at several layers (health): ``ganserve.service.api.routes.health``: the
HTTP routes; ``ganserve.service.schemas.health``: the HTTP bodies.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request

from ganserve.service.errors import ModelUnavailable, protocol_error_responses
from ganserve.service.readiness import check_ready
from ganserve.service.registry import LoadedVersion
from ganserve.service.schemas.health import Health, ModelReady

router = APIRouter(prefix="/v2", tags=["health"])


@router.get("/health/live", response_model=Health, response_model_exclude_none=True,
            responses=protocol_error_responses(), summary="The process is up")
async def live() -> Health:
    return Health(live=True)


@router.get("/health/ready", response_model=Health, response_model_exclude_none=True,
            responses=protocol_error_responses(),
            summary="Every loadable model is loaded and warm, at least one is servable, and "
                    "not draining (else 503)")
async def ready(request: Request) -> Health:
    check_ready(request.app.state)
    return Health(ready=True, draining=False)


@router.get("/models/{name}/ready", response_model=ModelReady, responses=protocol_error_responses(
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


@router.get("/models/{name}/versions/{version}/ready", response_model=ModelReady,
            responses=protocol_error_responses(404, 422),
            summary="This version is loaded (404 unknown, 503 failed to load)")
async def version_ready(request: Request,
                        name: str = Path(max_length=128, description="model name",
                                         json_schema_extra={"x-capability": "any"}),
                        version: str = Path(max_length=32, description="a loaded version",
                                            openapi_examples={"a version": {"value": "1"}})
                        ) -> ModelReady:
    await request.app.state.registry.resolve(name, version)    # 404 unknown, 503 failed
    return ModelReady(name=name, ready=True)
