"""The limits a client's request must keep, checked before any work is done: every count it
controls (images, seeds in a range, steps, grid cells, scale) against its setting, and the
size of the response no single field bounds. Each refusal is a 422 naming the field and the
limit."""

from __future__ import annotations

import secrets

from ganserve.latents import SEED_MAX, parse_seeds
from ganserve.service.errors import InvalidInput
from ganserve.service.registry import LoadedVersion
from ganserve.service.settings import Settings


def at_most(value: int, limit: int, field: str, what: str) -> None:
    if value > limit:
        raise InvalidInput(f"{field}: {value} {what} requested, the limit is {limit}",
                           field=field, limit=limit)


def output_size(lv: LoadedVersion, images: int, scale: int, s: Settings) -> None:
    """The one check of a response's size: the scale, then the product no single field
    bounds, images x (resolution x scale)^2."""
    at_most(scale, s.max_scale, "scale", "x scale")
    side = lv.manifest.resolution * scale
    pixels = images * side * side
    if pixels > s.max_output_pixels:
        raise InvalidInput(f"scale: {images} images of {side}x{side} px are {pixels} pixels, "
                           f"the limit is {s.max_output_pixels}; lower scale or the count",
                           field="scale", limit=s.max_output_pixels)


def seed_list(value: list[int] | str, limit: int, field: str) -> list[int]:
    """A list of seeds or an NVIDIA-style string ('0-7', '1,5,9-12'), at most ``limit``."""
    if isinstance(value, list):
        at_most(len(value), limit, field, "seeds")
        return list(value)
    try:
        return parse_seeds(value, limit)
    except ValueError as e:
        raise InvalidInput(f"{field}: {e}", field=field, limit=limit) from e


def request_seeds(seeds: list[int] | str | None, n: int | None, s: Settings) -> list[int]:
    """A sample request's seeds: the ones given (``n``, if sent too, must agree), else
    ``n`` (default 1) random ones; at most GANSERVE_MAX_IMAGES either way."""
    if seeds is not None:
        listed = seed_list(seeds, s.max_images, "seeds")
        if n is not None and n != len(listed):
            raise InvalidInput(f"n={n} but {len(listed)} seeds given; send one of them",
                               field="n")
        return listed
    count = n or 1
    at_most(count, s.max_images, "n", "images")
    return [secrets.randbelow(SEED_MAX + 1) for _ in range(count)]
