"""Store-level state beside the versions: a model's default version, and version removal.

    MODELS_DIR/NAME/_default.json       {"version": "3"}: what unversioned requests get
                                         (absent: the highest loaded version)
    MODELS_DIR/NAME/_high_water.json    {"version": 7}: the highest number ever removed
                                         (numbers are never handed out twice)
    MODELS_DIR/.locks/NAME.lock         held by whoever changes NAME's store

Both are written so that every reader (each API replica polls the store) sees the old state
or the new one, never half: the default file is replaced atomically; a version folder is
first renamed out of the version namespace (one rename), then deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from ganserve.evaluations import evaluations_dir
from ganserve.locks import file_lock
from ganserve.manifest import (
    HIGH_WATER_FILE,
    VERSION_RE,
    atomic_write_text,
    high_water,
    load_manifest,
    next_version,
    write_manifest,
)

DEFAULT_FILE = "_default.json"
TRASH_PREFIX = "_deleted-"
SEEDED_FILE = "_seeded.json"        # the shipped versions a store was offered by seed()
SEED_LOCK = ".seed.lock"


def read_default(model_dir: Path) -> str | None:
    """The default version named in ``model_dir``, or None (unset or unreadable)."""
    try:
        version = json.loads((model_dir / DEFAULT_FILE).read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return str(version) if version is not None else None


def write_default(model_dir: Path, version: str | None) -> None:
    """Make ``version`` the default (None: back to the highest version)."""
    path = model_dir / DEFAULT_FILE
    if version is None:
        path.unlink(missing_ok=True)
        return
    atomic_write_text(path, json.dumps({
        "version": version,
        "set_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}) + "\n")


LOCKS_DIR = ".locks"                # STORE/.locks/NAME.lock: one model's mutations


def model_lock(model_dir: Path, while_waiting: Callable[[], None] | None = None
               ) -> contextlib.AbstractContextManager[None]:
    """Serialize every mutation of one model's store (publishing a version, removing one,
    choosing the default) across processes and hosts that share the store. The lock lives
    in the store (not in a model folder, which may not exist yet)."""
    return file_lock(model_dir.parent / LOCKS_DIR / f"{model_dir.name}.lock", while_waiting)


def place_version(model_dir: Path, staged: Path, version: str | None = None,
                  fence: Callable[[], None] | None = None) -> Path:
    """Publish the version folder ``staged`` (same filesystem) with one rename; call under
    ``model_lock``. ``version`` None: the next free number, the staged manifest renumbered
    if another version appeared since it was written; a given number must be free and above
    every number ever used. ``fence`` runs right before the rename and may raise (a job
    confirming its lease)."""
    if version is None:
        version = next_version(model_dir)
        manifest = load_manifest(staged)
        if manifest.version != version:
            write_manifest(staged, manifest.model_copy(update={"version": version}))
    else:
        check_free(model_dir, version)
    if fence is not None:
        fence()
    final = model_dir / version
    staged.rename(final)
    return final


def check_free(model_dir: Path, version: str) -> None:
    """ValueError unless ``version`` may be published now: not held, never used."""
    if (model_dir / version).exists():
        raise ValueError(f"{model_dir / version} exists; versions are immutable")
    if int(version) <= high_water(model_dir):
        raise ValueError(f"{model_dir.name} once had version {version} (removed since); "
                         "numbers are never reused, so a cache cannot mistake one for the "
                         f"other: use {next_version(model_dir)} or leave the version out")


def record_high_water(model_dir: Path, version: str) -> None:
    """Remember that ``version`` was used, so ``next_version`` never hands it out again."""
    if int(version) > high_water(model_dir):
        atomic_write_text(model_dir / HIGH_WATER_FILE, json.dumps({"version": int(version)})
                          + "\n")


def remove_version(model_dir: Path, version: str) -> None:
    """Take ``version`` out of the store in one rename, then delete it and its records
    (call it under ``model_lock``). Its number is recorded first: never reused."""
    vdir = model_dir / version
    record_high_water(model_dir, version)
    trash = model_dir / f"{TRASH_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
    vdir.rename(trash)                          # gone for every reader from here on
    records = evaluations_dir(vdir)
    if records.is_dir():
        records.rename(trash.with_name(trash.name + "-evaluations"))
        shutil.rmtree(trash.with_name(trash.name + "-evaluations"), ignore_errors=True)
    shutil.rmtree(trash, ignore_errors=True)


def seed(shipped: Path, store: Path) -> list[str]:
    """Copy every ``NAME/VERSION`` (and evaluator folder) of ``shipped`` that ``store`` was
    never offered, each through a temporary folder and one rename, so a reader sees it whole
    or not at all. What the store holds is never touched (a re-run, a version a job made),
    and what it was offered once is not offered again (``_seeded.json``): a shipped version
    someone deleted stays deleted; one that a later checkout ships is copied.
    Returns what was copied, as ``NAME/VERSION``."""
    copied: list[str] = []
    store.mkdir(parents=True, exist_ok=True)
    with file_lock(store / SEED_LOCK):
        offered = _offered(store)
        for model in sorted(p for p in shipped.iterdir() if p.is_dir()):
            for item in sorted(p for p in model.iterdir() if p.is_dir()):
                key = f"{model.name}/{item.name}"
                if item.name.startswith((".", TRASH_PREFIX)) or key in offered:
                    continue
                offered.add(key)
                dest = store / model.name
                with model_lock(dest):
                    if VERSION_RE.match(item.name) and int(item.name) <= high_water(dest):
                        continue        # the store removed a version of that number once
                    if _copy_whole(item, dest / item.name):
                        copied.append(key)
        atomic_write_text(store / SEEDED_FILE, json.dumps(
            {"source": str(shipped.resolve()), "offered": sorted(offered)}, indent=1) + "\n")
    return copied


def _offered(store: Path) -> set[str]:
    try:
        return set(json.loads((store / SEEDED_FILE).read_text())["offered"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _copy_whole(src: Path, dest: Path) -> bool:
    """``src`` to ``dest`` through a temporary folder and one rename; False if ``dest``
    exists (it is never overwritten)."""
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".seed-{src.name}-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(src, tmp)
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if dest.exists():           # another seeder won the race: theirs stays
            return False
        raise
    return True
