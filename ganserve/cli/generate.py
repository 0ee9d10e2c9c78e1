"""``ganserve generate``: images straight from the model store, no server.

Like NVIDIA's ``generate.py`` / ``style_mixing.py``: per-seed PNGs (``seed0042.png``), a grid,
an interpolation (PNG strip, GIF or WebP) or a style-mixing grid. It runs the service's own
generation and rendering code on a version loaded the way the service loads it (sha256
verified, determinism probed), with each ONNX Runtime run made directly instead of through the
batcher, so every file has the bytes the API answers for the same request.

Namesakes, one concept at several layers (generating images): ``ganserve.cli.generate``: from
the command line; ``ganserve.service.api.routes.generate``: over HTTP;
``ganserve.service.schemas.generate``: the HTTP bodies.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ganserve.latents import parse_seeds
from ganserve.service import generation, rendering
from ganserve.service.direct import NO_DEADLINE, open_version
from ganserve.service.registry import LoadedVersion


def _png(lv: LoadedVersion, gen: generation.Generated, cols: int | None, scale: int) -> bytes:
    return asyncio.run(rendering.png_response(lv, gen, cols, scale)).body


def _one(gen: generation.Generated, i: int) -> generation.Generated:
    return generation.Generated(gen.images[i:i + 1], gen.seeds[i:i + 1], gen.classes[i:i + 1])


def sample(lv: LoadedVersion, seeds: list[int], psi: float, cls: str | None, scale: int,
           outdir: Path, grid: bool, cols: int | None) -> list[Path]:
    index = generation.resolve_class(lv, cls) if cls is not None else None
    gen = asyncio.run(generation.sample(lv, seeds, index, psi, NO_DEADLINE))
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, seed in enumerate(seeds):
        written.append(outdir / f"seed{seed:04d}.png")
        written[-1].write_bytes(_png(lv, _one(gen, i), None, scale))
    if grid:
        written.append(outdir / "grid.png")
        written[-1].write_bytes(_png(lv, gen, cols, scale))
    return written


def interpolate(lv: LoadedVersion, a: int, b: int, outdir: Path, steps: int = 8,
                space: str = "z", method: str = "slerp", psi: float = 1.0, scale: int = 1,
                fmt: str = "png", frame_ms: int = 100) -> Path:
    """Frames from seed ``a`` to seed ``b``: a PNG strip, or an animated gif / webp."""
    req = generation.Interpolation(generation.Source(seed=a), generation.Source(seed=b),
                                   steps, space, method, psi)
    gen = asyncio.run(generation.interpolate(lv, req, NO_DEADLINE))
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / f"interpolate-{a}-{b}.{fmt}"
    if fmt in ("gif", "webp"):
        resp = asyncio.run(rendering.animation_response(lv, gen, scale, fmt, frame_ms))
        out.write_bytes(resp.body)
    else:
        out.write_bytes(_png(lv, gen, steps, scale))
    return out


def style_mix(lv: LoadedVersion, rows: list[int], cols: list[int], styles: str, psi: float,
              scale: int, outdir: Path) -> Path:
    from ganserve.latent_space import parse_styles

    try:
        layers = parse_styles(styles, lv.manifest.num_ws)
    except ValueError as e:
        raise GenerateError(f"--styles: {e}") from None
    gen = asyncio.run(generation.style_mix(lv, rows, cols, layers, psi, NO_DEADLINE))
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / "style-mix.png"
    out.write_bytes(_png(lv, gen, len(cols) + 1, scale))
    return out


class GenerateError(ValueError):
    """A request ``ganserve generate`` cannot make (a bad seed list or style spec)."""


def _seeds(text: str, what: str) -> list[int]:
    try:
        return parse_seeds(text)
    except ValueError as e:
        raise GenerateError(f"{what}: {e}") from None


def run(args: argparse.Namespace, models_dir: Path) -> list[Path]:
    lv = open_version(args.model, models_dir)
    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.interpolate:
        a, b = args.interpolate
        return [interpolate(lv, a, b, args.outdir, args.steps, args.space, args.method,
                            args.psi, args.scale, args.format, args.frame_ms)]
    if args.style_mix:
        generation.require(lv, "style-mix")
        return [style_mix(lv, _seeds(args.row_seeds, "--row-seeds"),
                          _seeds(args.col_seeds, "--col-seeds"), args.styles, args.psi,
                          args.scale, args.outdir)]
    return sample(lv, _seeds(args.seeds, "--seeds"), args.psi, args.class_, args.scale,
                  args.outdir, args.grid, args.cols)
