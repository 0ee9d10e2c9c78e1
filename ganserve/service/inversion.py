"""Projection in the API (an image -> the latent that reproduces it, by the version's encoder
in one batched pass) and edits along the version's latent directions.

What a projection answers feeds every other endpoint: ``{"z": [...]}`` or ``{"w": [...]}``
is an interpolation endpoint, an edit's start or a protocol input. The slower, precise
projection (gradient descent from the encoder's latent) is a job on the worker.

Namesakes, one concept at several layers (inversion): ``ganserve.training.inversion``: the
encoder's training; this module: projecting and editing in the API;
``ganserve.service.api.routes.inversion``: their HTTP routes;
``ganserve.service.schemas.inversion``: the HTTP bodies.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np

from ganserve.data.base import fit_channels, fit_resolution
from ganserve.generator import class_weights
from ganserve.latent_directions import DirectionError, Directions
from ganserve.latents import truncated_z_from_seed
from ganserve.names import choices, closest
from ganserve.quality import reconstruction_scores
from ganserve.service.errors import InvalidImage, InvalidInput, NotAvailable
from ganserve.service.generation import (
    Generated,
    Source,
    endpoint_w,
    explicit_latent,
    finite,
    resolve_class,
)
from ganserve.service.registry import LoadedVersion
from ganserve.service.uploads.archive import Rejected
from ganserve.service.uploads.ingest import read_image

IMAGE_MAX_SIDE = 4096           # pixels a side of an image to project


@dataclass
class Projected:
    latent_name: str                # "z" or "w"
    latent: np.ndarray              # [D]
    class_index: int | None
    image: np.ndarray               # the reconstruction, float32 [1, C, R, R]
    target: np.ndarray              # the input as the model saw it, float32 [1, C, R, R]
    scores: dict[str, float]


def model_input(square: np.ndarray, lv: LoadedVersion) -> np.ndarray:
    """A square RGB uint8 [k, k, 3] (``read_image``: the centre square) -> float32
    [1, C, R, R] in [-1, 1] as the model's training data was made: grey (ITU-R 601 luma)
    for a grey model, 28-pixel images padded with their background as Fashion-MNIST's were,
    other sizes resized (Lanczos)."""
    m = lv.manifest
    x = np.ascontiguousarray(square.transpose(2, 0, 1)[None])
    x = fit_resolution(fit_channels(x, m.channels, "image"), m.resolution, "image")
    return x.astype(np.float32) * (2.0 / 255.0) - 1.0


def decode_base64(text: str) -> bytes:
    """An image sent as base64 (or a data: URL) -> its bytes; 422 naming ``image``."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("image: not valid base64 (send the file's bytes base64-encoded, "
                           "or use multipart with a 'file' part)", field="image") from None


def read_model_input(data: bytes, lv: LoadedVersion) -> np.ndarray:
    """An uploaded image's bytes -> ``model_input`` (blocking: run in a thread); a bad
    image is ``InvalidImage`` with the upload checks' reason (4xx)."""
    try:
        # at most 4 x the model's side kept before the final resize: no full-size arrays
        square = read_image(data, "image", IMAGE_MAX_SIDE, keep=4 * lv.manifest.resolution)
        return model_input(square, lv)
    except Rejected as e:
        raise InvalidImage(str(e), reason=e.reason, status=e.status, field="image") from None


def require_encoder(lv: LoadedVersion) -> None:
    if "encoder" not in lv.batchers:
        raise NotAvailable(f"{lv.name}/{lv.version} has no projection encoder; add one "
                           f"offline with `ganserve train-encoder {lv.name}/{lv.version}`",
                           field="model")


async def render_latent(lv: LoadedVersion, latent: np.ndarray, weights: np.ndarray | None,
                        deadline: float) -> np.ndarray:
    """Images of latents [n, D] (w broadcast to every layer for a w-space family)."""
    if lv.manifest.family_spec.w_space:
        return await lv.run("synthesis", {"ws": lv.generator.broadcast(latent)}, deadline)
    feeds = {"z": latent.astype(np.float32)}
    if lv.manifest.conditional:
        feeds["class"] = weights
    return await lv.run("generator", feeds, deadline)


async def project(lv: LoadedVersion, x: np.ndarray, class_ref: int | str | None,
                  deadline: float) -> Projected:
    """The encoder's latent for the image ``x`` [1, C, R, R], and its reconstruction."""
    require_encoder(lv)
    m = lv.manifest
    w_space = m.family_spec.w_space
    dim = m.w_dim if w_space else m.z_dim
    out = await lv.run("encoder", {"image": x}, deadline)        # [1, D (+ K logits)]
    latent = out[:, :dim]
    class_index = None
    weights = None
    if m.conditional:
        class_index = (resolve_class(lv, class_ref) if class_ref is not None
                       else int(out[0, dim:].argmax()))
        weights = class_weights([class_index], m.num_classes)
    elif class_ref is not None:
        resolve_class(lv, class_ref)            # raises: this family takes no class
    image = await render_latent(lv, latent, weights, deadline)
    return Projected("w" if w_space else "z", latent[0], class_index, image, x,
                     reconstruction_scores(x, image))


# ------------------------------------------------------------------------------- edits
@dataclass(frozen=True)
class Edit:
    source: Source
    amounts: dict[str, float]
    strip: tuple[str, float, float, int] | None = None     # direction, start, stop, steps
    psi: float = 1.0


def directions_of(lv: LoadedVersion) -> Directions:
    if lv.directions is None:
        raise NotAvailable(f"{lv.name}/{lv.version} has no latent directions; compute them "
                           f"offline with `ganserve directions {lv.name}/{lv.version}`",
                           field="model")
    return lv.directions


def _check_names(d: Directions, names: list[str], field: str) -> None:
    for name in names:
        try:
            d.get(name)
        except DirectionError:
            raise InvalidInput(f"{field}: unknown direction {name!r}"
                               f"{choices('direction', name, d.names())}", field=field,
                               suggestion=closest(name, d.names())) from None


async def _start(lv: LoadedVersion, req: Edit, deadline: float
                 ) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    """(latent [1, D], class weights [1, K] or None, class index) of the edit's start."""
    m, src = lv.manifest, req.source
    if m.family_spec.w_space:
        if src.class_ is not None:
            resolve_class(lv, src.class_)           # raises: the family takes none
        return (await endpoint_w(lv, src, req.psi, "", deadline))[None], None, None
    if src.w is not None:
        raise InvalidInput(f"w: {lv.name} ({lv.family}) has no w space; give a seed or z",
                           field="w")
    z = (explicit_latent(src.z, m.z_dim, "z") if src.z is not None
         else truncated_z_from_seed(src.seed, m.z_dim, req.psi))
    if not m.conditional:
        if src.class_ is not None:
            resolve_class(lv, src.class_)           # raises: the family takes none
        return z[None], None, None
    c = (resolve_class(lv, src.class_) if src.class_ is not None
         else (src.seed or 0) % m.num_classes)
    return z[None], class_weights([c], m.num_classes), c


async def edit(lv: LoadedVersion, req: Edit, deadline: float) -> Generated:
    """One image moved by ``amounts``; with a strip, one per step along its direction."""
    d = directions_of(lv)
    _check_names(d, list(req.amounts), "directions")
    if req.strip is not None:
        _check_names(d, [req.strip[0]], "strip.direction")
    latent, weights, c = await _start(lv, req, deadline)
    rows = [dict(req.amounts)]
    if req.strip is not None:
        name, start, stop, steps = req.strip
        rows = [{**req.amounts, name: req.amounts.get(name, 0.0) + float(t)}
                for t in np.linspace(start, stop, steps)]
    moved = [d.apply(latent, weights, amounts) for amounts in rows]
    latents = finite(np.concatenate([lat for lat, _ in moved]), "directions",
                      "beyond float32 after the edit")
    mixes = None if weights is None else np.concatenate([w for _, w in moved])
    images = await render_latent(lv, latents, mixes, deadline)
    # a row whose class weights an edit moved off the start's class is a mixture: no class
    classes = [c if mixes is None or np.array_equal(row, weights[0]) else None
               for row in (mixes if mixes is not None else [None] * len(rows))]
    return Generated(images, [req.source.seed] * len(rows), classes, latents)
