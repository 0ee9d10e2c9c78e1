"""The generation bodies: sample, conditional, interpolate and style-mix requests, and the JSON
form of generated images (what ``ganserve.service.rendering`` writes).

Namesakes, one concept at several layers (generating images): ``ganserve.cli.generate``: from
the command line; ``ganserve.service.api.routes.generate``: over HTTP;
``ganserve.service.schemas.generate``: the HTTP bodies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from ganserve.latents import SEED_MAX
from ganserve.strict import FiniteFloat, Int, Strict

# Hard ceilings of the schema; the configured (lower or equal) limits replace them in the
# served OpenAPI document and are enforced per request.
SCALE_MAX, IMAGES_MAX, STEPS_MAX, LATENT_MAX = 64, 4096, 1024, 4096


Seed = Int(0, SEED_MAX, description="0 .. 2^32-1")
# NVIDIA's seed lists: "0-7", "1,5,9-12" (expanded server-side, bounded before expansion)
_SPAN = r"[0-9]{1,10}(\s*-\s*[0-9]{1,10})?"
SEED_LIST_PATTERN = rf"^\s*{_SPAN}(\s*,\s*{_SPAN})*\s*$"
SeedList = Annotated[str, StringConstraints(pattern=SEED_LIST_PATTERN, max_length=4096),
                     Field(description="NVIDIA-style seed list, e.g. '0-7' or '1,5,9-12'")]
Seeds = Annotated[list[Seed], Field(min_length=1, max_length=IMAGES_MAX)] | SeedList


def _class_name(v: str) -> str:
    if not v.strip():
        raise ValueError("a class name cannot be empty; give a class index or name")
    return v.strip()


ClassName = Annotated[str, StringConstraints(min_length=1, max_length=128),
                      AfterValidator(_class_name)]
ClassRef = Annotated[Int(0, 1_000_000) | ClassName,
                     Field(description="class index, or name such as 'Sneaker'")]
Psi = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False,
                             description="truncation psi in [0, 2]; 1 = none. StyleGAN: in w "
                                         "(w_avg + psi (w - w_avg)); other families: "
                                         "truncated normal z (see README)")]


class Common(Strict):
    version: str | None = Field(None, max_length=32,
                                description="pin a version; default: latest")
    format: Literal["png", "json"] | None = Field(
        None, description="png (default) or json with base64 PNGs; or send Accept")
    scale: Int(1, SCALE_MAX) = Field(1, description="integer nearest-neighbour upscale")


class GridOptions(Common):
    cols: Int(1, IMAGES_MAX) | None = Field(None, description="grid columns")
    return_latents: bool = Field(False, description="json: include the latents used")


class SampleRequest(GridOptions):
    n: Int(1, IMAGES_MAX) | None = Field(None,
                          description="images, from random seeds (returned)")
    seeds: Seeds | None = Field(None, description="explicit seeds: a list, or a string such "
                                "as '0-7' or '1,5,9-12'")
    truncation_psi: Psi = 1.0
    class_: ClassRef | None = Field(None, alias="class",
                                    description="conditional models: default seed % classes")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"seeds": [0, 1, 2, 3, 4, 5, 6, 7], "truncation_psi": 1.0, "cols": 4, "scale": 4}]})


class ConditionalRequest(SampleRequest):
    class_: ClassRef = Field(..., alias="class", description="class index or name")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"class": "Sneaker", "seeds": [0, 1, 2, 3], "scale": 4}]})


def one_source(body: BaseModel) -> Any:
    """A start given by exactly one of a seed, an explicit z or an explicit w."""
    given = [k for k in ("seed", "z", "w") if getattr(body, k) is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of seed, z or w")
    return body


class Endpoint(Strict):
    seed: Seed | None = None
    z: list[FiniteFloat] | None = Field(None, max_length=LATENT_MAX,
                                        description="explicit latent, length z_dim")
    w: list[FiniteFloat] | None = Field(None, max_length=LATENT_MAX,
                                        description="explicit w (StyleGAN), length w_dim")
    class_: ClassRef | None = Field(None, alias="class", description="conditional models")

    @model_validator(mode="after")
    def _one_source(self) -> Endpoint:
        return one_source(self)


class InterpolateRequest(GridOptions):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"start": {"seed": 1}, "end": {"seed": 2}, "steps": 8, "scale": 4},
        {"start": {"seed": 3, "class": "Sneaker"}, "end": {"seed": 3, "class": "Sandal"},
         "steps": 8, "scale": 4, "format": "gif"}]})

    start: Endpoint
    end: Endpoint
    steps: Int(2, STEPS_MAX) = Field(8, description="frames, endpoints included")
    space: Literal["z", "w"] = Field("z", description="w: StyleGAN only")
    method: Literal["slerp", "lerp"] = "slerp"
    truncation_psi: Psi = 1.0
    format: Literal["png", "json", "gif", "webp"] | None = Field(
        None, description="png strip (default), json, or an animated gif / webp")
    frame_ms: Int(10, 5000) = Field(100, description="animation: ms per frame")


_STYLE = r"(coarse|middle|fine|[0-9]{1,6}(\s*-\s*[0-9]{1,6})?)"
STYLES_PATTERN = rf"^\s*{_STYLE}(\s*,\s*{_STYLE})*\s*$"
StyleSpec = Annotated[str, StringConstraints(pattern=STYLES_PATTERN, max_length=256)]
# one list item is one index, range or group (commas separate items of the string form)
StylePart = Int(0, 1023) | Annotated[str, StringConstraints(pattern=rf"^\s*{_STYLE}\s*$",
                                                           max_length=32)]


class StyleMixRequest(Common):
    """NVIDIA's layout is fixed (one column per column source plus the sources), so there
    is no ``cols`` count; the JSON form returns each cell's PNG and seed. Rows and columns
    are seeds (``row_seeds``, ``col_seeds``) or sources that may be latents
    (``row_sources``, ``col_sources``: a projected image's ``{"w": [...]}``, a
    ``{"z": [...]}`` or a ``{"seed": S}``)."""
    row_seeds: Seeds | None = Field(None, description="rows: whose styles are kept (list or "
                                    "'0-3'); or give row_sources")
    col_seeds: Seeds | None = Field(None, description="columns: whose styles replace the "
                                    "chosen layers (list or '0-3'); or give col_sources")
    row_sources: Annotated[list[Endpoint], Field(min_length=1, max_length=IMAGES_MAX)] | None \
        = Field(None, description="rows as sources: each a seed, z or w")
    col_sources: Annotated[list[Endpoint], Field(min_length=1, max_length=IMAGES_MAX)] | None \
        = Field(None, description="columns as sources: each a seed, z or w")
    styles: StyleSpec | Annotated[list[StylePart], Field(min_length=1, max_length=64)] = Field(
        "coarse", description="layer indices, ranges like '0-3', or coarse|middle|fine")
    truncation_psi: Psi = 1.0

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"row_seeds": [85, 100, 75], "col_seeds": [55, 821, 1789, 293], "styles": "0-3",
         "scale": 4}]})

    @model_validator(mode="after")
    def _one_of_each(self) -> StyleMixRequest:
        for seeds, sources in (("row_seeds", "row_sources"), ("col_seeds", "col_sources")):
            if (getattr(self, seeds) is None) == (getattr(self, sources) is None):
                raise ValueError(f"give exactly one of {seeds} or {sources}")
        return self


# ------------------------------------------------------------------------ responses


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
