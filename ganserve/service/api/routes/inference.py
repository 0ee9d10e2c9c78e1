"""Open Inference Protocol (KServe predict v2 / Triton HTTP): server and model metadata,
Triton's model configuration, per-version readiness, and infer with JSON or binary tensors
(gzip/deflate either way). Errors are the protocol's ``{"error": "..."}``; a body the REST
API would answer with 422 is a 400 here, as in Triton. Infer runs the REST endpoints'
generation code through the same batchers, limits, metrics and API-key rule.

Namesakes, one concept at several layers (inference): ``ganserve.service.oip.inference``:
what a protocol request means for a GAN; ``ganserve.service.api.routes.inference``: the HTTP
routes; ``ganserve.service.schemas.inference``: the HTTP bodies.
"""

from __future__ import annotations

import json
import math
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ganserve.service import generation
from ganserve.service.api.deps import (
    RegistryDep,
    Serving,
    ServingDep,
    SettingsDep,
    deadline_for,
    get_serving,
    guarded,
)
from ganserve.service.api.fast_path import Hot
from ganserve.service.auth import require_key_for_inference
from ganserve.service.errors import protocol_error_responses
from ganserve.service.observability import IMAGES
from ganserve.service.oip import inference, tensors
from ganserve.service.registry import LoadedVersion, Registry
from ganserve.service.schemas.inference import (
    InferRequest,
    InferResponse,
    ModelConfig,
    ModelMetadata,
    ServerMetadata,
)
from ganserve.service.settings import Settings

router = APIRouter(prefix="/v2", tags=["inference"])
KEYED = [Depends(require_key_for_inference)]      # GANSERVE_INFERENCE_NEEDS_KEY
INLINE_ELEMENTS = 1 << 16       # bigger responses are built in a worker thread

Name = Annotated[str, Path(max_length=128, description="model name",
                           openapi_examples={"fashion-dcgan": {"value": "fashion-dcgan"}},
                           json_schema_extra={"x-capability": "any"})]
Version = Annotated[str, Path(max_length=32, description="a loaded version",
                              openapi_examples={"a version": {"value": "1"}})]
READ_ERRORS = protocol_error_responses(401, 403, 404, 422)
INFER_ERRORS = protocol_error_responses(401, 403, 404, 408, 413, 415, 422, 504)
INFER_BODY = {"requestBody": {"required": True, "description": (
    "JSON (application/json), or with the binary tensor extension a JSON header of "
    "Inference-Header-Content-Length bytes followed by the inputs' raw bytes "
    "(application/octet-stream); Content-Encoding gzip or deflate either way"),
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}},
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}}
INFER_OK = {200: {"model": InferResponse, "description": (
    "JSON, or (outputs asked for with binary_data) the JSON header of "
    "Inference-Header-Content-Length bytes followed by their raw bytes"),
    "content": {"application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}}


@router.get("", response_model=ServerMetadata, responses=protocol_error_responses(),
            summary="Server metadata: name, version, protocol extensions")
async def server_metadata() -> dict[str, Any]:
    return inference.server_metadata()


@router.get("/models/{name}", response_model=ModelMetadata, responses=READ_ERRORS,
            dependencies=KEYED,
            summary="Model metadata (the default version's tensors; every loaded version)")
async def model_metadata(name: Name, registry: RegistryDep) -> dict[str, Any]:
    return await inference.model_metadata(registry, name, None)


@router.get("/models/{name}/versions/{version}", response_model=ModelMetadata,
            responses=READ_ERRORS, dependencies=KEYED, summary="One version's metadata")
async def version_metadata(name: Name, version: Version,
                           registry: RegistryDep) -> dict[str, Any]:
    return await inference.model_metadata(registry, name, version)


@router.get("/models/{name}/config", response_model=ModelConfig, responses=READ_ERRORS,
            dependencies=KEYED,
            summary="Triton's model configuration (max batch size, inputs, outputs)")
async def model_config(name: Name, registry: RegistryDep,
                       settings: SettingsDep) -> dict[str, Any]:
    return inference.model_config(await registry.resolve(name, None), settings)


@router.get("/models/{name}/versions/{version}/config", response_model=ModelConfig,
            responses=READ_ERRORS, dependencies=KEYED,
            summary="One version's Triton model configuration")
async def version_config(name: Name, version: Version, registry: RegistryDep,
                         settings: SettingsDep) -> dict[str, Any]:
    return inference.model_config(await registry.resolve(name, version), settings)


@router.post("/models/{name}/infer", response_class=Response, openapi_extra=INFER_BODY,
             responses={**INFER_OK, **INFER_ERRORS},
             summary="Images from seed, z or w tensors (the default version)")
async def infer(name: Name, request: Request, call: ServingDep) -> Response:
    return await _infer(name, None, request, call.registry, call.settings)


@router.post("/models/{name}/versions/{version}/infer", response_class=Response,
             openapi_extra=INFER_BODY, responses={**INFER_OK, **INFER_ERRORS},
             summary="Images from seed, z or w tensors (one version)")
async def infer_version(name: Name, version: Version, request: Request,
                        call: ServingDep) -> Response:
    return await _infer(name, version, request, call.registry, call.settings)


async def _infer_direct(request: Request, call: Serving, params: dict[str, str], _: None
                        ) -> Response:
    return await _infer(params["name"], params.get("version"), request, call.registry,
                        call.settings)


# the hot routes, served by api.fast_path (these read their own body: any content type)
HOT = {infer: Hot(_infer_direct, get_serving), infer_version: Hot(_infer_direct, get_serving)}


async def _infer(name: str, version: str | None, request: Request, registry: Registry,
                 settings: Settings) -> Response:
    lv = await registry.resolve(name, version)
    body = tensors.inflate(await request.body(), request.headers.get("content-encoding"),
                           settings.max_body_bytes)
    header, binary = tensors.split_body(body, request.headers.get(tensors.HEADER_LENGTH))
    req = inference.request(header)
    plan = inference.plan(lv, req, tensors.read_inputs(req.inputs, binary), settings)
    deadline = min(deadline_for(settings), time.monotonic() + (plan.timeout_s or math.inf))
    gen = await guarded(request, generation.rows(lv, plan.rows, plan.psi, deadline), deadline)
    IMAGES.labels(lv.name, lv.version).inc(len(gen.images))
    outputs = inference.output_tensors(plan, gen)
    accept = request.headers.get("accept-encoding")
    if sum(t.array.size for t in outputs) > INLINE_ELEMENTS:
        return await run_in_threadpool(_response, lv, req, plan, outputs, accept)
    return _response(lv, req, plan, outputs, accept)


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _response(lv: LoadedVersion, req: InferRequest, plan: inference.Plan,
              outputs: list[tensors.Tensor], accept_encoding: str | None) -> Response:
    head: dict[str, Any] = {"model_name": lv.name, "model_version": lv.version}
    if req.id is not None:
        head["id"] = req.id
    outs, blobs = [], []
    for t, (_, binary) in zip(outputs, plan.outputs):
        out: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
        if binary:
            blobs.append(tensors.binary_data(t))
            out["parameters"] = {"binary_data_size": len(blobs[-1])}
            outs.append(_json(out))
        else:               # {..., "data": [...]}, the data spelled out by tensors
            outs.append(_json(out)[:-1] + b',"data":' + tensors.json_array(t) + b"}")
    head["outputs"] = []
    head_bytes = _json(head)[:-len(b"[]}")] + b"[" + b",".join(outs) + b"]}"
    headers = {"X-Model-Name": lv.name, "X-Model-Version": lv.version,
               "Vary": "Accept-Encoding"}
    body = head_bytes
    if blobs:
        body = b"".join([head_bytes, *blobs])
        headers[tensors.HEADER_LENGTH] = str(len(head_bytes))
    encoding = tensors.response_encoding(accept_encoding)
    if encoding:
        body = tensors.compress(body, encoding)
        headers["Content-Encoding"] = encoding
    return Response(body, headers=headers,
                    media_type="application/octet-stream" if blobs else "application/json")
