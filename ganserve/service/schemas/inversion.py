"""The bodies of projection (an image -> its latent) and of edits along latent directions.

Namesakes, one concept at several layers (inversion): ``ganserve.training.inversion``: the
encoder's training; ``ganserve.service.inversion``: projecting and editing in the API;
``ganserve.service.api.routes.inversion``: their HTTP routes; this module: the HTTP bodies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ganserve.images import SNEAKER_PNG
from ganserve.service.schemas.generate import (
    LATENT_MAX,
    ClassRef,
    Common,
    Psi,
    Seed,
    one_source,
)
from ganserve.strict import FiniteFloat, Int, Strict

AMOUNT_MAX = 50.0
Amount = Annotated[float, Field(ge=-AMOUNT_MAX, le=AMOUNT_MAX, allow_inf_nan=False,
                                description="how far: principal directions in standard "
                                "deviations; class directions: 1 is the move from the "
                                "first class to the second")]
DirectionName = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class ProjectRequest(Strict):
    """JSON form of ``POST /v1/models/{name}/project`` (or multipart: ``file`` plus the
    same fields as form fields)."""
    image: str = Field(..., min_length=1, description="base64 PNG, JPEG or WebP (a data: "
                       "URL prefix is allowed)")
    class_: ClassRef | None = Field(None, alias="class", description="conditional models: "
                                    "the image's class, if known (default: the encoder's "
                                    "guess)")
    version: str | None = Field(None, max_length=32, description="pin a version")

    model_config = ConfigDict(json_schema_extra={"examples": [{"image": SNEAKER_PNG}]})


class ProjectResponse(BaseModel):
    model: str
    version: str
    family: str
    latent: dict[str, list[float]] = Field(description='{"z": [...]} or {"w": [...]}: feed '
                                           "it to interpolate, edit or the protocol")
    class_index: int | None = Field(None, description="conditional models: the class used")
    class_name: str | None = None
    image: str = Field(description="base64 PNG: the reconstruction, G(latent)")
    input: str = Field(description="base64 PNG: the image as the model saw it (cropped "
                       "square, resized, grey or RGB)")
    scores: dict[str, float] = Field(description="psnr (dB) and ssim of the reconstruction "
                                     "against the input")
    method: Literal["encoder"] = "encoder"


class DirectionOut(BaseModel):
    name: str
    kind: Literal["principal", "class"]
    space: Literal["z", "w", "class"] = Field(description="what it moves: the latent, or "
                                              "the class weights")
    info: dict[str, Any] = Field(default_factory=dict, description="principal: "
                                 "explained_variance_ratio; class: from, to, and flip (the "
                                 "share of samples the classifier calls 'to' after amount 1)")


class DirectionsResponse(BaseModel):
    model: str
    version: str
    space: Literal["z", "w"]
    directions: list[DirectionOut]


class Strip(Strict):
    direction: DirectionName
    start: Amount = -3.0
    stop: Amount = 3.0
    steps: Int(2, 1024) = Field(7, description="images, both ends included")


class EditRequest(Common):
    """Start from a seed, an explicit z or (StyleGAN) w, as interpolate's endpoints do;
    move by ``directions``; with ``strip``, also along one more direction across a range
    (one image per step)."""
    seed: Seed | None = None
    z: list[FiniteFloat] | None = Field(None, max_length=LATENT_MAX)
    w: list[FiniteFloat] | None = Field(None, max_length=LATENT_MAX)
    class_: ClassRef | None = Field(None, alias="class", description="conditional models")
    directions: dict[DirectionName, Amount] = Field(default_factory=dict, max_length=64)
    strip: Strip | None = None
    truncation_psi: Psi = 1.0
    cols: Int(1, 4096) | None = Field(None, description="strip: images per row (default: "
                                      "all in one row)")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"seed": 7, "directions": {"pc0": 2.0}, "scale": 4},
        {"seed": 7, "strip": {"direction": "pc1", "start": -3, "stop": 3, "steps": 7},
         "scale": 4}]})

    @model_validator(mode="after")
    def _one_source(self) -> EditRequest:
        return one_source(self)
