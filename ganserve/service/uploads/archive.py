"""An untrusted zip, read safely: every member is checked before any of it is decompressed.

What is refused, each with its own reason code (``Rejected.reason``):

- ``unsafe_path``: absolute names, drive letters (``C:``), backslashes, ``..``, control
  characters, over-long names;
- ``unsafe_entry``: symlinks, devices, FIFOs, sockets (by the member's Unix mode bits), and
  encrypted members;
- ``duplicate_name``: two members that are one file after normalisation (``./``, ``//``,
  Unicode NFC, letter case: the archive must unpack the same on every filesystem);
- ``nested_archive``: a zip, tar, gz... inside the archive;
- ``zip_bomb``: more declared bytes than the limit, a member compressed more than the
  ratio limit, compressed sizes that add up to more than the file (overlapping members), or
  a member holding other than the bytes it declares;
- ``too_many_files``, ``invalid_archive`` (not a zip, corrupt).

Nothing is ever extracted to disk: members are read into memory one at a time, each bounded
by its declared size (itself bounded by the limits above).
"""

from __future__ import annotations

import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ganserve.data.base import DataError

# macOS and Windows leave these in archives made by their file managers: ignored, not refused
JUNK_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}
NESTED_EXTS = {".zip", ".npz", ".jar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z",
               ".rar", ".lz", ".lzma", ".cab", ".iso"}
MAX_NAME_CHARS = 255
RATIO_FLOOR_BYTES = 64 << 10        # members smaller than this cannot be bombs: no ratio check
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNIX = 3                           # ZipInfo.create_system of archives made on Unix


class Rejected(DataError):
    """An upload refused, with a machine-readable ``reason`` (the error code clients see)
    and the HTTP status it maps to (422, or 413 for sizes)."""

    def __init__(self, reason: str, message: str, status: int = 422):
        super().__init__(message)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int                  # members (directories and junk not counted)
    max_uncompressed_bytes: int     # all members together, as declared and as read
    max_ratio: float                # uncompressed / compressed, per member
    max_image_bytes: int = 64 << 20  # one image member, uncompressed (it is read whole)


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]          # the normalised path, split on "/"

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.parts[-1]).suffix.lower()

    @property
    def display(self) -> str:
        return "/".join(self.parts)[:200]


def member_parts(name: str) -> tuple[str, ...]:
    """The path components of a member name, or Rejected('unsafe_path')."""
    shown = repr(name[:120])
    if _CONTROL.search(name):
        raise Rejected("unsafe_path", f"archive member {shown} has control characters in "
                       "its name")
    if "\\" in name:
        raise Rejected("unsafe_path", f"archive member {shown} has a backslash in its name "
                       "(a Windows path separator); use '/'")
    if name.startswith("/") or _DRIVE.match(name):
        raise Rejected("unsafe_path", f"archive member {shown} has an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise Rejected("unsafe_path", f"archive member {shown} reaches outside the archive "
                       "('..')")
    if not parts or len(name) > 4 * MAX_NAME_CHARS or any(len(p) > MAX_NAME_CHARS
                                                           for p in parts):
        raise Rejected("unsafe_path", f"archive member {shown} has an empty or over-long name")
    return parts


def _is_junk(parts: tuple[str, ...]) -> bool:
    return any(p in JUNK_NAMES or p.startswith("._") for p in parts)


def _check_kind(info: zipfile.ZipInfo, shown: str) -> None:
    if "\x00" in info.orig_filename:     # zipfile cuts the name there; the archive lies
        raise Rejected("unsafe_path", f"archive member {shown} has a NUL in its name")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # Python inflates bzip2 and lzma members with no bound on the output: a few KB
        # could take gigabytes before any size check
        raise Rejected("invalid_archive", f"archive member {shown} is compressed with method "
                       f"{info.compress_type}; only stored and deflate are accepted")
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.create_system == _UNIX and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = "a symlink" if kind == stat.S_IFLNK else "a special file (device, FIFO, socket)"
        raise Rejected("unsafe_entry", f"archive member {shown} is {what}; only regular files "
                       "are accepted")
    if info.flag_bits & 0x1:
        raise Rejected("unsafe_entry", f"archive member {shown} is encrypted")


def _check_size(info: zipfile.ZipInfo, shown: str, limits: ArchiveLimits) -> None:
    if info.file_size > limits.max_uncompressed_bytes:
        raise Rejected("zip_bomb", f"archive member {shown} declares {info.file_size} bytes, "
                       f"over the limit of {limits.max_uncompressed_bytes}", status=413)
    if info.file_size > RATIO_FLOOR_BYTES and (
            info.compress_size == 0
            or info.file_size / info.compress_size > limits.max_ratio):
        raise Rejected("zip_bomb", f"archive member {shown} is compressed "
                       f"{info.file_size / max(info.compress_size, 1):.0f}:1, over the limit "
                       f"of {limits.max_ratio:g}:1")


def safe_members(zf: zipfile.ZipFile, archive_bytes: int, limits: ArchiveLimits
                 ) -> list[Member]:
    """The archive's regular files (junk left out), after every check above."""
    infos = zf.infolist()
    if len(infos) > max_entries(limits):
        raise Rejected("too_many_files", f"the archive has {len(infos)} entries; at most "
                       f"{limits.max_files} files are accepted")
    members: list[Member] = []
    seen: dict[str, str] = {}
    declared = compressed = 0
    for info in infos:
        parts = member_parts(info.filename)
        shown = repr("/".join(parts)[:120])
        _check_kind(info, shown)
        if info.is_dir() or _is_junk(parts):
            continue
        key = unicodedata.normalize("NFC", "/".join(parts)).casefold()
        if key in seen:
            raise Rejected("duplicate_name", f"archive members {seen[key]!r} and "
                           f"{info.filename[:120]!r} are the same file once normalised "
                           "(case, Unicode form, './' and '//' are not told apart)")
        seen[key] = info.filename[:120]
        member = Member(info, parts)
        if member.suffix in NESTED_EXTS:
            raise Rejected("nested_archive", f"archive member {shown} is an archive itself; "
                           "nested archives are not accepted")
        _check_size(info, shown, limits)
        declared += info.file_size
        compressed += info.compress_size
        members.append(member)
    if len(members) > limits.max_files:
        raise Rejected("too_many_files", f"the archive holds {len(members)} files; at most "
                       f"{limits.max_files} are accepted (GANSERVE_UPLOAD_MAX_FILES)")
    if declared > limits.max_uncompressed_bytes:
        raise Rejected("zip_bomb", f"the archive declares {declared} bytes uncompressed, over "
                       f"the limit of {limits.max_uncompressed_bytes} "
                       "(GANSERVE_UPLOAD_MAX_UNCOMPRESSED_BYTES)", status=413)
    if compressed > archive_bytes:
        raise Rejected("zip_bomb", "the archive's members overlap (their compressed sizes add "
                       f"up to {compressed} bytes in a file of {archive_bytes})")
    return members


def read_member(zf: zipfile.ZipFile, member: Member) -> bytes:
    """The member's bytes: exactly its declared size, or Rejected (a size that lies, a bad
    checksum, corrupt compressed data)."""
    info = member.info
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
            extra = f.read(1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            RuntimeError) as e:
        if _inflates_past(zf, info):
            data, extra = b"", b"x"
        else:
            raise Rejected("invalid_archive", f"archive member {member.display!r} cannot be "
                           f"read ({type(e).__name__}: {str(e)[:120]})") from None
    if len(data) != info.file_size or extra:
        raise Rejected("zip_bomb", f"archive member {member.display!r} holds other than the "
                       f"{info.file_size} bytes it declares")
    return data


def _inflates_past(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether a deflated member holds more than its declared size (zipfile stops at the
    declared size and reports a bad CRC): its raw stream inflated, bounded, past that size."""
    if info.compress_type != zipfile.ZIP_DEFLATED or zf.fp is None:
        return False
    try:
        zf.fp.seek(info.header_offset)
        header = zf.fp.read(30)
        skip = int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
        zf.fp.seek(info.header_offset + 30 + skip)
        raw = zf.fp.read(info.compress_size)
        out = zlib.decompressobj(-15).decompress(raw, info.file_size + 1)
    except (OSError, zlib.error, ValueError):
        return False
    return len(out) > info.file_size


def _directory(path: Path) -> tuple[int, int] | None:
    """(entries, directory bytes) as the end-of-central-directory record declares them
    (ZIP64 too), before ``zipfile`` parses the directory; None if there is no record. The
    record is found by zipfile's own search (``_EndRecData``): a search of our own (the last
    signature in the tail) could land on a lookalike, even inside the real record's counts,
    and vouch for a directory zipfile then reads in full."""
    with path.open("rb") as f:
        record = zipfile._EndRecData(f)     # noqa: SLF001 -- the one zipfile will use
    if not record:
        return None
    return record[zipfile._ECD_ENTRIES_TOTAL], record[zipfile._ECD_SIZE]  # noqa: SLF001


def open_zip(path: Path, limits: ArchiveLimits) -> zipfile.ZipFile:
    """The archive, opened only once its directory is known to be of a sane size (parsing
    millions of entries would cost seconds and gigabytes before any check could run)."""
    try:
        directory = _directory(path)
    except (OSError, struct.error) as e:
        raise Rejected("invalid_archive", f"not a readable zip archive ({str(e)[:120]})"
                       ) from None
    # zipfile reads as many records as the directory's size holds, whatever the count says:
    # bound both (a record is 46 bytes and its name; 300 a record is generous)
    if directory is not None and (directory[0] > max_entries(limits)
                                  or directory[1] > max_entries(limits) * 300):
        raise Rejected("too_many_files", f"the archive's directory lists {directory[0]} "
                       f"entries in {directory[1]} bytes; at most {limits.max_files} files "
                       "are accepted (GANSERVE_UPLOAD_MAX_FILES)")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise Rejected("invalid_archive", f"not a readable zip archive ({str(e)[:120]})"
                       ) from None


def max_entries(limits: ArchiveLimits) -> int:
    """Entries tolerated in a directory: the files allowed, plus folders and OS junk."""
    return limits.max_files * 2 + 1000
