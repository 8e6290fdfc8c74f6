"""Webhook deliveries: signature, retries with backoff, audit of every attempt; and a CLI scan
that finds an enrolled person notifies their registered webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from scanner.notify import deliver, finding_payload, signature, verify_signature
from tests.api.test_service import Receiver
from tests.webserver import LOOPBACK  # the fake_dns and loopback_only fixtures come from tests/conftest.py


class FlakyReceiver(Receiver):
    """Answers 500 to the first `fail` deliveries."""

    def __init__(self, fail: int):
        super().__init__()
        self.fail = fail
        handler = self.httpd.RequestHandlerClass
        outer = self

        def do_post(h):
            body = h.rfile.read(int(h.headers["Content-Length"]))
            outer.received.append((dict(h.headers), body))
            h.send_response(500 if len(outer.received) <= outer.fail else 204)
            h.end_headers()

        handler.do_POST = do_post


def test_a_failing_receiver_gets_retries_then_the_delivery(tmp_path):
    rx = FlakyReceiver(fail=2)
    audit = []
    payload = finding_payload(
        "finding", [{"subject_id": "a" * 16, "kind": "same_person", "band": "probable", "member_seq": 1}], "s1"
    )
    assert deliver(
        rx.url, payload, "k" * 64, lambda action, d: audit.append(d), "subject:x", backoff_s=0.01, lab_networks=LOOPBACK
    )
    assert [d["outcome"] for d in audit] == ["HTTP 500", "HTTP 500", "HTTP 204"]
    ids = {h["X-Facetrace-Delivery"] for h, _ in rx.received}
    assert len(rx.received) == 3 and len(ids) == 1  # one delivery id, retried
    assert all(verify_signature(body, "k" * 64, h["X-Facetrace-Signature"]) for h, body in rx.received)
    assert not verify_signature(rx.received[0][1] + b" ", "k" * 64, rx.received[0][0]["X-Facetrace-Signature"])


def test_an_unreachable_receiver_gives_up_after_the_retries():
    audit = []
    assert not deliver(
        "http://127.0.0.1:9/hook",
        {"event": "x"},
        "s",
        lambda a, d: audit.append(d),
        "key:k",
        retries=2,
        backoff_s=0.01,
        lab_networks=LOOPBACK,
    )
    assert [d["attempt"] for d in audit] == [1, 2, 3] and not any(d["delivered"] for d in audit)


@pytest.mark.slow
@pytest.mark.facedata
def test_a_cli_scan_that_finds_a_subject_notifies_their_webhook(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cli.main import cli
    from indexes.store.keys import ServiceStore
    from scanner.consent import ConsentInput
    from scanner.pipeline import match_against_registry, open_store
    from scanner.registry import enroll, erase, open_registry, verify_erasure
    from tests.api.test_service import COHORT
    from tests.conftest import facedata_path, lfw_people, reference_cohort, run_scan

    person = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    dump = tmp_path / "dump"
    dump.mkdir()
    for p in person[3:6]:
        (dump / p.name).write_bytes(p.read_bytes())
    store, root = open_store(str(tmp_path / "ws"))
    reg = open_registry(store, root)
    sid = enroll(reg, [(p.name, p.read_bytes()) for p in person[:3]], ConsentInput()).subject_id
    reference_cohort(root, lfw_people(exclude=("Ana_Palacio",))[:COHORT])
    rx = Receiver()
    monkeypatch.setenv("FACETRACE_LAB_NETWORK", "127.0.0.0/8")  # the CLI's lab option: the receiver is on loopback
    secret = ServiceStore(store.engine).add_webhook("subject", sid, rx.url)
    summary, _ = run_scan([dump], tmp_path / "ws")
    assert match_against_registry(store, root, summary.scan_id, actor="tester")
    assert rx.wait(1, timeout=0.5) == []  # not verified: delivered synchronously, so nothing came
    # `facetrace registry verify` with a new photo of her: the next scan tells her at once
    out = CliRunner().invoke(
        cli,
        [
            "registry",
            "verify",
            sid,
            str(person[5]),
            str(person[7]),
            "--method",
            "in_person",
            "--workspace",
            str(tmp_path / "ws"),
        ],
    )
    assert out.exit_code == 0 and f"Verified {sid}" in out.output, out.output
    summary, _ = run_scan([dump], tmp_path / "ws")
    match_against_registry(store, root, summary.scan_id, actor="tester")
    ((headers, body),) = rx.wait(1)
    assert verify_signature(body, secret, headers["X-Facetrace-Signature"])
    assert json.loads(body)["scan_id"] == summary.scan_id
    erase(reg, sid)
    assert verify_erasure(reg, sid) == []  # the webhook registration went with the rest


# -- replay: the signature has a timestamp, and a tolerance -----------------------------------------


def test_a_signature_signs_its_timestamp_and_expires_after_the_tolerance():
    body, secret, t = b'{"event":"finding"}', "k" * 64, 1_767_225_600
    header = signature(body, secret, timestamp=t)
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={t},v1={expected}"  # Stripe's scheme: HMAC-SHA256 of "<t>.<body>"
    assert verify_signature(body, secret, header, now=t + 299)
    assert verify_signature(body, secret, header, now=t - 299)  # a receiver's clock a little behind
    assert not verify_signature(body, secret, header, now=t + 301)  # a captured delivery replayed later
    assert not verify_signature(body, secret, header, now=t - 301)
    assert verify_signature(body, secret, header, now=t + 3600, tolerance_s=3601)
    forged_time = header.replace(f"t={t}", f"t={t + 600}")  # a newer timestamp on the old signature
    assert not verify_signature(body, secret, forged_time, now=t + 600)
    assert not verify_signature(body + b" ", secret, header, now=t)
    assert not verify_signature(body, "other", header, now=t)
    old_style = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    for bad in (old_style, "", "t=,v1=", f"t={t}", f"v1={expected}", "t=x,v1=y", f"t={t},v1={expected[:-1]}"):
        assert not verify_signature(body, secret, bad, now=t), bad
    rotated = f"t={t},v1={'0' * 64},v1={expected}"  # several v1 values: any one may match
    assert verify_signature(body, secret, rotated, now=t)


def test_each_delivery_is_signed_with_its_own_time_and_a_replay_fails(tmp_path):
    rx = FlakyReceiver(fail=1)
    before = int(time.time())
    assert deliver(rx.url, {"event": "x"}, "s" * 32, lambda a, d: None, "key:k", backoff_s=1.1, lab_networks=LOOPBACK)
    (h1, b1), (h2, b2) = rx.received
    t1, t2 = (int(h["X-Facetrace-Signature"].split(",")[0][2:]) for h in (h1, h2))
    assert before <= t1 < t2 <= int(time.time())  # the retry is signed again, at its own time
    assert h1["X-Facetrace-Delivery"] == h2["X-Facetrace-Delivery"] == json.loads(b1)["delivery_id"]
    assert verify_signature(b2, "s" * 32, h2["X-Facetrace-Signature"])
    assert not verify_signature(b2, "s" * 32, h2["X-Facetrace-Signature"], now=time.time() + 301)


def test_the_receiver_example_in_the_docs_verifies_a_delivery_and_refuses_a_replay():
    import re

    from tests.conftest import REPO

    doc = (REPO / "docs" / "api.md").read_text()
    [example] = re.findall(r"```python\n(import hashlib, hmac, time\n.*?)```", doc, re.S)
    namespace: dict = {}
    exec(compile(example, "docs/api.md", "exec"), namespace)
    rx = Receiver()
    assert deliver(rx.url, {"event": "x"}, "s" * 32, lambda a, d: None, "key:k", lab_networks=LOOPBACK)
    [(headers, body)] = rx.wait(1)
    verify = namespace["verify"]
    assert verify(body, headers["X-Facetrace-Signature"], "s" * 32)
    assert not verify(body + b" ", headers["X-Facetrace-Signature"], "s" * 32)
    assert not verify(body, headers["X-Facetrace-Signature"], "s" * 32, tolerance_s=-1)  # as if it came late
    stale = signature(body, "s" * 32, timestamp=int(time.time()) - 301)
    assert not verify(body, stale, "s" * 32) and not verify(body, "sha256=" + "0" * 64, "s" * 32)


# -- where deliveries may go -----------------------------------------------------------------------


def test_a_delivery_to_an_internal_address_is_refused_before_connecting(loopback_only):
    rx = Receiver()
    audit = []
    for url in (rx.url, "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/hook", "http://0x7f000001/h"):
        assert not deliver(url, {"event": "x"}, "s", lambda a, d: audit.append(d), "subject:x", backoff_s=0.01)
    assert rx.received == [] and loopback_only == []
    assert [d["attempt"] for d in audit] == [1, 1, 1, 1]  # refused once: no retry
    assert audit[0]["outcome"].startswith("refused: 127.0.0.1 is a loopback address")
    assert audit[1]["outcome"].startswith("refused: 169.254.169.254 is a link-local address")
    assert not any(d["delivered"] for d in audit)


def test_a_delivery_connects_to_the_address_it_checked(fake_dns, loopback_only):
    rx = Receiver()
    port = rx.httpd.server_address[1]
    fake_dns.answer("hooks.rebind.test", ["93.184.215.14"], ["127.0.0.1"])  # public first, then loopback
    audit = []
    assert not deliver(
        f"http://hooks.rebind.test:{port}/hook",
        {"event": "x"},
        "s",
        lambda a, d: audit.append(d),
        "subject:x",
        retries=0,
    )
    assert rx.received == [] and loopback_only == ["93.184.215.14"] and fake_dns.lookups["hooks.rebind.test"] == 1
    fake_dns.answer("hooks.inside.test", ["127.0.0.1"])
    assert not deliver(
        f"http://hooks.inside.test:{port}/hook",
        {"event": "x"},
        "s",
        lambda a, d: audit.append(d),
        "subject:x",
        retries=0,
    )
    assert audit[-1]["outcome"].startswith("refused: 'hooks.inside.test' resolves to 127.0.0.1 (loopback)")
    assert rx.received == [] and loopback_only == ["93.184.215.14"]
    # with the lab option, the same name is delivered to, on the address checked, with its own Host header
    assert deliver(
        f"http://hooks.inside.test:{port}/hook",
        {"event": "x"},
        "s",
        lambda a, d: audit.append(d),
        "subject:x",
        retries=0,
        lab_networks=("127.0.0.1/32",),
    )
    [(headers, _body)] = rx.received
    assert headers["Host"] == f"hooks.inside.test:{port}"


# -- item 10: no personal data of the URL in the audit log -----------------------------------------

PERSONAL_HOOK_PATH = "/hooks/jane-doe?email=jane.doe@example.org"


def test_a_delivery_s_audit_keeps_the_host_and_a_keyed_hash_never_the_path_or_query(loopback_only):
    rx = Receiver()
    port = rx.httpd.server_address[1]
    audit = []

    def record(_action, details):
        audit.append(details)

    secret = "s" * 32
    delivered = f"http://127.0.0.1:{port}{PERSONAL_HOOK_PATH}"
    unreachable = f"http://127.0.0.1:9{PERSONAL_HOOK_PATH}"
    refused = f"http://169.254.169.254{PERSONAL_HOOK_PATH}"
    assert deliver(delivered, {"event": "x"}, secret, record, "subject:x", lab_networks=LOOPBACK)
    assert not deliver(
        unreachable, {"event": "x"}, secret, record, "subject:x", retries=1, backoff_s=0.01, lab_networks=LOOPBACK
    )
    assert not deliver(refused, {"event": "x"}, secret, record, "subject:x", backoff_s=0.01)
    text = json.dumps(audit)
    for personal in ("jane", "email", "example.org", "/hooks"):
        assert personal not in text, (personal, audit)
    assert [d["outcome"].split(":")[0] for d in audit] == ["HTTP 204", "ConnectionError", "ConnectionError", "refused"]
    assert "Connection refused" in audit[1]["outcome"]  # what went wrong is still said
    for d, url in zip(audit, [delivered, unreachable, unreachable, refused], strict=False):
        port_of = {delivered: port, unreachable: 9, refused: None}[url]
        assert d["target"] == {
            "scheme": "http",
            "host": url.split("//")[1].split(":")[0].split("/")[0],
            "port": port_of,
            "url_hmac": hmac.new(
                secret.encode(), b"facetrace-webhook-url\x00" + url.encode(), hashlib.sha256
            ).hexdigest(),
        }


def test_an_erased_subject_s_webhook_leaves_no_url_in_the_audit_and_verify_erasure_says_so(tmp_path):
    import requests

    from api.app import Settings, create_app
    from scanner.registry import verify_erasure
    from tests.api.server import LiveServer
    from tests.api.test_security import TOKEN, _subject

    app = create_app(
        str(tmp_path / "ws"), settings=Settings(webhook_retries=1, webhook_backoff_s=0.01, lab_networks=LOOPBACK)
    )
    svc = app.state.service
    with LiveServer(app) as srv:
        sid = _subject(app)
        r = requests.put(
            f"{srv.url}/v1/subjects/{sid}/webhook",
            headers={"X-Deletion-Token": TOKEN},
            json={"url": f"http://127.0.0.1:9{PERSONAL_HOOK_PATH}"},
        )
        assert r.status_code == 200, r.text
        assert svc.notify("subject", sid, finding_payload("finding", [], "s1"))
        for delivery in svc.deliveries:
            delivery.join(timeout=30)
        assert requests.delete(f"{srv.url}/v1/subjects/{sid}", headers={"X-Deletion-Token": TOKEN}).status_code == 200
    entries = svc.registry.store.audit_entries(sid)
    assert [e["action"] for e in entries].count("webhook_delivery") == 2
    assert "jane" not in json.dumps(entries) and "email" not in json.dumps(entries)
    assert verify_erasure(svc.registry, sid) == []
