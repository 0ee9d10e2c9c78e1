"""The API's side of uploaded datasets: receive a multipart upload straight to disk, check and
convert it (``ganserve.service.uploads``), store it (``ganserve.data.uploads``); list, read and
remove datasets.

The body is parsed as it arrives (python-multipart's streaming parser): the file part goes to
a file in the upload's own folder under ``DATA_DIR/datasets/.incoming/``, never to memory or
the system temp dir, and the folder is removed whatever the outcome. The size limit is the
middleware's (``GANSERVE_UPLOAD_MAX_BYTES`` for this route), so a body over it stops being read
at the limit.

Namesakes, one concept at several layers (datasets): ``ganserve.jobs.datasets``: how jobs find
and read them; ``ganserve.service.datasets``: the API's uploads and records;
``ganserve.service.api.routes.datasets``: their HTTP routes;
``ganserve.service.schemas.datasets``: the HTTP bodies.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import Counter
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect

from ganserve.data.uploads import PREVIEW_FILE, DatasetStore
from ganserve.jobs.store import JobStore
from ganserve.service.errors import (
    ClientDisconnected,
    DatasetNotFound,
    DatasetRejected,
    JobConflict,
    UnsupportedMediaType,
)
from ganserve.service.settings import Settings
from ganserve.service.uploads.archive import Rejected
from ganserve.service.uploads.ingest import ingest
from ganserve.service.uploads.writer import Stored, commit

log = logging.getLogger(__name__)
UPLOADS = Counter("ganserve_dataset_uploads_total", "dataset uploads by outcome (accepted, "
                  "duplicate, rejected) and reason (the error code of a rejection)",
                  ["outcome", "reason"])
KINDS = {".zip": "zip", ".npz": "npz"}
MAX_FIELD_BYTES = 1024
MAX_PARTS = 4
_NAME_OK = re.compile(r"[^\w .()+-]")


@dataclass
class _Form:
    """What the multipart stream held: the file (on disk) and the small text fields."""
    file: Path
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    parts: int = 0
    file_bytes: int = 0
    error: DatasetRejected | None = None


class _Receiver:
    """python-multipart callbacks: the ``file`` part to disk, ``name`` kept, others refused."""

    def __init__(self, form: _Form):
        self.form = form
        self.out = form.file.open("wb")
        self.header_field = b""
        self.headers: dict[bytes, bytes] = {}
        self.part: str | None = None
        self.buf = bytearray()

    def fail(self, reason: str, message: str, status: int = 422) -> None:
        if self.form.error is None:
            self.form.error = DatasetRejected(message, reason=reason, field="body",
                                              status=status)

    def on_part_begin(self) -> None:
        self.headers, self.part, self.buf = {}, None, bytearray()
        self.form.parts += 1
        if self.form.parts > MAX_PARTS:
            self.fail("invalid_form", f"more than {MAX_PARTS} form parts; send 'file' and "
                      "optionally 'name'")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        key = self.header_field.lower()
        self.headers[key] = self.headers.get(key, b"") + data[start:end]

    def on_header_end(self) -> None:
        self.header_field = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.part = params.get(b"name", b"").decode("utf-8", "replace")
        if self.part == "file":
            if self.form.filename is not None:
                self.fail("invalid_form", "more than one 'file' part; upload one archive")
            self.form.filename = params.get(b"filename", b"").decode("utf-8", "replace")
        elif self.part != "name":
            self.fail("invalid_form", f"unexpected form field {self.part[:40]!r}; send "
                      "'file' (the .zip or .npz) and optionally 'name'")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.form.error is not None:
            return
        if self.part == "file":
            try:
                self.out.write(data[start:end])
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                self.fail("storage_full", "the server's disk is full; try again later", 507)
                return
            self.form.file_bytes += end - start
        else:
            self.buf += data[start:end]
            if len(self.buf) > MAX_FIELD_BYTES:
                self.fail("invalid_form", f"form field {self.part!r} is over "
                          f"{MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self.part and self.part != "file" and self.form.error is None:
            self.form.fields[self.part] = self.buf.decode("utf-8", "replace")

    def callbacks(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end")}


async def receive_form(request: Request, file: Path) -> _Form:
    """Parse the multipart body as it arrives; the file part lands in ``file``."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType("upload a dataset as multipart/form-data with a 'file' "
                                   "part (curl -F file=@bags.zip)")
    form = _Form(file)
    receiver = _Receiver(form)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
            if form.error is not None:      # stop reading: the rest is not worth parsing
                form.error.headers = {"Connection": "close"}
                return form
        parser.finalize()
        if parser.state not in (MultipartState.END, MultipartState.BOUNDARY_PADDING):
            receiver.fail("invalid_form", "the body ended before the multipart closing "
                          "boundary (a cut upload?)")
    except FormParserError as e:            # a malformed body, a boundary over 256 chars
        receiver.fail("invalid_form", f"malformed multipart body ({str(e)[:120]})")
    except ClientDisconnect:
        raise ClientDisconnected("client disconnected during the upload") from None
    finally:
        receiver.out.close()
    return form


def dataset_name(given: str | None, filename: str | None) -> str:
    """The name to show: the ``name`` field, else the file's stem; printable, 1..128."""
    raw = (given or "").strip() or PurePath((filename or "dataset").replace("\\", "/")).stem
    cleaned = _NAME_OK.sub("_", raw)[:128].strip()
    return cleaned or "dataset"


@dataclass
class DatasetService:
    settings: Settings
    jobs: JobStore | None
    store: DatasetStore = field(init=False)
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.store = DatasetStore(self.settings.datasets_dir)
        # converting is CPU work: one upload at a time per process, the others wait
        self._slots = asyncio.Semaphore(1)
        self._receiving = 0

    def start(self) -> None:
        swept = self.store.sweep_incoming()
        if swept:
            log.info("removed %d unfinished uploads left by a stopped process", swept)

    async def upload(self, request: Request) -> Stored:
        if self._receiving >= self.settings.upload_max_concurrent:
            UPLOADS.labels("rejected", "too_many_uploads").inc()
            raise DatasetRejected(f"{self._receiving} uploads are in progress here "
                                  "(GANSERVE_UPLOAD_MAX_CONCURRENT); try again shortly",
                                  reason="too_many_uploads", status=429,
                                  headers={"Retry-After": "5", "Connection": "close"})
        self._receiving += 1
        try:
            return await self._upload(request)
        finally:
            self._receiving -= 1

    async def _upload(self, request: Request) -> Stored:
        try:
            with self.store.workspace() as work:
                form = await receive_form(request, work / "upload")
                if form.error is not None:
                    raise form.error
                kind = self._kind(form)
                name = dataset_name(form.fields.get("name"), form.filename)
                async with self._slots:
                    stored = await run_in_threadpool(self._convert, work, form, kind, name)
        except DatasetRejected as e:
            UPLOADS.labels("rejected", e.code).inc()
            log.info("dataset upload rejected (%s): %s", e.code, e.message)
            raise
        UPLOADS.labels("accepted" if stored.created else "duplicate", "").inc()
        return stored

    @staticmethod
    def _kind(form: _Form) -> str:
        if form.filename is None:
            raise DatasetRejected("no 'file' part: send the archive as the form field "
                                  "'file' (curl -F file=@bags.zip)", reason="invalid_form",
                                  field="file")
        kind = KINDS.get(PurePath(form.filename.replace("\\", "/")).suffix.lower())
        if kind is None:
            raise DatasetRejected(f"{form.filename[:80]!r}: upload a .zip of PNG/JPEG/WebP "
                                  "images or an .npz of arrays", reason="unsupported_file",
                                  field="file", status=415)
        if form.file_bytes == 0:
            raise DatasetRejected("the uploaded file is empty", reason="empty_dataset",
                                  field="file")
        return kind

    def _convert(self, work: Path, form: _Form, kind: str, name: str) -> Stored:
        try:
            # the quota before converting (from the headers: nothing written yet), and
            # again on what was converted (a zip's images may turn out to be in colour)
            data = ingest(form.file, work, self.settings.upload_limits(), kind,
                          reserve=self._check_quota)
            self._check_quota(data.images.nbytes)
            source = {"filename": (form.filename or "")[:200], "kind": kind,
                      "bytes": form.file_bytes}
            return commit(self.store, work, data, name, source)
        except Rejected as e:
            raise DatasetRejected(str(e), reason=e.reason, status=e.status,
                                  field="file") from None
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DatasetRejected("the server's disk is full; try again later",
                                      reason="storage_full", status=507,
                                      field="file") from None
            raise
        except MemoryError:
            raise
        except Exception as e:          # a reader's surprise on crafted bytes: a 422, logged
            log.exception("dataset upload: unexpected error reading %r", form.filename)
            raise DatasetRejected(f"the file cannot be read ({type(e).__name__})",
                                  reason="invalid_archive", field="file") from None

    def _check_quota(self, new_bytes: int) -> None:
        _, stored = self.store.total_bytes()
        limit = self.settings.datasets_max_total_bytes
        if stored + new_bytes > limit:
            raise Rejected("storage_full", f"datasets already hold {stored} bytes; this one "
                           f"({new_bytes}) would pass GANSERVE_DATASETS_MAX_TOTAL_BYTES "
                           f"({limit}): remove some (DELETE /v1/datasets/ID)", status=413)

    # -- reading and removing ----------------------------------------------------------
    def get(self, ds_id: str) -> dict[str, Any]:
        meta = self.store.get(ds_id)
        if meta is None:
            raise DatasetNotFound(f"no dataset {ds_id[:64]!r}; see GET /v1/datasets",
                                  field="id")
        return meta

    def preview(self, ds_id: str) -> bytes:
        folder = self.store.folder(ds_id)
        try:
            return (folder / PREVIEW_FILE).read_bytes() if folder is not None else b""
        except OSError:
            raise DatasetNotFound(f"no dataset {ds_id[:64]!r}; see GET /v1/datasets",
                                  field="id") from None

    def page(self, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; ``cursor`` is the id of the last dataset of the previous page."""
        metas = self.store.all()
        if cursor is not None:
            ids = [m["id"] for m in metas]
            if cursor not in ids:
                raise DatasetNotFound(f"cursor {cursor[:64]!r} names no dataset (it was "
                                      "removed?); list again from the start", field="cursor")
            metas = metas[ids.index(cursor) + 1:]
        page = metas[:limit]
        more = len(metas) > limit
        return page, page[-1]["id"] if more and page else None

    def remove(self, ds_id: str) -> None:
        self.get(ds_id)
        with self.store.locked():
            users = self._users(ds_id)
            if users:
                raise JobConflict(f"dataset {ds_id} is used by {len(users)} queued or "
                                  f"running job(s) ({', '.join(users[:5])}); cancel them or "
                                  "wait", jobs=users[:20])
            if not self.store.remove(ds_id):
                raise DatasetNotFound(f"no dataset {ds_id!r}", field="id")

    def _users(self, ds_id: str) -> list[str]:
        if self.jobs is None:
            return []
        return [j.id for j in self.jobs.active() if ds_id in _dataset_ids(j.spec)]


def _dataset_ids(spec: dict[str, Any]) -> set[str]:
    refs = (spec.get("dataset"), spec.get("reference"))
    return {r["id"] for r in refs if isinstance(r, dict) and r.get("id")}
