"""The Open Inference Protocol bodies (KServe predict v2 / Triton): server and model metadata,
Triton's model configuration, the infer request and response, and the protocol's error.

Namesakes, one concept at several layers (inference): ``ganserve.service.oip.inference``:
what a protocol request means for a GAN; ``ganserve.service.api.routes.inference``: the HTTP
routes; ``ganserve.service.schemas.inference``: the HTTP bodies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ganserve.strict import Int, Strict

Datatype = Literal["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                   "INT64", "FP16", "FP32", "FP64", "BYTES"]
TensorName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Scalar = bool | int | float | Annotated[str, StringConstraints(max_length=1024)]
Parameters = Annotated[dict[Annotated[str, StringConstraints(max_length=64)], Scalar],
                       Field(max_length=16)]


class InputTensor(Strict):
    name: TensorName
    shape: Annotated[list[Int(0, 1 << 31)], Field(max_length=8)]
    datatype: Datatype
    parameters: Parameters | None = Field(None, description="binary_data_size: this "
                                          "tensor's bytes after the JSON header")
    data: Any = Field(None, description="the elements in row-major order, flat or nested")


class RequestedOutput(Strict):
    name: TensorName
    parameters: Parameters | None = Field(None, description="binary_data: true for raw "
                                          "bytes after the JSON header")


class InferRequest(Strict):
    """Inputs: ``seed`` (INT64 [n]) or ``z`` (FP32 [n, z_dim]) or, StyleGAN, ``w`` (FP32
    [n, w_dim]); ``class`` (INT64 [n] indices or BYTES [n] names) for conditional models;
    ``truncation_psi`` (FP32 [1], or the request parameter). Outputs: ``image`` (UINT8
    [n, h, w, c], the default), ``raw`` (FP32 [n, c, h, w]), ``z``, ``w``."""
    id: Annotated[str, StringConstraints(max_length=256)] | None = None
    parameters: Parameters | None = Field(None, description="truncation_psi, "
                                          "binary_data_output")
    inputs: Annotated[list[InputTensor], Field(min_length=1, max_length=8)]
    outputs: Annotated[list[RequestedOutput], Field(max_length=8)] | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": "1", "inputs": [{"name": "seed", "shape": [2], "datatype": "INT64",
                                "data": [1, 2]}],
         "outputs": [{"name": "image"}]}]})


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[OutputTensor]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: any size (the batch dimension)")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(default_factory=list)
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelConfig(BaseModel):
    """Triton's model configuration, as its HTTP API answers it (what ``tritonclient``'s
    ``get_model_config`` reads)."""
    model_config = ConfigDict(extra="allow")

    name: str
    platform: str
    backend: str
    max_batch_size: int
    input: list[dict[str, Any]]
    output: list[dict[str, Any]]


class ProtocolError(BaseModel):
    """The protocol's error: one string. (The request id is in the X-Request-Id header.)"""
    error: str
