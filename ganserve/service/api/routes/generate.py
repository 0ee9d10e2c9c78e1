"""Generation endpoints: sample, conditional, interpolate, style-mix, sample.png.

Every count a client controls (images, seeds in a range, steps, grid cells, scale) is checked
against the configured limit before any work is done.

Namesakes, one concept at several layers (generating images): ``ganserve.cli.generate``: from
the command line; ``ganserve.service.api.routes.generate``: over HTTP;
``ganserve.service.schemas.generate``: the HTTP bodies.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from ganserve.latent_space import parse_styles
from ganserve.latents import SEED_MAX
from ganserve.service import generation, limits
from ganserve.service.api.deps import (
    Serving,
    ServingDep,
    ServingJsonDep,
    deadline_for,
    get_serving_json,
    guarded,
)
from ganserve.service.api.fast_path import Hot
from ganserve.service.errors import InvalidInput, did_you_mean, error_responses
from ganserve.service.observability import IMAGES
from ganserve.service.registry import LoadedVersion
from ganserve.service.rendering import (
    animation_response,
    json_response,
    png_render,
    png_response,
    wants_json,
)
from ganserve.service.schemas.generate import (
    SCALE_MAX,
    ConditionalRequest,
    Endpoint,
    GenerateResponse,
    InterpolateRequest,
    SampleRequest,
    StyleMixRequest,
)

# every route: the inference key check (GANSERVE_INFERENCE_NEEDS_KEY) and the registry, in
# one dependency (ServingDep; ServingJsonDep also needs a JSON body)
router = APIRouter(prefix="/v1/models", tags=["generate"])


def name_param(capability: str, example: str) -> Any:
    """The ``name`` path parameter; the served OpenAPI document replaces the example with a
    loaded model that supports ``capability`` (so "Try it out" runs as-is)."""
    return Annotated[str, Path(description="model name in the store", max_length=128,
                               openapi_examples={example: {"value": example}},
                               json_schema_extra={"x-capability": capability})]


SampleName = name_param("sample", "fashion-stylegan")
ConditionalName = name_param("conditional", "fashion-cgan")
InterpolateName = name_param("interpolate", "fashion-cgan")
StyleMixName = name_param("style-mix", "fashion-stylegan")

POST_ERRORS = error_responses(400, 401, 403, 404, 408, 413, 415, 422, 504)


def image_responses(*media: str) -> dict[int | str, dict[str, Any]]:
    """200 as images (``media``) or JSON (``GenerateResponse``), plus the error statuses."""
    return {200: {"model": GenerateResponse,
                  "description": f"{' / '.join(media)} by default; application/json with "
                                 "base64 PNGs on request (format=json or Accept)",
                  "content": {m: {"schema": {"type": "string", "format": "binary"}}
                              for m in media}},
            **POST_ERRORS}


def _source(e: Endpoint) -> generation.Source:
    return generation.Source(seed=e.seed, z=e.z, w=e.w, class_=e.class_)


def _interpolation(body: InterpolateRequest) -> generation.Interpolation:
    """The HTTP body -> the domain request generation takes."""
    return generation.Interpolation(_source(body.start), _source(body.end), body.steps,
                                    body.space, body.method, body.truncation_psi)


async def _render(lv: LoadedVersion, gen, fmt, accept, cols, scale, return_latents,
                  grid_json: bool = False) -> Response:
    IMAGES.labels(lv.name, lv.version).inc(len(gen.images))
    if wants_json(fmt, accept):
        return await json_response(lv, gen, cols, scale, return_latents, grid=grid_json)
    return await png_response(lv, gen, cols, scale)


async def _sample(name: str, body: SampleRequest, request: Request, call: Serving,
                  accept: str | None, require_conditional: bool) -> Response:
    s = call.settings
    lv = await call.registry.resolve(name, body.version)
    if require_conditional:
        generation.require(lv, "conditional")
    seeds = limits.request_seeds(body.seeds, body.n, s)
    limits.output_size(lv, len(seeds), body.scale, s)
    cls = generation.resolve_class(lv, body.class_) if body.class_ is not None else None
    deadline = deadline_for(s)
    render = None if wants_json(body.format, accept) else png_render(body.cols, body.scale)
    gen = await guarded(request, generation.sample(lv, seeds, cls, body.truncation_psi,
                                                   deadline, render), deadline)
    return await _render(lv, gen, body.format, accept, body.cols, body.scale,
                         body.return_latents)


@router.post("/{name}/sample", response_class=Response, responses=image_responses("image/png"),
             summary="Sample images from seeds (any family)")
async def sample(name: SampleName, body: SampleRequest, request: Request, call: ServingJsonDep,
                 accept: str | None = Header(None)) -> Response:
    return await _sample(name, body, request, call, accept, False)


@router.post("/{name}/conditional", response_class=Response,
             responses=image_responses("image/png"),
             summary="Images of one class (conditional models)")
async def conditional(name: ConditionalName, body: ConditionalRequest, request: Request,
                      call: ServingJsonDep, accept: str | None = Header(None)) -> Response:
    return await _sample(name, body, request, call, accept, True)


async def _sample_direct(request: Request, call: Serving, params: dict[str, str],
                         body: SampleRequest) -> Response:
    return await _sample(params["name"], body, request, call, request.headers.get("accept"),
                         False)


async def _conditional_direct(request: Request, call: Serving, params: dict[str, str],
                              body: ConditionalRequest) -> Response:
    return await _sample(params["name"], body, request, call, request.headers.get("accept"),
                         True)


# the hot routes, served by api.fast_path when the request is well-formed
HOT = {sample: Hot(_sample_direct, get_serving_json, SampleRequest),
       conditional: Hot(_conditional_direct, get_serving_json, ConditionalRequest)}


@router.post("/{name}/interpolate", response_class=Response,
             responses=image_responses("image/png", "image/gif", "image/webp"),
             summary="Frames between two seeds or latents")
async def interpolate(name: InterpolateName, body: InterpolateRequest, request: Request,
                      call: ServingJsonDep, accept: str | None = Header(None)) -> Response:
    settings = call.settings
    lv = await call.registry.resolve(name, body.version)
    limits.at_most(body.steps, settings.max_interpolation_steps, "steps", "steps")
    limits.output_size(lv, body.steps, body.scale, settings)
    deadline = deadline_for(settings)
    gen = await guarded(request, generation.interpolate(lv, _interpolation(body), deadline),
                        deadline)
    if body.format in ("gif", "webp"):
        IMAGES.labels(lv.name, lv.version).inc(len(gen.images))
        return await animation_response(lv, gen, body.scale, body.format, body.frame_ms)
    return await _render(lv, gen, body.format, accept, body.cols or body.steps, body.scale,
                         body.return_latents, grid_json=True)


@router.post("/{name}/style-mix", response_class=Response,
             responses=image_responses("image/png"),
             summary="StyleGAN style-mixing grid (NVIDIA layout)")
async def style_mix(name: StyleMixName, body: StyleMixRequest, request: Request,
                    call: ServingJsonDep, accept: str | None = Header(None)) -> Response:
    settings = call.settings
    lv = await call.registry.resolve(name, body.version)
    generation.require(lv, "style-mix")
    cells = settings.max_grid_cells
    rows = _mix_sources(body.row_seeds, body.row_sources, cells, "row_seeds", "row_sources")
    cols = _mix_sources(body.col_seeds, body.col_sources, cells, "col_seeds", "col_sources")
    limits.at_most(len(rows) * len(cols), cells,
                   "row_seeds" if body.row_sources is None else "row_sources",
                   "grid cells (rows x cols)")
    limits.output_size(lv, (len(rows) + 1) * (len(cols) + 1), body.scale, settings)
    try:
        layers = parse_styles(body.styles, lv.manifest.num_ws)
    except ValueError as e:
        raise InvalidInput(f"styles: {e}", field="styles") from e
    deadline = deadline_for(settings)
    gen = await guarded(request, generation.style_mix(lv, rows, cols, layers,
                                                      body.truncation_psi, deadline),
                        deadline)
    return await _render(lv, gen, body.format, accept, len(cols) + 1, body.scale, False,
                         grid_json=True)


def _mix_sources(seeds: list[int] | str | None, sources: list[Endpoint] | None, cells: int,
                 seeds_field: str, sources_field: str) -> list[generation.Source]:
    if sources is None:
        return [generation.Source(seed=s) for s in limits.seed_list(seeds, cells, seeds_field)]
    limits.at_most(len(sources), cells, sources_field, "sources")
    return [_source(e) for e in sources]


SAMPLE_PNG_PARAMS = ("seed", "truncation_psi", "psi", "class", "scale", "version")


def _check_query(request: Request) -> None:
    """A misspelled or repeated query parameter is an error, as an unknown body field is
    (``?sed=1`` used to give a random seed)."""
    keys = [k for k, _ in request.query_params.multi_items()]
    for key in keys:
        if key not in SAMPLE_PNG_PARAMS:
            name = key[:64]
            raise InvalidInput(f"{name}: unknown query parameter"
                               f"{did_you_mean(name, SAMPLE_PNG_PARAMS)} Parameters: "
                               f"{', '.join(SAMPLE_PNG_PARAMS)}", field=name)
        if keys.count(key) > 1:
            raise InvalidInput(f"{key}: given more than once", field=key)


PsiQuery = Query(None, ge=0.0, le=2.0, allow_inf_nan=False,
                 description="truncation psi, as in the POST bodies (default 1)")


@router.get("/{name}/sample.png", response_class=Response,
            responses={200: {"description": "one image",
                             "content": {"image/png": {"schema": {"type": "string",
                                                                  "format": "binary"}}}},
                       **error_responses(400, 401, 403, 404, 422, 504)},
            summary="One image as PNG, for browsers, <img> tags and curl")
async def sample_png(request: Request, name: SampleName, call: ServingDep,
                     seed: int | None = Query(None, ge=0, le=SEED_MAX,
                                              description="default: random"),
                     truncation_psi: float | None = PsiQuery,
                     psi: float | None = Query(None, ge=0.0, le=2.0, allow_inf_nan=False,
                                               deprecated=True,
                                               description="old name of truncation_psi"),
                     class_: str | None = Query(None, alias="class", min_length=1,
                                                max_length=128,
                                                description="index or name, e.g. Sneaker"),
                     scale: int = Query(1, ge=1, le=SCALE_MAX),
                     version: str | None = Query(None, max_length=32)) -> Response:
    _check_query(request)
    if psi is not None and truncation_psi is not None and psi != truncation_psi:
        raise InvalidInput("psi: give truncation_psi only (psi is its old name)", field="psi")
    chosen = truncation_psi if truncation_psi is not None else psi
    try:
        body = SampleRequest(
            seeds=[seed if seed is not None else secrets.randbelow(SEED_MAX + 1)],
            truncation_psi=1.0 if chosen is None else chosen, scale=scale, version=version,
            **({"class": class_} if class_ is not None else {}))
    except ValidationError as e:           # e.g. a class name of blanks
        raise RequestValidationError(e.errors()) from e
    return await _sample(name, body, request, call, None, False)
