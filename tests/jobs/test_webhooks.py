"""Job webhooks: the allow-list (at submission and at delivery), the HMAC signature, retries
with backoff, progress throttling, and a slow or failing receiver never holding up the job
(its caller). A local receiver (tests/jobs/conftest.py) plays the user's endpoint."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from ganserve.jobs.records import Job
from ganserve.settings import SharedSettings
from ganserve.webhooks import (
    DELIVERIES,
    WebhookRefused,
    WebhookSender,
    allowed_entries,
    check_target,
    sign,
    verify,
)
from tests.jobs.conftest import fine_tune_body
from tests.service.conftest import error, make_client, wait_ready

SECRET = "test-secret-0123456789"
LOCAL = "127.0.0.1/32"


def stub(*addresses: str):
    return lambda host: list(addresses)


def job_with(url: str, events=("start", "progress", "completed")) -> Job:
    t = dt.datetime.now(dt.UTC)
    return Job(id="j" + str(time.monotonic_ns()), type="fine-tune", state="running",
               queue="train", model="m", version="1",
               spec={"webhook": {"url": url, "events": list(events)}},
               idempotency_key=None, request_hash=None, created_at=t, started_at=t,
               finished_at=None, updated_at=t, progress=None, result=None, error=None,
               cancel_requested=False, lease_owner=None, heartbeat_at=None, attempts=1)


def sender(tmp_path, job: Job, **over) -> WebhookSender:
    over = {"webhook_allowed_hosts": LOCAL, "webhook_secret": SECRET,
            "webhook_backoff_s": 0.05, "webhook_timeout_s": 1.0, **over}
    settings = SharedSettings(data_dir=tmp_path, **over)
    return WebhookSender(settings, lambda jid: job if jid == job.id else None)


def delivered(event: str, outcome: str) -> float:
    return DELIVERIES.labels(event, outcome)._value.get()


# ------------------------------------------------------------------ the allow-list
@pytest.mark.parametrize(("url", "allowed", "resolver"), [
    ("https://hooks.example.com/x", "hooks.example.com", stub("93.184.216.34")),
    ("https://hooks.example.com./x", "hooks.example.com", stub("93.184.216.34")),
    ("https://a.corp.example/x", "*.corp.example", stub("93.184.216.34")),
    ("https://a.corp.example/x", "*.corp.example,10.0.0.0/8", stub("10.0.0.1")),
    ("http://127.0.0.1:9000/x", LOCAL, stub("127.0.0.1")),
    ("https://public.example/x", "*", stub("93.184.216.34")),
    ("https://internal.example/x", "10.0.0.0/8", stub("10.1.2.3")),
    ("https://public.example/x", "*", stub("::ffff:0:808:808")),     # SIIT of a public one
    ("https://public.example/x", "*", stub("64:ff9b::808:808")),     # NAT64 of a public one
])
def test_webhook_target_allowed(url, allowed, resolver):
    check_target(url, allowed_entries(allowed), resolver)


@pytest.mark.parametrize(("url", "allowed", "resolver", "says"), [
    ("https://hooks.example.com/x", "", stub("93.184.216.34"), "webhooks are off"),
    ("https://evil.example/x", "hooks.example.com", stub("93.184.216.34"), "not in"),
    ("http://169.254.169.254/latest/meta-data", "*", stub("169.254.169.254"), "public"),
    ("http://localhost:6379/", "*", stub("127.0.0.1"), "public"),
    ("https://rebound.example/x", "*", stub("93.184.216.34", "10.0.0.5"), "10.0.0.5"),
    ("https://internal.example/x", "10.0.0.0/8", stub("192.168.1.1"), "not in"),
    ("https://user:pw@hooks.example.com/x", "hooks.example.com", stub(), "credentials"),
    ("ftp://hooks.example.com/x", "hooks.example.com", stub(), "http(s)"),
    ("http://[::1]:80/x", "*", stub("::1"), "public"),
    # a listed name that resolves inside: refused unless its network is listed
    ("https://hooks.example.com/x", "hooks.example.com", stub("10.0.0.1"), "public"),
    ("https://hooks.example.com/x", "hooks.example.com", stub("169.254.169.254"), "public"),
    # IPv6 forms that carry an internal IPv4 address
    ("http://x.example/", "*", stub("::ffff:127.0.0.1"), "public"),
    ("http://x.example/", "*", stub("64:ff9b::a9fe:a9fe"), "public"),
    ("http://x.example/", "*", stub("2002:a9fe:a9fe::1"), "public"),
    ("http://x.example/", "*", stub("::127.0.0.1"), "public"),
    ("http://x.example/", "*", stub("64:ff9b:1::a00:1"), "public"),     # local-use NAT64
    ("http://x.example/", "*", stub("64:ff9b:1::808:808"), "public"),   # never public
    ("http://x.example/", "*", stub("::ffff:0:a9fe:a9fe"), "public"),   # SIIT, metadata
    ("http://x.example/", "*", stub("::ffff:0:a00:1"), "public"),       # SIIT, 10.0.0.1
])
def test_webhook_target_refused(url, allowed, resolver, says):
    with pytest.raises(WebhookRefused, match=None) as e:
        check_target(url, allowed_entries(allowed), resolver)
    assert says in str(e.value)


# ------------------------------------------------------------------ the signature
def test_signature_verifies_and_rejects_tampering_and_replays():
    body = b'{"event": "start"}'
    header = sign(SECRET.encode(), body)
    assert verify(SECRET.encode(), header, body)
    assert not verify(SECRET.encode(), header, body + b" ")
    assert not verify(b"other-secret", header, body)
    old = sign(SECRET.encode(), body, int(time.time()) - 3600)
    assert not verify(SECRET.encode(), old, body)
    assert not verify(SECRET.encode(), "garbage", body)


# ------------------------------------------------------------------ delivery
def test_delivery_retries_with_backoff_then_succeeds_signed(tmp_path, webhook_receiver):
    job = job_with(webhook_receiver.url)
    webhook_receiver.answers = [500, 503]
    before = delivered("start", "delivered")
    s = sender(tmp_path, job)
    s.notify(job, "start")
    calls = webhook_receiver.wait(3)
    s.close()
    assert len(calls) == 3
    ids = {c["headers"]["X-Ganserve-Delivery"] for c in calls}
    assert len(ids) == 1                                    # one delivery, three attempts
    gaps = [b["at"] - a["at"] for a, b in zip(calls, calls[1:])]
    # backoff doubles: 0.05 s, then 0.1 s (lower bounds: a loaded machine only adds delay,
    # so comparing the two gaps with each other would be a race)
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1, gaps
    last = calls[-1]
    assert verify(SECRET.encode(), last["headers"]["X-Ganserve-Signature"], last["body"])
    payload = json.loads(last["body"])
    assert payload["event"] == "start" and payload["job"]["id"] == job.id
    assert payload["job"]["links"]["self"] == f"/v1/jobs/{job.id}"
    assert delivered("start", "delivered") == before + 1


def test_delivery_final_4xx_is_not_retried(tmp_path, webhook_receiver):
    job = job_with(webhook_receiver.url)
    webhook_receiver.answers = [404]
    before = delivered("completed", "failed")
    s = sender(tmp_path, job)
    s.notify(job, "completed")
    s.close()
    assert len(webhook_receiver.calls) == 1
    assert delivered("completed", "failed") == before + 1


def test_slow_or_failing_receiver_never_blocks_the_caller(tmp_path, webhook_receiver):
    job = job_with(webhook_receiver.url)
    webhook_receiver.delay_s = 2.0                          # past the 1 s timeout
    s = sender(tmp_path, job, webhook_retries=1)
    t0 = time.monotonic()
    for _ in range(10):
        s.notify(job, "start")
    assert time.monotonic() - t0 < 0.5                      # queued, not sent inline
    before = delivered("start", "failed")
    webhook_receiver.wait(2, timeout=10)
    deadline = time.monotonic() + 10
    while delivered("start", "failed") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert delivered("start", "failed") >= before + 1


def test_a_dead_receiver_delays_only_its_own_job(tmp_path, webhook_receiver):
    from tests.jobs.conftest import WebhookReceiver
    slow = WebhookReceiver()
    slow.delay_s = 3.0                                       # past the 1 s timeout
    try:
        stuck, fine = job_with(slow.url), job_with(webhook_receiver.url)
        jobs = {stuck.id: stuck, fine.id: fine}
        s = sender(tmp_path, stuck)
        s.read_job = jobs.get
        for _ in range(3):
            s.notify(stuck, "start")
        t0 = time.monotonic()
        s.notify(fine, "start")
        webhook_receiver.wait(1, timeout=5)
        assert webhook_receiver.calls and webhook_receiver.calls[0]["at"] - t0 < 0.8
    finally:
        slow.server.shutdown()
        slow.server.server_close()


def test_a_jobs_events_keep_their_order_through_retries(tmp_path, webhook_receiver):
    job = job_with(webhook_receiver.url)
    webhook_receiver.answers = [503]
    s = sender(tmp_path, job)
    s.notify(job, "start")
    s.notify(job, "completed")
    s.close(timeout=10)
    assert webhook_receiver.events() == ["start", "start", "completed"]


def test_progress_is_throttled(tmp_path, webhook_receiver):
    job = job_with(webhook_receiver.url)
    s = sender(tmp_path, job, webhook_progress_interval_s=60)
    for _ in range(20):
        s.notify(job, "progress")
    s.notify(job, "completed")
    s.close()
    assert webhook_receiver.events() == ["progress", "completed"]


def test_events_filter_is_honoured(tmp_path, webhook_receiver):
    job = job_with(webhook_receiver.url, events=["completed"])
    s = sender(tmp_path, job)
    s.notify(job, "start")
    s.notify(job, "progress")
    s.notify(job, "completed")
    s.close()
    assert webhook_receiver.events() == ["completed"]


def test_delivery_connects_to_the_address_it_checked(tmp_path, webhook_receiver):
    """The name is resolved once per attempt, checked, and that address is the one
    connected to (with the name as Host): a second lookup cannot lead elsewhere."""
    port = webhook_receiver.url.split(":")[2].split("/")[0]
    job = job_with(f"http://hooks.test:{port}/hook")
    lookups = []

    def resolver(host):
        lookups.append(host)
        return ["127.0.0.1"]
    s = sender(tmp_path, job, webhook_allowed_hosts=LOCAL)
    s.resolver = resolver
    s.notify(job, "start")
    s.close()
    (call,) = webhook_receiver.calls
    assert call["headers"]["Host"] == f"hooks.test:{port}" and lookups == ["hooks.test"]


def test_pinned_url_keeps_host_and_tls_name():
    from ganserve.webhooks import pinned
    url, headers, ext = pinned("https://hooks.example.com:8443/a?b=1", "93.184.216.34")
    assert url == "https://93.184.216.34:8443/a?b=1"
    assert headers == {"Host": "hooks.example.com:8443"}
    assert ext == {"sni_hostname": "hooks.example.com"}
    assert pinned("http://h.example/x", "2001:db8::1")[0] == "http://[2001:db8::1]/x"


def test_completed_is_kept_when_the_queue_is_full_and_stale_progress_skipped(
        tmp_path, webhook_receiver, monkeypatch):
    from ganserve import webhooks
    monkeypatch.setattr(webhooks, "QUEUE_SIZE", 2)
    job = job_with(webhook_receiver.url)
    webhook_receiver.delay_s = 0.3
    s = sender(tmp_path, job, webhook_progress_interval_s=0)
    dropped = delivered("start", "dropped")
    for _ in range(5):
        s.notify(job, "start")
    s.notify(job, "completed")
    s.close(timeout=10)
    assert delivered("start", "dropped") >= dropped + 2
    assert webhook_receiver.events()[-1] == "completed"


def test_target_is_checked_again_at_delivery(tmp_path, webhook_receiver):
    """A name allowed at submission that resolves to an internal address later (DNS
    rebinding) is refused when the delivery is made."""
    job = job_with("http://rebind.example/hook")
    before = delivered("start", "refused")
    s = sender(tmp_path, job, webhook_allowed_hosts="*")
    s.resolver = stub("127.0.0.1")
    s.notify(job, "start")
    s.close()
    assert delivered("start", "refused") == before + 1 and webhook_receiver.calls == []


# ------------------------------------------------------------------ the API
@pytest.fixture
def api(job_models, data_dir):
    with make_client(job_models, data_dir=data_dir, webhook_allowed_hosts=LOCAL,
                     webhook_secret=SECRET) as c:
        wait_ready(c)
        yield c


def test_webhook_outside_the_allow_list_is_refused_at_submission(api):
    for url in ("http://10.0.0.1/hook", "http://169.254.169.254/latest",
                "https://example.com/hook"):
        body = error(api.post("/v1/jobs/fine-tune", json=fine_tune_body(
            webhook={"url": url})), 422, "invalid_input", "webhook.url")
        assert "GANSERVE_WEBHOOK_ALLOWED_HOSTS" in body["message"] or "resolve" in \
            body["message"]
    assert api.get("/v1/jobs").json()["jobs"] == []


def test_webhooks_off_without_a_secret(job_models, data_dir, webhook_receiver):
    with make_client(job_models, data_dir=data_dir, webhook_allowed_hosts=LOCAL) as c:
        wait_ready(c)
        body = error(c.post("/v1/jobs/fine-tune", json=fine_tune_body(
            webhook={"url": webhook_receiver.url})), 422, "invalid_input", "webhook.url")
        assert "GANSERVE_WEBHOOK_SECRET" in body["message"]


def test_cancelled_queued_job_sends_completed(api, webhook_receiver):
    r = api.post("/v1/jobs/fine-tune", json=fine_tune_body(webhook={
        "url": webhook_receiver.url, "events": ["completed"]}))
    assert r.status_code == 202, r.text
    assert r.json()["request"]["webhook"]["url"] == webhook_receiver.url
    api.post(f"/v1/jobs/{r.json()['id']}/cancel")
    (call,) = webhook_receiver.wait(1)
    payload = json.loads(call["body"])
    assert payload["event"] == "completed" and payload["job"]["state"] == "cancelled"
    assert verify(SECRET.encode(), call["headers"]["X-Ganserve-Signature"], call["body"])


def test_non_ascii_webhook_host_is_refused():
    with pytest.raises(WebhookRefused, match="IDNA"):
        check_target("http://①②⑦.0.0.1:18080/ok", ["*", "127.0.0.1/32"], stub("127.0.0.1"))


def test_a_trickling_receiver_is_cut_at_the_timeout(tmp_path):
    """httpx's timeouts are per read: a receiver sending its answer a byte at a time would
    hold a sending thread for ever without the per-attempt watchdog."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100:
                conn.send(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass
        conn.close()
    threading.Thread(target=trickle, daemon=True).start()
    job = job_with(f"http://127.0.0.1:{port}/hook")
    s = sender(tmp_path, job, webhook_retries=0, webhook_timeout_s=0.5)
    before = delivered("start", "failed")
    t0 = time.monotonic()
    s.notify(job, "start")
    while delivered("start", "failed") == before and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert delivered("start", "failed") == before + 1
    assert time.monotonic() - t0 < 2.0
    listener.close()


def test_events_after_close_are_dropped_and_counted(tmp_path, webhook_receiver):
    job = job_with(webhook_receiver.url)
    s = sender(tmp_path, job)
    s.notify(job, "start")
    s.close()
    before = delivered("completed", "dropped")
    s.notify(job, "completed")
    assert delivered("completed", "dropped") == before + 1
    assert webhook_receiver.events() == ["start"]


def test_a_hook_without_url_breaks_nothing(tmp_path, webhook_receiver):
    bad = job_with(webhook_receiver.url)
    bad.spec = {"webhook": {"events": ["start"]}}
    good = job_with(webhook_receiver.url)
    s = sender(tmp_path, good)
    s.notify(bad, "start")
    s.notify(good, "start")
    s.close()
    assert webhook_receiver.events() == ["start"]
