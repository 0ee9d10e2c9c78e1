"""The JSON form of generated images: what ``rendering`` writes and the routes document."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
