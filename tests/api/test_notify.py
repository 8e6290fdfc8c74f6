"""Webhook deliveries: signature, retries with backoff, audit of every attempt; and a CLI scan
that finds an enrolled person notifies their registered webhook."""

from __future__ import annotations

import json

import pytest

from scanner.notify import deliver, finding_payload, verify_signature
from tests.api.test_service import Receiver


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
    payload = finding_payload("finding", [{"subject_id": "a" * 16, "kind": "same_person", "band": "probable",
                                           "member_seq": 1}], "s1")
    assert deliver(rx.url, payload, "k" * 64, lambda action, d: audit.append(d), "subject:x", backoff_s=0.01)
    assert [d["outcome"] for d in audit] == ["HTTP 500", "HTTP 500", "HTTP 204"]
    ids = {h["X-Facetrace-Delivery"] for h, _ in rx.received}
    assert len(rx.received) == 3 and len(ids) == 1  # one delivery id, retried
    assert all(verify_signature(body, "k" * 64, h["X-Facetrace-Signature"]) for h, body in rx.received)
    assert not verify_signature(rx.received[0][1] + b" ", "k" * 64, rx.received[0][0]["X-Facetrace-Signature"])


def test_an_unreachable_receiver_gives_up_after_the_retries():
    audit = []
    assert not deliver("http://127.0.0.1:9/hook", {"event": "x"}, "s", lambda a, d: audit.append(d), "key:k",
                       retries=2, backoff_s=0.01)
    assert [d["attempt"] for d in audit] == [1, 2, 3] and not any(d["delivered"] for d in audit)


@pytest.mark.facedata
def test_a_cli_scan_that_finds_a_subject_notifies_their_webhook(tmp_path):
    from indexes.service import ServiceStore
    from scanner.consent import ConsentInput
    from scanner.pipeline import match_against_registry, open_store
    from scanner.registry import enroll, erase, open_registry, verify_erasure
    from tests.conftest import facedata_path, run_scan

    person = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    dump = tmp_path / "dump"
    dump.mkdir()
    for p in person[3:6]:
        (dump / p.name).write_bytes(p.read_bytes())
    store, root = open_store(str(tmp_path / "ws"))
    reg = open_registry(store, root)
    sid = enroll(reg, [(p.name, p.read_bytes()) for p in person[:3]], ConsentInput()).subject_id
    rx = Receiver()
    secret = ServiceStore(store.engine).add_webhook("subject", sid, rx.url)
    summary, _ = run_scan([dump], tmp_path / "ws")
    match_against_registry(store, root, summary.scan_id, actor="tester")
    (headers, body), = rx.wait(1)
    assert verify_signature(body, secret, headers["X-Facetrace-Signature"])
    assert json.loads(body)["scan_id"] == summary.scan_id
    erase(reg, sid)
    assert verify_erasure(reg, sid) == []  # the webhook registration went with the rest
