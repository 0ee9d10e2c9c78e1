"""The FastAPI application: ``create_app(settings)`` builds it; ``app`` is for uvicorn.

Namesakes, one concept at several layers (entry points): ``ganserve.cli.main``: the command
line; ``ganserve.service.main``: the web application.
"""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline

import ganserve
from ganserve import process_metrics
from ganserve.cpus import available_cpus
from ganserve.latents import truncated_z_from_seed
from ganserve.onnx_runtime import require_device
from ganserve.service.api.fast_path import FastPath
from ganserve.service.api.routes import (
    datasets,
    generate,
    health,
    inference,
    inversion,
    jobs,
    models,
    playground,
)
from ganserve.service.auth import KeyRing
from ganserve.service.datasets import DatasetService
from ganserve.service.errors import install_error_handlers
from ganserve.service.jobs import JobService
from ganserve.service.middleware import ServiceMiddleware
from ganserve.service.observability import (
    BATCH_REQUESTS,
    BATCH_ROWS,
    INFERENCE,
    QUEUE_ROWS,
    QUEUE_WAIT,
    LoadedModel,
    metrics_payload,
)
from ganserve.service.openapi import served_openapi
from ganserve.service.registry import LoadedVersion, Registry
from ganserve.service.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """Generate images from the GANs in the model store (DCGAN, class-conditional GAN,
StyleGAN2) with ONNX Runtime. Images come back as PNG by default (`format: "json"` or
`Accept: application/json` for base64 PNGs with seeds and classes). Every error has one shape:
`{"error": {"code", "message", "field", "request_id", "details"}}` (all five keys, always),
and every status an operation can return is listed under it. Seeds map to latents with
`numpy.random.Generator(numpy.random.PCG64(seed)).standard_normal(z_dim, dtype=float32)`.

**Determinism.** On one machine the same request (version, seeds, class, psi, options) gives
the same bytes whatever else shares its batch. Across CPU families (AVX-512 against AVX2)
ONNX Runtime's kernels round a few pixels the other way: measured, 14 pixels in a million
(at most 0.007% of one response's) differ, by one grey level, never more."""


def _on_batch(lv: LoadedVersion, graph: str, st) -> None:
    labels = (lv.name, lv.version, graph)
    BATCH_ROWS.labels(*labels).observe(st.rows)
    BATCH_REQUESTS.labels(*labels).observe(st.requests)
    INFERENCE.labels(*labels).observe(st.run_s)
    waits = QUEUE_WAIT.labels(*labels)
    for w in st.queue_wait_s:
        waits.observe(w)


def _on_queue(lv: LoadedVersion, rows: int) -> None:
    QUEUE_ROWS.labels(lv.name, lv.version).set(rows)


def _no_otel() -> dict:
    """Newer FastAPI checks OpenTelemetry providers on every request (~14% of our CPU under
    load, measured with py-spy); we export Prometheus metrics instead, so switch it off."""
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False,
                              "operation_spans": False}}
    return {}


async def _start_jobs(settings: Settings, registry: Registry) -> JobService:
    """The job records' schema migrated, and the mode said in the log."""
    jobs_service = JobService(settings, registry)
    await run_in_threadpool(jobs_service.start)
    if jobs_service.off_reason:
        log.warning("%s", jobs_service.off_reason)
    elif settings.embedded:
        log.info("jobs: embedded mode (SQLite broker and records in %s)%s", settings.data_dir,
                 "" if settings.embedded_worker else "; GANSERVE_EMBEDDED_WORKER=false: jobs "
                 "wait for a `ganserve worker` started with the same data dir")
    else:
        log.info("jobs: broker %s, records %s", _no_password(settings.broker_url or ""),
                 _no_password(settings.resolved_database_url()))
    return jobs_service


def _no_password(url: str) -> str:
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@") if password else url


def _shared_counts(app: FastAPI, service: str, read: Callable[[Any], Any]) -> Any:
    """What ``read`` gets from ``app.state.<service>`` for the metrics page: the job
    records' queue counts, the data dir's dataset totals (None before start, or if they
    cannot be read: the scrape still answers)."""
    found = getattr(app.state, service, None)
    if found is None:
        return None
    try:
        return read(found)
    except Exception as e:
        log.warning("metrics: %s unreadable: %s", service, e)
        return None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(max_workers=max(2, available_cpus()),
                                      thread_name_prefix="ort")
        # device=cuda where the GPU cannot be had: stop here, never serve from the CPU unsaid
        require_device(settings.device)
        registry = Registry(settings, executor, on_batch=_on_batch, on_queue=_on_queue)
        app.state.registry = registry
        # Load and warm every model before accepting connections: with several workers on
        # one socket, a worker that accepted early would answer 503 while its peers serve.
        await registry.start()
        process_metrics.start()
        app.state.jobs = await _start_jobs(settings, registry)
        app.state.datasets = DatasetService(settings, app.state.jobs.store)
        await run_in_threadpool(app.state.datasets.start)
        if settings.grpc_port:
            from ganserve.service.oip import grpc_server

            app.state.grpc = await grpc_server.start(app.state)
        # psi < 1 draws a truncated normal with scipy.special, imported on first use: pay
        # that import (about 0.3 s) here, not in the first truncated request (measured: the
        # playground's first psi move took 360-500 ms, the next ones about 60 ms)
        truncated_z_from_seed(0, 1, 0.5)
        # Everything allocated so far (framework, schemas, sessions) lives as long as the
        # process: freezing it keeps full collections from walking it again. Measured: p99 at
        # 8 clients fell from 90 ms (gen-2 pauses) to about 10 ms.
        gc.collect()
        gc.freeze()
        log.info("ganserve %s: serving %s (%d versions loaded)", ganserve.__version__,
                 settings.models_dir, len(registry.loaded()))
        try:
            yield
        finally:
            if getattr(app.state, "grpc", None) is not None:
                await app.state.grpc.close()        # RPCs in flight finish first
            await registry.stop()
            await run_in_threadpool(app.state.jobs.webhooks.close, 2.0)
            executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPIOffline(title="ganserve", version=ganserve.__version__,
                         description=DESCRIPTION, lifespan=lifespan, **_no_otel())
    app.state.settings = settings
    app.state.keys = KeyRing(settings.api_keys_file)
    if not app.state.keys.enabled:
        log.warning("no GANSERVE_API_KEYS_FILE: job, dataset and model-management endpoints are "
                    "open to anyone who reaches this port (serve binds 127.0.0.1 unless --host "
                    "says otherwise)")
    app.state.draining = False
    app.state.registry = Registry(settings)        # replaced at startup; empty until then
    install_error_handlers(app)
    app.add_middleware(FastPath, routers=[generate.router, inference.router],   # inside
                       hot=generate.HOT | inference.HOT)                        # the next
    app.add_middleware(ServiceMiddleware, max_body_bytes=settings.max_body_bytes,
                       body_timeout_s=settings.body_timeout_s,
                       large_bodies={("POST", "/v1/datasets"): (settings.upload_max_bytes,
                                                                settings.upload_timeout_s)})
    app.include_router(models.router)
    app.include_router(generate.router)
    app.include_router(inversion.router)
    app.include_router(health.router)
    app.include_router(inference.router)
    app.include_router(jobs.router)
    app.include_router(datasets.router)
    app.include_router(playground.router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = metrics_payload(
            (LoadedModel(lv.name, lv.version, lv.family, lv.provider, lv.deterministic)
             for lv in app.state.registry.loaded()),
            await run_in_threadpool(_shared_counts, app, "jobs", lambda j: j.store.counts()),
            await run_in_threadpool(_shared_counts, app, "datasets",
                                    lambda d: d.store.total_bytes()))
        return Response(body, media_type=content_type)

    served_openapi(app, settings)

    return app


def app_factory() -> FastAPI:
    """For ``uvicorn --factory ganserve.service.main:app_factory`` (settings from the
    environment)."""
    from ganserve.service.observability import setup_logging

    settings = get_settings()
    setup_logging(settings.log_level, settings.verbose)
    return create_app(settings)
