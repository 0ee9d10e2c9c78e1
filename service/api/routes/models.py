"""Model listing: what the store holds, which versions loaded, what each can do."""

from __future__ import annotations

from fastapi import APIRouter, Path

from ganserve.evaluations import effective_metrics, evaluations_dir
from service.api.deps import RegistryDep
from service.api.schemas import ModelInfo, ModelList, VersionInfo
from service.errors import ModelNotFound, error_responses
from service.registry import Entry, LoadedVersion, Registry

router = APIRouter(prefix="/v1/models", tags=["models"])


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


def _version_info(e: Entry) -> VersionInfo:
    if isinstance(e, LoadedVersion):
        m = e.manifest
        t = m.training
        return VersionInfo(version=e.version, status="ready", provider=e.provider,
                           deterministic=e.deterministic, created_at=m.created_at,
                           parent=m.parent, metrics=_card(e),
                           training={"steps": t.steps, "images_seen": t.images_seen,
                                     "preset": t.preset, "command": t.command,
                                     "wall_seconds": t.wall_seconds,
                                     "images_per_second": t.images_per_second})
    return VersionInfo(version=e.version, status="failed", error=e.error)


def model_info(registry: Registry, name: str) -> ModelInfo:
    versions = registry.models.get(name)
    if not versions:
        raise ModelNotFound(f"no model named {name!r}; see GET /v1/models", field="name")
    infos = [_version_info(e) for _, e in sorted(versions.items(), key=lambda kv: int(kv[0]))]
    loaded = [e for e in versions.values() if isinstance(e, LoadedVersion)]
    if not loaded:
        return ModelInfo(name=name, versions=infos)
    latest = max(loaded, key=lambda v: int(v.version))
    m = latest.manifest
    return ModelInfo(name=name, family=m.family, resolution=m.resolution, channels=m.channels,
                     z_dim=m.z_dim, w_dim=m.w_dim, num_ws=m.num_ws, conditional=m.conditional,
                     classes=m.class_names if m.conditional else [],
                     capabilities=m.family_spec.capabilities, latest=latest.version,
                     provider=latest.provider, versions=infos,
                     metrics=_card(latest))


@router.get("", response_model=ModelList, responses=error_responses(),
            summary="Every model in the store")
async def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[model_info(registry, n) for n in sorted(registry.models)])


@router.get("/{name}", response_model=ModelInfo, responses=error_responses(404, 422),
            summary="One model: family, shapes, classes, capabilities, versions, metrics")
async def get_model(registry: RegistryDep,
                    name: str = Path(max_length=128, description="model name",
                                     openapi_examples={"fashion-stylegan": {
                                         "value": "fashion-stylegan"}},
                                     json_schema_extra={"x-capability": "any"})) -> ModelInfo:
    return model_info(registry, name)
