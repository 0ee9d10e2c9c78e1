"""Model management: which version unversioned requests get, and removing a version.

Both write the store (``ganserve.model_store``), so every API replica agrees within one poll
of it; this replica rescans at once. A version is never removed while it is the last one,
the default, or read by a queued or running job; requests already running on it finish (its
sessions stay in memory until the registry retires them).
"""

from __future__ import annotations

import logging

from ganserve.manifest import list_versions
from ganserve.model_store import model_lock, read_default, remove_version, write_default
from ganserve.service.errors import JobConflict, VersionNotFound
from ganserve.service.jobs import JobService
from ganserve.service.registry import Registry

log = logging.getLogger(__name__)


class VersionConflict(JobConflict):
    """A version that cannot be removed now (the message says why)."""


def set_default(registry: Registry, name: str, version: str | None) -> None:
    """``version`` (None: the highest) for unversioned requests; 404 unknown, 503 failed.
    Under the model's lock, against the store: a version another replica just removed
    cannot become the default."""
    registry.get(name, version if version is not None else "latest")   # 404 / 503 shapes
    model_dir = registry.settings.models_dir / name
    with model_lock(model_dir):
        held = list_versions(model_dir)
        if version is not None and version not in held:
            raise VersionNotFound(f"{name} has no version {version!r} (removed meanwhile)",
                                  field="version", available=held)
        write_default(model_dir, version)
    log.info("default of %s set to %s", name, version or "the highest version")


def delete_version(registry: Registry, jobs_service: JobService, name: str,
                   version: str) -> None:
    """Remove ``name/version`` unless it is the last, the default or read by a job: every
    rule judged on the store, under the model's lock (two replicas deleting the last two
    versions at once leave one)."""
    registry.versions_of(name)                  # 404 for an unknown model, as before
    model_dir = registry.settings.models_dir / name
    with model_lock(model_dir):
        held = list_versions(model_dir)
        if version not in held:
            raise VersionNotFound(f"{name} has no version {version!r}", field="version",
                                  available=held)
        if held == [version]:
            raise VersionConflict(f"{name}/{version} is the model's last version; a model "
                                  "keeps at least one")
        if read_default(model_dir) == version:
            raise VersionConflict(f"{name}/{version} is the default version; PUT "
                                  f"/v1/models/{name}/default to another one (or null) first")
        using = [j.id for j in jobs_service.store.active_for(name, version)]
        if using:
            raise VersionConflict(f"{name}/{version} is read by queued or running job(s) "
                                  f"{', '.join(using)}; cancel them or wait", jobs=using)
        remove_version(model_dir, version)
    log.info("removed %s/%s", name, version)
