"""API keys: who may submit jobs and manage models (and, by a setting, generate).

Keys live hashed in ``GANSERVE_API_KEYS_FILE`` (a Kubernetes Secret can be mounted there;
the file is re-read when it changes)::

    {"keys": [{"name": "ci", "sha256": "<hex sha256 of the key>", "read_only": false}]}

``ganserve api-key NAME [--read-only]`` makes a key and prints its entry. A request sends
``Authorization: Bearer <key>``: none (or not Bearer) is 401 with ``WWW-Authenticate``; an
unknown key, or a read-only key on anything but a read, is 403. The presented key's hash is
compared with every stored hash in constant time; keys are never logged or echoed. With no
keys file every endpoint is open, and the start-up log says so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter

from ganserve.service.errors import ServiceError

log = logging.getLogger(__name__)
AUTH_FAILURES = Counter("ganserve_auth_failures_total", "requests refused for their API key",
                        ["endpoint", "reason"])
bearer = HTTPBearer(auto_error=False, description="an API key from GANSERVE_API_KEYS_FILE "
                    "(`ganserve api-key NAME` makes one)")


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    read_only: bool = False


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str, read_only: bool = False) -> tuple[str, dict[str, Any]]:
    """A fresh key and the entry that goes into the keys file (the key itself does not)."""
    key = "gsk_" + secrets.token_urlsafe(32)
    return key, {"name": name, "sha256": key_hash(key), "read_only": read_only}


KEYS_FILE_SHAPE = '{"keys": [{"name": "ci", "sha256": "<64 hex digits>", "read_only": false}]}'


def parse_keys(path: Path) -> list[ApiKey]:
    """The keys of a keys file; ValueError says in one line what is wrong and the shape
    (``ganserve api-key NAME`` prints an entry for the "keys" list)."""
    try:
        data = json.loads(path.read_text())
        keys = [ApiKey(str(k["name"]), str(k["sha256"]).lower(), bool(k.get("read_only")))
                for k in data["keys"]]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a keys file ({type(e).__name__}: {e}); it must be "
                         f"JSON like {KEYS_FILE_SHAPE}") from None
    if any(len(k.sha256) != 64 for k in keys):
        raise ValueError(f"{path}: every key needs a 64-hex-digit sha256")
    return keys


class KeyRing:
    """The keys file, re-read when its modification time changes."""

    def __init__(self, path: Path | None):
        self.path = path
        self._keys: list[ApiKey] = []
        self._stamp: int | None = None
        self._lock = threading.Lock()
        if path is not None:
            parse_keys(path)        # a missing or broken file stops the service at start
            self._load()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def _load(self) -> None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._revoke("is gone")
            return
        if st.st_size == 0:
            self._revoke("is empty")
            return
        stamp = st.st_mtime_ns
        if stamp == self._stamp:
            return
        keys = parse_keys(self.path)
        with self._lock:
            self._keys, self._stamp = keys, stamp
        log.info("API keys: %d loaded from %s", len(keys), self.path)

    def _revoke(self, why: str) -> None:
        """A removed or emptied keys file revokes every key (an unreadable one keeps the last
        good keys: a half-written edit must not lock everyone out)."""
        with self._lock:
            had, self._keys, self._stamp = len(self._keys), [], None
        if had:
            log.error("API keys file %s %s: all %d keys revoked; key-guarded endpoints "
                      "answer 401 until it is back", self.path, why, had)

    def find(self, presented: str) -> ApiKey | None:
        """The key whose hash matches, comparing against every stored hash."""
        try:
            self._load()
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.error("API keys file unreadable, keeping the last good keys: %s", e)
        digest = key_hash(presented)
        found = None
        for k in self._keys:
            if hmac.compare_digest(digest, k.sha256):
                found = k
        return found


def _endpoint(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _verify(ring: KeyRing, creds: HTTPAuthorizationCredentials | None, scheme: str,
            endpoint: str) -> ApiKey:
    """The presented key (``scheme`` as sent, to name a Basic one), or 401 / 403."""
    if creds is None or not creds.credentials:
        AUTH_FAILURES.labels(endpoint, "missing").inc()
        raise Unauthorized("this endpoint needs an API key: send Authorization: Bearer <key>",
                           field="authorization", scheme="Bearer",
                           reason="not_bearer" if scheme and scheme.lower() != "bearer"
                           else "missing",
                           headers={"WWW-Authenticate": 'Bearer realm="ganserve"'})
    key = ring.find(creds.credentials)
    if key is None:
        AUTH_FAILURES.labels(endpoint, "unknown").inc()
        raise Forbidden("the API key is not valid here", field="authorization",
                        reason="unknown")
    return key


def _check(request: Request, creds: HTTPAuthorizationCredentials | None, write: bool) -> None:
    ring: KeyRing = request.app.state.keys
    if not ring.enabled:
        return
    scheme = request.headers.get("authorization", "").split(" ", 1)[0]     # Basic ...?
    key = _verify(ring, creds, scheme, _endpoint(request))
    if write and key.read_only and request.method not in ("GET", "HEAD", "OPTIONS"):
        AUTH_FAILURES.labels(_endpoint(request), "read_only").inc()
        raise Forbidden(f"the key {key.name!r} is read-only", field="authorization",
                        reason="read_only", key=key.name)
    request.state.api_key = key.name
    request.state.api_key_read_only = key.read_only


def check_read_key(ring: KeyRing, authorization: str | None, endpoint: str) -> None:
    """The inference check (any key, read-only ones too) of a raw Authorization value, for
    the gRPC server, whose metadata carries the header outside FastAPI's dependencies."""
    if not ring.enabled:
        return
    scheme, _, token = (authorization or "").strip().partition(" ")
    creds = (HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
             if scheme.lower() == "bearer" and token.strip() else None)
    _verify(ring, creds, scheme, endpoint)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def require_key(request: Request, creds: Credentials) -> None:
    """Jobs, datasets, model management: any key reads; only a full key writes."""
    _check(request, creds, write=True)


async def require_key_for_inference(request: Request, creds: Credentials) -> None:
    """Generation needs a key (read-only ones too) when GANSERVE_INFERENCE_NEEDS_KEY."""
    if request.app.state.settings.inference_needs_key:
        _check(request, creds, write=False)
