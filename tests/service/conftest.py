"""Service fixtures: a model store of baby exports, an app client, a real uvicorn process."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ganserve.service.main import create_app
from ganserve.service.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def store(baby_exports, tmp_path_factory) -> Path:
    """A store with baby-dcgan/1, baby-cgan/1, baby-stylegan/1 (read-only for tests)."""
    root = tmp_path_factory.mktemp("store")
    for vdir in baby_exports.values():
        shutil.copytree(vdir, root / vdir.parent.name / vdir.name)
    return root


def copy_store(store: Path, dest: Path) -> Path:
    shutil.copytree(store, dest)
    return dest


def add_version(model_dir: Path, src_version: str, new_version: str) -> Path:
    """Publish a copy of a version as a new version, the way export does (temp + rename)."""
    tmp = model_dir / f".tmp-{new_version}"
    shutil.copytree(model_dir / src_version, tmp)
    m = json.loads((tmp / "manifest.json").read_text())
    m["version"] = new_version
    (tmp / "manifest.json").write_text(json.dumps(m))
    tmp.rename(model_dir / new_version)
    return model_dir / new_version


def error(r, status: int, code: str, field: str | None = None) -> dict:
    """Assert the one error shape: status, code, a message, the request id (also echoed in
    X-Request-ID), and the field when given."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()["error"]
    assert set(body) == {"code", "message", "field", "request_id", "details"}, body
    assert body["code"] == code and body["message"] and body["request_id"]
    assert r.headers["x-request-id"] == body["request_id"]
    if field is not None:
        assert body["field"] == field, body
    return body


# readiness is polled, never slept for: these limits only stop a hung start, and are generous
# enough for a machine whose cores something else is using too
READY_TIMEOUT_S = 180.0


def wait_ready(client, timeout: float = READY_TIMEOUT_S) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if client.get("/v2/health/ready").status_code == 200:
            return
        time.sleep(0.05)
    raise TimeoutError("service did not become ready")


def make_client(models_dir: Path, **overrides) -> TestClient:
    """An in-process app; its job records and broker (embedded mode, no worker) live in a
    fresh data dir unless ``data_dir`` is given."""
    if "data_dir" not in overrides:
        overrides["data_dir"] = Path(tempfile.mkdtemp(prefix="ganserve-data-"))
    settings = Settings(models_dir=models_dir, poll_interval_s=0, **overrides)
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def client(store):
    with make_client(store) as c:
        wait_ready(c)
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``ganserve serve`` in a subprocess, on a free loopback port."""

    def __init__(self, models_dir: Path, workers: int = 1, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # job records in a fresh data dir; no embedded job worker unless a test asks for one
        self.data_dir = Path(tempfile.mkdtemp(prefix="ganserve-data-"))
        e = {**os.environ, "GANSERVE_MODELS_DIR": str(models_dir), "GANSERVE_LOG_LEVEL":
             "WARNING", "GANSERVE_INTRA_OP_THREADS": "1", "OMP_NUM_THREADS": "1",
             "GANSERVE_DATA_DIR": str(self.data_dir), "GANSERVE_EMBEDDED_WORKER": "false",
             **env}
        e.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # the log goes to a file: a pipe nobody reads would block a busy server
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the server)
            "w+", prefix="ganserve-test-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ganserve", "serve", "--port", str(self.port),
             "--workers", str(workers)], cwd=REPO, env=e,
            stdout=self.log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)       # its own process group: cleanup reaches workers

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def workers(self) -> list[int]:
        """Pids of the supervisor's live worker processes (not the resource tracker)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmd = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid and fields[0] != "Z" and b"spawn_main" in cmd \
                    and b"resource_tracker" not in cmd:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server did not become ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.kill_group()
        return self.proc.returncode

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the server's process group (workers included)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def server_factory():
    servers: list[ServerProcess] = []

    def start(models_dir: Path, workers: int = 1, **env: str) -> ServerProcess:
        s = ServerProcess(models_dir, workers, **env)
        servers.append(s)
        s.wait_ready()
        return s

    yield start
    for s in servers:
        s.stop(signal.SIGKILL)


def upload(client, content: bytes, filename: str = "set.zip", **fields):
    return client.post("/v1/datasets", files={"file": (filename, content,
                                                       "application/octet-stream")},
                       data=fields or None)


def data_files(data_dir: Path) -> set[str]:
    """The files a dataset upload could leave: everything under datasets/ but the lock."""
    root = data_dir / "datasets"
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and p.name != ".lock"} if root.exists() else set()


@pytest.fixture
def upload_client(store, tmp_path, monkeypatch):
    """A factory: an in-process app on a fresh data dir with the given settings; the system
    temp dir is swapped for an empty one, so a test can check nothing was written there."""
    tmp = tmp_path / "system-tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    opened = []

    def make(**overrides) -> TestClient:
        c = make_client(store, data_dir=tmp_path / "data", **overrides)
        c.__enter__()
        wait_ready(c)
        c.data_dir = tmp_path / "data"
        c.system_tmp = tmp
        opened.append(c)
        return c
    yield make
    for c in opened:
        c.__exit__(None, None, None)
