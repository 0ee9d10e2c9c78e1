"""Generated images -> HTTP responses: PNG (image or grid), JSON with base64 PNGs, GIF/WebP."""

from __future__ import annotations

import base64
import io
from urllib.parse import quote

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ganserve.images import encode_png, make_grid, to_pil, to_uint8, upscale
from ganserve.service.generation import Generated, Render
from ganserve.service.registry import LoadedVersion
from ganserve.service.schemas.generate import GenerateResponse, ImageOut

INLINE_PIXELS = 256 * 256     # encode bigger outputs in a worker thread, off the event loop


def _header_text(name: str) -> str:
    """A class name as a header list item: commas can't appear, non-Latin-1 is %-encoded."""
    return quote(name.replace(",", " "), safe=" -_/()&.'+!*")


def _headers(lv: LoadedVersion, gen: Generated) -> dict[str, str]:
    h = {"X-Model-Name": lv.name, "X-Model-Version": lv.version}
    seeds = [str(s) for s in gen.seeds if s is not None]
    if seeds:
        h["X-Seeds"] = ",".join(seeds)
    names = lv.manifest.class_names
    classes = [_header_text(names[c]) if c is not None and names else None
               for c in gen.classes]
    if classes and all(classes):
        h["X-Classes"] = ",".join(classes)          # one class per image
    elif classes and classes[0] and classes[-1]:    # a morph: the frames between are mixes
        h["X-Class-Start"], h["X-Class-End"] = classes[0], classes[-1]
    return h


def pixels(images: np.ndarray) -> np.ndarray:
    """Float NCHW outputs -> uint8 NHWC images; a non-finite output (an extreme explicit
    latent) becomes mid-grey, not an undefined cast. (Two ufuncs and a masked copy: np.clip
    and np.nan_to_num cost their Python wrappers on every request.)"""
    x = np.maximum(images, -1.0)                # NaN stays NaN; -inf becomes -1
    np.minimum(x, 1.0, out=x)
    np.copyto(x, 0.0, where=np.isnan(x))
    return to_uint8(x)


def _grid(images_u8: np.ndarray, cols: int | None, scale: int) -> np.ndarray:
    if len(images_u8) == 1:
        return upscale(images_u8[0], scale)
    return upscale(make_grid(images_u8, cols=cols, pad=0), scale)


async def _encode(fn, *args):
    return await run_in_threadpool(fn, *args)


def png_render(cols: int | None, scale: int) -> Render:
    """images -> the PNG body (one image, or a grid), for ``generation.sample(render=...)``:
    encoded in a worker thread once the batch has run, off the event loop."""
    def render(images: np.ndarray) -> bytes:
        return encode_png(_grid(pixels(images), cols, scale))
    return render


async def png_response(lv: LoadedVersion, gen: Generated, cols: int | None, scale: int
                       ) -> Response:
    if isinstance(gen.rendered, bytes):             # encoded in the batch thread already
        body = gen.rendered
    else:
        grid = _grid(pixels(gen.images), cols, scale)
        body = (encode_png(grid) if grid.size <= INLINE_PIXELS
                else await _encode(encode_png, grid))
    return Response(body, media_type="image/png", headers=_headers(lv, gen))


def _json_body(lv: LoadedVersion, gen: Generated, cols: int | None, scale: int,
               return_latents: bool, grid: bool) -> bytes:
    u8 = pixels(gen.images)
    names = lv.manifest.class_names
    images = []
    for i in range(len(u8)):
        c = gen.classes[i]
        images.append(ImageOut(
            seed=gen.seeds[i], class_index=c,
            class_name=names[c] if c is not None and names else None,
            png=base64.b64encode(encode_png(upscale(u8[i], scale))).decode(),
            latent=gen.latents[i].tolist() if return_latents and gen.latents is not None
            and i < len(gen.latents) else None))
    grid_png = (base64.b64encode(encode_png(_grid(u8, cols, scale))).decode()
                if grid and len(u8) > 1 else None)
    return GenerateResponse(model=lv.name, version=lv.version, family=lv.family,
                            images=images, grid_png=grid_png).model_dump_json(
                                exclude_none=True).encode()


async def json_response(lv: LoadedVersion, gen: Generated, cols: int | None, scale: int,
                        return_latents: bool, grid: bool = False) -> Response:
    body = await _encode(_json_body, lv, gen, cols, scale, return_latents, grid)
    return Response(body, media_type="application/json", headers=_headers(lv, gen))


def _animate(u8: np.ndarray, scale: int, fmt: str, frame_ms: int) -> bytes:
    frames = [to_pil(upscale(img, scale)) for img in u8]
    buf = io.BytesIO()
    extra = {"lossless": True} if fmt == "webp" else {"optimize": False}
    frames[0].save(buf, format=fmt.upper(), save_all=True, append_images=frames[1:],
                   duration=frame_ms, loop=0, **extra)
    return buf.getvalue()


async def animation_response(lv: LoadedVersion, gen: Generated, scale: int, fmt: str,
                             frame_ms: int) -> Response:
    u8 = pixels(gen.images)
    body = await _encode(_animate, u8, scale, fmt, frame_ms)
    return Response(body, media_type=f"image/{fmt}", headers=_headers(lv, gen))


def wants_json(fmt: str | None, accept: str | None) -> bool:
    if fmt is not None:
        return fmt == "json"
    if not accept:
        return False
    # honour an explicit preference for JSON over images
    a = accept.lower()
    return "application/json" in a and "image/" not in a
