"""`ganserve alert-log`, compose's default Alertmanager receiver: what it keeps and refuses."""

from __future__ import annotations

import json
import logging
import threading

import httpx
import pytest

from ganserve.cli.alert_log import AlertLog, serve

NOTE = {"receiver": "alert-log", "status": "firing", "alerts": [
    {"status": "firing", "labels": {"alertname": "GanserveNoWorker", "severity": "page"},
     "annotations": {"summary": "Jobs are waiting and no job worker is up"}}]}


@pytest.fixture
def receiver():
    alerts = AlertLog(kept=2)
    server = serve("127.0.0.1", 0, alerts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", alerts
    server.shutdown()
    server.server_close()


def test_alert_log_keeps_and_logs_each_alert(receiver, caplog):
    url, _ = receiver
    with caplog.at_level(logging.WARNING, logger="ganserve.alerts"):
        assert httpx.post(f"{url}/alerts", json=NOTE).status_code == 200
    assert httpx.get(f"{url}/alerts").json() == [NOTE]
    assert "alert firing: GanserveNoWorker (page) Jobs are waiting" in caplog.text


def test_alert_log_keeps_only_the_latest(receiver):
    url, _ = receiver
    for i in range(3):
        httpx.post(f"{url}/alerts", json=NOTE | {"groupKey": str(i)})
    assert [n["groupKey"] for n in httpx.get(f"{url}/alerts").json()] == ["1", "2"]


@pytest.mark.parametrize("body, status", [(b"not json", 400), (b"[1, 2]", 400),
                                          (b"", 411)])
def test_alert_log_refuses_what_is_not_a_notification(receiver, body, status):
    url, alerts = receiver
    assert httpx.post(f"{url}/alerts", content=body).status_code == status
    assert alerts.items() == []


def test_alert_log_refuses_an_oversized_body(receiver):
    url, alerts = receiver
    r = httpx.post(f"{url}/alerts", content=json.dumps({"x": "a" * (1 << 20)}))
    assert r.status_code == 413 and alerts.items() == []
