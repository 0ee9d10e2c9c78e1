"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``): ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer, on its own port
(``serve --grpc-port``, off by default).

It runs inside each API worker process, on that worker's event loop, next to the HTTP side:
ModelInfer is the HTTP infer's code (``inference.plan`` -> ``generation.rows`` -> the same
batchers), so a gRPC request joins the same batches under the same limits, metrics and
API-key rule (the key in the ``authorization`` metadata). Workers share the port through
SO_REUSEPORT (gRPC's default on Linux), and the kernel spreads connections between them. On
a stop signal the server stops taking RPCs at once and lets the ones in flight finish, within
the drain timeout, like the HTTP side.

Inputs come in ``contents`` or ``raw_input_contents``; outputs always go out in
``raw_output_contents`` (as Triton answers). Errors are gRPC status codes with the HTTP
side's message: INVALID_ARGUMENT (400), NOT_FOUND (404), UNAUTHENTICATED (401),
PERMISSION_DENIED (403), RESOURCE_EXHAUSTED (413), UNAVAILABLE (503), DEADLINE_EXCEEDED (504).

The stubs are imported only when the server starts: they register the protocol's message
names in protobuf's default pool, as ``tritonclient.grpc``'s do, and one process cannot hold
both.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import grpc

from ganserve.service import generation
from ganserve.service.auth import check_read_key
from ganserve.service.errors import (
    DeadlineExceeded,
    InvalidInput,
    ServiceError,
    protocol_status,
)
from ganserve.service.observability import IMAGES, REQUEST_LATENCY, REQUESTS
from ganserve.service.oip import inference, tensors
from ganserve.service.readiness import check_ready

log = logging.getLogger(__name__)

STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
          408: grpc.StatusCode.DEADLINE_EXCEEDED, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
          415: grpc.StatusCode.INVALID_ARGUMENT, 422: grpc.StatusCode.INVALID_ARGUMENT,
          499: grpc.StatusCode.CANCELLED, 503: grpc.StatusCode.UNAVAILABLE,
          504: grpc.StatusCode.DEADLINE_EXCEEDED}
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
            "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
            "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
            "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def _param(p: Any) -> Any:
    which = p.WhichOneof("parameter_choice")
    return getattr(p, which) if which else None


def _params(m: Any) -> dict[str, Any] | None:
    return {k: _param(v) for k, v in m.items()} or None


def read_request(pb: Any) -> tuple[inference.InferRequest, dict[str, tensors.Tensor]]:
    """A ModelInferRequest -> the request the HTTP side checks, and its input tensors."""
    req = inference.request({
        "id": pb.id or None, "parameters": _params(pb.parameters),
        "inputs": [{"name": t.name, "shape": list(t.shape), "datatype": t.datatype,
                    "parameters": _params(t.parameters)} for t in pb.inputs],
        "outputs": [{"name": o.name, "parameters": _params(o.parameters)}
                    for o in pb.outputs] or None})
    _no_http_parameters(req)
    raw = list(pb.raw_input_contents)
    if raw and any(t.HasField("contents") for t in pb.inputs):
        raise InvalidInput("inputs: contents and raw_input_contents both given; send one",
                           field="raw_input_contents")
    if raw and len(raw) != len(pb.inputs):
        raise InvalidInput(f"raw_input_contents: {len(raw)} entries for {len(pb.inputs)} "
                           "inputs (one each, in order)", field="raw_input_contents")
    out: dict[str, tensors.Tensor] = {}
    for i, (t, spec) in enumerate(zip(pb.inputs, req.inputs)):   # names unique (request)
        if raw:
            arr = tensors.from_bytes(spec.name, spec.datatype, spec.shape, raw[i])
        else:
            field = CONTENTS.get(spec.datatype)
            if field is None:
                raise InvalidInput(f"inputs.{spec.name}: {spec.datatype} has no contents "
                                   "field; send raw_input_contents",
                                   field=f"inputs.{spec.name}")
            arr = tensors.from_values(spec.name, spec.datatype, spec.shape,
                                      list(getattr(t.contents, field)))
        out[spec.name] = tensors.Tensor(spec.name, spec.datatype, list(spec.shape), arr)
    return req, out


def _no_http_parameters(req: inference.InferRequest) -> None:
    """The binary tensor extension's parameters are HTTP's: gRPC carries raw bytes itself."""
    http_only = [f"request.parameters.{k}" for k in req.parameters or {} if k ==
                 "binary_data_output"]
    http_only += [f"inputs.{t.name}.parameters.{k}" for t in req.inputs
                  for k in t.parameters or {} if k == "binary_data_size"]
    http_only += [f"outputs.{o.name}.parameters.{k}" for o in req.outputs or []
                  for k in o.parameters or {} if k == "binary_data"]
    if http_only:
        raise InvalidInput(f"{http_only[0]}: a parameter of HTTP's binary tensor extension; "
                           "over gRPC send raw_input_contents (outputs always come back in "
                           "raw_output_contents)", field=http_only[0])


class InferenceService:
    """The servicer: each RPC reads the app's state (registry, settings, keys, draining)."""

    def __init__(self, state: Any, pb: Any):
        self.state, self.pb = state, pb

    async def _guard(self, context: grpc.aio.ServicerContext, endpoint: str) -> None:
        md = dict(context.invocation_metadata() or ())
        if self.state.settings.inference_needs_key:
            check_read_key(self.state.keys, md.get("authorization"), f"grpc:{endpoint}")

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return self.pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        try:
            check_ready(self.state)
        except ServiceError:
            return self.pb.ServerReadyResponse(ready=False)
        return self.pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        try:                                # health: no key, as over HTTP
            await self.state.registry.resolve(request.name, request.version or None)
        except ServiceError:
            return self.pb.ModelReadyResponse(ready=False)
        return self.pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return self.pb.ServerMetadataResponse(**inference.server_metadata())

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        return await _answer(context, self._model_metadata(request, context))

    async def _model_metadata(self, request: Any, context: Any) -> Any:
        await self._guard(context, "ModelMetadata")
        meta = await inference.model_metadata(self.state.registry, request.name,
                                              request.version or None)
        T = self.pb.ModelMetadataResponse.TensorMetadata
        return self.pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[T(**t) for t in meta["inputs"]], outputs=[T(**t) for t in meta["outputs"]])

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        t0, status = time.perf_counter(), 500
        try:
            response = await self._infer(request, context)
            status = 200
            return response
        except ServiceError as e:
            status = protocol_status(e.status)
            await context.abort(STATUS.get(e.status, grpc.StatusCode.INTERNAL), e.message)
        except asyncio.CancelledError:
            status = 499
            raise
        finally:        # as the HTTP side labels: a name the store does not hold is unknown
            model = (request.model_name if request.model_name in self.state.registry.models
                     else "unknown")
            REQUESTS.labels("grpc:ModelInfer", model, str(status)).inc()
            REQUEST_LATENCY.labels("grpc:ModelInfer", model).observe(time.perf_counter() - t0)

    async def _infer(self, pb: Any, context: Any) -> Any:
        await self._guard(context, "ModelInfer")
        s = self.state.settings
        lv = await self.state.registry.resolve(pb.model_name, pb.model_version or None)
        req, inputs = read_request(pb)
        plan = inference.plan(lv, req, inputs, s, raw_outputs=True)
        # the sooner of the setting, the request's timeout parameter and the client's deadline
        budget = min(s.request_deadline_s, plan.timeout_s or math.inf,
                     context.time_remaining() or math.inf)
        try:
            async with asyncio.timeout(budget):
                gen = await generation.rows(lv, plan.rows, plan.psi,
                                            time.monotonic() + budget)
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within the {budget:.1f} s deadline") from None
        IMAGES.labels(lv.name, lv.version).inc(len(gen.images))
        out = self.pb.ModelInferResponse(model_name=lv.name, model_version=lv.version,
                                         id=pb.id)
        for t in inference.output_tensors(plan, gen):
            out.outputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
            out.raw_output_contents.append(tensors.binary_data(t))
        return out


async def _answer(context: Any, work: Any) -> Any:
    try:
        return await work
    except ServiceError as e:
        await context.abort(STATUS.get(e.status, grpc.StatusCode.INTERNAL), e.message)


class GrpcServer:
    """One worker's gRPC server: started with the app, stopped on the drain signal."""

    def __init__(self, server: grpc.aio.Server, port: int, grace_s: float):
        self.server, self.port, self.grace_s = server, port, grace_s
        self._stopping: asyncio.Task | None = None

    def begin_stop(self) -> None:
        """No new RPCs from now on; those in flight get the drain timeout to finish."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self.server.stop(self.grace_s))

    async def close(self) -> None:
        self.begin_stop()
        assert self._stopping is not None
        await self._stopping


async def start(state: Any) -> GrpcServer:
    """Serve the protocol's gRPC service on GANSERVE_GRPC_HOST:GANSERVE_GRPC_PORT."""
    from ganserve.service.oip import grpc_predict_v2_pb2 as pb
    from ganserve.service.oip import grpc_predict_v2_pb2_grpc as pb_grpc

    s = state.settings
    limit = s.max_body_bytes
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit),
                                      ("grpc.max_send_message_length", -1),
                                      ("grpc.so_reuseport", 1)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(state, pb), server)
    host = f"[{s.grpc_host}]" if ":" in s.grpc_host else s.grpc_host     # IPv6
    address = f"{host}:{s.grpc_port}"
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"gRPC: cannot listen on {address}")
    await server.start()
    log.info("gRPC (Open Inference Protocol) on %s", address)
    return GrpcServer(server, port, s.drain_timeout_s)
