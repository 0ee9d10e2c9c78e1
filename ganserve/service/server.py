"""``ganserve serve``: uvicorn with a graceful drain, and a supervisor for several workers.

On SIGTERM/SIGINT every worker reports not-ready at once (``/v2/health/ready`` -> 503), answers
new requests that still reach it with 503 + Retry-After, stops accepting connections, lets
the requests in flight finish (at most ``drain_timeout_s``), then exits.

With ``--workers N`` a small supervisor (this module, not uvicorn's) binds one listening
socket per worker, all on the port with SO_REUSEPORT, starts N worker processes running the
same draining server, and on a stop signal *closes its own copies of the sockets first*: once
the workers close theirs the port refuses connections, instead of the kernel queueing them
for a master that never accepts (they hung until it exited). One socket per worker lets the
kernel spread new connections across the workers by their addresses; on one shared socket,
whichever worker woke first accepted a whole burst (measured: 28 of wrk's 32 connections on
one worker, a quarter less throughput, and run-to-run swings of as much). A worker listens on
its socket once it is ready; a dead worker's socket is closed at once (connections queued on
it are reset, new ones go to the live workers) and its successor gets a fresh one.

A worker that dies is replaced, and its live Prometheus gauges are dropped
(``mark_process_dead``) so ``ganserve_requests_in_flight`` does not count its requests forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from ganserve.cpus import available_cpus
from ganserve.service.observability import drop_dead_workers_gauges, mark_worker_dead, setup_logging
from ganserve.service.protocol import HeaderTimeoutProtocol

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RESTART_BACKOFF_S = 1.0


def _find_app(asgi: Any) -> Any:
    """The FastAPI app inside uvicorn's wrappers (proxy headers, message logger)."""
    while asgi is not None and not hasattr(asgi, "state"):
        asgi = getattr(asgi, "app", None)
    return asgi


class DrainingServer(uvicorn.Server):
    """Marks the app as draining as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, app: Any = None):
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)

    def handle_exit(self, sig, frame) -> None:
        app = self._app or _find_app(getattr(self.config, "loaded_app", None))
        if app is not None and not app.state.draining:
            log.info("signal %s: draining (not ready) in pid %d, finishing requests in flight",
                     sig, os.getpid())
            app.state.draining = True
        if self._loop is not None:         # stop accepting now, not at uvicorn's next tick
            self._loop.call_soon_threadsafe(self._stop_accepting)
            grpc = getattr(getattr(app, "state", None), "grpc", None)
            if grpc is not None:            # gRPC too: no new RPCs, those in flight finish
                self._loop.call_soon_threadsafe(grpc.begin_stop)
        super().handle_exit(sig, frame)

    def _stop_accepting(self) -> None:
        for server in getattr(self, "servers", []):
            server.close()


def threads_per_worker(configured: int, workers: int, cpus: int) -> int:
    """ONNX Runtime intra-op threads for each worker: the configured number, or (0 = auto)
    the cores shared out between the workers, so N workers don't each spin up a thread per
    core and oversubscribe the machine."""
    return configured if configured > 0 else max(1, cpus // max(workers, 1))


def _watch_parent(parent: int, period_s: float = 1.0) -> None:
    """Drain and exit if the supervisor dies (SIGKILL, OOM): an orphaned worker would keep
    serving on the port, unsupervised, until someone found it."""
    while os.getppid() == parent:
        time.sleep(period_s)
    log.warning("supervisor %d is gone; draining and exiting", parent)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(config: uvicorn.Config, sockets: list[socket.socket], parent: int) -> None:
    """A worker process: the draining server on the supervisor's socket."""
    config.configure_logging()          # as uvicorn's own workers do (access_log=False...)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="parent-watch").start()
    DrainingServer(config).run(sockets=sockets)


@dataclass
class _Worker:
    process: SpawnProcess
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """N worker processes on one listening socket; replaces dead ones; drains on a signal."""

    def __init__(self, config: uvicorn.Config, workers: int, drain_timeout_s: float):
        self.config, self.n, self.drain_timeout_s = config, workers, drain_timeout_s
        self.port = config.port             # the real one once bound (for --port 0)
        self.ctx = multiprocessing.get_context("spawn")
        self.stop_signal: int | None = None
        self.workers: list[_Worker] = []

    def _bind(self) -> list[socket.socket]:
        """N sockets on the configured host and port (port 0: one the kernel picks), with
        SO_REUSEPORT. A port another server holds is refused first, by a plain bind held
        until all N are bound: SO_REUSEPORT alone would join a second ganserve to the
        first's group, and the two would share its traffic in silence. None listens yet:
        each worker listens once it is ready, so no connection waits on a worker that is
        still loading its models."""
        host, port = self.config.host, self.config.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        socks: list[socket.socket] = []
        try:
            with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))          # EADDRINUSE if anything listens there
                self.port = probe.getsockname()[1]
                for _ in range(self.n):
                    socks.append(self._socket())
        except OSError as e:
            for sock in socks:
                sock.close()
            log.error("cannot listen on %s:%s: %s", host, port, e)
            raise SystemExit(STARTUP_FAILURE) from e
        return socks

    def _socket(self) -> socket.socket:
        host = self.config.host
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, self.port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        return sock

    def _spawn(self, sock: socket.socket) -> _Worker | None:
        """A new worker on ``sock``; None once a stop signal has closed the socket."""
        if self.stop_signal is not None:
            return None
        p = self.ctx.Process(target=_worker_main, args=(self.config, [sock], os.getpid()),
                             name="ganserve-worker")
        try:
            p.start()
        except (ValueError, OSError):      # the signal handler closed the socket meanwhile
            if self.stop_signal is None:
                raise
            return None
        return _Worker(p)

    def run(self) -> int:
        socks = self._bind()
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda s, _f: self._on_stop_signal(s, socks))
        log.info("supervisor %d: %d workers on %s:%d", os.getpid(), self.n, self.config.host,
                 self.port)
        drop_dead_workers_gauges()
        for sock in socks:
            if (w := self._spawn(sock)) is not None:
                self.workers.append(w)
        code = 0
        while self.stop_signal is None:
            time.sleep(0.2)
            if not self._replace_dead(socks):
                code = 1
                break
        self._on_stop_signal(self.stop_signal or signal.SIGTERM, socks)
        self._join_workers()
        return code

    def _on_stop_signal(self, sig: int, socks: list[socket.socket]) -> None:
        """At once, in the signal handler: readiness must turn 503 now, not at the next poll."""
        first = self.stop_signal is None
        self.stop_signal = sig
        for sock in socks:     # first: the port refuses once the workers close theirs
            sock.close()
        if first:
            log.info("signal %s: draining %d workers", sig, len(self.workers))
        for w in self.workers:
            if w.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.process.pid, signal.SIGTERM)

    def _replace_dead(self, socks: list[socket.socket]) -> bool:
        """Restart workers that died, each on a fresh socket: the dead one's, still
        listening, would hold its share of new connections until the successor is ready
        (those already queued on it are reset); False when one cannot start at all."""
        for i, w in enumerate(self.workers):
            if w.process.is_alive() or self.stop_signal is not None:
                continue
            pid, exitcode = w.process.pid, w.process.exitcode
            mark_worker_dead(pid)
            if exitcode == STARTUP_FAILURE:
                log.error("worker %d failed to start (exit %s); stopping", pid, exitcode)
                return False
            log.warning("worker %d died (exit code %s); starting a replacement", pid, exitcode)
            socks[i].close()
            try:
                socks[i] = self._socket()
            except OSError as e:
                log.error("cannot bind a socket for worker %d's successor: %s; stopping",
                          pid, e)
                return False
            time.sleep(max(0.0, RESTART_BACKOFF_S - (time.monotonic() - w.started_at)))
            if (new := self._spawn(socks[i])) is not None:
                self.workers[i] = new
        return True

    def _join_workers(self) -> None:
        deadline = time.monotonic() + self.drain_timeout_s + 10
        for w in self.workers:
            w.process.join(max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():
                log.error("worker %d still running after the drain; killing it", w.process.pid)
                w.process.kill()
                w.process.join()
            mark_worker_dead(w.process.pid)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    from ganserve.service.settings import get_settings

    settings = get_settings()          # validates the environment before anything starts
    setup_logging(settings.log_level, settings.verbose)
    # the drain timeout as given (uvicorn waits with asyncio.wait_for): 0 = no wait
    # ws="none": no WebSocket endpoints, so an Upgrade request is plain HTTP (our 404 shape)
    common = dict(host=host, port=port, log_config=None, access_log=False, ws="none",
                  http=HeaderTimeoutProtocol,
                  timeout_graceful_shutdown=settings.drain_timeout_s, timeout_keep_alive=5,
                  limit_concurrency=settings.max_connections)
    if workers <= 1:
        from ganserve.service.main import create_app

        app = create_app(settings)
        DrainingServer(uvicorn.Config(app, **common), app).run()
        return
    threads = threads_per_worker(settings.intra_op_threads, workers, available_cpus())
    os.environ["GANSERVE_INTRA_OP_THREADS"] = str(threads)    # read by each worker process
    log.info("%d workers, %d ONNX Runtime intra-op thread(s) each", workers, threads)
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="ganserve-prom-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        config = uvicorn.Config("ganserve.service.main:app_factory", factory=True, workers=workers,
                                **common)
        code = Supervisor(config, workers, settings.drain_timeout_s).run()
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
    if code:
        raise SystemExit(code)
