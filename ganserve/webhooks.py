"""Job webhooks: the job's record POSTed to a URL the job names, signed, throttled, retried,
and never in the job's way. Both the worker (start, progress, completed) and the service (a
queued job cancelled) send them, so they are a layer of their own beneath both.

- **Targets** are checked against ``GANSERVE_WEBHOOK_ALLOWED_HOSTS`` at submission (a 422)
  and again before every attempt, after resolving the name (a name that later resolves to
  an internal address is refused then: DNS rebinding). Redirects are not followed.
- **Body**: ``{"event", "delivery", "sent_at", "job": <the record as GET /v1/jobs/ID shows
  it when the delivery is sent>}``.
- **Signature**: ``X-Ganserve-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
  "<t>." + body, keyed with GANSERVE_WEBHOOK_SECRET>`` (``verify`` checks one); also
  ``X-Ganserve-Event`` and ``X-Ganserve-Delivery`` (an id, the same across retries).
- **Delivery** runs in the background: ``notify`` only adds the event to its job's chain
  (start and progress beyond QUEUE_SIZE waiting are dropped and counted; completed is always
  kept), so a slow or failing receiver never blocks, slows or fails a job. A dispatcher
  thread hands each job's next due event to a pool of DELIVERY_THREADS: a job's events go
  out in order, different jobs' in parallel, and a retry waits out its backoff without
  holding a thread, so one dead receiver delays only its own job's events. Timeouts,
  connection errors, 429 and 5xx are retried with exponential backoff; other answers are
  final.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter

from ganserve.jobs.records import Job
from ganserve.settings import SharedSettings

log = logging.getLogger(__name__)
DELIVERIES = Counter("ganserve_webhook_deliveries_total", "job webhook deliveries by event "
                     "and outcome (delivered, failed: after the retries or a final answer; "
                     "refused: the target is not allowed now; dropped: the queue was full)",
                     ["event", "outcome"])
SIGNATURE_HEADER = "X-Ganserve-Signature"
QUEUE_SIZE = 1000
DELIVERY_THREADS = 4
Resolver = Callable[[str], list[str]]


class WebhookRefused(ValueError):
    """A target the allow-list does not let this service POST to (the message says why)."""


def resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as e:
        raise WebhookRefused(f"webhook host {host!r} does not resolve ({e})") from None
    return sorted({str(info[4][0]) for info in infos})


def allowed_entries(text: str) -> list[str]:
    return [e.strip().lower() for e in text.split(",") if e.strip()]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _split(entries: list[str]) -> tuple[list[Network], list[str]]:
    """The allow-list's IP networks, and its host names and patterns (``*`` aside)."""
    nets: list[Network] = []
    names: list[str] = []
    for e in entries:
        try:
            nets.append(ipaddress.ip_network(e, strict=False))
        except ValueError:
            if e != "*":
                names.append(e)
    return nets, names


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# local-use NAT64 (RFC 8215): translates to whatever the local translator reaches, never public
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# SIIT's IPv4-translated addresses (RFC 2765, ::ffff:0:a.b.c.d)
SIIT = ipaddress.ip_network("::ffff:0:0:0/96")


def public(a: Address) -> bool:
    """A global address, and for IPv6 forms that carry an IPv4 address (mapped, 6to4,
    NAT64, SIIT, compatible), that one too; local-use NAT64 never."""
    if not a.is_global:
        return False
    if isinstance(a, ipaddress.IPv6Address):
        if a in NAT64_LOCAL:
            return False
        inner = a.ipv4_mapped or a.sixtofour
        if inner is None and (a in NAT64 or a in SIIT):
            inner = ipaddress.IPv4Address(int(a) & 0xFFFFFFFF)
        if inner is None and int(a) >> 32 == 0:         # ::a.b.c.d (deprecated)
            inner = ipaddress.IPv4Address(int(a))
        if inner is not None:
            return inner.is_global
    return True


def _parse_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookRefused(f"webhook url must be http(s)://host/..., not {url[:80]!r}")
    if parts.username or parts.password:
        raise WebhookRefused("webhook url must not carry credentials")
    if not host.isascii():
        raise WebhookRefused("webhook host must be ASCII: give an international name in its "
                             "IDNA form (xn--...)")
    try:
        parts.port                                  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise WebhookRefused(f"webhook url has a bad port: {url[:80]!r}") from None
    return parts.scheme, host


def check_target(url: str, allowed: list[str], resolver: Resolver = resolve) -> list[str]:
    """The addresses ``url``'s host may be reached at, or WebhookRefused. A host may be
    POSTed to when every address it resolves to is in an allowed network, or when it matches
    an allowed name (or ``*``) and every address is public: a listed name that comes to
    resolve to an internal address is refused (say the network to allow one)."""
    if not allowed:
        raise WebhookRefused("webhooks are off here: the operator sets "
                             "GANSERVE_WEBHOOK_ALLOWED_HOSTS (and GANSERVE_WEBHOOK_SECRET)")
    _, host = _parse_url(url)
    nets, names = _split(allowed)
    named = "*" in allowed or any(fnmatch.fnmatchcase(host, p.rstrip(".")) for p in names)
    if not named and not nets:
        raise WebhookRefused(f"webhook host {host!r} is not in GANSERVE_WEBHOOK_ALLOWED_HOSTS")
    found = resolver(host)
    if not found:
        raise WebhookRefused(f"webhook host {host!r} does not resolve")
    for text in found:
        a = ipaddress.ip_address(text.split("%")[0])
        if not (any(a in n for n in nets) or (named and public(a))):
            raise WebhookRefused(f"webhook host {host!r} ({a}) is not in "
                                 "GANSERVE_WEBHOOK_ALLOWED_HOSTS"
                                 + ("" if not named else "; an allowed name reaches public "
                                    "addresses only (allow an internal one by its network)"))
    return found


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` rewritten to connect to the checked ``address`` (so a second lookup cannot
    lead elsewhere), with the Host header and the TLS name of the original host."""
    parts = urlsplit(url)
    scheme, host = _parse_url(url)
    ip = f"[{address}]" if ":" in address else address
    netloc = ip + (f":{parts.port}" if parts.port else "")
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), headers, extensions


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, tolerance_s: float = 300) -> bool:
    """What a receiver does: the signature matches and is recent (no replays)."""
    try:
        fields = dict(p.split("=", 1) for p in header.split(","))
        t = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, t), header)


@dataclass
class _Event:
    job_id: str
    event: str
    url: str
    delivery: str
    attempt: int = 0
    due: float = 0.0


class WebhookSender:
    """One per process (threads start on first use, and again in a forked child)."""

    def __init__(self, settings: SharedSettings, read_job: Callable[[str], Job | None],
                 resolver: Resolver = resolve):
        self.settings, self.read_job, self.resolver = settings, read_job, resolver
        self.allowed = allowed_entries(settings.webhook_allowed_hosts)
        self._reset()
        _SENDERS.add(self)

    def _reset(self) -> None:
        """Fresh state: at start, and in a forked child (the parent's threads, lock and
        chains do not carry over)."""
        self._cond = threading.Condition(threading.Lock())
        self._chains: dict[str, collections.deque[_Event]] = {}
        self._busy: set[str] = set()            # jobs with an attempt in flight
        self._last_progress: dict[str, float] = {}
        self._progress_queued: set[str] = set()
        self._pending = 0                       # start and progress events waiting
        self._closing = False
        self._stop_at = float("inf")
        self._pid: int | None = None
        self._dispatcher: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- queueing --------------------------------------------------------------------
    def notify(self, job: Job, event: str) -> None:
        """Queue ``event`` for ``job`` if it asked for it; never blocks, never raises.
        Progress is throttled and waits at most once per job."""
        try:
            hook = job.spec.get("webhook") if isinstance(job.spec, dict) else None
            if not hook or event not in hook.get("events", ()) or not hook.get("url"):
                return
            item = _Event(job.id, event, str(hook["url"]), uuid.uuid4().hex)
            self._start()
            with self._cond:
                if self._closing:
                    DELIVERIES.labels(event, "dropped").inc()
                    log.warning("job %s: webhook %s dropped: the sender is closing", job.id,
                                event)
                    return
                if not self._admit(job.id, event):
                    return
                self._chains.setdefault(job.id, collections.deque()).append(item)
                self._cond.notify()
        except Exception as e:                      # a webhook must never fail a job...
            if type(e).__name__ == "SoftTimeLimitExceeded":
                raise                               # ...nor swallow the job's time limit
            log.warning("job %s: webhook %s not queued: %s", job.id, event, e)

    def _admit(self, job_id: str, event: str) -> bool:
        if event == "completed":
            self._last_progress.pop(job_id, None)
            return True
        if event == "progress":
            now = time.monotonic()
            if len(self._last_progress) > 10_000:      # jobs that ended elsewhere
                self._last_progress.clear()
            if (job_id in self._progress_queued or now - self._last_progress.get(
                    job_id, -1e9) < self.settings.webhook_progress_interval_s):
                return False
            self._last_progress[job_id] = now
        if self._pending >= QUEUE_SIZE:
            DELIVERIES.labels(event, "dropped").inc()
            log.warning("job %s: %d webhook events waiting; %s event dropped", job_id,
                        self._pending, event)
            return False
        self._pending += 1
        if event == "progress":
            self._progress_queued.add(job_id)
        return True

    def _start(self) -> None:
        with self._cond:
            alive = self._dispatcher is not None and self._dispatcher.is_alive()
            if (self._pid == os.getpid() and alive) or self._closing:
                return
            self._pid = os.getpid()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(DELIVERY_THREADS,
                                                thread_name_prefix="webhook")
            self._dispatcher = threading.Thread(target=self._dispatch, name="webhooks",
                                                daemon=True)
            self._dispatcher.start()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is waiting, for up to ``timeout``; then stop (what is left is
        dropped and counted)."""
        if self._dispatcher is None or self._pid != os.getpid():
            return
        with self._cond:
            self._closing = True
            self._stop_at = time.monotonic() + timeout
            self._cond.notify_all()
        self._dispatcher.join(timeout + 1.0)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- dispatching -------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Hand each job's next due event to the pool; wait for the next due time."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._closing and (not self._chains or now >= self._stop_at):
                    self._drop_left()
                    return
                try:
                    next_due = self._hand_out(now)
                except Exception as e:              # the dispatcher must outlive any event
                    log.warning("webhook dispatcher: %s", e)
                    next_due = now + 1.0
                wait = None if next_due == float("inf") else max(0.0, next_due - now)
                if self._closing:
                    wait = min(wait if wait is not None else 1.0, self._stop_at - now)
                self._cond.wait(wait)

    def _hand_out(self, now: float) -> float:
        """(under the lock) Submit every idle job's due head; the next due time."""
        next_due = float("inf")
        for job_id, chain in list(self._chains.items()):
            if not chain:
                del self._chains[job_id]
                continue
            if job_id in self._busy:
                continue
            head = chain[0]
            if head.due > now:
                next_due = min(next_due, head.due)
                continue
            assert self._pool is not None
            self._pool.submit(self._attempt, head)
            self._busy.add(job_id)
        return next_due

    def _drop_left(self) -> None:
        for chain in self._chains.values():
            for item in chain:
                DELIVERIES.labels(item.event, "dropped").inc()
        if self._chains:
            log.warning("webhooks: %d jobs' events not sent before shutdown",
                        len(self._chains))
        self._chains.clear()

    def _attempt(self, item: _Event) -> None:
        outcome: str | None = "failed"
        try:
            outcome = self._try(item)
        except Exception as e:                      # a pool thread must survive any event
            log.warning("job %s: webhook %s error: %s", item.job_id, item.event, e)
        finally:
            with self._cond:
                self._busy.discard(item.job_id)
                if outcome == "retry":
                    item.due = (time.monotonic()
                                + self.settings.webhook_backoff_s * 2 ** item.attempt)
                    item.attempt += 1
                elif item.job_id in self._chains:
                    self._finish(item, outcome)
                self._cond.notify()

    def _finish(self, item: _Event, outcome: str | None) -> None:
        chain = self._chains[item.job_id]
        chain.popleft()
        if not chain:
            del self._chains[item.job_id]
        if item.event != "completed":
            self._pending -= 1
            if item.event == "progress":
                self._progress_queued.discard(item.job_id)
        else:
            self._last_progress.pop(item.job_id, None)
        if outcome:
            DELIVERIES.labels(item.event, outcome).inc()
        if outcome == "failed" and item.attempt >= self.settings.webhook_retries:
            log.warning("job %s: webhook %s failed after %d attempts", item.job_id,
                        item.event, item.attempt + 1)

    # -- one attempt -------------------------------------------------------------------
    def _try(self, item: _Event) -> str | None:
        """delivered, failed, refused, retry, or None (a stale progress event, skipped)."""
        secret = self.settings.webhook_secret
        if secret is None:
            log.warning("job %s: webhook %s not sent: GANSERVE_WEBHOOK_SECRET is not set in "
                        "this process (set it on the API and every worker)", item.job_id,
                        item.event)
            return "failed"
        job = self.read_job(item.job_id)
        if job is None:
            return "failed"
        if item.event == "progress" and job.terminal:
            return None                         # stale: the job ended while it waited
        try:
            addresses = check_target(item.url, self.allowed, self.resolver)
        except WebhookRefused as e:
            log.warning("job %s: webhook %s refused: %s", item.job_id, item.event, e)
            return "refused"
        status = self._post(item, job, secret.get_secret_value().encode(), addresses[0])
        if status is not None and 200 <= status < 300:
            return "delivered"
        if status is not None and status < 500 and status != 429:
            log.warning("job %s: webhook %s answered %d; not retried", item.job_id,
                        item.event, status)
            return "failed"
        return "retry" if item.attempt < self.settings.webhook_retries else "failed"

    def _post(self, item: _Event, job: Job, secret: bytes, address: str) -> int | None:
        """One attempt: the status, or None (no answer in time). A fresh client per attempt
        (no TLS session shared between hosts on one address), only the status line is read,
        and a watchdog cuts the socket at the timeout: httpx's timeouts are per read, so a
        receiver trickling its answer could otherwise hold the thread for ever."""
        import httpx

        body = json.dumps({"event": item.event, "delivery": item.delivery,
                           "sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "job": job.public()}, default=str).encode()
        url, host, extensions = pinned(item.url, address)
        headers = {**host, "Content-Type": "application/json",
                   "User-Agent": "ganserve-webhooks", "X-Ganserve-Event": item.event,
                   "X-Ganserve-Delivery": item.delivery, SIGNATURE_HEADER: sign(secret, body)}
        sockets: list[socket.socket] = []

        def trace(name: str, info: dict[str, Any]) -> None:
            if name == "connection.connect_tcp.complete":
                sock = info["return_value"].get_extra_info("socket")
                if sock is not None:
                    sockets.append(sock)
        limit = self.settings.webhook_timeout_s
        watchdog = threading.Timer(limit, _cut, (sockets,))
        watchdog.daemon = True
        try:
            with httpx.Client(timeout=limit, follow_redirects=False, trust_env=False) as c:
                watchdog.start()
                with c.stream("POST", url, content=body, headers=headers,
                              extensions={**extensions, "trace": trace}) as r:
                    return r.status_code
        except Exception as e:                      # timeouts, refused connections, TLS
            log.info("job %s: webhook %s attempt failed: %s", item.job_id, item.event,
                     type(e).__name__)
            return None
        finally:
            watchdog.cancel()


def _cut(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


_SENDERS: weakref.WeakSet[WebhookSender] = weakref.WeakSet()


def _after_fork() -> None:
    for sender in list(_SENDERS):
        sender._reset()


os.register_at_fork(after_in_child=_after_fork)
