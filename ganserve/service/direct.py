"""A loaded version without the batcher: each run of the service's generation code goes
straight to ONNX Runtime (padded like the service's), for callers in this process that need
the API's bytes without a server: ``ganserve generate`` and the Python API
(``ganserve.local``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganserve.manifest import in_store, load_manifest, resolve_version_dir
from ganserve.service.batcher import Finish
from ganserve.service.registry import LoadedVersion, load_version, run_padded
from ganserve.service.settings import Settings

NO_DEADLINE = float("inf")


@dataclass
class DirectRun:
    """Stands in for a Batcher: one ONNX Runtime run per call, padded like the service's."""
    session: object
    pad_to: int | None

    async def submit(self, feeds: dict[str, np.ndarray], deadline: float,
                     finish: Finish | None = None) -> Any:
        out = run_padded(self.session, feeds, self.pad_to)
        return out if finish is None else finish(out)


def open_version(model: str, models_dir: Path) -> LoadedVersion:
    """``NAME``, ``NAME/VERSION`` or a path to either, loaded as the service loads it."""
    vdir = resolve_version_dir(in_store(model, models_dir))
    m = load_manifest(vdir)
    lv = load_version(m.name, m.version, vdir, Settings(models_dir=models_dir))
    lv.batchers = {g: DirectRun(s, lv.pad_to) for g, s in lv.generator.sessions.items()}
    return lv
