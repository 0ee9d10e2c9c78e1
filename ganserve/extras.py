"""Which of ganserve's optional parts are installed, read from the package's own metadata,
so that a part installed while a process runs (``make run`` installs the training side in
the background) is seen without a restart."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re

_FOUND: set[str] = set()       # extras seen installed: packages are not uninstalled under us


def installed(extra: str, module: str) -> bool:
    """Whether every package of ganserve's ``extra`` is installed; ``module`` alone when
    ganserve runs from a source tree without metadata. Once true, answered from memory (job
    submissions ask on every request)."""
    if extra in _FOUND:
        return True
    importlib.invalidate_caches()
    try:
        wanted = [m.group(0) for r in importlib.metadata.requires("ganserve") or []
                  if f'extra == "{extra}"' in r and (m := re.match(r"[A-Za-z0-9._-]+", r))]
    except importlib.metadata.PackageNotFoundError:
        return importlib.util.find_spec(module) is not None
    try:
        for name in wanted:
            importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    _FOUND.add(extra)
    return True


def training_installed() -> bool:
    """torch and the rest of the ``train`` extra: what a job worker needs."""
    return installed("train", "torch")
