"""The model bodies: listing, versions, and the default version.

Namesakes, one concept at several layers (models): ``ganserve.service.api.routes.models``:
their HTTP routes; ``ganserve.service.schemas.models``: the HTTP bodies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ganserve.strict import Strict


class BatchingInfo(BaseModel):
    max_batch_rows: int = Field(description="rows per ONNX Runtime run")
    max_batch_delay_ms: float = Field(description="longest a row waits for others to join")


class VersionInfo(BaseModel):
    version: str
    status: Literal["ready", "failed"]
    error: str | None = None
    provider: str | None = None
    deterministic: bool | None = None
    fp16: bool | None = Field(None, description="runs its float16 graphs (GANSERVE_FP16)")
    batching: BatchingInfo | None = Field(None, description="this version's dynamic "
                                          "batching on its device")
    created_at: str | None = None
    parent: str | None = None
    training: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    size_bytes: int | None = Field(None, description="the version folder's files")
    default: bool = Field(False, description="what unversioned requests get")


class ModelInfo(BaseModel):
    name: str
    family: str | None = None
    resolution: int | None = None
    channels: int | None = None
    z_dim: int | None = None
    w_dim: int | None = None
    num_ws: int | None = None
    style_layers: dict[str, list[int]] | None = Field(
        None, description="StyleGAN: the w layers each named style group (coarse, middle, "
        "fine) stands for in style-mix's styles")
    conditional: bool = False
    classes: list[str] = Field(default_factory=list)
    capabilities: list[str] = Field(default_factory=list)
    latest: str | None = None
    default: str | None = Field(None, description="the version unversioned requests get: "
                                "the one set with PUT .../default, else the latest")
    provider: str | None = None
    versions: list[VersionInfo] = Field(default_factory=list)
    metrics: dict[str, Any] | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]


class VersionList(BaseModel):
    name: str
    default: str | None = None
    versions: list[VersionInfo]


class DefaultRequest(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"version": "1"}]})
    version: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,8}$")] | None = Field(
        description="a loaded version, or null for the highest one")
