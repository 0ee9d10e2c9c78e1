"""Datasets: upload a zip of images or an .npz, list, read, preview, remove.

Namesakes, one concept at several layers (datasets): ``ganserve.jobs.datasets``: how jobs find
and read them; ``ganserve.service.datasets``: the API's uploads and records;
``ganserve.service.api.routes.datasets``: their HTTP routes;
``ganserve.service.schemas.datasets``: the HTTP bodies.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ganserve.data.uploads import ID_PATTERN
from ganserve.service.api.deps import DatasetsDep
from ganserve.service.auth import require_key
from ganserve.service.errors import InvalidInput, error_responses
from ganserve.service.schemas.datasets import DatasetList, DatasetOut

router = APIRouter(prefix="/v1/datasets", tags=["datasets"],
                   dependencies=[Depends(require_key)])
DatasetId = Annotated[str, Path(pattern=ID_PATTERN, description="a dataset id (GET "
                                "/v1/datasets lists them)", openapi_examples={
                                    "an id": {"value": "0123456789abcdef"}})]
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "additionalProperties": False,
        "properties": {
            "file": {"type": "string", "format": "binary", "description":
                     "a .zip of PNG/JPEG/WebP images (class subfolders: Bag/001.png, or "
                     "flat) or an .npz with images [N,H,W] or [N,C,H,W] uint8, optional "
                     "labels [N] and class_names [K]"},
            "name": {"type": "string", "maxLength": 128, "examples": ["my bags"],
                     "description": "a name to show (default: the file's name)"}}}}}}}


def dataset_out(meta: dict[str, Any]) -> DatasetOut:
    base = f"/v1/datasets/{meta['id']}"
    return DatasetOut(**meta, links={"self": base, "preview": f"{base}/preview.png"})


@router.post("", status_code=201, response_model=DatasetOut, openapi_extra=UPLOAD_BODY,
             responses={200: {"model": DatasetOut, "description": "the same content was "
                              "already uploaded: that dataset"},
                        **error_responses(401, 403, 408, 413, 415, 422, 429, 507)},
             summary="Upload a dataset (multipart: file = .zip of images or .npz)")
async def upload(request: Request, response: Response, datasets: DatasetsDep) -> DatasetOut:
    stored = await datasets.upload(request)
    response.status_code = 201 if stored.created else 200
    response.headers["Location"] = f"/v1/datasets/{stored.meta['id']}"
    return dataset_out(stored.meta)


@router.get("", response_model=DatasetList, responses=error_responses(401, 403, 404, 422),
            summary="List uploaded datasets, newest first")
def list_datasets(datasets: DatasetsDep,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
                  cursor: Annotated[str | None, Query(pattern=ID_PATTERN, description=
                                                      "next from the previous page")] = None
                  ) -> DatasetList:
    cap = datasets.settings.max_dataset_list
    if limit > cap:
        raise InvalidInput(f"limit={limit} is above GANSERVE_MAX_DATASET_LIST ({cap})",
                           field="limit")
    page, nxt = datasets.page(limit, cursor)
    return DatasetList(datasets=[dataset_out(m) for m in page], next=nxt)


@router.get("/{id}", response_model=DatasetOut, responses=error_responses(401, 403, 404, 422),
            summary="One dataset: images, classes with counts, content hash")
def get_dataset(id: DatasetId, datasets: DatasetsDep) -> DatasetOut:
    return dataset_out(datasets.get(id))


@router.get("/{id}/preview.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "up to 8 images "
                             "per class, one class per row"},
                       **error_responses(401, 403, 404, 422)},
            summary="A grid of a few images of each class")
def preview(id: DatasetId, datasets: DatasetsDep) -> Response:
    return Response(datasets.preview(id), media_type="image/png")


@router.delete("/{id}", status_code=204, response_class=Response,
               responses=error_responses(401, 403, 404, 409, 422),
               summary="Remove a dataset (409 while a queued or running job uses it)")
async def delete_dataset(id: DatasetId, datasets: DatasetsDep) -> Response:
    await run_in_threadpool(datasets.remove, id)
    return Response(status_code=204)
