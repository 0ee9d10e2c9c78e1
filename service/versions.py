"""Model management: which version unversioned requests get, and removing a version.

Both write the store (``ganserve.model_store``), so every API replica agrees within one poll
of it; this replica rescans at once. A version is never removed while it is the last one,
the default, or read by a queued or running job; requests already running on it finish (its
sessions stay in memory until the registry retires them).
"""

from __future__ import annotations

import logging

from ganserve.manifest import list_versions
from ganserve.model_store import read_default, remove_version, write_default
from service.errors import JobConflict, VersionNotFound
from service.jobs import JobService
from service.registry import Registry

log = logging.getLogger(__name__)


class VersionConflict(JobConflict):
    """A version that cannot be removed now (the message says why)."""


def set_default(registry: Registry, name: str, version: str | None) -> None:
    """``version`` (None: the highest) for unversioned requests; 404 unknown, 503 failed."""
    if version is not None:
        registry.get(name, version)             # 404 / 503 in the project's shape
    else:
        registry.get(name, "latest")
    write_default(registry.settings.models_dir / name, version)
    log.info("default of %s set to %s", name, version or "the highest version")


def delete_version(registry: Registry, jobs_service: JobService, name: str,
                   version: str) -> None:
    versions = registry.versions_of(name)
    model_dir = registry.settings.models_dir / name
    if version not in versions:
        raise VersionNotFound(f"{name} has no version {version!r}", field="version",
                              available=sorted(versions, key=int))
    if list_versions(model_dir) == [version]:
        raise VersionConflict(f"{name}/{version} is the model's last version; a model keeps "
                              "at least one")
    # the store's word, not this process's last poll: another worker (or replica) may
    # have just made it the default
    if read_default(model_dir) == version or registry.defaults.get(name) == version:
        raise VersionConflict(f"{name}/{version} is the default version; PUT "
                              f"/v1/models/{name}/default to another one (or null) first")
    using = [j.id for j in jobs_service.store.active_for(name, version)]
    if using:
        raise VersionConflict(f"{name}/{version} is read by queued or running job(s) "
                              f"{', '.join(using)}; cancel them or wait", jobs=using)
    remove_version(model_dir, version)
    log.info("removed %s/%s", name, version)
