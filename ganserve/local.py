"""The in-process Python API: images from a model store, no server.

    import ganserve
    images = ganserve.generate("fashion-dcgan", seeds=[1, 2, 3], psi=0.7)
    images[0].save("one.png")               # PIL images
    open("grid.png", "wb").write(images.png(cols=3))   # the API's bytes for the same request

It runs the service's own generation and rendering code on versions loaded the way the
service loads them (sha256 verified, determinism probed), one ONNX Runtime run per call
(``ganserve.service.direct``), so ``Images.png()`` is byte for byte what
``POST /v1/models/NAME/sample`` answers for the same seeds and psi on the same machine.
Versions stay loaded in a ``Models`` (the module-level functions share one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ganserve.images import to_pil
from ganserve.latent_space import parse_styles
from ganserve.latents import parse_seeds
from ganserve.manifest import list_versions
from ganserve.model_store import read_default
from ganserve.service import generation, rendering
from ganserve.service.direct import NO_DEADLINE, open_version
from ganserve.service.registry import LoadedVersion

Seeds = Sequence[int] | str          # [0, 1, 2] or NVIDIA's "0-7", "1,5,9-12"


@dataclass(eq=False)
class Images(Sequence):
    """The images of one call: a sequence of PIL images, with what made them."""
    model: str
    version: str
    pixels: np.ndarray = field(repr=False)          # uint8 N x H x W x C, what the API encodes
    seeds: list[int | None]
    classes: list[int | None]
    _lv: LoadedVersion = field(repr=False)
    _generated: generation.Generated = field(repr=False)
    cols: int | None = None                         # the API's layout for png() (None: auto)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i):               # an image, or a list of them for a slice
        if isinstance(i, slice):
            return [to_pil(p) for p in self.pixels[i]]
        return to_pil(self.pixels[i])

    def png(self, cols: int | None = None, scale: int = 1) -> bytes:
        """One PNG of the images (a grid of ``cols`` columns, by default the endpoint's
        layout; each pixel ``scale`` x ``scale``): the bytes the API answers for the same
        request."""
        return _run(rendering.png_response(self._lv, self._generated,
                                                  cols or self.cols, scale)).body

    def grid(self, cols: int | None = None, scale: int = 1) -> Image.Image:
        """The grid as one PIL image."""
        import io

        return Image.open(io.BytesIO(self.png(cols, scale))).copy()


def _run(coro):
    """Run one of the service's coroutines to its end, also from code that already runs an
    event loop (a notebook, an async handler): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _seeds(seeds: Seeds) -> list[int]:
    return parse_seeds(seeds) if isinstance(seeds, str) else [int(s) for s in seeds]


class Models:
    """A model store opened in this process: versions load on first use and stay loaded."""

    def __init__(self, models_dir: str | Path | None = None):
        from ganserve.service.settings import Settings

        self.models_dir = Path(models_dir) if models_dir else Settings().models_dir
        self._open: dict[str, LoadedVersion] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def version(self, model: str, version: str | int | None = None) -> LoadedVersion:
        """``model`` (a name, or a version folder's path) at ``version`` (None: the store's
        default for it, as unversioned API requests get: the chosen default, else the
        highest), loaded as the service loads it, once per version; ManifestError names
        what is wrong."""
        key = self._resolve(model, version)
        with self._lock:
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:                              # one load per version, others not blocked
            if key not in self._open:
                self._open[key] = open_version(key, self.models_dir)
            return self._open[key]

    def _resolve(self, model: str, version: str | int | None) -> str:
        if version is not None:
            return f"{model}/{version}"
        model_dir = self.models_dir / model
        versions = list_versions(model_dir)
        if not versions:                        # a path, or a name open_version explains
            return model
        chosen = read_default(model_dir)
        return f"{model}/{chosen if chosen in versions else versions[-1]}"

    def _images(self, lv: LoadedVersion, gen: generation.Generated,
                cols: int | None = None) -> Images:
        return Images(lv.name, lv.version, rendering.pixels(gen.images), list(gen.seeds),
                      list(gen.classes), lv, gen, cols)

    def generate(self, model: str, seeds: Seeds = (0,), *, psi: float = 1.0,
                 class_: int | str | None = None, version: str | int | None = None) -> Images:
        """Images from ``seeds`` (a conditional model cycles through its classes unless
        ``class_`` names one), as ``POST /v1/models/NAME/sample``."""
        lv = self.version(model, version)
        index = generation.resolve_class(lv, class_) if class_ is not None else None
        gen = _run(generation.sample(lv, _seeds(seeds), index, psi, NO_DEADLINE))
        return self._images(lv, gen)

    def conditional(self, model: str, class_: int | str, seeds: Seeds = (0,), *,
                    psi: float = 1.0, version: str | int | None = None) -> Images:
        """Images of one class, as ``POST /v1/models/NAME/conditional``."""
        generation.require(self.version(model, version), "conditional")
        return self.generate(model, seeds, psi=psi, class_=class_, version=version)

    def interpolate(self, model: str, start: int, end: int, *, steps: int = 8,
                    space: str = "z", method: str = "slerp", psi: float = 1.0,
                    version: str | int | None = None) -> Images:
        """Frames from seed ``start`` to seed ``end``, endpoints included, as
        ``POST /v1/models/NAME/interpolate``."""
        lv = self.version(model, version)
        req = generation.Interpolation(generation.Source(seed=start),
                                       generation.Source(seed=end), steps, space, method, psi)
        return self._images(lv, _run(generation.interpolate(lv, req, NO_DEADLINE)),
                            cols=steps)

    def style_mix(self, model: str, row_seeds: Seeds, col_seeds: Seeds, *,
                  styles: str | Sequence[int | str] = "coarse", psi: float = 1.0,
                  version: str | int | None = None) -> Images:
        """NVIDIA's style-mixing grid ((rows + 1) x (cols + 1) cells, the first row and
        column the sources), as ``POST /v1/models/NAME/style-mix``; ``png()`` lays it out."""
        lv = self.version(model, version)
        generation.require(lv, "style-mix")
        layers = parse_styles(styles, lv.manifest.num_ws)
        cols = _seeds(col_seeds)
        gen = _run(generation.style_mix(lv, _seeds(row_seeds), cols, layers, psi,
                                               NO_DEADLINE))
        return self._images(lv, gen, cols=len(cols) + 1)


_shared: Models | None = None
_shared_lock = threading.Lock()


def models(models_dir: str | Path | None = None) -> Models:
    """The process's shared store (``GANSERVE_MODELS_DIR``, else ./var/models), or a new
    one for ``models_dir``."""
    global _shared
    if models_dir is not None:
        return Models(models_dir)
    with _shared_lock:
        if _shared is None:
            _shared = Models()
        return _shared


def generate(model: str, seeds: Seeds = (0,), **kw) -> Images:
    """``Models.generate`` on the shared store."""
    return models().generate(model, seeds, **kw)


def conditional(model: str, class_: int | str, seeds: Seeds = (0,), **kw) -> Images:
    """``Models.conditional`` on the shared store."""
    return models().conditional(model, class_, seeds, **kw)


def interpolate(model: str, start: int, end: int, **kw) -> Images:
    """``Models.interpolate`` on the shared store."""
    return models().interpolate(model, start, end, **kw)


def style_mix(model: str, row_seeds: Seeds, col_seeds: Seeds, **kw) -> Images:
    """``Models.style_mix`` on the shared store."""
    return models().style_mix(model, row_seeds, col_seeds, **kw)
