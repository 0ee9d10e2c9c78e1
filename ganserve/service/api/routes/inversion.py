"""Projection and latent directions: project an image, list a version's directions, edit.

Namesakes, one concept at several layers (inversion): ``ganserve.training.inversion``: the
encoder's training; ``ganserve.service.inversion``: projecting and editing;
``ganserve.service.api.routes.inversion``: their HTTP routes;
``ganserve.service.schemas.inversion``: the HTTP bodies.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from ganserve.images import encode_png
from ganserve.service import inversion, limits
from ganserve.service.api.deps import ServingDep, ServingJsonDep, deadline_for, guarded, is_json
from ganserve.service.api.routes.generate import _render, image_responses, name_param
from ganserve.service.errors import (
    InvalidInput,
    UnsupportedMediaType,
    error_responses,
)
from ganserve.service.generation import Source
from ganserve.service.rendering import pixels
from ganserve.service.schemas.inversion import (
    DirectionOut,
    DirectionsResponse,
    EditRequest,
    ProjectRequest,
    ProjectResponse,
)

router = APIRouter(prefix="/v1/models", tags=["projection and directions"])
ProjectName = name_param("project", "fashion-stylegan")
EditName = name_param("edit", "fashion-stylegan")
PROJECT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/ProjectRequest"}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "additionalProperties": False,
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "a PNG, JPEG or WebP image"},
            "class": {"type": "string", "minLength": 1, "maxLength": 128,
                      "description": "conditional models: its class (index or name)"},
            "version": {"type": "string", "maxLength": 32}}}}}}}


async def _project_request(request: Request) -> tuple[bytes, ProjectRequest]:
    """(the image's bytes, the other fields) from a JSON or a multipart body."""
    ctype = request.headers.get("content-type") or "(none)"
    if is_json(ctype):
        try:
            body = ProjectRequest.model_validate_json(await request.body())
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from e
        return inversion.decode_base64(body.image), body
    if ctype.lower().startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=3) as form:
            unknown = sorted(set(form) - {"file", "class", "version"})
            if unknown:
                raise InvalidInput(f"{unknown[0][:64]}: unknown form field (fields: file, "
                                   "class, version)", field=unknown[0][:64])
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise InvalidInput("file: send the image as the form field 'file' "
                                   "(curl -F file=@shoe.png)", field="file")
            data = await file.read()
            fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
        try:
            return data, ProjectRequest.model_validate({"image": "-", **fields}, strict=False)
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from e
    raise UnsupportedMediaType(f"send the image as JSON ({{\"image\": base64}}) or as "
                               f"multipart/form-data with a 'file' part (got {ctype[:80]!r})")


def _b64png(image) -> str:
    return base64.b64encode(encode_png(pixels(image)[0])).decode()


@router.post("/{name}/project", response_model=ProjectResponse, openapi_extra=PROJECT_BODY,
             responses=error_responses(400, 401, 403, 404, 408, 409, 413, 415, 422, 504),
             summary="Project an image into the model: its latent and reconstruction")
async def project(name: ProjectName, request: Request, call: ServingDep) -> ProjectResponse:
    data, body = await _project_request(request)
    lv = await call.registry.resolve(name, body.version)
    inversion.require_encoder(lv)           # before the image: what to fix first
    x = await run_in_threadpool(inversion.read_model_input, data, lv)
    deadline = deadline_for(call.settings)
    p = await guarded(request, inversion.project(lv, x, body.class_, deadline), deadline)
    names = lv.manifest.class_names
    return ProjectResponse(
        model=lv.name, version=lv.version, family=lv.family,
        latent={p.latent_name: p.latent.tolist()}, class_index=p.class_index,
        class_name=names[p.class_index] if p.class_index is not None and names else None,
        image=_b64png(p.image), input=_b64png(p.target), scores=p.scores)


@router.get("/{name}/directions", response_model=DirectionsResponse,
            responses=error_responses(401, 403, 404, 409, 422),
            summary="The version's latent directions (principal axes, class to class)")
async def directions(name: EditName, call: ServingDep,
                     version: str | None = Query(None, max_length=32)) -> DirectionsResponse:
    lv = await call.registry.resolve(name, version)
    d = inversion.directions_of(lv)
    return DirectionsResponse(model=lv.name, version=lv.version, space=d.space, directions=[
        DirectionOut(name=x.name, kind=x.kind, space=x.space, info=x.info) for x in d.all()])


@router.post("/{name}/edit", response_class=Response, responses=image_responses("image/png"),
             summary="Move a seed's or a latent's image along latent directions")
async def edit(name: EditName, body: EditRequest, request: Request, call: ServingJsonDep,
               accept: str | None = Header(None)) -> Response:
    s = call.settings
    lv = await call.registry.resolve(name, body.version)
    strip = None
    if body.strip is not None:
        limits.at_most(body.strip.steps, s.max_interpolation_steps, "strip.steps", "steps")
        strip = (body.strip.direction, body.strip.start, body.strip.stop, body.strip.steps)
    limits.output_size(lv, strip[3] if strip else 1, body.scale, s)
    req = inversion.Edit(Source(seed=body.seed, z=body.z, w=body.w, class_=body.class_),
                         dict(body.directions), strip, body.truncation_psi)
    deadline = deadline_for(s)
    gen = await guarded(request, inversion.edit(lv, req, deadline), deadline)
    cols = body.cols or (strip[3] if strip else None)          # a strip: one row
    return await _render(lv, gen, body.format, accept, cols, body.scale, False,
                         grid_json=True)
