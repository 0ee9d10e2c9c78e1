"""The dataset bodies: an uploaded dataset as stored, and the list.

Namesakes, one concept at several layers (datasets): ``ganserve.jobs.datasets``: how jobs find
and read them; ``ganserve.service.datasets``: the API's uploads and records;
``ganserve.service.api.routes.datasets``: their HTTP routes;
``ganserve.service.schemas.datasets``: the HTTP bodies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DatasetClass(BaseModel):
    name: str
    count: int = Field(description="images of this class")


class DatasetSource(BaseModel):
    filename: str = Field(description="the uploaded file's name")
    kind: Literal["zip", "npz"]
    bytes: int = Field(description="the uploaded file's size")


class DatasetLinks(BaseModel):
    self: str
    preview: str


class DatasetOut(BaseModel):
    """An uploaded dataset, as stored (converted to uint8 arrays by the upload rule)."""
    id: str = Field(description="the start of the content hash; pass as "
                    "{\"dataset\": {\"id\": ...}} to a fine-tune job")
    name: str
    images: int
    channels: Literal[1, 3]
    resolution: int = Field(description="the stored side in pixels (square); a job resizes "
                            "to the model's")
    conditional: bool = Field(description="labelled by class folders or an npz's labels")
    classes: list[DatasetClass]
    sha256: str = Field(description="hash of the stored images, labels and class names: "
                        "the same content uploaded again is this dataset")
    bytes: int = Field(description="bytes stored")
    created_at: str
    source: DatasetSource
    links: DatasetLinks


class DatasetList(BaseModel):
    datasets: list[DatasetOut]
    next: str | None = Field(None, description="cursor of the next page (pass as ?cursor=)")
