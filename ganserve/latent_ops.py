"""Latent-space operations shared by the figures script and the service (numpy only)."""

from __future__ import annotations

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Rows a + t (b - a) for each t: [T, D] from [D], [D] and [T]."""
    t = np.asarray(t, np.float32)[:, None]
    return (a[None] + t * (b - a)[None]).astype(np.float32)


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


def parse_styles(spec: str | list[int | str], num_ws: int) -> list[int]:
    """``"0-3"``, ``"coarse"``, ``[0, 1, "4-5"]``, ``"0,2,4-5"`` -> sorted layer indices."""
    parts: list[int | str] = spec.split(",") if isinstance(spec, str) else list(spec)
    groups = style_layer_groups(num_ws)
    layers: set[int] = set()
    for part in parts:
        if isinstance(part, bool):
            raise ValueError(f"invalid style layer {part!r}")
        if isinstance(part, int):
            idx = [part]
        else:
            p = part.strip().lower()
            if p in groups:
                idx = groups[p]
            elif "-" in p:
                lo, hi = p.split("-", 1)
                if not (lo.strip().isdigit() and hi.strip().isdigit()):
                    raise ValueError(f"invalid style range {part!r}")
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError(f"style range {part!r} runs backwards")
                idx = list(range(a, b + 1))
            elif p.isdigit():
                idx = [int(p)]
            else:
                raise ValueError(f"invalid style layer {part!r}: use indices, ranges like "
                                 "'0-3' or coarse|middle|fine")
        for i in idx:
            if not 0 <= i < num_ws:
                raise ValueError(f"style layer {i} out of range 0..{num_ws - 1}")
            layers.add(i)
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
