"""The web playground at ``/`` (a browser asking for HTML gets the page; a program gets the
links it always got) and its assets under ``/playground/``, shipped in the package: no CDN,
nothing fetched from outside the service."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import ganserve.service.playground as playground

router = APIRouter(include_in_schema=False)
ASSETS_DIR = Path(playground.__file__).parent
MEDIA = {".js": "text/javascript", ".css": "text/css"}
# the page's modules and styles, listed once at start: a name not in here is a 404, so
# nothing but these files can be read through this route
ASSETS = {p.name: MEDIA[p.suffix] for p in ASSETS_DIR.iterdir() if p.suffix in MEDIA}
LINKS = {"name": "ganserve", "playground": "/", "docs": "/docs", "models": "/v1/models",
         "jobs": "/v1/jobs", "datasets": "/v1/datasets", "health": "/v2/health/ready",
         "metrics": "/metrics"}
NO_CACHE = {"Cache-Control": "no-cache"}        # revalidated: a new release shows at once


def wants_html(accept: str) -> bool:
    """A browser's navigation (``text/html`` before JSON, or no JSON at all)."""
    accept = accept.lower()
    html, json_ = accept.find("text/html"), accept.find("application/json")
    return html >= 0 and (json_ < 0 or html < json_)


@router.api_route("/", methods=["GET", "HEAD"], response_model=None)
async def root(request: Request) -> FileResponse | JSONResponse:
    # one URL, two answers: caches must key them by Accept
    if wants_html(request.headers.get("accept", "")):
        return FileResponse(ASSETS_DIR / "index.html", media_type="text/html",
                            headers={**NO_CACHE, "Vary": "Accept"})
    return JSONResponse(LINKS, headers={"Vary": "Accept"})


@router.get("/playground/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise StarletteHTTPException(404, f"no playground file {name!r}")
    return FileResponse(ASSETS_DIR / name, media_type=ASSETS[name], headers=NO_CACHE)
