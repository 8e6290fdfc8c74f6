"""Anonymous enrollments cannot hold up platforms (issue item 6): photos are analysed outside the
registry lock, by a small pool of low-priority threads of their own, and enrollments past the
budget are answered 503 at once. The figures under load are in benchmarks/load_enroll.py."""

from __future__ import annotations

import os
import threading
import time

import pytest
import requests

from api.app import Settings, create_app
from tests.api.server import LiveServer


@pytest.fixture
def service(tmp_path):
    app = create_app(str(tmp_path / "ws"), settings=Settings(keyless_workers=1, enrollments_in_flight=2))
    with LiveServer(app) as srv:
        yield app, srv.url


def test_enrollment_analysis_runs_outside_the_lock_within_its_own_budget(service, monkeypatch):
    from scanner.registry import EnrollmentRefused

    app, url = service
    svc = app.state.service
    version = requests.get(f"{url}/v1/consent-text").json()["version"]
    release, guard = threading.Event(), threading.Lock()
    running, peak, nice = [], [0], []

    def slow_analysis(name, data, options):  # stands in for a 100-megapixel photo: seconds of CPU
        with guard:
            running.append(name)
            peak[0] = max(peak[0], len(running))
        nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        release.wait(30)
        with guard:
            running.remove(name)
        raise EnrollmentRefused(f"{name}: no face found")

    monkeypatch.setattr("scanner.registry._analyse_photo", slow_analysis)
    answers: dict[int, requests.Response] = {}

    def enroll(i):
        files = [("photos", (f"{i}-{k}.png", b"png", "image/png")) for k in range(3)]
        answers[i] = requests.post(
            f"{url}/v1/subjects", files=files, data={"consent": "true", "consent_version": version}, timeout=60
        )

    threads = [threading.Thread(target=enroll, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while (not running or len(answers) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        # two enrollments are in flight (one analysing, one waiting for the budget); the other two were
        # answered at once, before their photos were read
        assert sorted(r.status_code for r in answers.values()) == [503, 503], {i: r.text for i, r in answers.items()}
        assert all(r.json()["error"]["code"] == "busy" and r.headers["Retry-After"] for r in answers.values())
        # the registry lock is free while a photo is analysed: a platform's screen can match
        assert svc.lock.acquire(timeout=2), "the enrollment holds the registry lock while it analyses photos"
        svc.lock.release()
        platform = svc.keys.create_key("platform", "test")[1]
        t = time.monotonic()
        r = requests.post(
            f"{url}/v1/screen",
            params={"filename": "x.bin"},
            data=b"not a photo",
            headers={"Authorization": f"Bearer {platform}"},
            timeout=20,
        )
        assert r.status_code == 200 and time.monotonic() - t < 10
    finally:
        release.set()
        for t in threads:
            t.join(timeout=60)
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [422, 422, 503, 503], codes
    assert peak[0] == 1  # one analysis at a time: the keyless budget
    assert nice and all(n >= 10 for n in nice)  # at low priority: screens come first on a busy machine
