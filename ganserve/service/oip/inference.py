"""What an Open Inference Protocol request means for a GAN: the tensors a model takes and
gives (its metadata and Triton's model configuration), and an infer request checked and
turned into the rows ``generation.rows`` makes images of, then the outputs asked for.

Inputs: ``seed`` (an integer type, [n]) or ``z`` (a float type, [n, z_dim]) or, StyleGAN
only, ``w`` ([n, w_dim]); ``class`` for conditional models (integer indices or BYTES names,
[n] or one for every row); ``truncation_psi`` (one number, as a tensor or a request
parameter). Outputs: ``image`` (UINT8 [n, h, w, c], the pixels ``/sample`` encodes as PNG,
the default), ``raw`` (FP32 [n, c, h, w], the generator's output before rendering), ``z``
and, StyleGAN, ``w`` (the truncated w). Parameters the protocol allows but this server does
not honour are refused, not ignored.

Namesakes, one concept at several layers (inference): ``ganserve.service.oip.inference``:
what a protocol request means for a GAN; ``ganserve.service.api.routes.inference``: the HTTP
routes; ``ganserve.service.schemas.inference``: the HTTP bodies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from ganserve import __version__
from ganserve.latents import SEED_MAX
from ganserve.manifest import Manifest
from ganserve.service import limits
from ganserve.service.errors import InvalidInput, Unsupported
from ganserve.service.generation import Generated, Rows, resolve_class
from ganserve.service.oip.tensors import FLOAT_TYPES, INTEGER_TYPES, Tensor
from ganserve.service.registry import LoadedVersion, Registry
from ganserve.service.rendering import pixels
from ganserve.service.schemas.inference import InferRequest
from ganserve.service.settings import Settings

PLATFORM = "ganserve"
EXTENSIONS = ["binary_tensor_data", "model_configuration", "parameters"]
REQUEST_PARAMETERS = ("truncation_psi", "binary_data_output", "timeout")
# outputs sent as JSON numbers cost ~70 bytes of memory each while encoded: past this many,
# ask for binary_data (the binary tensor extension) instead
MAX_JSON_ELEMENTS = 1 << 21
MAX_CLASS_NAME = 128


def server_metadata() -> dict[str, Any]:
    return {"name": "ganserve", "version": __version__, "extensions": EXTENSIONS}


def input_specs(m: Manifest) -> list[tuple[str, str, list[int]]]:
    """(name, datatype, shape) of every input the model takes; -1 is the batch."""
    specs = [("seed", "INT64", [-1]), ("z", "FP32", [-1, m.z_dim])]
    if m.family_spec.w_space:
        specs.append(("w", "FP32", [-1, m.w_dim]))
    if m.conditional:
        specs.append(("class", "INT64", [-1]))
    return specs + [("truncation_psi", "FP32", [1])]


def output_specs(m: Manifest) -> list[tuple[str, str, list[int]]]:
    r, c = m.resolution, m.channels
    specs = [("image", "UINT8", [-1, r, r, c]), ("raw", "FP32", [-1, c, r, r]),
             ("z", "FP32", [-1, m.z_dim])]
    if m.family_spec.w_space:
        specs.append(("w", "FP32", [-1, m.w_dim]))
    return specs


def _tensor_meta(specs: list[tuple[str, str, list[int]]]) -> list[dict[str, Any]]:
    return [{"name": n, "datatype": d, "shape": s} for n, d, s in specs]


async def model_metadata(registry: Registry, name: str, version: str | None
                         ) -> dict[str, Any]:
    """A version's metadata (the default one's without ``version``, listing every loaded
    version) -> the protocol's model metadata, for HTTP and gRPC alike."""
    lv = await registry.resolve(name, version)
    loaded = [v for v, e in registry.versions_of(name).items() if isinstance(e, LoadedVersion)]
    return {"name": lv.name, "versions": [version] if version else sorted(loaded, key=int),
            "platform": PLATFORM, "inputs": _tensor_meta(input_specs(lv.manifest)),
            "outputs": _tensor_meta(output_specs(lv.manifest))}


def _config_tensor(name: str, datatype: str, shape: list[int], optional: bool
                   ) -> dict[str, Any]:
    dims = shape[1:] if shape[0] == -1 else shape      # Triton: without the batch dimension
    t = {"name": name, "data_type": f"TYPE_{'STRING' if datatype == 'BYTES' else datatype}",
         "dims": dims or [1]}
    if not dims:
        t["reshape"] = {"shape": []}
    if optional:
        t["optional"] = True
    return t


def max_rows(lv: LoadedVersion, s: Settings) -> int:
    """The most rows one request may ask of this model: GANSERVE_MAX_IMAGES, and no more
    images than GANSERVE_MAX_OUTPUT_PIXELS holds at its resolution."""
    return max(1, min(s.max_images, s.max_output_pixels // lv.manifest.resolution ** 2))


def model_config(lv: LoadedVersion, s: Settings) -> dict[str, Any]:
    """Triton's model configuration for this model: every input optional (one of seed, z, w
    is needed), batched up to the rows a request may ask for, with the dynamic batcher's
    window."""
    m = lv.manifest
    return {"name": lv.name, "platform": PLATFORM, "backend": PLATFORM,
            "version_policy": {"all": {}}, "max_batch_size": max_rows(lv, s),
            "input": [_config_tensor(*t, optional=True) for t in input_specs(m)],
            "output": [_config_tensor(*t, optional=False) for t in output_specs(m)],
            "dynamic_batching": {"preferred_batch_size": [lv.max_batch_rows],
                                 "max_queue_delay_microseconds": int(
                                     lv.max_batch_delay_ms * 1000)},
            "parameters": {"family": {"string_value": lv.family}} | (
                {"classes": {"string_value": ",".join(m.class_names)}} if m.conditional
                else {})}


# ------------------------------------------------------------------------------- infer
def request(header: Any) -> InferRequest:
    """A request's JSON header (or the gRPC request as the same dict), checked: its schema,
    and each input and output named once."""
    try:
        req = InferRequest.model_validate(header)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise InvalidInput(f"{where}: {err['msg']}"[:300], field=where) from None
    for kind, verb, items in (("inputs", "given", req.inputs),
                              ("outputs", "asked", req.outputs or [])):
        names = [t.name for t in items]
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:
            raise InvalidInput(f"{kind}.{twice}: {verb} twice", field=f"{kind}.{twice}")
    return req


@dataclass
class Plan:
    """A checked infer request: the rows to make, the psi, and the outputs to send."""
    rows: Rows
    psi: float
    outputs: list[tuple[str, bool]] = field(default_factory=list)     # (name, binary)
    timeout_s: float | None = None          # the request's own deadline, if it set one


def _refuse_unknown(params: dict[str, Any] | None, allowed: tuple[str, ...], where: str) -> None:
    for key in params or {}:
        if key not in allowed:
            raise InvalidInput(f"{where}.parameters: {key!r} is not supported here; "
                               f"supported: {', '.join(allowed) or 'none'}",
                               field=f"{where}.parameters.{key}")


def _psi(req: InferRequest, tensors: dict[str, Tensor]) -> float:
    given = (req.parameters or {}).get("truncation_psi")
    t = tensors.pop("truncation_psi", None)
    if t is not None and given is not None:
        raise InvalidInput("truncation_psi: given as a tensor and as a parameter; send one",
                           field="truncation_psi")
    if t is not None:
        _datatype(t, FLOAT_TYPES)
        values = np.unique(t.array.astype(np.float64))
        if len(values) != 1:
            raise InvalidInput("inputs.truncation_psi: one value for the request",
                               field="inputs.truncation_psi")
        given = float(values[0])
    if given is None:
        return 1.0
    if isinstance(given, bool) or not isinstance(given, int | float) or not 0 <= given <= 2:
        raise InvalidInput(f"truncation_psi: {given!r} is not a number in [0, 2]",
                           field="truncation_psi")
    return float(given)


def _datatype(t: Tensor, allowed: tuple[str, ...]) -> None:
    if t.datatype not in allowed:
        raise InvalidInput(f"inputs.{t.name}: datatype {t.datatype}, expected {allowed[0]}"
                           f"{' (or ' + ', '.join(allowed[1:]) + ')' if allowed[1:] else ''}",
                           field=f"inputs.{t.name}", datatype=t.datatype)


def _shape(t: Tensor, shapes: list[list[int]]) -> None:
    """``shapes`` may use -1 for "any"; the first one is the one to name."""
    ok = any(len(s) == len(t.shape) and all(a in (-1, b) for a, b in zip(s, t.shape))
             for s in shapes)
    if not ok:
        want = str(shapes[0]).replace("-1", "n")
        raise InvalidInput(f"inputs.{t.name}: shape {t.shape}, expected {want}",
                           field=f"inputs.{t.name}", shape=t.shape)


def _latents(lv: LoadedVersion, tensors: dict[str, Tensor]) -> Rows:
    m = lv.manifest
    given = [n for n in ("seed", "z", "w") if n in tensors]
    if len(given) != 1:
        raise InvalidInput(f"inputs: give exactly one of seed, z"
                           f"{', w' if m.family_spec.w_space else ''}; got "
                           f"{', '.join(given) or 'none'}", field="inputs")
    t = tensors.pop(given[0])
    if t.name == "seed":
        _datatype(t, INTEGER_TYPES)
        _shape(t, [[-1], [-1, 1]])
        seeds = t.array.reshape(-1).astype(np.int64)
        if len(seeds) and (seeds.min() < 0 or seeds.max() > SEED_MAX):
            raise InvalidInput(f"inputs.seed: seeds are 0 .. {SEED_MAX}", field="inputs.seed")
        return Rows(seeds=seeds.tolist())
    if t.name == "w" and not m.family_spec.w_space:
        raise Unsupported(f"inputs.w: {lv.name} ({lv.family}) has no w space",
                          field="inputs.w")
    _datatype(t, FLOAT_TYPES)
    dim = m.z_dim if t.name == "z" else m.w_dim
    _shape(t, [[-1, dim]])
    with np.errstate(over="ignore"):
        v = t.array.astype(np.float32)
    if not np.isfinite(v).all():
        raise InvalidInput(f"inputs.{t.name}: values must be finite float32",
                           field=f"inputs.{t.name}")
    return Rows(**{t.name: v})


def _classes(lv: LoadedVersion, t: Tensor | None, n: int) -> list[int] | None:
    if t is None:
        return None
    if not lv.manifest.conditional:
        resolve_class(lv, 0, "inputs.class")           # raises: the family takes none
    _datatype(t, (*INTEGER_TYPES, "BYTES"))
    _shape(t, [[-1], [-1, 1]])
    refs = t.array.reshape(-1).tolist()
    if len(refs) not in (1, n):
        raise InvalidInput(f"inputs.class: {len(refs)} classes for {n} rows (give one per "
                           "row, or one for all)", field="inputs.class")
    if any(isinstance(r, bytes) and len(r) > MAX_CLASS_NAME for r in refs):
        raise InvalidInput(f"inputs.class: a class name is at most {MAX_CLASS_NAME} bytes",
                           field="inputs.class")
    out = [resolve_class(lv, r.decode("utf-8", "replace") if isinstance(r, bytes) else int(r),
                         "inputs.class") for r in refs]
    return out * n if len(out) == 1 else out


def plan(lv: LoadedVersion, req: InferRequest, tensors: dict[str, Tensor],
         s: Settings, raw_outputs: bool = False) -> Plan:
    """The request, checked against the model and the limits, before any work is done.
    ``raw_outputs``: every output goes out as raw bytes (gRPC's raw_output_contents)."""
    _refuse_unknown(req.parameters, REQUEST_PARAMETERS, "request")
    for t in req.inputs:
        _refuse_unknown(t.parameters, ("binary_data_size",), f"inputs.{t.name}")
    tensors = dict(tensors)
    psi = _psi(req, tensors)
    rows = _latents(lv, tensors)
    n = len(rows.seeds if rows.seeds is not None else rows.z if rows.z is not None else rows.w)
    if n == 0:
        raise InvalidInput("inputs: no rows (the batch dimension is 0)", field="inputs")
    limits.at_most(n, max_rows(lv, s), "inputs", "rows (GANSERVE_MAX_IMAGES, and "
                   "GANSERVE_MAX_OUTPUT_PIXELS at this resolution)")
    classes = _classes(lv, tensors.pop("class", None), n)
    if tensors:
        known = [name for name, _, _ in input_specs(lv.manifest)]
        raise InvalidInput(f"inputs.{next(iter(tensors))}: not an input of {lv.name}; its "
                           f"inputs: {', '.join(known)}", field=f"inputs.{next(iter(tensors))}")
    rows = Rows(rows.seeds, rows.z, rows.w, classes)
    outputs = _outputs(lv, req, rows)
    if raw_outputs:
        outputs = [(name, True) for name, _ in outputs]
    _json_budget(lv, outputs, n)
    return Plan(rows, psi, outputs, _timeout(req))


def _json_budget(lv: LoadedVersion, outputs: list[tuple[str, bool]], n: int) -> None:
    sizes = {name: n * math.prod(shape[1:]) for name, _, shape in output_specs(lv.manifest)}
    as_json = sum(sizes[name] for name, binary in outputs if not binary)
    if as_json > MAX_JSON_ELEMENTS:
        raise InvalidInput(f"outputs: {as_json} elements as JSON numbers, the limit is "
                           f"{MAX_JSON_ELEMENTS}; ask for them with binary_data (the binary "
                           "tensor extension), or fewer rows", field="outputs")


def _timeout(req: InferRequest) -> float | None:
    """Triton's ``timeout`` request parameter (microseconds): this request's deadline, when
    sooner than GANSERVE_REQUEST_DEADLINE_S."""
    us = (req.parameters or {}).get("timeout")
    if us is None:
        return None
    if type(us) is not int or us <= 0:
        raise InvalidInput("request.parameters.timeout: microseconds, an integer > 0",
                           field="request.parameters.timeout")
    return us / 1e6


def _outputs(lv: LoadedVersion, req: InferRequest, rows: Rows) -> list[tuple[str, bool]]:
    known = [name for name, _, _ in output_specs(lv.manifest)]
    default_binary = (req.parameters or {}).get("binary_data_output", False)
    if not isinstance(default_binary, bool):
        raise InvalidInput("request.parameters.binary_data_output: true or false",
                           field="request.parameters.binary_data_output")
    asked = req.outputs or []
    out: list[tuple[str, bool]] = []
    for o in asked:
        if o.name not in known:
            raise InvalidInput(f"outputs.{o.name}: not an output of {lv.name}; its outputs: "
                               f"{', '.join(known)}", field=f"outputs.{o.name}")
        if o.name == "z" and rows.w is not None:
            raise InvalidInput("outputs.z: the rows were given as w, so there is no z",
                               field="outputs.z")
        _refuse_unknown(o.parameters, ("binary_data",), f"outputs.{o.name}")
        binary = (o.parameters or {}).get("binary_data", default_binary)
        if not isinstance(binary, bool):
            raise InvalidInput(f"outputs.{o.name}.parameters.binary_data: true or false",
                               field=f"outputs.{o.name}.parameters.binary_data")
        out.append((o.name, binary))
    return out or [("image", default_binary)]


def output_tensors(plan: Plan, gen: Generated) -> list[Tensor]:
    """The outputs asked for, from the generated batch."""
    arrays = {"image": lambda: pixels(gen.images),                  # NHWC uint8, as /sample encodes
              "raw": lambda: np.asarray(gen.images, np.float32),
              "z": lambda: np.asarray(gen.latents, np.float32),
              "w": lambda: np.asarray(gen.ws, np.float32)}
    types = {"image": "UINT8"}
    out = []
    for name, _ in plan.outputs:
        a = arrays[name]()
        out.append(Tensor(name, types.get(name, "FP32"), list(a.shape), a))
    return out
