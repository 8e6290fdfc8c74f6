"""The HTTP service on a real loopback port: a person enrolls through the API, a platform screens
a dump holding them and strangers, the person's webhook receives a signed notification, they
check their exposure with their token, erase themselves, and a second screen finds nothing.
Also: every route is declared and enforced, one error shape, rate limits, upload limits."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from api.app import ACCESS, Settings, create_app
from tests.api.server import LiveServer
from tests.conftest import facedata_path, lfw_people, reference_cohort
from tests.webserver import LOOPBACK

COHORT = 64  # reference people (LFW, with 7 or more photos each)


class Receiver:
    """A webhook receiver on loopback that keeps what it is sent."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


def _key(app, role):
    return app.state.service.keys.create_key(role, f"test {role}")[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    # the lab option: the test's webhook receiver is on loopback, refused without it
    app = create_app(
        str(tmp_path_factory.mktemp("api") / "ws"), settings=Settings(webhook_backoff_s=0.05, lab_networks=LOOPBACK)
    )
    with LiveServer(app) as srv:
        yield app, srv.url


@pytest.mark.facedata
def test_enroll_screen_notify_check_erase_screen_again(service):
    app, url = service
    person = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    strangers = sorted(facedata_path("lfw_deepfunneled", "Abdullah_Gul").iterdir())[:3]
    consent = requests.get(f"{url}/v1/consent-text").json()
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in person[:3]]
    r = requests.post(
        f"{url}/v1/subjects", files=files, data={"consent": "true", "consent_version": consent["version"]}
    )
    assert r.status_code == 200, r.text
    enrolled = r.json()
    sid, token = enrolled["subject_id"], enrolled["deletion_token"]
    assert enrolled["consent_receipt"]["consent"]["text_sha256"] == consent["sha256"]
    assert enrolled["verified"] is False and enrolled["earlier_findings"] is None

    # an intake officer checked who they are and took a new photo of them: only a verified subject
    # is told in real time (tests/api/test_verification.py shows what an unverified one gets)
    # the decision is the matcher's, and a registry of one needs a crowd to compare a face with
    reference_cohort(app.state.service.root, lfw_people(exclude=("Ana_Palacio", "Abdullah_Gul"))[:COHORT])
    intake = {"Authorization": f"Bearer {_key(app, 'intake')}"}
    r = requests.post(
        f"{url}/v1/verifications",
        headers=intake,
        data={"subject_id": sid, "method": "in_person"},
        files=[("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in (person[5], person[7])],
    )
    assert r.status_code == 200 and r.json()["verified"], r.text

    receiver = Receiver()
    hook = requests.put(
        f"{url}/v1/subjects/{sid}/webhook", json={"url": receiver.url}, headers={"X-Deletion-Token": token}
    ).json()
    platform = _key(app, "platform")
    auth = {"Authorization": f"Bearer {platform}"}

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in person[3:7] + strangers:
            z.writestr(f"kit/{p.name}", p.read_bytes())
    dump = buf.getvalue()
    r = requests.post(f"{url}/v1/screen", params={"filename": "kit.zip"}, data=dump, headers=auth)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["subjects_found"] == [sid]
    found = {i["path"].rsplit("/", 1)[1] for i in result["items"] if i["findings"]}
    assert {p.name for p in person[3:7]} <= found and not any(s.name in found for s in strangers)
    assert all(f["band"] in ("confident", "probable", "possible") for i in result["items"] for f in i["findings"])
    assert result["bundle"] is not None and "score" in result["bundle"]
    assert not list((app.state.service.uploads).iterdir())  # the upload is gone; only hashes stay

    ((headers, body),) = receiver.wait(1)
    from scanner.notify import verify_signature

    assert verify_signature(body, hook["secret"], headers["X-Facetrace-Signature"])
    note = json.loads(body)
    assert note["event"] == "finding" and note["scan_id"] == result["scan_id"]
    assert {f["subject_id"] for f in note["findings"]} == {sid} and b"encoding" not in body
    for delivery in app.state.service.deliveries:  # the audit entry follows the receiver's answer
        delivery.join(timeout=30)
    audit = app.state.service.registry.store.audit_entries(sid)
    assert any(e["action"] == "webhook_delivery" and e["details"]["delivered"] for e in audit)

    exp = requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": token})
    assert exp.status_code == 200 and len(exp.json()["findings"]) >= 4
    bad = requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": "nope"})
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "bad_token"

    erased = requests.delete(f"{url}/v1/subjects/{sid}", headers={"X-Deletion-Token": token})
    assert erased.status_code == 200 and erased.json()["receipt"]["receipt"] == "erasure"
    again = requests.post(f"{url}/v1/screen", params={"filename": "kit.zip"}, data=dump, headers=auth).json()
    assert again["findings"] == 0 and again["subjects_found"] == []
    from scanner.registry import verify_erasure

    assert verify_erasure(app.state.service.registry, sid) == []
    assert app.state.service.keys.webhook("subject", sid) is None


def test_every_route_is_declared_and_enforced(service):
    from fastapi.routing import APIRoute

    app, url = service
    routes = [(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods]
    assert routes and all(key in ACCESS for key in routes), [k for k in routes if k not in ACCESS]
    platform = _key(app, "platform")
    for (method, path), who in ACCESS.items():
        if who == "public" or (method, path) not in routes:
            continue
        concrete = path.replace("{subject_id}", "0123456789abcdef")
        r = requests.request(method, url + concrete, json={}, data=None)
        assert r.status_code == 401, (method, path, r.status_code)
        if path.startswith("/v1/"):
            assert set(r.json()["error"]) == {"code", "message"}
        else:  # a page: the same refusal, as HTML
            assert "id='error' data-code='missing_token'" in r.text
        if who == "roles:admin":
            r = requests.request(
                method, url + concrete, json={"role": "platform"}, headers={"Authorization": f"Bearer {platform}"}
            )
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role"
    r = requests.post(f"{url}/v1/screen", data=b"x", headers={"Authorization": "Bearer ftk_0_forged"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key"


def test_limits_answer_with_the_error_shape(tmp_path):
    app = create_app(str(tmp_path / "ws"), settings=Settings(max_upload_bytes=1000, key_rate_per_minute=3))
    with LiveServer(app) as srv:
        auth = {"Authorization": f"Bearer {_key(app, 'platform')}"}
        r = requests.post(f"{srv.url}/v1/screen", data=b"x" * 5000, headers=auth)
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        codes = [requests.post(f"{srv.url}/v1/screen", data=b"", headers=auth).status_code for _ in range(4)]
        assert codes[-1] == 429
        r = requests.post(f"{srv.url}/v1/screen", data=b"", headers=auth)
        assert r.json()["error"]["code"] == "rate_limited" and r.headers["Retry-After"] == "60"
