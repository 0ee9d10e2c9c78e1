"""Model listing: what the store holds, which versions loaded, what each can do.

Namesakes, one concept at several layers (models): ``ganserve.service.api.routes.models``:
their HTTP routes; ``ganserve.service.schemas.models``: the HTTP bodies.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool

from ganserve.evaluations import effective_metrics, evaluations_dir
from ganserve.latent_space import style_layer_groups
from ganserve.service.api.deps import JobsDep, RegistryDep, require_json
from ganserve.service.auth import require_key, require_key_for_inference
from ganserve.service.errors import error_responses
from ganserve.service.registry import Entry, LoadedVersion, Registry
from ganserve.service.schemas.models import (
    BatchingInfo,
    DefaultRequest,
    ModelInfo,
    ModelList,
    VersionInfo,
    VersionList,
)
from ganserve.service.versions import delete_version, set_default

router = APIRouter(prefix="/v1/models", tags=["models"])
MANAGE = [Depends(require_key)]
READ = [Depends(require_key_for_inference)]


_CARDS: dict[tuple, dict] = {}


def _card(lv: LoadedVersion) -> dict | None:
    """The version's model-card metrics, re-read only when its records folder changes (a
    stat, not a folder of JSON parses, per version and request)."""
    try:
        stamp = evaluations_dir(lv.dir).stat().st_mtime_ns
    except OSError:
        stamp = -1
    key = (str(lv.dir), lv.manifest.created_at, stamp)
    if key not in _CARDS:
        if len(_CARDS) > 1024:
            _CARDS.clear()
        _CARDS[key] = effective_metrics(lv.dir, lv.manifest)
    return _CARDS[key] or None


def _size(vdir) -> int | None:
    try:
        return sum(p.stat().st_size for p in vdir.iterdir() if p.is_file())
    except OSError:
        return None


def _version_info(e: Entry, default: str | None = None) -> VersionInfo:
    if isinstance(e, LoadedVersion):
        m = e.manifest
        t = m.training
        return VersionInfo(version=e.version, status="ready", provider=e.provider,
                           deterministic=e.deterministic, fp16=e.fp16,
                           batching=BatchingInfo(max_batch_rows=e.max_batch_rows,
                                                 max_batch_delay_ms=e.max_batch_delay_ms),
                           created_at=m.created_at,
                           parent=m.parent, metrics=_card(e),
                           training={"steps": t.steps, "images_seen": t.images_seen,
                                     "preset": t.preset, "command": t.command,
                                     "wall_seconds": t.wall_seconds,
                                     "images_per_second": t.images_per_second},
                           size_bytes=_size(e.dir), default=e.version == default)
    return VersionInfo(version=e.version, status="failed", error=e.error,
                       size_bytes=_size(e.dir))


def model_info(registry: Registry, name: str) -> ModelInfo:
    versions = registry.versions_of(name)
    loaded = [e for e in versions.values() if isinstance(e, LoadedVersion)]
    default = registry.get(name).version if loaded else None
    infos = [_version_info(e, default)
             for _, e in sorted(versions.items(), key=lambda kv: int(kv[0]))]
    if not loaded:
        return ModelInfo(name=name, versions=infos)
    latest = max(loaded, key=lambda v: int(v.version))
    m = latest.manifest
    return ModelInfo(name=name, family=m.family, resolution=m.resolution, channels=m.channels,
                     z_dim=m.z_dim, w_dim=m.w_dim, num_ws=m.num_ws, conditional=m.conditional,
                     style_layers=style_layer_groups(m.num_ws)
                     if m.family_spec.w_space and m.num_ws else None,
                     classes=m.class_names if m.conditional else [],
                     capabilities=registry.get(name).capabilities, latest=latest.version,
                     provider=latest.provider, versions=infos, default=default,
                     metrics=_card(latest))


@router.get("", response_model=ModelList, responses=error_responses(401, 403),
            dependencies=READ,
            summary="Every model in the store")
async def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[model_info(registry, n) for n in sorted(registry.models)])


@router.get("/{name}", response_model=ModelInfo,
            responses=error_responses(401, 403, 404, 422), dependencies=READ,
            summary="One model: family, shapes, classes, capabilities, versions, metrics")
async def get_model(registry: RegistryDep,
                    name: str = Path(max_length=128, description="model name",
                                     openapi_examples={"fashion-stylegan": {
                                         "value": "fashion-stylegan"}},
                                     json_schema_extra={"x-capability": "any"})) -> ModelInfo:
    await registry.catch_up(name)
    return model_info(registry, name)



NamePath = Annotated[str, Path(max_length=128, description="model name",
                               openapi_examples={"fashion-dcgan": {"value": "fashion-dcgan"}},
                               json_schema_extra={"x-capability": "any"})]


@router.get("/{name}/versions", response_model=VersionList, dependencies=MANAGE,
            responses=error_responses(401, 403, 404, 422),
            summary="A model's versions: metrics, parent, creation time, size, which is default")
async def list_versions(registry: RegistryDep, name: NamePath) -> VersionList:
    await registry.catch_up(name)
    info = model_info(registry, name)
    return VersionList(name=name, default=info.default, versions=info.versions)


@router.put("/{name}/default", response_model=VersionList,
            dependencies=[*MANAGE, Depends(require_json)],
            responses=error_responses(401, 403, 404, 408, 413, 415, 422),
            summary="Choose the version unversioned requests get (null: the highest)")
async def put_default(registry: RegistryDep, name: NamePath, body: DefaultRequest
                      ) -> VersionList:
    await registry.catch_up(name, body.version)
    await run_in_threadpool(set_default, registry, name, body.version)
    await registry.refresh()
    return await list_versions(registry, name)


@router.delete("/{name}/versions/{version}", response_model=VersionList, dependencies=MANAGE,
               responses=error_responses(401, 403, 404, 409, 422),
               summary="Remove a version (not the last, not the default, not one a queued or "
                       "running job reads)")
async def delete_model_version(
        registry: RegistryDep, name: NamePath, jobs: JobsDep,
        version: Annotated[str, Path(pattern=r"^[1-9][0-9]{0,8}$",
                                     openapi_examples={"a version": {"value": "1"}})]
) -> VersionList:
    await registry.catch_up(name)          # the model, not the version it removes
    await run_in_threadpool(delete_version, registry, jobs, name, version)
    await registry.refresh()
    return await list_versions(registry, name)
