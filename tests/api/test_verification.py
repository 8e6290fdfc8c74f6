"""Issue 19 item 7 (the rest): anyone can enroll anyone, so what a subject learns depends on whether
an intake officer verified them. Before the fix, a stranger who enrolled a celebrity's photos and
registered a webhook was told within milliseconds of every platform screen that found her, and
the exposure route listed each finding with its scan and time.

- an unverified subject: no real-time event, counts only (by band and kind), of findings at least
  a day old with the cutoff rounded to the day; their webhook gets a digest of those counts;
- `intake` keys verify a subject with new photos of the person, which must match the enrolled
  ones at `probable` or better (a stranger's photo, or a copy of an enrolled photo, is refused);
  only intake may; both outcomes are audited; a verified subject is told in real time.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import text

from scanner import disclosure
from scanner.notify import verify_signature
from tests.api.test_service import COHORT, Receiver
from tests.conftest import facedata_path, lfw_people, reference_cohort
from tests.webserver import LOOPBACK

PERSON, STRANGER = "Ana_Palacio", "Abdullah_Gul"


def _enrolled(live):
    """A live service with a reference cohort, PERSON enrolled through the API with a webhook, and
    a platform key. Returns (app, url, sid, token, photos, receiver, hook secret, platform headers)."""
    app, url = live(lab_networks=LOOPBACK, webhook_backoff_s=0.05, digest_interval_s=0)
    reference_cohort(app.state.service.root, lfw_people(exclude=(PERSON, STRANGER))[:COHORT])
    photos = sorted(facedata_path("lfw_deepfunneled", PERSON).iterdir())
    version = requests.get(f"{url}/v1/consent-text").json()["version"]
    r = requests.post(
        f"{url}/v1/subjects",
        data={"consent": "true", "consent_version": version},
        files=[("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos[:3]],
    )
    assert r.status_code == 200, r.text
    sid, token = r.json()["subject_id"], r.json()["deletion_token"]
    receiver = Receiver()
    hook = requests.put(
        f"{url}/v1/subjects/{sid}/webhook", json={"url": receiver.url}, headers={"X-Deletion-Token": token}
    )
    assert hook.status_code == 200, hook.text
    platform = {"Authorization": f"Bearer {app.state.service.keys.create_key('platform', 'p')[1]}"}
    return app, url, sid, token, photos, receiver, hook.json()["secret"], platform


def _screen(url, photos, platform) -> dict:
    strangers = sorted(facedata_path("lfw_deepfunneled", STRANGER).iterdir())[:2]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in list(photos[3:6]) + strangers:
            z.writestr(f"kit/{p.name}", p.read_bytes())
    r = requests.post(f"{url}/v1/screen", params={"filename": "kit.zip"}, data=buf.getvalue(), headers=platform)
    assert r.status_code == 200, r.text
    return r.json()


def _settle(app):
    for delivery in app.state.service.deliveries:
        delivery.join(timeout=30)


def _verify(url, key, sid, photos, method="in_person"):
    return requests.post(
        f"{url}/v1/verifications",
        headers={"Authorization": f"Bearer {key}"},
        data={"subject_id": sid, "method": method},
        files=[("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos],
    )


@pytest.mark.facedata
def test_an_unverified_subject_gets_delayed_counts_and_no_real_time_notice(live):
    app, url, sid, token, photos, receiver, secret, platform = _enrolled(live)
    svc = app.state.service
    result = _screen(url, photos, platform)
    assert result["subjects_found"] == [sid]  # the platform's screen still finds her
    _settle(app)
    assert receiver.wait(1, timeout=0.5) == []  # ...but nobody is told as it happens

    exp = requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": token}).json()
    assert exp["verified"] is False and exp["findings"] == [] and "intake" in exp["limited"]
    assert exp["summary"]["findings"] == 0  # made minutes ago: not yet in the counts
    cut = datetime.fromisoformat(exp["summary"]["as_of"])
    assert cut <= datetime.now(UTC) - timedelta(days=1) and (cut.hour, cut.minute, cut.second) == (0, 0, 0)
    assert result["scan_id"] not in json.dumps(exp)

    # two days later (the findings' times moved back), the counts include them; nothing else shows
    with svc.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE findings SET created_at = :t WHERE subject_id = :s"),
            {"t": datetime.now(UTC) - timedelta(days=2), "s": sid},
        )
    made = svc.registry.store.findings(subject_id=sid)
    exp = requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": token}).json()
    assert exp["summary"]["findings"] == len(made) >= 3 and exp["findings"] == []
    assert sum(exp["summary"]["bands"].values()) == len(made)
    assert result["scan_id"] not in json.dumps(exp) and "member_seq" not in json.dumps(exp)
    page = requests.post(f"{url}/exposure", data={"subject_id": sid, "token": token})
    assert f"{len(made)} finding(s) made before" in page.text and "id='limited'" in page.text

    # the webhook gets those counts as a digest, once: an unchanged digest is not sent again
    assert svc.send_digests() == [sid]
    ((headers, body),) = receiver.wait(1)
    assert verify_signature(body, secret, headers["X-Facetrace-Signature"])
    digest = json.loads(body)
    assert digest["event"] == "digest" and digest["findings"] == len(made) and digest["scan_id"] is None
    assert result["scan_id"] not in body.decode() and "member_seq" not in body.decode()
    assert svc.send_digests() == []
    assert any(
        e["action"] == "webhook_delivery" and e["details"]["event"] == "digest"
        for e in svc.registry.store.audit_entries(sid)
    )


@pytest.mark.facedata
def test_intake_verifies_with_new_photos_of_the_person_and_only_intake_may(live):
    app, url, sid, token, photos, receiver, secret, platform = _enrolled(live)
    store = app.state.service.registry.store
    intake = app.state.service.keys.create_key("intake", "hotline")
    stranger = sorted(facedata_path("lfw_deepfunneled", STRANGER).iterdir())[:2]
    live_photos = (photos[5], photos[7])

    for role in ("platform", "admin", "investigator"):
        r = _verify(url, app.state.service.keys.create_key(role, role)[1], sid, live_photos)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role", (role, r.text)
    assert requests.post(f"{url}/v1/verifications", data={"subject_id": sid, "method": "in_person"}).status_code == 401

    # someone else in front of the officer (the stranger who enrolled her photos), or her enrolled
    # photos shown again: refused, audited, and she stays unverified
    r = _verify(url, intake[1], sid, stranger)
    assert r.status_code == 422 and r.json()["error"]["code"] == "verification_refused", r.text
    r = _verify(url, intake[1], sid, photos[:1])
    assert r.status_code == 422 and "copy of an enrolled photo" in r.json()["error"]["message"], r.text
    r = _verify(url, intake[1], sid, live_photos, method="phone_call")
    assert r.status_code == 400 and "in_person" in r.json()["error"]["message"], r.text
    r = _verify(url, intake[1], "0123456789abcdef", live_photos)
    assert r.status_code == 404 and r.json()["error"]["code"] == "subject_not_found"
    assert store.get_subject(sid)["verified"] is None
    refused = [e for e in store.audit_entries(sid) if e["action"] == "verification_refused"]
    assert len(refused) == 2 and all(e["actor"] == f"key:{intake[0]}" for e in refused)

    r = _verify(url, intake[1], sid, live_photos)
    assert r.status_code == 200 and r.json() == {
        "subject_id": sid,
        "verified": True,
        "method": "in_person",
        "band": "confident",
    }, r.text
    verified = store.get_subject(sid)["verified"]
    assert verified["by"] == f"key:{intake[0]}" and verified["method"] == "in_person"
    [entry] = [e for e in store.audit_entries(sid) if e["action"] == "subject_verified"]
    assert entry["details"]["band"] == "confident" and entry["details"]["live_photos"] == 2
    assert "encoding" not in json.dumps(entry) and live_photos[0].name not in json.dumps(entry)

    # verified: told as the screen finds her, and the exposure route lists each finding
    result = _screen(url, photos, platform)
    ((_headers, body),) = receiver.wait(1)
    assert json.loads(body)["event"] == "finding" and json.loads(body)["scan_id"] == result["scan_id"]
    exp = requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": token}).json()
    assert exp["verified"] is True and exp["limited"] is None and len(exp["findings"]) >= 3
    assert {f["scan_id"] for f in exp["findings"]} == {result["scan_id"]}

    # the officer takes it back: delayed counts again
    r = requests.delete(f"{url}/v1/subjects/{sid}/verification", headers={"Authorization": f"Bearer {intake[1]}"})
    assert r.status_code == 200 and r.json()["verified"] is False
    assert any(e["action"] == "verification_revoked" for e in store.audit_entries(sid))
    exp = requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": token}).json()
    assert exp["verified"] is False and exp["findings"] == []


def test_the_counts_cutoff_is_a_day_old_and_rounded_to_the_day():
    now = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
    assert disclosure.cutoff(now) == datetime(2026, 12, 6, tzinfo=UTC)
    findings = [
        {"band": band, "kind": "same_person", "created_at": at.isoformat()}
        for band, at in (
            ("confident", datetime(2026, 12, 5, 23, 59, tzinfo=UTC)),
            ("probable", datetime(2026, 12, 6, 0, 0, tzinfo=UTC)),
            ("possible", datetime(2026, 12, 6, 0, 1, tzinfo=UTC)),  # after the cutoff: not yet counted
            ("confident", datetime(2026, 12, 7, 16, 29, tzinfo=UTC)),
        )
    ]
    counts = disclosure.summary(findings, disclosure.cutoff(now))
    assert counts == {
        "as_of": "2026-12-06T00:00:00+00:00",
        "findings": 2,
        "bands": {"confident": 1, "probable": 1, "possible": 0},
        "kinds": {"same_person": 2},
    }
    assert disclosure.summary(findings, None)["findings"] == 4
    subject = {"id": "s", "status": "active", "verified": None}
    assert disclosure.exposure(subject, findings, now=now)["findings"] == []
    assert not disclosure.is_verified({**subject, "status": "erased", "verified": {"at": "x"}})
