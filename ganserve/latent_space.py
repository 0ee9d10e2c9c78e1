"""Operations in latent space (numpy only): interpolation paths (lerp, slerp) and style mixing
(layer groups, style specs, mixing ws), shared by the figures script, the service and the CLI."""

from __future__ import annotations

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Rows a + t (b - a) for each t: [T, D] from [D], [D] and [T]."""
    t = np.asarray(t, np.float64)[:, None]       # float64: b - a may exceed float32's range
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a64[None] + t * (b64 - a64)[None]).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation (Shoemake); falls back to lerp for (anti)parallel vectors."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na < eps or nb < eps:
        return lerp(a, b, t)
    cos = np.clip(a64 @ b64 / (na * nb), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    if so < 1e-6:
        return lerp(a, b, t)
    t = np.asarray(t, np.float64)[:, None]
    out = (np.sin((1 - t) * omega) / so) * a64[None] + (np.sin(t * omega) / so) * b64[None]
    return out.astype(np.float32)


def interpolation_steps(steps: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, steps, dtype=np.float32)


def style_layer_groups(num_ws: int) -> dict[str, list[int]]:
    """Named groups of w layers: coarse = the first half (4-8 px at 32 px), middle and fine
    split the rest (16 px and 32 px at 32 px)."""
    half = num_ws // 2
    rest = list(range(half, num_ws))
    mid = len(rest) // 2
    return {"coarse": list(range(half)), "middle": rest[:mid], "fine": rest[mid:]}


def _layer_index(text: str, part: object, num_ws: int) -> int:
    t = text.strip()
    if not (t.isascii() and t.isdigit()):
        raise ValueError(f"invalid style layer {part!r}: use indices, ranges like '0-3' or "
                         "coarse|middle|fine")
    if len(t) > 6 or int(t) >= num_ws:     # a long number is out of range unconverted
        shown = t if len(t) <= 12 else t[:12] + "..."
        raise ValueError(f"style layer {shown} out of range 0..{num_ws - 1}")
    return int(t)


def _style_part(part: int | str, groups: dict[str, list[int]], num_ws: int) -> list[int]:
    """One entry of a styles spec -> its layer indices; bounds checked before any range."""
    if isinstance(part, bool) or not isinstance(part, int | str):
        raise ValueError(f"invalid style layer {part!r}")
    if isinstance(part, int):
        if not 0 <= part < num_ws:
            raise ValueError(f"style layer {part} out of range 0..{num_ws - 1}")
        return [part]
    p = part.strip().lower()
    if p in groups:
        return groups[p]
    if "-" in p:
        lo, hi = p.split("-", 1)
        a, b = _layer_index(lo, part, num_ws), _layer_index(hi, part, num_ws)
        if b < a:
            raise ValueError(f"style range {part!r} runs backwards")
        return list(range(a, b + 1))
    return [_layer_index(p, part, num_ws)]


def parse_styles(spec: str | list[int | str], num_ws: int) -> list[int]:
    """``"0-3"``, ``"coarse"``, ``[0, 1, "4-5"]``, ``"0,2,4-5"`` -> sorted layer indices.

    Every index is checked against ``num_ws`` before a range is built, so a client's
    ``"0-100000000"`` is an error, not a hundred-million-element list."""
    parts: list[int | str] = spec.split(",") if isinstance(spec, str) else list(spec)
    groups = style_layer_groups(num_ws)
    layers: set[int] = set()
    for part in parts:
        layers.update(_style_part(part, groups, num_ws))
    if not layers:
        raise ValueError("no style layers given")
    return sorted(layers)


def mix_ws(row_ws: np.ndarray, col_ws: np.ndarray, layers: list[int]) -> np.ndarray:
    """NVIDIA's style_mixing: cell (r, c) = row r's ws with column c's ws at ``layers``.
    row_ws [R, L, D], col_ws [C, L, D] -> [R * C, L, D], row-major."""
    R, C = len(row_ws), len(col_ws)
    out = np.repeat(row_ws[:, None], C, axis=1).copy()          # [R, C, L, D]
    out[:, :, layers] = np.broadcast_to(col_ws[None][:, :, layers], (R, C, len(layers),
                                                                     row_ws.shape[-1]))
    return out.reshape(R * C, *row_ws.shape[1:])
