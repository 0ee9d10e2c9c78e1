"""Protocol tensors <-> numpy arrays, in both of the protocol's HTTP encodings.

- **JSON**: a tensor's ``data`` is its elements in row-major order, flat or nested; BYTES
  elements are strings.
- **Binary tensor extension** (Triton's, which ``tritonclient`` uses by default): the body is
  the JSON header (its length in the ``Inference-Header-Content-Length`` header) followed by
  the raw tensors, in the order of the inputs that carry ``parameters.binary_data_size``;
  little-endian; a BYTES element is a 4-byte little-endian length and its bytes. Responses
  use the same layout for the outputs asked for with ``binary_data``.
- **Compression**: a ``Content-Encoding: gzip`` or ``deflate`` body is inflated (bounded: a
  small body that inflates past the body limit is a 413); ``Accept-Encoding`` picks the
  response's.

Every mismatch (element count against shape, bytes against datatype, a number that does not
fit its datatype) is an ``InvalidInput`` naming the tensor.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganserve.service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

DTYPES: dict[str, np.dtype | None] = {
    "BOOL": np.dtype("?"), "UINT8": np.dtype("u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"), "BYTES": None}
INTEGER_TYPES = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
FLOAT_TYPES = ("FP32", "FP64", "FP16")
HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray           # the datatype's dtype, or an object array of bytes (BYTES)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def split_body(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    """The body -> (its JSON header, parsed; the binary part after it)."""
    if header_length is None:
        head, rest = body, b""
    else:
        digits = header_length.isascii() and header_length.isdigit() and len(header_length) < 20
        n = int(header_length) if digits else -1
        if not 0 <= n <= len(body):
            raise InvalidInput(f"{HEADER_LENGTH}: {header_length[:32]!r} is not a length "
                               f"within the body's {len(body)} bytes", field=HEADER_LENGTH)
        head, rest = body[:n], body[n:]
    try:
        return json.loads(head, parse_constant=_refuse_constant), rest
    except (ValueError, RecursionError) as e:
        reason = f"{e.msg} at byte {e.pos}" if isinstance(e, json.JSONDecodeError) else str(e)
        raise InvalidInput(f"body: the JSON header cannot be parsed: {reason}"[:300],
                           field="body") from None


def _flatten(data: Any) -> list[Any]:
    """Nested lists -> their elements in row-major order (iterative: no recursion limit)."""
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for x in stack[-1]:
            if isinstance(x, list):
                stack.append(iter(x))
                break
            out.append(x)
        else:
            stack.pop()
    return out


def _count(name: str, shape: list[int], got: int) -> None:
    want = math.prod(shape)
    if got != want:
        raise InvalidInput(f"inputs.{name}: shape {shape} holds {want} elements, the data "
                           f"has {got}", field=f"inputs.{name}")


def from_values(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    """A tensor from its elements (JSON ``data``, flat or nested; gRPC ``contents``)."""
    flat = _flatten(data)
    _count(name, shape, len(flat))
    if datatype == "BYTES":
        if not all(isinstance(x, str | bytes) for x in flat):
            raise InvalidInput(f"inputs.{name}: BYTES data must be strings",
                               field=f"inputs.{name}")
        return np.array([x.encode() if isinstance(x, str) else x for x in flat],
                        dtype=object).reshape(shape)
    dtype = DTYPES[datatype]
    if datatype == "BOOL":
        ok = all(type(x) is bool for x in flat)
    elif datatype in INTEGER_TYPES:
        ok = all(type(x) is int for x in flat)
    else:
        ok = all(type(x) in (int, float) for x in flat)
    if not ok:
        raise InvalidInput(f"inputs.{name}: {datatype} data must be "
                           f"{'booleans' if datatype == 'BOOL' else 'numbers'}"
                           f"{' without a fraction' if datatype in INTEGER_TYPES else ''}",
                           field=f"inputs.{name}")
    if datatype in INTEGER_TYPES and flat:
        info = np.iinfo(dtype)
        if min(flat) < info.min or max(flat) > info.max:
            raise InvalidInput(f"inputs.{name}: a value is outside {datatype}'s range",
                               field=f"inputs.{name}")
    try:
        with np.errstate(over="ignore"):
            arr = np.array(flat, dtype=dtype)
    except (OverflowError, ValueError):         # an integer of 400 digits as FP32
        raise InvalidInput(f"inputs.{name}: a value does not fit {datatype}",
                           field=f"inputs.{name}") from None
    return arr.reshape(shape)


def from_bytes(name: str, datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    """A tensor from its raw bytes (the binary extension; gRPC ``raw_input_contents``)."""
    if datatype == "BYTES":
        items, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                break
            (n,) = struct.unpack_from("<I", raw, at)
            if at + 4 + n > len(raw):
                break
            items.append(raw[at + 4:at + 4 + n])
            at += 4 + n
        if at != len(raw):
            raise InvalidInput(f"inputs.{name}: BYTES binary data is not a series of "
                               "4-byte lengths and their bytes", field=f"inputs.{name}")
        _count(name, shape, len(items))
        return np.array(items, dtype=object).reshape(shape)
    dtype = DTYPES[datatype]
    want = math.prod(shape) * dtype.itemsize
    if len(raw) != want:
        raise InvalidInput(f"inputs.{name}: shape {shape} of {datatype} is {want} bytes, "
                           f"binary_data_size says {len(raw)}", field=f"inputs.{name}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def read_inputs(inputs: list[Any], binary: bytes) -> dict[str, Tensor]:
    """The request's input tensors (validated schema objects) -> arrays, by name; the
    binary ones are cut from ``binary`` in order."""
    out: dict[str, Tensor] = {}
    at = 0
    for t in inputs:                        # names are unique (inference.request)
        size = (t.parameters or {}).get("binary_data_size")
        if size is not None and (type(size) is not int or size < 0):
            raise InvalidInput(f"inputs.{t.name}.parameters.binary_data_size: a byte count "
                               f"(an integer >= 0), not {str(size)[:32]!r}",
                               field=f"inputs.{t.name}.parameters.binary_data_size")
        if size is not None:
            if t.data is not None:
                raise InvalidInput(f"inputs.{t.name}: both data and binary_data_size",
                                   field=f"inputs.{t.name}")
            if at + size > len(binary):
                raise InvalidInput(f"inputs.{t.name}: binary_data_size {size} runs past the "
                                   f"body's binary part ({len(binary) - at} bytes left)",
                                   field=f"inputs.{t.name}")
            arr = from_bytes(t.name, t.datatype, t.shape, binary[at:at + size])
            at += size
        elif t.data is None:
            raise InvalidInput(f"inputs.{t.name}: no data (give data, or binary_data_size "
                               "with the tensor's bytes after the JSON header)",
                               field=f"inputs.{t.name}")
        else:
            arr = from_values(t.name, t.datatype, t.shape, t.data)
        out[t.name] = Tensor(t.name, t.datatype, list(t.shape), arr)
    if at != len(binary):
        raise InvalidInput(f"body: {len(binary) - at} bytes after the JSON header belong to "
                           "no input (binary_data_size)", field="body")
    return out


def json_data(t: Tensor) -> list[Any]:
    if t.datatype == "BYTES":
        return [b.decode("utf-8", "replace") for b in t.array.reshape(-1)]
    return t.array.reshape(-1).tolist()


def _uint8_spellings() -> tuple[np.ndarray, np.ndarray]:
    """Each byte value's decimal digits and a comma, padded to 4 bytes; and their lengths."""
    table = np.zeros((256, 4), np.uint8)
    lengths = np.zeros(256, np.int64)
    for v in range(256):
        text = f"{v},".encode()
        table[v, :len(text)] = np.frombuffer(text, np.uint8)
        lengths[v] = len(text)
    return table, lengths


_UINT8_TABLE, _UINT8_LENGTHS = _uint8_spellings()
_COLUMNS = np.arange(4)


def json_array(t: Tensor) -> bytes:
    """The tensor's data as JSON text, row-major (``json_data`` written out). UINT8, the
    images' usual type, is spelled from a table in numpy: json.dumps of the list took ~60 µs
    of the event loop per 32x32 image, this ~25 µs, and far less per element for grids."""
    if t.datatype == "UINT8" and t.array.size:
        v = t.array.reshape(-1)
        keep = _UINT8_LENGTHS[v][:, None] > _COLUMNS
        return b"[" + _UINT8_TABLE[v][keep].tobytes()[:-1] + b"]"
    return json.dumps(json_data(t), separators=(",", ":")).encode()


def binary_data(t: Tensor) -> bytes:
    if t.datatype == "BYTES":
        return b"".join(struct.pack("<I", len(b)) + b for b in t.array.reshape(-1))
    return np.ascontiguousarray(t.array, dtype=DTYPES[t.datatype]).tobytes()


# ------------------------------------------------------------------------- compression
def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """A request body as sent -> as meant, at most ``limit`` bytes once inflated."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding[:32]!r} is not supported; "
                                   "send gzip, deflate or none", field="Content-Encoding")
    if encoding == "gzip":                  # one member or several (RFC 1952), nothing after
        out, rest = b"", body
        while rest:
            chunk, rest = _inflate_one(rest, 16 + zlib.MAX_WBITS, limit - len(out), encoding)
            out += chunk
        return out
    # deflate: zlib's format (what HTTP means by it), else a raw deflate stream
    try:
        out, rest = _inflate_one(body, zlib.MAX_WBITS, limit, encoding)
    except InvalidInput:
        out, rest = _inflate_one(body, -zlib.MAX_WBITS, limit, encoding)
    if rest:
        raise InvalidInput(f"body: {len(rest)} bytes after the {encoding} stream",
                           field="body")
    return out


def _inflate_one(data: bytes, wbits: int, room: int, encoding: str) -> tuple[bytes, bytes]:
    """One compressed stream at the start of ``data`` -> (its bytes, what follows it)."""
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, room + 1)
    except zlib.error:
        raise InvalidInput(f"body: not a valid {encoding} stream", field="body") from None
    if len(out) > room or d.unconsumed_tail:
        raise PayloadTooLarge("body: inflates past the limit of GANSERVE_MAX_BODY_BYTES",
                              field="body")
    if not d.eof:
        raise InvalidInput(f"body: not a complete {encoding} stream", field="body")
    return out, d.unused_data


def response_encoding(accept: str | None) -> str | None:
    """gzip or deflate when the client accepts one (gzip first), else None."""
    offered = {}
    for part in (accept or "").lower().split(","):
        token, _, q = part.strip().partition(";")
        weight = q.strip().removeprefix("q=")
        try:
            offered[token.strip()] = float(weight) if weight else 1.0
        except ValueError:
            offered[token.strip()] = 0.0
    return next((e for e in ("gzip", "deflate") if offered.get(e, 0.0) > 0), None)


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(body) + c.flush()
    return zlib.compress(body, 6)
