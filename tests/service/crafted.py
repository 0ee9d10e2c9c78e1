"""Hostile and ordinary upload files, made in code (nothing committed as a blob)."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image

RNG = np.random.default_rng(0)


def image(side: int = 28, fmt: str = "PNG", mode: str = "L", seed: int = 0,
          size: tuple[int, int] | None = None) -> bytes:
    w, h = size or (side, side)
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode == "L" else (h, w, len(mode))
    im = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def zip_of(entries: dict[str, bytes] | list[tuple[str, bytes]],
           compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    items = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in items:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buf.getvalue()


def classes_zip(classes: dict[str, int], side: int = 28, prefix: str = "") -> bytes:
    """``{"Bag": 3}`` -> Bag/000.png ... random grayscale images."""
    return zip_of({f"{prefix}{c}/{i:03d}.png": image(side, seed=hash((c, i)) % 1000)
                   for c, n in classes.items() for i in range(n)})


def with_mode(name: str, mode: int, data: bytes = b"target") -> bytes:
    """A zip whose member carries Unix mode bits (a symlink, a FIFO, a device)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Bag/000.png", image())
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (mode | 0o777) << 16
        zf.writestr(info, data)
    return buf.getvalue()


def symlink_zip() -> bytes:
    return with_mode("Bag/link.png", stat.S_IFLNK, b"/etc/passwd")


def fifo_zip() -> bytes:
    return with_mode("Bag/fifo.png", stat.S_IFIFO)


def _patch_sizes(data: bytes, name: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size a member declares (local header and central dir)."""
    out = bytearray(data)
    local = out.find(b"PK\x03\x04")
    out[local + 22:local + 26] = struct.pack("<I", size)
    central = out.find(b"PK\x01\x02")
    while central != -1:
        n = struct.unpack("<H", out[central + 28:central + 30])[0]
        if bytes(out[central + 46:central + 46 + n]) == name:
            out[central + 24:central + 28] = struct.pack("<I", size)
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def lying_size_zip() -> bytes:
    """A member that declares 1 KB and inflates to 2 MB."""
    return _patch_sizes(zip_of({"Bag/000.png": b"\0" * (2 << 20)}), b"Bag/000.png", 1024)


def huge_declared_zip() -> bytes:
    """A member that declares 3 GB (a bomb that says so)."""
    return _patch_sizes(zip_of({"Bag/000.png": image()}), b"Bag/000.png", 3 << 30)


def ratio_bomb_zip() -> bytes:
    """8 MB of zeros in about 8 KB: 1000:1."""
    return zip_of({"Bag/000.png": b"\0" * (8 << 20)})


def overlapping_zip(copies: int = 8) -> bytes:
    """One incompressible member listed ``copies`` times in the central directory (the
    non-recursive zip bomb's trick: members that share their data)."""
    body = RNG.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    data = bytearray(zip_of({"Bag/000.png": body}, zipfile.ZIP_STORED))
    cd = data.find(b"PK\x01\x02")
    eocd = data.find(b"PK\x05\x06")
    record = bytes(data[cd:eocd])
    records = b"".join(record.replace(b"Bag/000.png", f"Bag/{i:03d}.png".encode())
                       for i in range(copies))
    end = bytearray(data[eocd:eocd + 22])
    end[8:10] = end[10:12] = struct.pack("<H", copies)
    end[12:16] = struct.pack("<I", len(records))
    return bytes(data[:cd]) + records + bytes(end)


def hidden_directory_zip(copies: int = 5000) -> bytes:
    """overlapping_zip whose end record's entry counts spell the record's own signature
    (b"PK" then 05 06): a search for the last signature lands inside the real record, whose
    22 bytes then run past the file's end, while zipfile reads the real record and every
    entry its directory holds."""
    data = bytearray(overlapping_zip(copies))
    eocd = len(data) - 22
    data[eocd + 8:eocd + 12] = b"PK\x05\x06"
    return bytes(data)


def bomb_png(side: int = 20_000) -> bytes:
    """A real side x side 1-bit PNG of zeros: about 50 KB (a few hundred bytes zipped) that
    decode to 400 M pixels."""
    row = b"\0" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0,
                                                               0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def corrupt_png() -> bytes:
    """A PNG whose pixel data is damaged (its CRC no longer matches)."""
    data = bytearray(image(64))
    at = data.find(b"IDAT") + 20
    data[at:at + 8] = b"\xff" * 8
    return bytes(data)


def npz_of(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def long_class_name_npz(chars: int = 2_000_000) -> bytes:
    """Ten class names, one of them ``chars`` random letters: NumPy pads all ten to it, so
    a few MB compressed hold 10 x 4 x ``chars`` bytes (80 MB by default), within the
    compression-ratio limit."""
    long = "".join(RNG.choice(list("abcdefghijklmnopqrstuvwxyz"), chars))
    names = np.array([long] + [f"c{i}" for i in range(9)])
    buf = io.BytesIO()
    np.savez_compressed(buf, images=np.zeros((10, 8, 8), np.uint8),
                        labels=np.arange(10), class_names=names)
    return buf.getvalue()


def progressive_jpeg(scans: int, side: int = 64) -> bytes:
    """A progressive JPEG whose last scan is repeated ``scans`` times (each costs a full
    pass over the image when decoded: a CPU bomb in a few KB)."""
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    last = data.rfind(b"\xff\xda")
    return data[:last] + data[last:-2] * scans + b"\xff\xd9"


def npy_header_npz(header: str, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An npz whose images.npy declares ``header`` (a dict literal) over a few bytes."""
    text = header.encode()
    if len(text) < 60_000:                                  # format 1.0: a 2-byte length
        text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
        npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + b"\0" * 64
    else:                                                   # 2.0: a 4-byte length
        text += b" " * (63 - (len(text) + 12) % 64) + b"\n"
        npy = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text + b"\0" * 64
    return zip_of({"images.npy": npy}, compression)
