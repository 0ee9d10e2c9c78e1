"""From validated requests to images: latents, truncation, batching, style mixing.

Every function takes a ``LoadedVersion`` and runs its graphs through the version's batchers;
the numpy steps between graphs (truncation, interpolation, mixing) are the same ones
``ganserve.generator`` documents for offline use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganserve.families import supporting
from ganserve.generator import class_weights
from ganserve.latent_space import interpolation_steps, lerp, mix_ws, slerp
from ganserve.latents import truncated_z_from_seed, z_from_seeds
from ganserve.names import choices, closest
from ganserve.service.errors import InvalidInput, Unsupported
from ganserve.service.registry import LoadedVersion


def require(lv: LoadedVersion, capability: str) -> None:
    if not lv.manifest.family_spec.supports(capability):
        fams = ", ".join(supporting(capability))
        raise Unsupported(f"{capability} is not supported by {lv.name} ({lv.family}); "
                          f"families that support it: {fams}",
                          family=lv.family, supported_families=supporting(capability))


@dataclass
class Generated:
    images: np.ndarray                  # float32 NCHW, not clipped
    seeds: list[int | None]
    classes: list[int | None]
    latents: np.ndarray | None = None   # the z (or w) each image came from
    ws: np.ndarray | None = None        # StyleGAN: the (truncated) w of each image
    rendered: Any = None                # render(images) when the caller passed a render


# images (float32 NCHW) -> a response body; runs in the batch's worker thread
Render = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class Source:
    """One end of an interpolation: exactly one of a seed, an explicit z or an explicit w,
    and for conditional models optionally a class (index or name)."""
    seed: int | None = None
    z: list[float] | None = None
    w: list[float] | None = None
    class_: int | str | None = None


@dataclass(frozen=True)
class Rows:
    """A batch given row by row (the inference protocol's tensors): exactly one of seeds,
    explicit z or (StyleGAN) explicit w, one per row; for conditional models optionally a
    class index per row (default, as in ``sample``: seed % classes)."""
    seeds: list[int] | None = None
    z: np.ndarray | None = None             # float32 [n, z_dim]
    w: np.ndarray | None = None             # float32 [n, w_dim]
    classes: list[int] | None = None


@dataclass(frozen=True)
class Interpolation:
    start: Source
    end: Source
    steps: int                      # frames, endpoints included
    space: str = "z"                # "z", or "w" for families with a w space
    method: str = "slerp"           # "slerp" or "lerp"
    psi: float = 1.0                # truncation


def resolve_class(lv: LoadedVersion, ref: int | str, field: str = "class") -> int:
    m = lv.manifest
    if not m.conditional:
        raise Unsupported(f"{lv.name} ({lv.family}) is not conditional; a class applies only "
                          f"to: {', '.join(supporting('conditional'))}",
                          family=lv.family, supported_families=supporting("conditional"))
    if isinstance(ref, int) and not isinstance(ref, bool):
        if not 0 <= ref < m.num_classes:
            raise InvalidInput(f"{field}: class index {ref} out of range 0..{m.num_classes - 1}",
                               field=field)
        return ref
    names = {n.lower(): i for i, n in enumerate(m.class_names)}
    key = str(ref).strip().lower()
    if key in names:
        return names[key]
    if key.isascii() and key.isdigit():        # not '²' or '①', which int() refuses
        return resolve_class(lv, int(key), field)
    raise InvalidInput(f"{field}: unknown class {ref!r}{choices('class', str(ref), m.class_names)}",
                       field=field, classes=m.class_names,
                       suggestion=closest(str(ref), m.class_names))


async def _final(lv: LoadedVersion, graph: str, feeds: dict[str, np.ndarray], deadline: float,
                 render: Render | None = None) -> tuple[np.ndarray, Any]:
    """The images of the last graph, and ``render(images)`` made in the batch's thread."""
    if render is None:
        return await lv.run(graph, feeds, deadline), None
    return await lv.run(graph, feeds, deadline, lambda images: (images, render(images)))


async def _stylegan_images(lv: LoadedVersion, z: np.ndarray, psi: float, deadline: float,
                           render: Render | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
    w = await lv.run("mapping", {"z": z}, deadline)
    w = lv.generator.truncate(w, psi)
    images, rendered = await _final(lv, "synthesis", {"ws": lv.generator.broadcast(w)},
                                    deadline, render)
    return images, w, rendered


async def _generator_images(lv: LoadedVersion, z: np.ndarray, weights: np.ndarray | None,
                            deadline: float, render: Render | None = None
                            ) -> tuple[np.ndarray, Any]:
    feeds = {"z": z.astype(np.float32)}
    if lv.manifest.conditional:
        feeds["class"] = weights
    return await _final(lv, "generator", feeds, deadline, render)


async def sample(lv: LoadedVersion, seeds: list[int], class_index: int | None, psi: float,
                 deadline: float, render: Render | None = None) -> Generated:
    """Images from seeds; with ``render``, also its result (``Generated.rendered``)."""
    m = lv.manifest
    classes: list[int | None] = [None] * len(seeds)
    if m.family_spec.w_space:
        z = z_from_seeds(seeds, m.z_dim)
        images, _, rendered = await _stylegan_images(lv, z, psi, deadline, render)
        return Generated(images, list(seeds), classes, z, rendered=rendered)
    z = np.stack([truncated_z_from_seed(s, m.z_dim, psi) for s in seeds])
    weights = None
    if m.conditional:
        classes = [class_index if class_index is not None else s % m.num_classes for s in seeds]
        weights = class_weights(classes, m.num_classes)
    images, rendered = await _generator_images(lv, z, weights, deadline, render)
    return Generated(images, list(seeds), classes, z, rendered=rendered)


async def rows(lv: LoadedVersion, req: Rows, psi: float, deadline: float) -> Generated:
    """One image per row. Seeds give exactly what ``sample`` gives for them; psi applies
    as there (in w for StyleGAN, by truncated sampling of a seed's z otherwise, so an
    explicit z of another family is used as given and takes no psi)."""
    m = lv.manifest
    if m.family_spec.w_space:
        if req.w is not None:
            w = _truncate(lv, req.w, psi, "w")
            images = await lv.run("synthesis", {"ws": lv.generator.broadcast(w)}, deadline)
            return Generated(images, [None] * len(w), [None] * len(w), None, w)
        z = z_from_seeds(req.seeds, m.z_dim) if req.seeds is not None else req.z
        images, w, _ = await _stylegan_images(lv, z, psi, deadline)
        return Generated(images, _row_seeds(req, len(z)), [None] * len(z), z, w)
    if req.z is not None and psi != 1.0:
        raise InvalidInput("truncation_psi: applies to seeds (a truncated normal draw) in "
                           f"{lv.family}; an explicit z is used as given", field="truncation_psi")
    z = (np.stack([truncated_z_from_seed(s, m.z_dim, psi) for s in req.seeds])
         if req.seeds is not None else req.z)
    classes: list[int | None] = [None] * len(z)
    weights = None
    if m.conditional:
        if req.classes is None and req.seeds is None:
            raise InvalidInput(f"class: {lv.name} is conditional; give a class per row with "
                               "an explicit z", field="class")
        classes = list(req.classes) if req.classes is not None else [
            s % m.num_classes for s in req.seeds]
        weights = class_weights(classes, m.num_classes)
    images, _ = await _generator_images(lv, z, weights, deadline)
    return Generated(images, _row_seeds(req, len(z)), classes, z)


def _row_seeds(req: Rows, n: int) -> list[int | None]:
    return list(req.seeds) if req.seeds is not None else [None] * n


def explicit_latent(values: list[float], dim: int, field: str) -> np.ndarray:
    """An explicit latent from the request, checked against the model's size."""
    if len(values) != dim:
        raise InvalidInput(f"{field}: expected {dim} numbers, got {len(values)}", field=field)
    with np.errstate(over="ignore"):
        v = np.asarray(values, np.float32)
    return finite(v, field, "beyond float32 (|x| > 3.4e38)")


def finite(v: np.ndarray, field: str, why: str) -> np.ndarray:
    if not np.isfinite(v).all():
        i = int(np.flatnonzero(~np.isfinite(v.reshape(-1)))[0])
        raise InvalidInput(f"{field}: value {i} is {why}", field=field)
    return v


def _truncate(lv: LoadedVersion, w: np.ndarray, psi: float, field: str) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return finite(lv.generator.truncate(w, psi), field,
                       "beyond float32 after truncation (w_avg + psi (w - w_avg))")


def _at(field: str, name: str) -> str:
    """``start.z`` of an interpolation's endpoint; ``z`` of a body that is one (an edit)."""
    return f"{field}.{name}" if field else name


def _endpoint_vector(lv: LoadedVersion, ep: Source, psi: float, field: str) -> np.ndarray:
    """The z of an interpolation endpoint (seed or explicit z)."""
    m = lv.manifest
    if ep.w is not None:
        raise InvalidInput(f"{field}.w: explicit w needs space='w'", field=f"{field}.w")
    if ep.z is not None:
        return explicit_latent(ep.z, m.z_dim, _at(field, "z"))
    if m.family_spec.w_space:        # psi applies in w
        return z_from_seeds([ep.seed], m.z_dim)[0]
    return truncated_z_from_seed(ep.seed, m.z_dim, psi)


async def endpoint_w(lv: LoadedVersion, ep: Source, psi: float, field: str, deadline: float
                      ) -> np.ndarray:
    if ep.w is not None:
        w = explicit_latent(ep.w, lv.manifest.w_dim, _at(field, "w"))
        return _truncate(lv, w[None], psi, _at(field, "w"))[0]
    z = _endpoint_vector(lv, ep, psi, field)
    w = await lv.run("mapping", {"z": z[None]}, deadline)
    return lv.generator.truncate(w, psi)[0]


async def interpolate(lv: LoadedVersion, req: Interpolation, deadline: float) -> Generated:
    m = lv.manifest
    t = interpolation_steps(req.steps)
    path = slerp if req.method == "slerp" else lerp
    seeds = [req.start.seed] + [None] * (req.steps - 2) + [req.end.seed]
    if not m.conditional and (req.start.class_ is not None or req.end.class_ is not None):
        field = "start.class" if req.start.class_ is not None else "end.class"
        resolve_class(lv, req.start.class_ if req.start.class_ is not None
                      else req.end.class_, field)          # raises: the family takes none
    if req.space == "w":
        if not m.family_spec.w_space:
            raise Unsupported(f"space='w' needs a family with a w space "
                              f"({', '.join(supporting('style-mix'))}); {lv.name} is "
                              f"{lv.family}", field="space",
                              supported_families=supporting("style-mix"))
        wa = await endpoint_w(lv, req.start, req.psi, "start", deadline)
        wb = await endpoint_w(lv, req.end, req.psi, "end", deadline)
        ws = finite(path(wa, wb, t), "end", "beyond float32 on the interpolation path")
        images = await lv.run("synthesis", {"ws": lv.generator.broadcast(ws)}, deadline)
        return Generated(images, seeds, [None] * req.steps, ws)
    za = _endpoint_vector(lv, req.start, req.psi, "start")
    zb = _endpoint_vector(lv, req.end, req.psi, "end")
    zs = finite(path(za, zb, t), "end", "beyond float32 on the interpolation path")
    if m.family_spec.w_space:
        images, _, _ = await _stylegan_images(lv, zs, req.psi, deadline)
        return Generated(images, seeds, [None] * req.steps, zs)
    classes: list[int | None] = [None] * req.steps
    weights = None
    if m.conditional:
        ca = (resolve_class(lv, req.start.class_, "start.class") if req.start.class_ is not None
              else (req.start.seed or 0) % m.num_classes)
        cb = (resolve_class(lv, req.end.class_, "end.class") if req.end.class_ is not None
              else (req.end.seed or 0) % m.num_classes)
        weights = np.zeros((req.steps, m.num_classes), np.float32)
        weights[:, ca] += 1.0 - t
        weights[:, cb] += t
        classes = [ca] + [None] * (req.steps - 2) + [cb] if ca != cb else [ca] * req.steps
    images, _ = await _generator_images(lv, zs, weights, deadline)
    return Generated(images, seeds, classes, zs)


async def _sources_w(lv: LoadedVersion, sources: list[Source], fields: list[str], psi: float,
                     deadline: float) -> np.ndarray:
    """The (truncated) w [n, w_dim] of style-mix sources: every seed and z through one
    mapping run (as NVIDIA's grid of seeds always was), explicit w as given."""
    for s, field in zip(sources, fields):
        if s.class_ is not None:
            resolve_class(lv, s.class_, f"{field}.class")   # raises: the family takes none
    mapped = [i for i, s in enumerate(sources) if s.w is None]
    w = np.empty((len(sources), lv.manifest.w_dim), np.float32)
    if mapped:
        z = np.stack([_endpoint_vector(lv, sources[i], psi, fields[i]) for i in mapped])
        w[mapped] = lv.generator.truncate(await lv.run("mapping", {"z": z}, deadline), psi)
    for i, s in enumerate(sources):
        if s.w is not None:
            w[i] = _truncate(lv, explicit_latent(s.w, lv.manifest.w_dim, _at(fields[i], "w"))
                             [None], psi, _at(fields[i], "w"))[0]
    return w


async def style_mix(lv: LoadedVersion, rows: list[Source] | list[int],
                    cols: list[Source] | list[int], layers: list[int], psi: float,
                    deadline: float) -> Generated:
    """NVIDIA's layout: (R + 1) x (C + 1) cells; first row the column sources, first column
    the row sources, top-left blank; cell (r, c) = row r's w with column c's at ``layers``.
    A source is a seed, a z or a w (a projected image's latent); a plain int is a seed."""
    rows = [r if isinstance(r, Source) else Source(seed=int(r)) for r in rows]
    cols = [c if isinstance(c, Source) else Source(seed=int(c)) for c in cols]
    fields = ([f"row_sources[{i}]" for i in range(len(rows))]
              + [f"col_sources[{i}]" for i in range(len(cols))])
    w = await _sources_w(lv, rows + cols, fields, psi, deadline)
    ws = lv.generator.broadcast(w)
    row_seeds, col_seeds = [s.seed for s in rows], [s.seed for s in cols]
    seeds = row_seeds + col_seeds
    rw, cw = ws[:len(rows)], ws[len(rows):]
    mixed = mix_ws(rw, cw, layers)
    out = await lv.run("synthesis", {"ws": np.concatenate([ws, mixed])}, deadline)
    src, cells = out[:len(seeds)], out[len(seeds):]
    R, C = len(row_seeds), len(col_seeds)
    blank = np.full_like(src[:1], -1.0)
    tiles = [blank, src[R:]]
    grid_seeds: list[int | None] = [None, *col_seeds]
    for r in range(R):
        tiles += [src[r:r + 1], cells[r * C:(r + 1) * C]]
        grid_seeds += [row_seeds[r]] + [None] * C
    return Generated(np.concatenate(tiles), grid_seeds, [None] * len(grid_seeds))
