"""Request and response bodies, with the examples the OpenAPI page runs as-is."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ganserve.latents import SEED_MAX

Seed = Annotated[int, Field(ge=0, le=SEED_MAX, description="0 .. 2^32-1")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ClassRef = Annotated[int | str, Field(description="class index, or name such as 'Sneaker'")]
Psi = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False,
                             description="truncation psi in [0, 2]; 1 = none. StyleGAN: in w "
                                         "(w_avg + psi (w - w_avg)); other families: "
                                         "truncated normal z (see README)")]


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    version: str | None = Field(None, description="pin a version; default: latest")
    format: Literal["png", "json"] | None = Field(
        None, description="png (default) or json with base64 PNGs; or send Accept")
    cols: int | None = Field(None, ge=1, le=4096, description="grid columns")
    scale: int = Field(1, ge=1, le=64, description="integer nearest-neighbour upscale")
    return_latents: bool = Field(False, description="json: include the latents used")


class SampleRequest(Options):
    n: int | None = Field(None, ge=1, description="images, from random seeds (returned)")
    seeds: list[Seed] | None = Field(None, min_length=1, description="explicit seeds")
    truncation_psi: Psi = 1.0
    class_: ClassRef | None = Field(None, alias="class",
                                    description="conditional models: default seed % classes")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"seeds": [0, 1, 2, 3, 4, 5, 6, 7], "truncation_psi": 1.0, "cols": 4, "scale": 4}]})

    @model_validator(mode="after")
    def _n_or_seeds(self) -> SampleRequest:
        if self.n is not None and self.seeds is not None and self.n != len(self.seeds):
            raise ValueError(f"n={self.n} but {len(self.seeds)} seeds given; send one of them")
        return self


class ConditionalRequest(SampleRequest):
    class_: ClassRef = Field(..., alias="class", description="class index or name")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"class": "Sneaker", "seeds": [0, 1, 2, 3], "scale": 4}]})


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    seed: Seed | None = None
    z: list[FiniteFloat] | None = Field(None, description="explicit latent, length z_dim")
    w: list[FiniteFloat] | None = Field(None, description="explicit w (StyleGAN), length w_dim")
    class_: ClassRef | None = Field(None, alias="class", description="conditional models")

    @model_validator(mode="after")
    def _one_source(self) -> Endpoint:
        given = [k for k in ("seed", "z", "w") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of seed, z or w")
        return self


class InterpolateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"start": {"seed": 1}, "end": {"seed": 2}, "steps": 8, "scale": 4},
        {"start": {"seed": 3, "class": "Sneaker"}, "end": {"seed": 3, "class": "Sandal"},
         "steps": 8, "scale": 4, "format": "gif"}]})

    start: Endpoint
    end: Endpoint
    steps: int = Field(8, ge=2, description="frames, endpoints included")
    space: Literal["z", "w"] = Field("z", description="w: StyleGAN only")
    method: Literal["slerp", "lerp"] = "slerp"
    truncation_psi: Psi = 1.0
    version: str | None = None
    format: Literal["png", "json", "gif", "webp"] | None = Field(
        None, description="png strip (default), json, or an animated gif / webp")
    frame_ms: int = Field(100, ge=10, le=5000, description="animation: ms per frame")
    cols: int | None = Field(None, ge=1, le=4096)
    scale: int = Field(1, ge=1, le=64)
    return_latents: bool = False


class StyleMixRequest(Options):
    row_seeds: list[Seed] = Field(..., min_length=1, description="rows: whose styles are kept")
    col_seeds: list[Seed] = Field(..., min_length=1,
                                  description="columns: whose styles replace the chosen layers")
    styles: str | list[int | str] = Field(
        "coarse", description="layer indices, ranges like '0-3', or coarse|middle|fine")
    truncation_psi: Psi = 1.0

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"row_seeds": [85, 100, 75], "col_seeds": [55, 821, 1789, 293], "styles": "0-3",
         "scale": 4}]})


class ImageOut(BaseModel):
    seed: int | None = None
    class_index: int | None = None
    class_name: str | None = None
    png: str = Field(description="base64 PNG of this image")
    latent: list[float] | None = None


class GenerateResponse(BaseModel):
    model: str
    version: str
    family: str
    images: list[ImageOut]
    grid_png: str | None = Field(None, description="base64 PNG of the grid / strip")


class VersionInfo(BaseModel):
    version: str
    status: Literal["ready", "failed"]
    error: str | None = None
    provider: str | None = None
    deterministic: bool | None = None
    created_at: str | None = None
    parent: str | None = None
    training: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None


class ModelInfo(BaseModel):
    name: str
    family: str | None = None
    resolution: int | None = None
    channels: int | None = None
    z_dim: int | None = None
    w_dim: int | None = None
    num_ws: int | None = None
    conditional: bool = False
    classes: list[str] = Field(default_factory=list)
    capabilities: list[str] = Field(default_factory=list)
    latest: str | None = None
    provider: str | None = None
    versions: list[VersionInfo] = Field(default_factory=list)
    metrics: dict[str, Any] | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]
