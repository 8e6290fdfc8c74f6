"""The service's defences, on the real server (uvicorn, configured as `facetrace serve` does):
webhooks to internal addresses, forwarded client addresses, failed authentications, the headers
of the pages that show a deletion token, the interactive docs, and the exposure answer."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.conftest import facedata_path

TOKEN = "t" * 43


def _subject(app, token: str = TOKEN) -> str:
    """A subject with a known deletion token, made in the store directly (no photo needed)."""
    from scanner.consent import ConsentInput

    c = ConsentInput()
    consent = {
        "purpose": c.purpose,
        "scope": c.scope,
        "text_version": c.text_version,
        "text_sha256": c.text_sha256,
        "granted_at": datetime.now(UTC),
        "expires_at": None,
        "withdrawn_at": None,
        "jurisdiction": "test",
    }
    sid, _ = app.state.service.registry.store.create_subject(
        label=None, token_sha256=hashlib.sha256(token.encode()).hexdigest(), consent=consent, templates=[], actor="test"
    )
    return sid


# -- item 8: webhooks to internal addresses --------------------------------------------------------

INTERNAL_HOOKS = [
    "http://127.0.0.1:18432/hook",
    "http://[::1]/hook",
    "http://0x7f000001/hook",
    "http://localhost/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://2130706433/",
    "https://printer.localhost/x",
    "http://[::ffff:169.254.169.254]/",
    "http://0/",
]


def test_webhooks_to_internal_addresses_are_refused_at_registration(live, loopback_only):
    app, url = live()
    sid = _subject(app)
    admin = app.state.service.keys.create_key("platform", "test")[1]
    for hook in INTERNAL_HOOKS:
        r = requests.put(f"{url}/v1/subjects/{sid}/webhook", json={"url": hook}, headers={"X-Deletion-Token": TOKEN})
        assert r.status_code == 422 and r.json()["error"]["code"] == "address_refused", (hook, r.text)
        assert "--lab-network" in r.json()["error"]["message"]
        r = requests.put(f"{url}/v1/webhook", json={"url": hook}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "address_refused", (hook, r.text)
    assert app.state.service.keys.webhook("subject", sid) is None
    assert set(loopback_only) == {"127.0.0.1"}  # the test's own calls to the service, nothing else


def test_a_lab_network_allows_its_webhooks_only(live):
    app, url = live(lab_networks=("127.0.0.0/8",))
    sid = _subject(app)
    ok = requests.put(
        f"{url}/v1/subjects/{sid}/webhook",
        json={"url": "http://127.0.0.1:18432/hook"},
        headers={"X-Deletion-Token": TOKEN},
    )
    assert ok.status_code == 200, ok.text
    other = requests.put(
        f"{url}/v1/subjects/{sid}/webhook", json={"url": "http://169.254.169.254/"}, headers={"X-Deletion-Token": TOKEN}
    )
    assert other.status_code == 422 and other.json()["error"]["code"] == "address_refused"


# -- item 13: forwarded addresses, failed authentications -----------------------------------------


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(live):
    _app, url = live(address_rate_per_minute=3)
    codes = [
        requests.get(f"{url}/v1/health", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]  # a new forwarded address each time buys nothing


def test_a_trusted_proxy_s_forwarded_address_is_the_client(live):
    _app, url = live(address_rate_per_minute=3, trusted_proxies=("127.0.0.1/32",))

    def health(forwarded):
        return requests.get(f"{url}/v1/health", headers={"X-Forwarded-For": forwarded}).status_code

    # the proxy appends the address it saw: what a client wrote before it (spoof) is not trusted
    assert [health(f"9.9.9.{i}, 198.51.100.7") for i in range(4)] == [200, 200, 200, 429]
    assert health("198.51.100.8") == 200  # another client behind the same proxy has its own bucket
    assert health("198.51.100.8, 127.0.0.1") == 200  # a chain of trusted proxies is walked from the right


def test_failed_api_keys_are_rate_limited_per_address(live):
    app, url = live(auth_failure_rate_per_minute=3)
    good = app.state.service.keys.create_key("platform", "test")[1]
    codes = [
        requests.post(f"{url}/v1/screen", data=b"x", headers={"Authorization": f"Bearer ftk_0_guess{i}"})
        for i in range(5)
    ]
    assert [r.status_code for r in codes] == [401, 401, 401, 429, 429]
    assert codes[0].json()["error"]["code"] == "invalid_key" and codes[-1].json()["error"]["code"] == "rate_limited"
    # while the address is locked out, no key is checked: a good guess cannot be told from a bad one
    r = requests.post(f"{url}/v1/screen", data=b"", headers={"Authorization": f"Bearer {good}"})
    assert r.status_code == 429 and r.headers["Retry-After"]


def test_wrong_deletion_tokens_are_rate_limited_per_address(live):
    app, url = live(auth_failure_rate_per_minute=2)
    sid = _subject(app)
    codes = [
        requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": f"guess{i}"}).status_code
        for i in range(3)
    ]
    assert codes == [403, 403, 429]
    page = requests.post(f"{url}/exposure", data={"subject_id": sid, "token": TOKEN})
    assert page.status_code == 429 and "data-code='rate_limited'" in page.text


# -- item 14: headers of the pages; the interactive docs -----------------------------------------


def _assert_guarded(r):
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in r.headers["Cache-Control"]


@pytest.mark.facedata
def test_the_page_and_the_answer_that_show_a_deletion_token_are_not_framed_kept_or_leaked(live):
    app, url = live()
    photos = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())[:3]
    version = requests.get(f"{url}/v1/consent-text").json()["version"]
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    r = requests.post(f"{url}/enroll", files=files, data={"consent": "true", "consent_version": version})
    assert r.status_code == 200 and "id='token'" in r.text, r.text
    _assert_guarded(r)
    other = sorted(facedata_path("lfw_deepfunneled", "Abdullah_Gul").iterdir())[:3]  # one person enrolls once
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in other]
    r = requests.post(f"{url}/v1/subjects", files=files, data={"consent": "true", "consent_version": version})
    assert r.status_code == 200 and r.json()["deletion_token"], r.text
    _assert_guarded(r)


def test_every_page_and_error_carries_the_headers(live):
    _app, url = live()
    for path in ("/", "/enroll", "/exposure", "/erase"):
        _assert_guarded(requests.get(url + path))
    _assert_guarded(requests.post(f"{url}/exposure", data={"subject_id": "0" * 16, "token": "x"}))  # an error page
    _assert_guarded(requests.get(f"{url}/v1/health"))
    _assert_guarded(requests.get(f"{url}/nowhere"))


def test_interactive_docs_are_off_by_default(live):
    _app, url = live()
    assert requests.get(f"{url}/docs").status_code == 404 and requests.get(f"{url}/redoc").status_code == 404
    assert requests.get(f"{url}/openapi.json").status_code == 200
    _app, url = live(interactive_docs=True)
    assert requests.get(f"{url}/docs").status_code == 200


# -- item 15: when a finding was made; the consent version ---------------------------------------


def test_exposure_says_when_each_finding_was_made(live):
    app, url = live()
    sid = _subject(app)
    # each finding's time is shown to a verified subject (an unverified one gets delayed counts:
    # tests/api/test_verification.py)
    assert app.state.service.registry.store.set_verified(sid, by="key:test", method="in_person", actor="test")
    before = datetime.now(UTC)
    app.state.service.registry.store.add_findings(
        [
            {
                "scan_id": "s" * 32,
                "subject_id": sid,
                "kind": "same_person",
                "band": "probable",
                "logical_path": "kit/1.jpg",
                "member_seq": 1,
                "face_index": 0,
                "evidence": {},
            }
        ]
    )
    r = requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": TOKEN})
    [finding] = r.json()["findings"]
    found = datetime.fromisoformat(finding["found_at"])
    assert found.tzinfo is not None and before - timedelta(seconds=5) <= found <= datetime.now(UTC)
    page = requests.post(f"{url}/exposure", data={"subject_id": sid, "token": TOKEN})
    assert f"<td>{finding['found_at'][:19]}</td>" in page.text


def test_the_consent_version_is_required(live):
    _app, url = live()
    files = [("photos", (f"{i}.jpg", b"not a photo", "image/jpeg")) for i in range(3)]
    r = requests.post(f"{url}/v1/subjects", files=files, data={"consent": "true"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert "consent_version" in r.json()["error"]["message"]
    r = requests.post(f"{url}/v1/subjects", files=files, data={"consent": "true", "consent_version": ""})
    assert r.status_code == 422 and "consent_version" in r.json()["error"]["message"]  # empty is missing
    page = requests.post(f"{url}/enroll", files=files, data={"consent": "true", "consent_version": ""})
    assert page.status_code == 409 and "data-code='consent_text_changed'" in page.text
    schema = requests.get(f"{url}/openapi.json").json()
    form = next(
        iter(
            schema["components"]["schemas"][name]
            for name in schema["components"]["schemas"]
            if "consent_version" in schema["components"]["schemas"][name].get("properties", {})
        )
    )
    assert "consent_version" in form["required"]


# -- item 7: a subject id's existence cannot be probed --------------------------------------------


def test_a_wrong_token_and_an_unknown_subject_answer_alike(live):
    from scanner.registry import erase

    app, url = live(auth_failure_rate_per_minute=1000)
    svc = app.state.service
    sid = _subject(app)
    gone = _subject(app, "g" * 43)
    erase(svc.registry, gone)
    unknown = "0123456789abcdef" if sid != "0123456789abcdef" else "fedcba9876543210"
    probes = [(sid, "wrong-token"), (unknown, TOKEN), (unknown, "wrong-token"), (gone, "g" * 43), ("not-an-id", TOKEN)]
    answers = set()
    for subject_id, token in probes:
        h = {"X-Deletion-Token": token}
        for r in (
            requests.get(f"{url}/v1/subjects/{subject_id}/exposure", headers=h),
            requests.delete(f"{url}/v1/subjects/{subject_id}", headers=h),
            requests.put(
                f"{url}/v1/subjects/{subject_id}/webhook", headers=h, json={"url": "https://hooks.example.org/x"}
            ),
        ):
            answers.add((r.status_code, r.text))
    assert len(answers) == 1, answers  # one status, code and message for all of them
    [(status, text)] = answers
    assert status == 403 and '"code":"bad_token"' in text
    pages = {
        (r.status_code, r.text)
        for subject_id, token in probes
        for path in ("/exposure", "/erase")
        for r in [requests.post(url + path, data={"subject_id": subject_id, "token": token})]
    }
    assert len(pages) == 1 and "data-code='bad_token'" in next(iter(pages))[1]
    # the same lookups for a real id with a wrong token as for an unknown id: no timing to tell them apart
    calls: list[str] = []
    store = svc.registry.store
    for name in ("get_subject", "check_token", "findings"):
        real = getattr(store, name)
        setattr(store, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    try:
        seen = []
        for subject_id in (sid, unknown):
            calls.clear()
            requests.get(f"{url}/v1/subjects/{subject_id}/exposure", headers={"X-Deletion-Token": "wrong-token"})
            seen.append(list(calls))
    finally:
        for name in ("get_subject", "check_token", "findings"):
            delattr(store, name)
    assert seen[0] == seen[1] and seen[0], seen
    ok = requests.get(f"{url}/v1/subjects/{sid}/exposure", headers={"X-Deletion-Token": TOKEN})
    assert ok.status_code == 200 and ok.json()["subject_id"] == sid
