"""A Python client for a running ganserve: images as PIL images, jobs, datasets and versions
as typed results, every error as an ``ApiError`` carrying the API's error body.

    from ganserve import Client
    api = Client("http://127.0.0.1:8000", api_key="...")
    images = api.sample("fashion-dcgan", seeds=[1, 2, 3], psi=0.7)
    images[0].save("one.png")
    job = api.wait(api.fine_tune("fashion-dcgan", dataset={"name": "fashion-mnist",
                   "classes": ["Bag"]}, steps=300), on_progress=print)

``AsyncClient`` has the same methods as coroutines. Both are httpx underneath; neither
imports torch nor the server (only numpy and Pillow beside httpx).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

Seeds = Sequence[int] | str
# style-mix rows or columns: seeds, or sources each a seed or {"seed"|"z"|"w": ...}
Sources = Seeds | Sequence[int | dict[str, Any]]
Image_ = bytes | str | Path | Image.Image      # PNG/JPEG/WebP bytes, a file, or a PIL image
TERMINAL = ("succeeded", "failed", "cancelled")


class ApiError(Exception):
    """A 4xx or 5xx from the API: its status and the body's ``code``, ``message``,
    ``field``, ``details`` and ``request_id`` (quote it when reporting a 500)."""

    def __init__(self, status: int, body: Any, text: str = ""):
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {"message": err} if err else {}
        self.status = status
        self.code: str = err.get("code", "http_error")
        self.message: str = err.get("message", text[:300] or f"HTTP {status}")
        self.field: str | None = err.get("field")
        self.details: dict[str, Any] = err.get("details") or {}
        self.request_id: str | None = err.get("request_id")
        self.body, self._text = body, text
        super().__init__(f"{status} {self.code}: {self.message}")

    def __reduce__(self):                   # picklable (a worker pool's result, a log queue)
        return (ApiError, (self.status, self.body, self._text))


@dataclass(eq=False)
class GeneratedImages(Sequence):
    """The images of one request, with the version that made them."""
    model: str
    version: str
    images: list[Image.Image]
    seeds: list[int | None]
    classes: list[str | int | None]
    latents: list[list[float]] | None = None
    grid_png: bytes | None = field(default=None, repr=False)   # the API's grid, when sent

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


@dataclass
class Job:
    """A job's record as the API shows it (``raw`` holds every field)."""
    id: str
    type: str
    state: str
    model: str
    version: str | None
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, d: dict[str, Any]) -> Job:
        return cls(d["id"], d["type"], d["state"], d["model"], d.get("version"),
                   d.get("progress"), d.get("result"), d.get("error"), d.get("attempts", 0), d)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


# ---------------------------------------------------------------- requests, shared
@dataclass(frozen=True)
class _Call:
    """One request and how to read its answer: the sync and async clients differ only in
    how they send it."""
    method: str
    path: str
    parse: Callable[[httpx.Response], Any]
    json: Any = None
    params: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


def _seeds(seeds: Seeds | None) -> list[int] | str | None:
    return seeds if seeds is None or isinstance(seeds, str) else [int(s) for s in seeds]


def _mix_sources(side: str, sources: Sources) -> dict[str, Any]:
    """``row_seeds`` / ``col_seeds``, or ``row_sources`` / ``col_sources`` where any is a
    latent."""
    if isinstance(sources, str) or all(not isinstance(x, dict) for x in sources):
        return {f"{side}_seeds": _seeds(sources)}            # type: ignore[arg-type]
    return {f"{side}_sources": [x if isinstance(x, dict) else {"seed": int(x)}
                                for x in sources]}


def _b64_image(image: Image_) -> str:
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data = buf.getvalue()
    elif isinstance(image, bytes):
        data = image
    else:
        data = Path(image).read_bytes()
    return base64.b64encode(data).decode()


def _body(r: httpx.Response) -> Any:
    return r.json() if r.content else None


def _images(r: httpx.Response) -> GeneratedImages:
    d = r.json()
    imgs = d["images"]
    return GeneratedImages(
        d["model"], d["version"],
        [Image.open(io.BytesIO(base64.b64decode(i["png"]))).copy() for i in imgs],
        [i.get("seed") for i in imgs],
        [i.get("class_name", i.get("class_index")) for i in imgs],
        [i["latent"] for i in imgs] if imgs and "latent" in imgs[0] else None,
        base64.b64decode(d["grid_png"]) if d.get("grid_png") else None)


def _job(r: httpx.Response) -> Job:
    return Job.of(r.json())


def _generate(endpoint: str, model: str, body: dict[str, Any]) -> _Call:
    body = {k: v for k, v in body.items() if v is not None} | {"format": "json"}
    return _Call("POST", f"/v1/models/{model}/{endpoint}", _images, json=body)


class _Requests:
    """Every operation as a ``_Call``; the clients send them."""

    def _sample(self, model: str, seeds: Seeds | None = None, *, n: int | None = None,
                psi: float = 1.0, class_: int | str | None = None,
                version: str | None = None, return_latents: bool = False) -> _Call:
        return _generate("sample", model, {"seeds": _seeds(seeds), "n": n,
                                           "truncation_psi": psi, "class": class_,
                                           "version": version,
                                           "return_latents": return_latents or None})

    def _conditional(self, model: str, class_: int | str, seeds: Seeds | None = None, *,
                     n: int | None = None, psi: float = 1.0,
                     version: str | None = None) -> _Call:
        return _generate("conditional", model, {"seeds": _seeds(seeds), "n": n,
                                                "class": class_, "truncation_psi": psi,
                                                "version": version})

    def _interpolate(self, model: str, start: int | dict, end: int | dict, *,
                     steps: int = 8, space: str = "z", method: str = "slerp",
                     psi: float = 1.0, version: str | None = None) -> _Call:
        def end_point(e: int | dict) -> dict:
            return e if isinstance(e, dict) else {"seed": int(e)}
        return _generate("interpolate", model, {"start": end_point(start), "end":
                                                end_point(end), "steps": steps,
                                                "space": space, "method": method,
                                                "truncation_psi": psi, "version": version})

    def _style_mix(self, model: str, rows: Sources, cols: Sources, *,
                   styles: str | Sequence[int | str] = "coarse", psi: float = 1.0,
                   version: str | None = None) -> _Call:
        return _generate("style-mix", model, {**_mix_sources("row", rows),
                                              **_mix_sources("col", cols),
                                              "styles": styles if isinstance(styles, str)
                                              else list(styles), "truncation_psi": psi,
                                              "version": version})

    def _project(self, model: str, image: Image_, class_: int | str | None = None,
                 version: str | None = None) -> _Call:
        body = {"image": _b64_image(image), "class": class_, "version": version}
        return _Call("POST", f"/v1/models/{model}/project", _body,
                     json={k: v for k, v in body.items() if v is not None})

    def _project_job(self, model: str, image: Image_, idempotency_key: str | None = None,
                     **settings: Any) -> _Call:
        return _Call("POST", "/v1/jobs/project", _job,
                     json={"model": model, "image": _b64_image(image), **settings},
                     headers=_idempotency(idempotency_key))

    def _directions(self, model: str, version: str | None = None) -> _Call:
        return _Call("GET", f"/v1/models/{model}/directions", _body,
                     params={"version": version} if version else None)

    def _edit(self, model: str, directions: dict[str, float], **start: Any) -> _Call:
        body = {"directions": directions,
                **{("class" if k == "class_" else k): v for k, v in start.items()}}
        return _generate("edit", model, body)

    def _models(self) -> _Call:
        return _Call("GET", "/v1/models", lambda r: r.json()["models"])

    def _model(self, name: str) -> _Call:
        return _Call("GET", f"/v1/models/{name}", _body)

    def _versions(self, name: str) -> _Call:
        return _Call("GET", f"/v1/models/{name}/versions", _body)

    def _set_default(self, name: str, version: str | None) -> _Call:
        return _Call("PUT", f"/v1/models/{name}/default", _body, json={"version": version})

    def _delete_version(self, name: str, version: str) -> _Call:
        return _Call("DELETE", f"/v1/models/{name}/versions/{version}", _body)

    def _fine_tune(self, model: str, dataset: dict[str, Any],
                   idempotency_key: str | None = None, **settings: Any) -> _Call:
        return _Call("POST", "/v1/jobs/fine-tune", _job,
                     json={"model": model, "dataset": dataset, **settings},
                     headers=_idempotency(idempotency_key))

    def _evaluate(self, model: str, idempotency_key: str | None = None,
                  **settings: Any) -> _Call:
        return _Call("POST", "/v1/jobs/evaluate", _job, json={"model": model, **settings},
                     headers=_idempotency(idempotency_key))

    def _job(self, job_id: str) -> _Call:
        return _Call("GET", f"/v1/jobs/{job_id}", _job)

    def _jobs(self, cursor: str | None, **filters: Any) -> _Call:
        params = {k: v for k, v in (filters | {"cursor": cursor}).items() if v is not None}
        return _Call("GET", "/v1/jobs", lambda r: _page(r, "jobs", Job.of), params=params)

    def _cancel(self, job_id: str) -> _Call:
        return _Call("POST", f"/v1/jobs/{job_id}/cancel", _job)

    def _upload_dataset(self, file: str | Path | bytes, name: str | None = None,
                        filename: str | None = None) -> _Call:
        if isinstance(file, bytes):
            content, filename = file, filename or "dataset.zip"
        else:               # opened when sent, and streamed: a big file is never in memory
            content, filename = Path(file), filename or Path(file).name
        return _Call("POST", "/v1/datasets", _body, files={"file": (filename, content)},
                     data={"name": name} if name else None)

    def _datasets(self, cursor: str | None) -> _Call:
        return _Call("GET", "/v1/datasets", lambda r: _page(r, "datasets", dict),
                     params={"cursor": cursor} if cursor else None)

    def _delete_dataset(self, ds_id: str) -> _Call:
        return _Call("DELETE", f"/v1/datasets/{ds_id}", lambda r: None)


def _idempotency(key: str | None) -> dict[str, str] | None:
    """A retried submission with the same key returns the first job, never a second one."""
    return {"Idempotency-Key": key} if key else None


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _page(r: httpx.Response, key: str, item: Callable[[Any], Any]) -> tuple[list, str | None]:
    body = r.json()
    return [item(x) for x in body[key]], body.get("next")


def _more(got: list, cursor: str | None, limit: int | None) -> bool:
    """Another page to read? (Pages are the server's default size: a page size it refuses,
    over its GANSERVE_MAX_*_LIST, is never asked for.)"""
    return cursor is not None and (limit is None or len(got) < limit)


@contextlib.contextmanager
def _opened(files: dict[str, Any] | None) -> Iterator[dict[str, Any] | None]:
    """``files`` with each Path opened for the request (httpx streams an open file)."""
    with contextlib.ExitStack() as stack:
        yield None if files is None else {
            k: (name, stack.enter_context(content.open("rb"))
                if isinstance(content, Path) else content)
            for k, (name, content) in files.items()}


def _checked(call: _Call, r: httpx.Response) -> Any:
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            body = None
        raise ApiError(r.status_code, body, r.text)
    return call.parse(r)


def _wait_error(job: Job) -> TimeoutError:
    return TimeoutError(f"job {job.id} still {job.state} (progress {job.progress})")


# ---------------------------------------------------------------- the clients
class Client(_Requests):
    """The API over HTTP, synchronously. ``http`` may be any ``httpx.Client`` (a test's
    ``TestClient`` works); otherwise one is made for ``base_url``."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 timeout: float = 60.0, http: httpx.Client | None = None):
        self.http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self.http.headers.update(_headers(api_key))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _send(self, call: _Call) -> Any:
        with _opened(call.files) as files:
            r = self.http.request(call.method, call.path, json=call.json, params=call.params,
                                  files=files, data=call.data, headers=call.headers)
        return _checked(call, r)

    def sample(self, model: str, seeds: Seeds | None = None, **kw: Any) -> GeneratedImages:
        """``POST /v1/models/{model}/sample``: ``seeds`` (or ``n`` random ones), ``psi``,
        ``class_``, ``version``, ``return_latents``."""
        return self._send(self._sample(model, seeds, **kw))

    def conditional(self, model: str, class_: int | str, seeds: Seeds | None = None,
                    **kw: Any) -> GeneratedImages:
        return self._send(self._conditional(model, class_, seeds, **kw))

    def interpolate(self, model: str, start: int | dict, end: int | dict,
                    **kw: Any) -> GeneratedImages:
        """Seeds, or ``{"z": [...]}`` / ``{"w": [...]}`` end points (a projected latent)."""
        return self._send(self._interpolate(model, start, end, **kw))

    def style_mix(self, model: str, row_seeds: Sources, col_seeds: Sources,
                  **kw: Any) -> GeneratedImages:
        return self._send(self._style_mix(model, row_seeds, col_seeds, **kw))

    def models(self) -> list[dict[str, Any]]:
        return self._send(self._models())

    def model(self, name: str) -> dict[str, Any]:
        return self._send(self._model(name))

    def versions(self, name: str) -> dict[str, Any]:
        return self._send(self._versions(name))

    def set_default(self, name: str, version: str | None) -> dict[str, Any]:
        return self._send(self._set_default(name, version))

    def delete_version(self, name: str, version: str) -> dict[str, Any]:
        return self._send(self._delete_version(name, version))

    def project(self, model: str, image: Image_, **kw: Any) -> dict[str, Any]:
        """``POST /v1/models/{model}/project``: the encoder's latent (``{"z"|"w": [...]}``),
        the reconstruction (base64 PNG) and its scores; ``class_``, ``version``."""
        return self._send(self._project(model, image, **kw))

    def project_job(self, model: str, image: Image_, **settings: Any) -> Job:
        """Submit the refined projection (``steps``, ``class``, ``version``...); its
        result, once done, holds what ``project`` answers."""
        return self._send(self._project_job(model, image, **settings))

    def directions(self, model: str, version: str | None = None) -> dict[str, Any]:
        return self._send(self._directions(model, version))

    def edit(self, model: str, directions: dict[str, float], **start: Any) -> GeneratedImages:
        """``POST /v1/models/{model}/edit``: from ``seed``, ``z`` or ``w`` (and ``class_``)
        moved by ``directions``; ``strip={"direction", "start", "stop", "steps"}``."""
        return self._send(self._edit(model, directions, **start))

    def fine_tune(self, model: str, dataset: dict[str, Any], **settings: Any) -> Job:
        """Submit a fine-tune (``steps``, ``seed``, ``name``, ``webhook``... as the API
        takes them); returns the queued job."""
        return self._send(self._fine_tune(model, dataset, **settings))

    def evaluate(self, model: str, **settings: Any) -> Job:
        return self._send(self._evaluate(model, **settings))

    def job(self, job_id: str) -> Job:
        return self._send(self._job(job_id))

    def jobs(self, limit: int | None = None, **filters: Any) -> list[Job]:
        """Jobs matching ``state``, ``type``, ``model``, the newest first: all of them,
        page after page, or the first ``limit``."""
        got, cursor = self._send(self._jobs(None, **filters))
        while _more(got, cursor, limit):
            page, cursor = self._send(self._jobs(cursor, **filters))
            got += page
        return got[:limit]

    def cancel(self, job_id: str | Job) -> Job:
        return self._send(self._cancel(getattr(job_id, "id", job_id)))

    def progress(self, job_id: str | Job, poll_s: float = 0.5,
                 timeout: float | None = None) -> Iterator[Job]:
        """The job's record each time it changes, until it ends (the last one is final);
        TimeoutError once ``timeout`` seconds pass without the end (the job goes on)."""
        jid, last = getattr(job_id, "id", job_id), None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(jid)
            if job.raw.get("updated_at") != last:
                last = job.raw.get("updated_at")
                yield job
            if job.done:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise _wait_error(job)
            time.sleep(poll_s)

    def wait(self, job_id: str | Job, timeout: float | None = None,
             on_progress: Callable[[Job], None] | None = None, poll_s: float = 0.5) -> Job:
        """Block until the job ends; ``on_progress`` sees every change. TimeoutError
        after ``timeout`` seconds (the job goes on), whether or not it moved meanwhile."""
        job = None
        for job in self.progress(job_id, poll_s, timeout):
            if on_progress is not None:
                on_progress(job)
        assert job is not None
        return job

    def upload_dataset(self, file: str | Path | bytes, name: str | None = None,
                       filename: str | None = None) -> dict[str, Any]:
        """A .zip of class folders of images or an .npz (a path, or bytes with a
        ``filename`` saying which); returns the dataset's record (its ``id`` goes in a
        fine-tune's ``dataset``)."""
        return self._send(self._upload_dataset(file, name, filename))

    def datasets(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Uploaded datasets, the newest first: all of them, or the first ``limit``."""
        got, cursor = self._send(self._datasets(None))
        while _more(got, cursor, limit):
            page, cursor = self._send(self._datasets(cursor))
            got += page
        return got[:limit]

    def delete_dataset(self, ds_id: str) -> None:
        self._send(self._delete_dataset(ds_id))


class AsyncClient(_Requests):
    """``Client``'s methods as coroutines, on an ``httpx.AsyncClient``."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 timeout: float = 60.0, http: httpx.AsyncClient | None = None):
        self.http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)
        self.http.headers.update(_headers(api_key))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(self, call: _Call) -> Any:
        with _opened(call.files) as files:
            r = await self.http.request(call.method, call.path, json=call.json,
                                        params=call.params, files=files, data=call.data,
                                        headers=call.headers)
        return _checked(call, r)

    async def sample(self, model: str, seeds: Seeds | None = None,
                     **kw: Any) -> GeneratedImages:
        return await self._send(self._sample(model, seeds, **kw))

    async def conditional(self, model: str, class_: int | str, seeds: Seeds | None = None,
                          **kw: Any) -> GeneratedImages:
        return await self._send(self._conditional(model, class_, seeds, **kw))

    async def interpolate(self, model: str, start: int | dict, end: int | dict,
                          **kw: Any) -> GeneratedImages:
        return await self._send(self._interpolate(model, start, end, **kw))

    async def style_mix(self, model: str, row_seeds: Sources, col_seeds: Sources,
                        **kw: Any) -> GeneratedImages:
        return await self._send(self._style_mix(model, row_seeds, col_seeds, **kw))

    async def models(self) -> list[dict[str, Any]]:
        return await self._send(self._models())

    async def model(self, name: str) -> dict[str, Any]:
        return await self._send(self._model(name))

    async def versions(self, name: str) -> dict[str, Any]:
        return await self._send(self._versions(name))

    async def set_default(self, name: str, version: str | None) -> dict[str, Any]:
        return await self._send(self._set_default(name, version))

    async def delete_version(self, name: str, version: str) -> dict[str, Any]:
        return await self._send(self._delete_version(name, version))

    async def project(self, model: str, image: Image_, **kw: Any) -> dict[str, Any]:
        return await self._send(self._project(model, image, **kw))

    async def project_job(self, model: str, image: Image_, **settings: Any) -> Job:
        return await self._send(self._project_job(model, image, **settings))

    async def directions(self, model: str, version: str | None = None) -> dict[str, Any]:
        return await self._send(self._directions(model, version))

    async def edit(self, model: str, directions: dict[str, float],
                   **start: Any) -> GeneratedImages:
        return await self._send(self._edit(model, directions, **start))

    async def fine_tune(self, model: str, dataset: dict[str, Any], **settings: Any) -> Job:
        return await self._send(self._fine_tune(model, dataset, **settings))

    async def evaluate(self, model: str, **settings: Any) -> Job:
        return await self._send(self._evaluate(model, **settings))

    async def job(self, job_id: str) -> Job:
        return await self._send(self._job(job_id))

    async def jobs(self, limit: int | None = None, **filters: Any) -> list[Job]:
        got, cursor = await self._send(self._jobs(None, **filters))
        while _more(got, cursor, limit):
            page, cursor = await self._send(self._jobs(cursor, **filters))
            got += page
        return got[:limit]

    async def cancel(self, job_id: str | Job) -> Job:
        return await self._send(self._cancel(getattr(job_id, "id", job_id)))

    async def wait(self, job_id: str | Job, timeout: float | None = None,
                   on_progress: Callable[[Job], None] | None = None,
                   poll_s: float = 0.5) -> Job:
        jid, last = getattr(job_id, "id", job_id), None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = await self.job(jid)
            if job.raw.get("updated_at") != last:
                last = job.raw.get("updated_at")
                if on_progress is not None:
                    on_progress(job)
            if job.done:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise _wait_error(job)
            await asyncio.sleep(poll_s)

    async def upload_dataset(self, file: str | Path | bytes, name: str | None = None,
                             filename: str | None = None) -> dict[str, Any]:
        return await self._send(self._upload_dataset(file, name, filename))

    async def datasets(self, limit: int | None = None) -> list[dict[str, Any]]:
        got, cursor = await self._send(self._datasets(None))
        while _more(got, cursor, limit):
            page, cursor = await self._send(self._datasets(cursor))
            got += page
        return got[:limit]

    async def delete_dataset(self, ds_id: str) -> None:
        await self._send(self._delete_dataset(ds_id))
