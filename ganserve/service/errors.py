"""Domain errors and their one JSON shape: ``{"error": {"code", "message", ...}}``.

Every error the API returns — ours, FastAPI's validation errors, Starlette's 404/405, a body
too large or too slow, an unexpected exception (500) — has this shape and the request id, so
clients parse one thing. ``error_responses(...)`` documents the same statuses in OpenAPI.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from ganserve import names

log = logging.getLogger(__name__)


class ServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, **details: Any):
        super().__init__(message)
        self.message, self.field, self.headers, self.details = message, field, headers, details


class ModelNotFound(ServiceError):
    status, code = 404, "model_not_found"

    @classmethod
    def named(cls, name: str, known: list[str]) -> ModelNotFound:
        """The 404 for ``name``: the models there are, and the near miss."""
        return cls(names.unknown_name("model", name, known), field="name", available=known,
                   suggestion=names.closest(name, known))


class VersionNotFound(ServiceError):
    status, code = 404, "version_not_found"


class Unsupported(ServiceError):
    status, code = 400, "unsupported_for_family"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class InvalidImage(ServiceError):
    """An uploaded image that cannot be used: its code is the reason (not_an_image,
    corrupt_image, image_too_large...), as a dataset upload's are."""
    status, code = 422, "invalid_image"

    def __init__(self, message: str, *, reason: str, status: int = 422, **kw: Any):
        super().__init__(message, **kw)
        self.code, self.status = reason, status


class NotAvailable(ServiceError):
    """The version lacks what the operation needs (a projection encoder, latent directions):
    the request is right, the version is not ready for it."""
    status, code = 409, "not_available"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class RequestTimeout(ServiceError):
    status, code = 408, "request_timeout"


class InternalError(ServiceError):
    status, code = 500, "internal_error"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class QueueFull(ServiceError):
    status, code = 503, "queue_full"


class NotReady(ServiceError):
    status, code = 503, "not_ready"


class ModelUnavailable(ServiceError):
    status, code = 503, "model_unavailable"


class ClientDisconnected(ServiceError):
    """The client went away before its answer was ready (nginx's 499); nobody reads it."""
    status, code = 499, "client_closed_request"


class DeadlineExceeded(ServiceError):
    status, code = 504, "deadline_exceeded"


class JobNotFound(ServiceError):
    status, code = 404, "job_not_found"


class NoSamplesYet(ServiceError):
    status, code = 404, "no_samples_yet"


class JobConflict(ServiceError):
    """Cancel of a finished job; an Idempotency-Key reused for another request."""
    status, code = 409, "conflict"


class JobsUnavailable(ServiceError):
    """Jobs are off here (no training extras in embedded mode)."""
    status, code = 503, "jobs_unavailable"


class BrokerUnavailable(ServiceError):
    """The job queue's broker did not take a submission (the domain's
    ``ganserve.jobs.queue.QueueUnreachable``, as the API answers it)."""
    status, code = 503, "queue_unreachable"


class TooManyJobs(ServiceError):
    status, code = 429, "too_many_jobs"


class DatasetNotFound(ServiceError):
    status, code = 404, "dataset_not_found"


class DatasetRejected(ServiceError):
    """An upload refused; the code says why (``zip_bomb``, ``unsafe_path``, ...)."""
    status, code = 422, "invalid_dataset"

    def __init__(self, message: str, *, reason: str, status: int = 422, **kw: Any):
        super().__init__(message, **kw)
        self.code, self.status = reason, status


class BodyError(StarletteHTTPException):
    """A ServiceError raised while the body is read: FastAPI lets only HTTPExceptions out of
    its body reading, so the error travels wrapped and is unwrapped by the one mapping."""

    def __init__(self, error: ServiceError):
        super().__init__(error.status, error.message, headers=error.headers)
        self.error = error


class ErrorBody(BaseModel):
    """Every key is always there (``field`` null and ``details`` empty when they say
    nothing), whatever the status: a client reads one shape."""
    code: str = Field(description="what went wrong, for programs: model_not_found, "
                      "invalid_input, unauthorized, ...")
    message: str = Field(description="what went wrong and what to do, for people")
    field: str | None = Field(None, description="the request field, parameter or header "
                              "at fault, when there is one")
    request_id: str | None = Field(None, description="also in the X-Request-ID header")
    details: dict[str, Any] = Field(default_factory=dict, description="machine-readable "
                                    "specifics: allowed values, limits, the near miss")


class ErrorResponse(BaseModel):
    """The shape of every error response."""
    error: ErrorBody


STATUS_DOCS: dict[int, str] = {
    400: "operation not supported by this model's family (the families that support it "
         "are named)",
    401: "an API key is needed: Authorization: Bearer <key> (WWW-Authenticate says so)",
    403: "the API key is not valid, or is read-only and this is not a read",
    404: "unknown model, version, job or dataset (or no samples yet)",
    408: "the request body did not arrive within GANSERVE_BODY_TIMEOUT_S",
    413: "request body larger than GANSERVE_MAX_BODY_BYTES (an upload: "
         "GANSERVE_UPLOAD_MAX_BYTES, or its contents over an upload limit)",
    415: "the body is not JSON: send Content-Type: application/json (an upload: "
         "multipart/form-data with a .zip or .npz file)",
    409: "conflict: the job already finished, the Idempotency-Key was used for another "
         "request, or the version or dataset cannot be removed now (last, default, or "
         "read by a job)",
    429: "too many jobs queued (GANSERVE_MAX_QUEUED_JOBS) or uploads in progress "
         "(GANSERVE_UPLOAD_MAX_CONCURRENT); Retry-After",
    422: "invalid input (the field is named; a close match is suggested for unknown fields)",
    500: "unexpected server error (logged with the request id)",
    503: "not ready (starting or draining), queue full, model unavailable, or (jobs) the job "
         "queue unreachable or jobs off here; Retry-After",
    504: "deadline passed before the request ran",
    507: "the server's disk has no room for this upload; try again later",
}
# every route can answer these: a bug (500) and draining / starting (503)
ALWAYS = (500, 503)


class ProtocolErrorResponse(BaseModel):
    """The Open Inference Protocol's error (every path under /v2): one string. The request
    id is in the X-Request-ID header."""
    error: str = Field(description="what went wrong and what to do")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorResponse, "description": STATUS_DOCS[c]}
            for c in sorted({*codes, *ALWAYS})}


def protocol_error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The statuses of an Open Inference Protocol route, in the protocol's error shape (a
    body check that the REST API answers with 422 is a 400 here, as in Triton)."""
    return {c: {"model": ProtocolErrorResponse, "description": STATUS_DOCS[c]}
            for c in sorted({*codes, *ALWAYS} - {422} | ({400} if 422 in codes else set()))}


def is_protocol_path(path: str) -> bool:
    """The Open Inference Protocol's URL space: its errors take the protocol's shape."""
    return path == "/v2" or path.startswith("/v2/")


def error_body(rid: str | None, code: str, message: str, field: str | None = None,
               details: dict[str, Any] | None = None, protocol: bool = False) -> bytes:
    if protocol:
        return ProtocolErrorResponse(error=message).model_dump_json().encode()
    return ErrorResponse(error=ErrorBody(code=code, message=message, field=field,
                                         request_id=rid, details=details or {})
                         ).model_dump_json().encode()


def protocol_status(status: int) -> int:
    return 400 if status == 422 else status


def error_json(request: Request | None, status: int, code: str, message: str,
               field: str | None = None, details: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None) -> Response:
    rid = getattr(request.state, "request_id", None) if request is not None else None
    protocol = request is not None and is_protocol_path(request.url.path)
    if protocol:
        status = protocol_status(status)
    return Response(error_body(rid, code, message, field, details, protocol),
                    status_code=status, headers=headers, media_type="application/json")


HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def error_message(err: ServiceError, rid: str | None, path: str = ""
                  ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of ``err`` for a raw ASGI response (the middleware's)."""
    protocol = is_protocol_path(path)
    body = error_body(rid, err.code, err.message, err.field, err.details, protocol)
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (err.headers or {}).items()]
    return protocol_status(err.status) if protocol else err.status, headers, body


# ------------------------------------------------------------------ validation errors
_LOC_ROOTS = ("body", "query", "path", "header")
# names clients reach for, and the field each one means
SYNONYMS = {"psi": "truncation_psi", "trunc": "truncation_psi", "truncation": "truncation_psi",
            "seed": "seeds", "classes": "class", "class_": "class", "label": "class",
            "class_name": "class", "count": "n", "num": "n", "num_images": "n",
            "frames": "steps", "styles_layers": "styles", "layers": "styles",
            "rows": "row_seeds", "columns": "col_seeds", "cols_seeds": "col_seeds"}
# what a string that fails its schema pattern should look like, in words
_SEED_HINT = "a list of seeds, or a string such as '0-7' or '1,5,9-12' (0 .. 2^32-1)"
PATTERN_HINTS = {"path": "a path relative to the datasets folder, without control characters",
                 "id": "a dataset id: 16 hex digits (see GET /v1/datasets)",
                 "seeds": _SEED_HINT, "row_seeds": _SEED_HINT, "col_seeds": _SEED_HINT,
                 "styles": "layer indices, ranges like '0-3', or coarse|middle|fine, "
                           "separated by commas"}
# pydantic's names for the union member it tried: 'str', 'list[int]', 'constrained-str',
# 'function-after[...]', '`list[...]`' -- a type name alone, or one with [ or -
_UNION_TAG = re.compile(r"`.*`|(str|int|float|bool|list|dict|none)|[a-z]+(-[a-z]+)*\[.*\]|"
                        r"(constrained|function|json|literal|tagged)-[a-z-]+(\[.*\])?")


def _field_path(loc: tuple[Any, ...]) -> str:
    """``('body', 'seeds', 'list[constrained-int]', 0)`` -> ``seeds.0``: pydantic names the
    union member it tried; clients want the field."""
    if loc and loc[0] in _LOC_ROOTS:        # where it came from, not a field ("path" can be)
        loc = loc[1:]
    parts = [str(p) for p in loc if not (isinstance(p, str) and _UNION_TAG.fullmatch(p))]
    return ".".join(parts) or "body"


def _body_model(request: Request) -> type[BaseModel] | None:
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _known_fields(model: type[BaseModel] | None, path: list[str]) -> list[str]:
    """Field names (aliases first) of the model at ``path`` inside the body model."""
    for part in path:
        if model is None:
            return []
        f = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        ann = getattr(f, "annotation", None)
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type)]
        model = next((a for a in [ann, *args] if isinstance(a, type)
                      and issubclass(a, BaseModel)), None)
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _unknown_field_message(request: Request, loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in _LOC_ROOTS]
    name, where = parts[-1][:64], parts[:-1]
    known = _known_fields(_body_model(request), where)
    return f"unknown field {name!r}{did_you_mean(name, known)} Fields here: {', '.join(known)}"


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """'; did you mean 'X'?' for the known name a client probably meant (a synonym first),
    else ''."""
    guess = SYNONYMS.get(name.lower())
    if guess in known:
        return f"; did you mean {guess!r}?"
    return names.did_you_mean(name, known)


def _problem(request: Request, e: dict[str, Any]) -> dict[str, str]:
    loc = tuple(e.get("loc", ()))
    kind = e.get("type", "")
    if kind == "extra_forbidden":
        return {"field": _field_path(loc), "message": _unknown_field_message(request, loc)}
    if kind == "json_invalid":
        pos = next((p for p in loc if isinstance(p, int)), None)
        at = f" at byte {pos}" if pos is not None else ""
        reason = (e.get("ctx") or {}).get("error", "")
        return {"field": "body", "message": f"malformed JSON{at}: {reason}".rstrip(": ")}
    msg = str(e.get("msg", "invalid input")).removeprefix("Value error, ")
    field = _field_path(loc)
    leaf = next((p for p in reversed(field.split(".")) if not p.isdigit()), field)
    if kind == "string_pattern_mismatch":
        msg = PATTERN_HINTS.get(leaf, msg)
    settings = getattr(request.app.state, "settings", None)
    limits = {} if settings is None else _limits(settings, request.scope.get("route"))
    limit = limits.get(leaf)
    if limit is not None and kind in ("less_than_equal", "too_long"):   # not the schema's cap
        value = e.get("input")
        shown = f"{len(value)} items" if kind == "too_long" and hasattr(value, "__len__") \
            else str(value)
        msg = f"{shown} is over the limit of {limit}"[:200]
    return {"field": field, "message": msg}


def _limits(settings: Any, route: Any) -> dict[str, int]:
    """The configured limits that apply to the request the matched route takes: its
    resource's (by the route's tag) and its job body's (by the body's schema)."""
    resource = (getattr(route, "tags", None) or [""])[0]
    body = getattr(getattr(getattr(route, "body_field", None), "field_info", None),
                   "annotation", None)
    return settings.resource_limits(resource) | settings.job_limits().get(
        getattr(body, "__name__", ""), {})


MAX_PROBLEMS = 20
_CLIP = 200


def _clip(problem: dict[str, str]) -> dict[str, str]:
    """Echo no more than a little of what the client sent (a 1 MB field name...)."""
    return {k: v if len(v) <= _CLIP else v[:_CLIP] + "..." for k, v in problem.items()}


def _pick(problems: list[dict[str, str]], errs: list[dict[str, Any]]) -> dict[str, str]:
    """The problem to headline: the first failed constraint, else the first problem. A
    'wrong type' usually comes from a union member the client did not mean ('class': '' is
    an empty name, not 'not an integer'; a styles list is not 'not a string')."""
    for p, e in zip(problems, errs):
        if not str(e.get("type", "")).endswith("_type"):
            return p
    return problems[0]


def _dedupe(problems: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for p in problems:
        seen.setdefault(p["field"] + "\0" + p["message"], p)
    return list(seen.values())


def service_error_response(request: Request, exc: ServiceError) -> Response:
    """A domain error as the app answers it (its handler, and the hot routes' fast path)."""
    return error_json(request, exc.status, exc.code, exc.message, exc.field, exc.details,
                      exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return service_error_response(request, exc)

    @app.exception_handler(SQLAlchemyError)
    async def _records_down(request: Request, exc: SQLAlchemyError) -> Response:
        # the job records (a database) failed: jobs are unavailable, inference is not
        log.error("job records unavailable (request %s): %s",
                  getattr(request.state, "request_id", None), exc)
        return error_json(request, 503, JobsUnavailable.code,
                          f"the job records are unavailable ({type(exc).__name__}); "
                          "try again shortly (inference is unaffected)",
                          headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # a hostile body can hold 100k errors: explain a few, count the rest
        all_errs = exc.errors()
        errs = list(all_errs[:MAX_PROBLEMS]) or [{"loc": ("body",), "msg": "invalid request"}]
        problems = [_clip(_problem(request, e)) for e in errs]
        first = _pick(problems, errs)
        problems = _dedupe(problems)
        details: dict[str, Any] = {"problems": problems} if len(problems) > 1 else {}
        if len(all_errs) > MAX_PROBLEMS:
            details["more_problems"] = len(all_errs) - MAX_PROBLEMS
        return error_json(request, 422, "invalid_input",
                          f"{first['field']}: {first['message']}", first["field"], details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc, BodyError):
            return await _service_error(request, exc.error)
        if isinstance(exc.__cause__, ClientDisconnect):
            return error_json(request, 499, ClientDisconnected.code,
                              "client disconnected while sending the body")
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI could not decode the body (e.g. an integer of more than 4300 digits)
            return error_json(request, 422, "invalid_input",
                              f"body: cannot be parsed as JSON: {_reason(exc.__cause__)}",
                              "body")
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return error_json(request, exc.status_code, code, str(exc.detail), headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method the path answers: Starlette's Allow names only the first route that
    matched the path, and a GET and a POST on one path are two routes."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\0"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _reason(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} at byte {e.pos}"
    if "integer string conversion" in str(e):
        return "a number has more than 4300 digits"
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return str(e)[:200]
