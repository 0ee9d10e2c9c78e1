"""Generation endpoints: sample, conditional, interpolate, style-mix, sample.png."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response

from ganserve.latent_ops import parse_styles
from ganserve.latents import SEED_MAX
from service import generation
from service.api.deps import RegistryDep, SettingsDep, deadline_for, guarded
from service.api.schemas import (
    ConditionalRequest,
    GenerateResponse,
    InterpolateRequest,
    SampleRequest,
    StyleMixRequest,
)
from service.errors import ERROR_RESPONSES, InvalidInput
from service.observability import IMAGES
from service.registry import LoadedVersion
from service.rendering import animation_response, json_response, png_response, wants_json
from service.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["generate"])


def model_name(example: str):
    return Annotated[str, Path(description="model name in the store", examples=[example])]


AnyModel = model_name("fashion-stylegan")
CondModel = model_name("fashion-cgan")

IMAGE_RESPONSES = {
    200: {"description": "image/png (one image, or a grid) by default; application/json "
                         "with base64 PNGs on request (format=json or Accept)",
          "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                      "application/json": {"schema": GenerateResponse.model_json_schema()}}},
    **ERROR_RESPONSES,
}


def _limit(value: int, limit: int, field: str, what: str) -> None:
    if value > limit:
        raise InvalidInput(f"{field}: {value} {what} requested, the limit is {limit}",
                           field=field, limit=limit)


def _seeds(body: SampleRequest, s: Settings) -> list[int]:
    if body.seeds is not None:
        _limit(len(body.seeds), s.max_images, "seeds", "images")
        return list(body.seeds)
    n = body.n or 1
    _limit(n, s.max_images, "n", "images")
    return [secrets.randbelow(SEED_MAX + 1) for _ in range(n)]


async def _render(lv: LoadedVersion, gen, fmt, accept, cols, scale, return_latents,
                  s: Settings, grid_json: bool = False) -> Response:
    IMAGES.labels(lv.name, lv.version).inc(len(gen.images))
    if wants_json(fmt, accept):
        return await json_response(lv, gen, cols, scale, return_latents, grid=grid_json)
    return await png_response(lv, gen, cols, scale)


async def _sample(name: str, body: SampleRequest, request: Request, registry, s: Settings,
                  accept: str | None, require_conditional: bool) -> Response:
    lv = registry.get(name, body.version)
    if require_conditional:
        generation.require(lv, "conditional")
    _limit(body.scale, s.max_scale, "scale", "x scale")
    seeds = _seeds(body, s)
    cls = generation.resolve_class(lv, body.class_) if body.class_ is not None else None
    deadline = deadline_for(s)
    gen = await guarded(request, generation.sample(lv, seeds, cls, body.truncation_psi,
                                                   deadline), deadline)
    return await _render(lv, gen, body.format, accept, body.cols, body.scale,
                         body.return_latents, s)


@router.post("/{name}/sample", response_class=Response, responses=IMAGE_RESPONSES,
             summary="Sample images from seeds (any family)")
async def sample(name: AnyModel, body: SampleRequest, request: Request, registry: RegistryDep,
                 settings: SettingsDep, accept: str | None = Header(None)) -> Response:
    return await _sample(name, body, request, registry, settings, accept, False)


@router.post("/{name}/conditional", response_class=Response, responses=IMAGE_RESPONSES,
             summary="Images of one class (conditional models)")
async def conditional(name: CondModel, body: ConditionalRequest, request: Request,
                      registry: RegistryDep, settings: SettingsDep,
                      accept: str | None = Header(None)) -> Response:
    return await _sample(name, body, request, registry, settings, accept, True)


@router.post("/{name}/interpolate", response_class=Response,
             responses={**IMAGE_RESPONSES, 200: {
                 "description": "a PNG strip (default), JSON, or an animated GIF / WebP",
                 "content": {"image/png": {}, "image/gif": {}, "image/webp": {},
                             "application/json": {"schema":
                                                  GenerateResponse.model_json_schema()}}}},
             summary="Frames between two seeds or latents")
async def interpolate(name: CondModel, body: InterpolateRequest, request: Request,
                      registry: RegistryDep, settings: SettingsDep,
                      accept: str | None = Header(None)) -> Response:
    lv = registry.get(name, body.version)
    _limit(body.steps, settings.max_interpolation_steps, "steps", "steps")
    _limit(body.scale, settings.max_scale, "scale", "x scale")
    deadline = deadline_for(settings)
    gen = await guarded(request, generation.interpolate(lv, body, deadline), deadline)
    if body.format in ("gif", "webp"):
        IMAGES.labels(lv.name, lv.version).inc(len(gen.images))
        return await animation_response(lv, gen, body.scale, body.format, body.frame_ms)
    return await _render(lv, gen, body.format, accept, body.cols or body.steps, body.scale,
                         body.return_latents, settings, grid_json=True)


@router.post("/{name}/style-mix", response_class=Response, responses=IMAGE_RESPONSES,
             summary="StyleGAN style-mixing grid (NVIDIA layout)")
async def style_mix(name: AnyModel, body: StyleMixRequest, request: Request, registry: RegistryDep,
                    settings: SettingsDep, accept: str | None = Header(None)) -> Response:
    lv = registry.get(name, body.version)
    generation.require(lv, "style-mix")
    cells = len(body.row_seeds) * len(body.col_seeds)
    _limit(cells, settings.max_grid_cells, "row_seeds", "grid cells (rows x cols)")
    _limit(body.scale, settings.max_scale, "scale", "x scale")
    try:
        layers = parse_styles(body.styles, lv.manifest.num_ws)
    except ValueError as e:
        raise InvalidInput(f"styles: {e}", field="styles") from e
    deadline = deadline_for(settings)
    gen = await guarded(request, generation.style_mix(lv, body.row_seeds, body.col_seeds,
                                                      layers, body.truncation_psi, deadline),
                        deadline)
    return await _render(lv, gen, body.format, accept, len(body.col_seeds) + 1, body.scale,
                         False, settings, grid_json=True)


@router.get("/{name}/sample.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, **ERROR_RESPONSES},
            summary="One image as PNG, for browsers, <img> tags and curl")
async def sample_png(request: Request, name: CondModel, registry: RegistryDep,
                     settings: SettingsDep,
                     seed: int | None = Query(None, ge=0, le=SEED_MAX,
                                              description="default: random"),
                     psi: float = Query(1.0, ge=0.0, le=2.0, allow_inf_nan=False),
                     class_: str | None = Query(None, alias="class",
                                                description="index or name, e.g. Sneaker"),
                     scale: int = Query(1, ge=1, le=64),
                     version: str | None = Query(None)) -> Response:
    body = SampleRequest(seeds=[seed if seed is not None else secrets.randbelow(SEED_MAX + 1)],
                         truncation_psi=psi, scale=scale, version=version,
                         **({"class": class_} if class_ is not None else {}))
    return await _sample(name, body, request, registry, settings, None, False)
