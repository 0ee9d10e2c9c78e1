"""Domain errors and their one JSON shape: ``{"error": {"code", "message", ...}}``.

Every error the API returns — ours, FastAPI's validation errors, Starlette's 404/405 —
goes through ``install_error_handlers`` so clients parse one shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class ServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, **details: Any):
        super().__init__(message)
        self.message, self.field, self.headers, self.details = message, field, headers, details


class ModelNotFound(ServiceError):
    status, code = 404, "model_not_found"


class VersionNotFound(ServiceError):
    status, code = 404, "version_not_found"


class Unsupported(ServiceError):
    status, code = 400, "unsupported_for_family"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


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


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    request_id: str | None = None
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """The shape of every error response."""
    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc} for code, desc in {
        400: "operation not supported by this model's family",
        404: "unknown model or version",
        413: "request body too large",
        422: "invalid input (the field is named)",
        503: "queue full (Retry-After), model unavailable or service not ready",
        504: "deadline passed before the request ran",
    }.items()
}


def error_json(request: Request | None, status: int, code: str, message: str,
               field: str | None = None, details: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None) -> JSONResponse:
    rid = getattr(request.state, "request_id", None) if request is not None else None
    body = ErrorResponse(error=ErrorBody(code=code, message=message, field=field,
                                         request_id=rid, details=details or None))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status,
                        headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_json(request, exc.status, exc.code, exc.message, exc.field,
                          exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": ("body",), "msg": "invalid request"}
        field = _field_path(tuple(first.get("loc", ())))
        msg = str(first.get("msg", "invalid input")).removeprefix("Value error, ")
        problems = [{"field": _field_path(tuple(e.get("loc", ()))),
                     "message": str(e.get("msg", "")).removeprefix("Value error, ")}
                    for e in errs]
        return error_json(request, 422, "invalid_input", f"{field}: {msg}", field,
                          {"problems": problems} if len(problems) > 1 else None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error")
        return error_json(request, exc.status_code, code, str(exc.detail),
                          headers=getattr(exc, "headers", None))
