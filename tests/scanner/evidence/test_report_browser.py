"""The HTML report in a real browser (Debian's headless Chromium): it renders, and loads nothing.

`make test` installs Chromium when it can (root with apt-get); elsewhere this test is skipped
with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.facedata, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As the workplace advises: no background traffic, and a dead proxy so nothing can leave anyway.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def _chromium(args, tmp_path, name):
    netlog = tmp_path / f"{name}.netlog.json"
    out = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / (name + '-profile')}", f"--log-net-log={netlog}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout, _page_requests(netlog)


def _page_requests(netlog) -> list[str]:
    """URLs the page itself asked for (the browser's own housekeeping has no origin)."""
    data = json.loads(netlog.read_text())
    names = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    return [
        e["params"]["url"]
        for e in data["events"]
        if names.get(e["type"]) == "URL_REQUEST_START_JOB"
        and e.get("params", {}).get("initiator") not in (None, "not an origin")
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")
def test_report_renders_in_chromium_without_any_request(case, tmp_path):
    _, _, _, out, _ = case
    doc = json.loads(open(out["json"], encoding="utf-8").read())
    dom, requests = _chromium(["--dump-dom", f"file://{out['html']}"], tmp_path, "report")
    assert f"<title>facetrace evidence report {doc['report_id'][:8]}</title>" in dom
    findings = sum(len(s["items"]) for s in doc["findings"])
    assert f'id="kpi-findings"><b>{findings}</b>' in dom
    assert requests == []
    # the check can fail: a page with an external image is caught
    control = tmp_path / "control.html"
    control.write_text("<html><body><img src='http://198.51.100.7/x.png'></body></html>")
    _, control_requests = _chromium(["--dump-dom", f"file://{control}"], tmp_path, "control")
    assert control_requests == ["http://198.51.100.7/x.png"]
    shot = tmp_path / "report.png"
    _chromium(["--window-size=1200,900", f"--screenshot={shot}", f"file://{out['html']}"], tmp_path, "shot")
    assert shot.stat().st_size > 10_000
