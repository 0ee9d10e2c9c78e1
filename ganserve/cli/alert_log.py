"""``ganserve alert-log``: the Alertmanager receiver that docker compose ships with. It logs
one line per alert in each webhook notification (``docker compose logs alert-log``) and keeps
the latest notifications for ``GET /alerts``. Point Alertmanager at Slack, e-mail or a pager
instead (deploy/alertmanager/alertmanager.yml); this one makes alerts visible from the first
start and lets the compose check read what Alertmanager sent."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("ganserve.alerts")

MAX_BODY_BYTES = 1 << 20        # Alertmanager's notifications are a few kB
KEPT = 200                      # notifications kept for GET /alerts


class AlertLog:
    """The notifications received, newest last (thread-safe)."""

    def __init__(self, kept: int = KEPT):
        self._items: deque[dict[str, Any]] = deque(maxlen=kept)
        self._lock = threading.Lock()

    def add(self, notification: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(notification)
        for alert in notification.get("alerts") or []:
            labels, notes = alert.get("labels") or {}, alert.get("annotations") or {}
            log.warning("alert %s: %s (%s) %s", alert.get("status", "?"),
                        labels.get("alertname", "?"), labels.get("severity", "-"),
                        notes.get("summary", ""))

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)


def _handler(alerts: AlertLog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:           # noqa: N802 (http.server's naming)
            if self.path == "/alerts":
                self._send(HTTPStatus.OK, alerts.items())
            elif self.path == "/healthz":
                self._send(HTTPStatus.OK, {"status": "ok"})
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": "GET /alerts or /healthz"})

        def do_POST(self) -> None:          # noqa: N802
            size = int(self.headers.get("Content-Length") or 0)
            if not 0 < size <= MAX_BODY_BYTES:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if size else
                           HTTPStatus.LENGTH_REQUIRED, {"error": f"1..{MAX_BODY_BYTES} bytes"})
                return
            try:
                body = json.loads(self.rfile.read(size))
                if not isinstance(body, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                self._send(HTTPStatus.BAD_REQUEST, {"error": f"not a notification: {e}"})
                return
            alerts.add(body)
            self._send(HTTPStatus.OK, {"status": "received"})

        def _send(self, status: HTTPStatus, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:   # noqa: A002
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def serve(host: str, port: int, alerts: AlertLog | None = None) -> ThreadingHTTPServer:
    """A server ready to ``serve_forever()`` (the caller owns its thread)."""
    server = ThreadingHTTPServer((host, port), _handler(alerts or AlertLog()))
    server.daemon_threads = True
    return server
