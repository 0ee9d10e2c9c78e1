"""Open Inference Protocol health endpoints (KServe / Triton): 200 when true, else 503."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.registry import LoadedVersion

router = APIRouter(prefix="/v2", tags=["health"])


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Every loadable model is loaded and warm, not draining")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    ok = state.registry.ready and not state.draining
    return JSONResponse({"ready": ok, "draining": state.draining},
                        status_code=200 if ok else 503)


@router.get("/models/{name}/ready", summary="This model has a loaded version")
async def model_ready(name: str, request: Request) -> JSONResponse:
    versions = request.app.state.registry.models.get(name, {})
    ok = any(isinstance(v, LoadedVersion) for v in versions.values())
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)
