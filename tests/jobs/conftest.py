"""Job fixtures: a store of baby models with the tiny classifier, a data dir holding a small
IDX dataset, real brokers (the machine's Redis, or an own redis-server that a test may stop),
the machine's PostgreSQL (a database per test), and real `ganserve worker` processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from ganserve.jobs.queue import WORKER_READY
from tests.service.conftest import READY_TIMEOUT_S, REPO, ServerProcess, free_port
from tests.service.conftest import server_factory as server_factory  # noqa: F401
from tests.service.conftest import store as store  # noqa: F401 (the baby store fixture)

# the machine's Redis: this suite's database number (flushed after each test that used it)
TEST_REDIS_DB = int(os.environ.get("GANSERVE_TEST_REDIS_DB", "11"))
PG_ADMIN_URL = os.environ.get("GANSERVE_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FAST_LEASE = {"GANSERVE_JOB_LEASE_S": "5", "GANSERVE_JOB_HEARTBEAT_S": "1"}


@pytest.fixture
def job_models(store, extractor_dir, tmp_path) -> Path:
    """A writable copy of the baby store, with the tiny classifier as the store's evaluator."""
    models = tmp_path / "models"
    shutil.copytree(store, models)
    shutil.copytree(extractor_dir, models / "_evaluators" / "fashion-mnist")
    return models


@pytest.fixture
def data_dir(idx_dir, tmp_path) -> Path:
    """A data dir whose datasets/ holds the small IDX dataset as 'idx'."""
    d = tmp_path / "data"
    shutil.copytree(idx_dir, d / "datasets" / "idx")
    return d


@pytest.fixture
def redis_url():
    url = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


class OwnRedis:
    """A redis-server of the test's own on a free port (never the machine's): stoppable."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no", "--bind", "127.0.0.1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 60          # generous: a busy machine starts slowly
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def own_redis():
    r = OwnRedis()
    r.start()
    yield r
    r.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def records(request, tmp_path):
    """A JobStore on each backend: SQLite in a folder, a fresh PostgreSQL database."""
    from ganserve.jobs.migrate import upgrade
    from ganserve.jobs.store import JobStore

    url = (f"sqlite:///{tmp_path / 'jobs.sqlite'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    s = JobStore.from_url(url)
    upgrade(s.engine)
    yield s
    s.engine.dispose()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database on the machine's server, dropped afterwards."""
    name = f"ganserve_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    sa.create_engine(url).dispose()
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class WorkerProcess:
    """``ganserve worker`` in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], queues: str = "train,eval", concurrency: int = 1):
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the worker)
            "w+", prefix="ganserve-worker-", suffix=".log")
        e = {**os.environ, "OMP_NUM_THREADS": "1", "GANSERVE_WORKER_METRICS_PORT":
             str(free_port()), **env}
        e.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.metrics_port = int(e["GANSERVE_WORKER_METRICS_PORT"])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ganserve", "worker", "--queues", queues,
             "--concurrency", str(concurrency)], cwd=REPO, env=e, stdout=self.log,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.output()}")
            if WORKER_READY in self.output():
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker did not become ready: {self.output()}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self.kill()
        return self.proc.returncode


@pytest.fixture
def worker_factory():
    workers: list[WorkerProcess] = []

    def start(env: dict[str, str], ready: bool = True, **kw) -> WorkerProcess:
        w = WorkerProcess(env, **kw)
        workers.append(w)
        if ready:
            w.wait_ready()
        return w

    yield start
    for w in workers:
        w.kill()


@pytest.fixture
def job_server(server_factory):
    """``ganserve serve`` for job tests: the store polled every 0.5 s."""
    def start(models_dir: Path, env: dict[str, str], workers: int = 1) -> ServerProcess:
        return server_factory(models_dir, workers, **{"GANSERVE_POLL_INTERVAL_S": "0.5", **env})

    return start


def wait_job(url: str, job_id: str, states: tuple[str, ...], timeout: float = 120.0,
             until=None) -> dict:
    """Poll GET /v1/jobs/{id} until its state is one of ``states`` (and ``until(job)``)."""
    t0 = time.monotonic()
    job: dict = {}
    while time.monotonic() - t0 < timeout:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=5).json()
        if job["state"] in states and (until is None or until(job)):
            return job
        if job["state"] in ("succeeded", "failed", "cancelled") and job["state"] not in states:
            raise AssertionError(f"job ended {job['state']}: {job}")
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not in {states} after {timeout} s: {job}")


def fine_tune_body(**over) -> dict:
    """A baby fine-tune of baby-dcgan on one class of the small IDX dataset."""
    return {"model": "baby-dcgan", "dataset": {"path": "idx", "classes": ["class3"]},
            "steps": 12, "sample_every": 4, "checkpoint_every": 4, **over}


class WebhookReceiver:
    """A local HTTP server that records webhook POSTs; ``answers`` is a list of statuses
    to give in turn (then 200), ``delay_s`` a wait before each answer."""

    def __init__(self):
        import http.server

        self.calls: list[dict] = []
        self.answers: list[int] = []
        self.delay_s = 0.0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.calls.append({"headers": dict(self.headers), "body": body,
                                       "at": time.monotonic()})
                time.sleep(receiver.delay_s)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [c["headers"]["X-Ganserve-Event"] for c in self.calls]

    def wait(self, n: int, timeout: float = 30.0) -> list[dict]:
        t0 = time.monotonic()
        while len(self.calls) < n and time.monotonic() - t0 < timeout:
            time.sleep(0.05)
        return self.calls


@pytest.fixture
def webhook_receiver():
    r = WebhookReceiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


class CuttableLink:
    """A TCP relay in front of a server (the machine's PostgreSQL): ``cut()`` drops every
    connection through it and refuses new ones, as a network partition would for the
    processes that use it (and only them); ``mend()`` lets them through again."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self._conns: list = []
        self._lock = threading.Lock()
        self._listener = None
        self.mend()

    def mend(self) -> None:
        import socket

        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def cut(self) -> None:
        import socket

        with self._lock:
            listener, conns, self._conns = self._listener, self._conns, []
        for s in (listener, *conns):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener) -> None:
        import socket

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return                              # cut
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


@pytest.fixture
def pg_link():
    link = CuttableLink(sa.make_url(PG_ADMIN_URL).port or 5432)
    yield link
    link.cut()
