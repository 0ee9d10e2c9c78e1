"""The model registry: what the store holds, loaded, verified, warmed and hot-swapped.

``MODELS_DIR/NAME/VERSION/manifest.json`` (names starting with ``_`` or ``.`` are not
models). A version loads when its files match their sha256, its sessions start and a warm-up
run succeeds; otherwise it is listed as failed with the reason and everything else keeps
serving. The store is polled: new versions load in a worker thread and are swapped in with one
dict assignment, so a request that already holds a version finishes on it.

Determinism: every version is probed at load — rows run alone, inside a full batch and in
shuffled order must give bitwise-identical outputs. ONNX Runtime's CPU kernels pass (each row
is computed the same way at any batch size); a provider that fails runs in fixed-shape mode
(every run padded to ``max_batch_rows``) and is re-probed; ``deterministic`` is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganserve.generator import OnnxGenerator
from ganserve.latent_directions import DirectionError, Directions
from ganserve.manifest import (
    MANIFEST_NAME,
    NAME_RE,
    VERSION_RE,
    Manifest,
    list_versions,
    model_dirs,
)
from ganserve.model_store import read_default
from ganserve.onnx_runtime import CUDA_PROVIDER, DeviceUnavailable, providers_for, run_function
from ganserve.service.batcher import Batcher, BatchStats, Finish, pad_rows
from ganserve.service.errors import ModelNotFound, ModelUnavailable, VersionNotFound
from ganserve.service.settings import Settings

log = logging.getLogger(__name__)

PROBE_ROWS = 9
# graphs a version may have beyond its family's: the projection encoder (image -> latent)
OPTIONAL_GRAPHS = {"encoder"}


@dataclass
class LoadedVersion:
    name: str
    version: str
    dir: Path
    manifest: Manifest
    generator: OnnxGenerator
    provider: str
    deterministic: bool
    pad_to: int | None
    load_seconds: float
    max_batch_rows: int                 # this model's batching on its device (Settings.batching)
    max_batch_delay_ms: float
    directions: Directions | None = None    # its latent directions, if computed
    batchers: dict[str, Batcher] = field(default_factory=dict)
    status: str = "ready"

    @property
    def family(self) -> str:
        return self.manifest.family

    @property
    def fp16(self) -> bool:
        """Runs the version's float16 graphs."""
        return self.generator.fp16

    @property
    def capabilities(self) -> list[str]:
        """The family's operations, and what this version adds: project (it has an encoder)
        and edit (it has latent directions)."""
        return (self.manifest.family_spec.capabilities
                + (["project"] if "encoder" in self.generator.sessions else [])
                + (["edit"] if self.directions is not None else []))

    async def run(self, graph: str, feeds: dict[str, np.ndarray], deadline: float,
                  finish: Finish | None = None) -> Any:
        """The graph's output rows for ``feeds``, or ``finish(rows)`` (see ``Batcher``)."""
        return await self.batchers[graph].submit(feeds, deadline, finish)

    def queued_rows(self) -> int:
        return sum(b.queued_rows for b in self.batchers.values())


@dataclass
class FailedVersion:
    name: str
    version: str
    dir: Path
    error: str
    signature: tuple
    status: str = "failed"


Entry = LoadedVersion | FailedVersion


def _signature(vdir: Path) -> tuple:
    """Names, sizes and mtimes of a version's files: a failed version is retried on change."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                            for p in vdir.iterdir() if p.is_file()))
    except OSError:
        return ()


def run_padded(sess, feeds: dict[str, np.ndarray], pad_to: int | None) -> np.ndarray:
    """One ORT run of ``feeds``, padded to ``pad_to`` rows when set, trimmed back."""
    n = len(next(iter(feeds.values())))
    return sess.run(None, pad_rows(feeds, pad_to) if pad_to else feeds)[0][:n]


def probe_determinism(gen: OnnxGenerator, max_rows: int, pad_to: int | None) -> bool:
    """Rows alone vs in a full batch vs shuffled: bitwise equal for every graph?"""
    for graph, sess in gen.sessions.items():
        big = max(PROBE_ROWS, min(max_rows, 64))
        feeds = gen.example_feeds(graph, big)
        full = run_padded(sess, feeds, pad_to)
        alone = np.concatenate([run_padded(sess, {k: v[i:i + 1] for k, v in feeds.items()},
                                            pad_to) for i in range(PROBE_ROWS)])
        perm = np.random.default_rng(0).permutation(big)
        shuffled = run_padded(sess, {k: v[perm] for k, v in feeds.items()}, pad_to)
        if not (np.array_equal(full[:PROBE_ROWS], alone)
                and np.array_equal(shuffled, full[perm])):
            return False
    return True


def open_generator(vdir: Path, settings: Settings) -> OnnxGenerator:
    """The version's sessions on the settings' device, float16 graphs where they are wanted
    (``Settings.uses_fp16``): a GPU that fell back to the CPU gets float32 again."""
    def open_(fp16: bool) -> OnnxGenerator:
        return OnnxGenerator(vdir, device=settings.device, verify=True,
                             intra_op_threads=settings.intra_op_threads,
                             spinning=settings.ort_spinning,
                             identical_across_cpus=settings.identical_across_cpus,
                             cpu_mem_arena=settings.cpu_mem_arena, fp16=fp16)
    gen = open_(settings.uses_fp16(providers_for(settings.device)[0] == CUDA_PROVIDER))
    on_gpu = next(iter(gen.sessions.values())).get_providers()[0] == CUDA_PROVIDER
    if gen.fp16 and not settings.uses_fp16(on_gpu):
        gen = open_(False)
    return gen


def load_version(name: str, version: str, vdir: Path, settings: Settings) -> LoadedVersion:
    """Verify, open and warm up one version (blocking: run it in a worker thread)."""
    t0 = time.monotonic()
    gen = open_generator(vdir, settings)
    m = gen.manifest
    if m.name != name or m.version != version:
        raise ValueError(f"manifest says {m.name}/{m.version}, folder is {name}/{version}")
    expected = set(m.family_spec.graphs)
    if not expected <= set(gen.sessions) <= expected | OPTIONAL_GRAPHS:
        raise ValueError(f"{m.family} needs graphs {sorted(expected)} (and may have "
                         f"{sorted(OPTIONAL_GRAPHS)}), manifest has {sorted(gen.sessions)}")
    try:
        directions = Directions.load(vdir, m)
    except DirectionError as e:         # the version still generates; /edit says 409
        log.error("%s/%s: latent directions not loaded: %s", name, version, e)
        directions = None
    for graph, sess in gen.sessions.items():
        want = [t.name for t in m.graphs[graph].inputs]
        have = [i.name for i in sess.get_inputs()]
        if want != have:
            raise ValueError(f"{graph}: inputs {have} do not match the manifest's {want}")
    provider = next(iter(gen.sessions.values())).get_providers()[0]
    rows, delay_ms = settings.batching(name, provider == CUDA_PROVIDER)
    pad_to = None
    deterministic = probe_determinism(gen, rows, None)
    if not deterministic:
        pad_to = rows
        deterministic = probe_determinism(gen, rows, pad_to)
        log.warning("%s/%s: outputs depend on batch size on %s; running fixed-shape batches "
                    "of %d rows (deterministic: %s)", name, version, provider, pad_to,
                    deterministic)
    # warm-up at the largest batch, so the first real request does not pay allocation
    for graph, sess in gen.sessions.items():
        run_padded(sess, gen.example_feeds(graph, rows), pad_to)
    return LoadedVersion(name, version, vdir, m, gen, provider, deterministic, pad_to,
                         time.monotonic() - t0, rows, delay_ms, directions)


class Registry:
    def __init__(self, settings: Settings, executor: Executor | None = None,
                 on_batch: Callable[[LoadedVersion, str, BatchStats], None] | None = None,
                 on_queue: Callable[[LoadedVersion, int], None] | None = None,
                 on_change: Callable[[Registry], None] | None = None):
        self.settings = settings
        self.executor = executor
        self._on_batch, self._on_queue, self._on_change = on_batch, on_queue, on_change
        self.models: dict[str, dict[str, Entry]] = {}
        self.defaults: dict[str, str] = {}      # model -> its chosen default version
        self.scanned = False
        self._poll_task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    # ---------------------------------------------------------------- queries
    def versions_of(self, name: str) -> dict[str, Entry]:
        """The versions of model ``name`` (loaded or failed); unknown: a 404 that names the
        models there are and the near miss."""
        versions = self.models.get(name)
        if not versions:
            raise ModelNotFound.named(name, sorted(self.models))
        return versions

    def get(self, name: str, version: str | None = None) -> LoadedVersion:
        versions = self.versions_of(name)
        if version in (None, ""):
            chosen = versions.get(self.defaults.get(name, ""))
            if isinstance(chosen, LoadedVersion):
                return chosen
        if version in (None, "", "latest"):
            loaded = [v for v in versions.values() if isinstance(v, LoadedVersion)]
            if not loaded:
                raise ModelUnavailable(f"{name}: no version could be loaded",
                                       failed={k: v.error for k, v in versions.items()
                                               if isinstance(v, FailedVersion)})
            return max(loaded, key=lambda v: int(v.version))
        entry = versions.get(str(version))
        if entry is None:
            raise VersionNotFound(f"{name} has no version {version!r}", field="version",
                                  available=sorted(versions, key=int))
        if isinstance(entry, FailedVersion):
            raise ModelUnavailable(f"{name}/{version} failed to load: {entry.error}",
                                   field="version")
        return entry

    async def resolve(self, name: str, version: str | None = None) -> LoadedVersion:
        """``get``, but a version the store holds that this replica has not loaded yet (a
        job published it since the last poll) is loaded now instead of a 404: a client
        that saw its job succeed can use the version at once, on any replica. The load is
        the registry's usual one (verified, probed, warmed), single-flight (concurrent
        misses wait for one scan), and only for a version whose manifest is on disk, so
        asking for made-up versions costs one stat each."""
        try:
            return self.get(name, version)
        except (ModelNotFound, VersionNotFound):
            if not self._in_store(name, version):
                raise
        await self.refresh()
        try:
            return self.get(name, version)
        except ModelUnavailable:
            if version and not self._in_store(name, version):   # removed while it loaded
                raise VersionNotFound(f"{name} has no version {version!r}", field="version",
                                      available=sorted(self.models.get(name, {}), key=int)
                                      ) from None
            raise

    async def catch_up(self, name: str, version: str | None = None) -> None:
        """``resolve`` for handlers that judge against the store themselves (management,
        job submission): load what the store holds and this replica has not polled yet;
        what stays unknown or failed is the handler's own 404, 409 or 503 to give."""
        with contextlib.suppress(ModelNotFound, VersionNotFound, ModelUnavailable):
            await self.resolve(name, version)

    def _in_store(self, name: str, version: str | None) -> bool:
        if not NAME_RE.match(name):
            return False
        model_dir = self.settings.models_dir / name
        if version in (None, "", "latest"):
            return any((model_dir / v / MANIFEST_NAME).is_file()
                       for v in list_versions(model_dir))
        return bool(VERSION_RE.match(version)) and (model_dir / version / MANIFEST_NAME
                                                    ).is_file()

    def loaded(self) -> list[LoadedVersion]:
        return [v for vs in self.models.values() for v in vs.values()
                if isinstance(v, LoadedVersion)]

    @property
    def ready(self) -> bool:
        """Every loadable version is loaded and warm (failed ones are reported, not waited on)."""
        return self.scanned

    # ---------------------------------------------------------------- loading
    def _plan(self) -> list[tuple[str, str, Path]]:
        """Versions on disk that are new, or failed and changed since."""
        todo = []
        for model_dir in model_dirs(self.settings.models_dir):
            for v in list_versions(model_dir):
                vdir = model_dir / v
                if not (vdir / MANIFEST_NAME).is_file():
                    continue
                entry = self.models.get(model_dir.name, {}).get(v)
                if entry is None or (isinstance(entry, FailedVersion)
                                     and entry.signature != _signature(vdir)):
                    todo.append((model_dir.name, v, vdir))
        return todo

    def _read_defaults(self) -> dict[str, str]:
        found = {}
        for model_dir in model_dirs(self.settings.models_dir):
            v = read_default(model_dir)
            if v is not None:
                found[model_dir.name] = v
        return found

    def _removed(self) -> list[tuple[str, str]]:
        return [(n, v) for n, vs in self.models.items() for v, e in vs.items()
                if not (e.dir / MANIFEST_NAME).is_file()]

    def _load_all(self, todo: list[tuple[str, str, Path]]) -> list[Entry]:
        out: list[Entry] = []
        for name, version, vdir in todo:
            try:
                lv = load_version(name, version, vdir, self.settings)
                log.info("loaded %s/%s (%s) on %s%s in %.2f s, deterministic=%s", name,
                         version, lv.family, lv.provider, ", float16" if lv.fp16 else "",
                         lv.load_seconds, lv.deterministic)
                out.append(lv)
            except Exception as e:  # any failure: refuse this version, keep the rest...
                if isinstance(e, DeviceUnavailable) and not self.scanned:
                    raise           # ...but no GPU at start is no version's fault: stop
                log.error("refused %s/%s: %s", name, version, e)
                out.append(FailedVersion(name, version, vdir, str(e), _signature(vdir)))
        return out

    def _make_batchers(self, lv: LoadedVersion) -> None:
        s = self.settings
        io_binding = s.uses_io_binding(lv.provider == CUDA_PROVIDER)
        for graph, sess in lv.generator.sessions.items():
            run = run_function(sess, io_binding)
            lv.batchers[graph] = Batcher(
                f"{lv.name}/{lv.version}/{graph}", run, max_rows=lv.max_batch_rows,
                max_delay_s=lv.max_batch_delay_ms / 1000, max_queue_rows=s.max_queue_rows,
                executor=self.executor, pad_to=lv.pad_to,
                on_batch=(lambda st, lv=lv, g=graph: self._on_batch(lv, g, st))
                if self._on_batch else None,
                on_queue=(lambda n, lv=lv: self._on_queue(lv, lv.queued_rows()))
                if self._on_queue else None)

    async def refresh(self) -> int:
        """Load what is new on disk, drop what is gone; returns the number of changes."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            todo = await loop.run_in_executor(None, self._plan)
            removed = await loop.run_in_executor(None, self._removed)
            defaults = await loop.run_in_executor(None, self._read_defaults)
            if defaults != self.defaults:
                log.info("default versions: %s", defaults or "the highest of each model")
                self.defaults = defaults
            if not todo and not removed:
                self.scanned = True
                return 0
            entries = await loop.run_in_executor(None, self._load_all, todo)
            models = {n: dict(vs) for n, vs in self.models.items()}
            retired: list[LoadedVersion] = []
            for n, v in removed:
                old = models[n].pop(v)
                if isinstance(old, LoadedVersion):
                    retired.append(old)
                if not models[n]:
                    del models[n]
                log.info("removed %s/%s (gone from the store)", n, v)
            for e in entries:
                if isinstance(e, LoadedVersion):
                    self._make_batchers(e)
                models.setdefault(e.name, {})[e.version] = e
            self.models = models            # the atomic swap
            self.scanned = True
            if self._on_change:
                self._on_change(self)
            for lv in retired:              # let requests already queued finish first
                loop.call_later(self.settings.request_deadline_s, self._close_later, lv)
            return len(entries) + len(removed)

    def _close_later(self, lv: LoadedVersion) -> None:
        for b in lv.batchers.values():
            asyncio.ensure_future(b.close())

    async def start(self) -> None:
        await self.refresh()
        if self.settings.poll_interval_s > 0:
            self._poll_task = asyncio.create_task(self._poll(), name="registry-poll")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await self.refresh()
            except Exception:  # keep polling whatever one scan hit
                log.exception("model store poll failed")

    async def stop(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
        for lv in self.loaded():
            for b in lv.batchers.values():
                await b.close()
