"""The job bodies: the requests (``FineTuneSpec``, ``EvaluateSpec``, defined in the core's
``ganserve.jobs.specs`` because the worker and the CLI check a request with the same classes)
and the records as the API shows them.

Namesakes, one concept at several layers (jobs (the records themselves are the package
ganserve.jobs)): ``ganserve.service.jobs``: the API's side;
``ganserve.service.api.routes.jobs``: their HTTP routes; ``ganserve.service.schemas.jobs``: the
HTTP bodies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ganserve.jobs.specs import EvaluateSpec, FineTuneSpec, ProjectSpec

__all__ = ["EvaluateSpec", "FineTuneSpec", "JobList", "JobLinks", "JobOut", "JobStateName",
           "JobTypeName", "ProjectSpec"]

JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobTypeName = Literal["fine-tune", "evaluate", "project"]


class JobLinks(BaseModel):
    self: str
    events: str
    samples: str | None = None
    cancel: str


class JobOut(BaseModel):
    """A job's record: what was asked, where it stands, how it ended."""
    id: str
    type: JobTypeName
    state: JobStateName
    model: str
    version: str | None = Field(None, description="the version the job starts from / scores")
    request: dict[str, Any] = Field(description="the submitted body, defaults filled in")
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str
    cancel_requested: bool = False
    attempts: int = Field(0, description="times a worker started it, clean hand-overs at "
                          "shutdown not counted (> 1: it resumed after a worker died)")
    progress: dict[str, Any] | None = Field(None, description="fine-tune: stage, step, "
                                            "total_steps, images_per_s, eta_s, losses; "
                                            "project: stage, step, total_steps, eta_s, "
                                            "loss, history")
    result: dict[str, Any] | None = Field(None, description="fine-tune: the new model and "
                                          "version, its quality figures; evaluate: the "
                                          "numbers; project: what POST "
                                          "/v1/models/{name}/project answers, refined")
    error: str | None = None
    links: JobLinks


class JobList(BaseModel):
    jobs: list[JobOut]
    next: str | None = Field(None, description="cursor of the next page (pass as ?cursor=)")
