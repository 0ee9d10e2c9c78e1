"""Jobs: submit a fine-tune, an evaluation or a projection, follow it, cancel it.

Namesakes, one concept at several layers (jobs (the records themselves are the package
ganserve.jobs)): ``ganserve.service.jobs``: the API's side;
``ganserve.service.api.routes.jobs``: their HTTP routes; ``ganserve.service.schemas.jobs``: the
HTTP bodies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy.exc import SQLAlchemyError
from sse_starlette.sse import EventSourceResponse

from ganserve.jobs.records import Job
from ganserve.service.api.deps import JobsDep, RegistryDep, require_json
from ganserve.service.auth import require_key
from ganserve.service.errors import InvalidInput, JobNotFound, NoSamplesYet, error_responses
from ganserve.service.jobs import JobService
from ganserve.service.schemas.jobs import (
    EvaluateSpec,
    FineTuneSpec,
    JobList,
    JobOut,
    JobStateName,
    JobTypeName,
    ProjectSpec,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(require_key)])
EVENT_POLL_S = 0.5
EVENT_DB_FAILURES = 20          # consecutive unreadable polls (10 s) before giving up
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="the same key (and body) returns the same job instead of a second one")]


JobIdPath = Annotated[str, Path(max_length=64, description="a job id (GET /v1/jobs lists "
                                "them)", openapi_examples={"a job id": {
                                    "value": "0123456789abcdef0123456789abcdef"}})]




def job_out(job: Job, request: Request | None = None) -> JobOut:
    """The record; a read-only key sees a webhook's scheme and host only (its path and query
    often carry the receiver's secret)."""
    out = job.public()
    if request is not None and getattr(request.state, "api_key_read_only", False):
        out["request"] = _without_webhook_secrets(out["request"])
    return JobOut(**out)


def _without_webhook_secrets(spec: dict) -> dict:
    hook = spec.get("webhook")
    if not isinstance(hook, dict) or not hook.get("url"):
        return spec
    parts = urlsplit(hook["url"])
    return spec | {"webhook": hook | {"url": f"{parts.scheme}://{parts.hostname}/..."}}


def _accepted(job: Job, created: bool, response: Response) -> JobOut:
    response.status_code = 202
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job_out(job)


@router.post("/fine-tune", status_code=202, response_model=JobOut,
             dependencies=[Depends(require_json)],
             responses=error_responses(401, 403, 404, 408, 409, 413, 415, 422, 429),
             summary="Fine-tune a model version on a dataset; the new version is served "
                     "when it succeeds")
async def submit_fine_tune(spec: FineTuneSpec, response: Response, jobs: JobsDep,
                           registry: RegistryDep, key: IdempotencyKey = None) -> JobOut:
    await registry.catch_up(spec.model, spec.version)   # one a job just made
    return _accepted(*await run_in_threadpool(jobs.submit_fine_tune, spec, key), response)


@router.post("/evaluate", status_code=202, response_model=JobOut,
             dependencies=[Depends(require_json)],
             responses=error_responses(401, 403, 404, 408, 409, 413, 415, 422, 429),
             summary="Score a model version (FID, KID, precision/recall, classes...)")
async def submit_evaluate(spec: EvaluateSpec, response: Response, jobs: JobsDep,
                          registry: RegistryDep, key: IdempotencyKey = None) -> JobOut:
    await registry.catch_up(spec.model, spec.version)   # one a job just made
    return _accepted(*await run_in_threadpool(jobs.submit_evaluate, spec, key), response)


@router.post("/project", status_code=202, response_model=JobOut,
             dependencies=[Depends(require_json)],
             responses=error_responses(400, 401, 403, 404, 408, 409, 413, 415, 422, 429),
             summary="Project an image precisely: gradient descent from the encoder's latent; "
                     "the result holds what POST /v1/models/{name}/project answers")
async def submit_project(spec: ProjectSpec, response: Response, jobs: JobsDep,
                         registry: RegistryDep, key: IdempotencyKey = None) -> JobOut:
    await registry.catch_up(spec.model, spec.version)   # one a job just made
    return _accepted(*await run_in_threadpool(jobs.submit_project, spec, key), response)


JOB_ID = re.compile(r"[0-9a-f]{32}")      # ganserve.jobs.records.new_job_id


def _cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(text: str) -> tuple[dt.datetime, str]:
    """Only what ``_cursor`` writes: a zoned time the records can hold and a job id. A
    crafted one (no zone, year 1 east of UTC, a NUL in the id) is a 422, never a query that
    fails in the database (503)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        t, jid = raw.split("|", 1)
        when = dt.datetime.fromisoformat(t)
        if when.tzinfo is None or not JOB_ID.fullmatch(jid):
            raise ValueError(raw)
        return when.astimezone(dt.UTC), jid
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API gave out (use the 'next' of a page)",
                           field="cursor") from None


@router.get("", response_model=JobList, responses=error_responses(401, 403, 422),
            summary="Jobs, newest first, filtered by state, type and model")
def list_jobs(request: Request, jobs: JobsDep, state: JobStateName | None = None,
              type: JobTypeName | None = None,
              model: Annotated[str | None, Query(max_length=128)] = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
              cursor: Annotated[str | None, Query(max_length=256)] = None) -> JobList:
    cap = request.app.state.settings.max_job_list
    if limit > cap:
        raise InvalidInput(f"limit={limit} is above GANSERVE_MAX_JOB_LIST ({cap})",
                           field="limit")
    before = _parse_cursor(cursor) if cursor else None
    page = jobs.store.list(state=state, type=type, model=model, limit=limit + 1,
                           before=before)
    more = len(page) > limit
    page = page[:limit]
    return JobList(jobs=[job_out(j, request) for j in page],
                   next=_cursor(page[-1]) if more and page else None)


@router.get("/{job_id}", response_model=JobOut, responses=error_responses(401, 403, 404, 422),
            summary="One job: state, progress, ETA, result or error")
def get_job(job_id: JobIdPath, request: Request, jobs: JobsDep) -> JobOut:
    return job_out(jobs.get(job_id), request)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobOut,
             responses=error_responses(401, 403, 404, 408, 409, 413, 422),
             summary="Cancel: a queued job never starts; a running one stops at its next "
                     "step. No version is registered")
def cancel_job(job_id: JobIdPath, jobs: JobsDep) -> JobOut:
    return job_out(jobs.cancel(job_id))


@router.get("/{job_id}/samples.png", response_class=Response,
            responses={200: {"content": {"image/png": {}},
                             "description": "the latest progress image"},
                       **error_responses(401, 403, 404, 422)},
            summary="A fine-tune's latest progress grid (fixed seeds), or a projection's "
                    "current reconstruction")
def job_samples(job_id: JobIdPath, jobs: JobsDep) -> FileResponse:
    job = jobs.get(job_id)
    path = jobs.settings.jobs_dir / job.id / "run" / "samples" / "latest.png"
    if not path.is_file():
        raise NoSamplesYet(f"job {job.id} ({job.state}) has no progress grid yet"
                           + (" (evaluations make none)" if job.type == "evaluate" else ""))
    return FileResponse(path, media_type="image/png",
                        headers={"Cache-Control": "no-cache"})


@router.get("/{job_id}/events", response_class=Response,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events: 'progress' while the job "
                                            "runs, 'state' on each change, then 'end' with "
                                            "the final record"},
                       **error_responses(401, 403, 404, 422)},
            summary="Follow a job as Server-Sent Events")
async def job_events(job_id: JobIdPath, request: Request, jobs: JobsDep) -> EventSourceResponse:
    job = await run_in_threadpool(jobs.get, job_id)
    return EventSourceResponse(_events(request, jobs, job), ping=15,
                               headers={"Cache-Control": "no-cache",
                                        "X-Accel-Buffering": "no"})


async def _events(request: Request, jobs: JobService, job: Job) -> AsyncIterator[dict]:
    last_state, last_update, failures = None, None, 0
    while True:
        if job.state != last_state:
            yield {"event": "state", "data": json.dumps({"state": job.state, "id": job.id})}
            last_state = job.state
        if job.updated_at != last_update and job.progress is not None and not job.terminal:
            yield {"event": "progress", "data": json.dumps(job.progress)}
        last_update = job.updated_at
        if job.terminal:
            yield {"event": "end", "data": job_out(job, request).model_dump_json()}
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_POLL_S)
        try:
            job = await run_in_threadpool(jobs.get, job.id)
            failures = 0
        except SQLAlchemyError as e:        # the records blinked: keep the stream, retry
            failures += 1
            if failures >= EVENT_DB_FAILURES:
                yield {"event": "error", "data": json.dumps(
                    {"message": f"job records unreadable ({type(e).__name__}); reconnect"})}
                return
        except JobNotFound:
            yield {"event": "error", "data": json.dumps({"message": "the job was deleted"})}
            return
