"""`facetrace acquire` and `facetrace scan URL` as a user runs them, against a loopback server."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import facedata_path
from tests.webserver import File, LoopbackServer, Redirect, run_measured, self_signed_cert

# fixtures from tests/conftest.py: server; and for every test here:
pytestmark = pytest.mark.usefixtures("no_proxy_for_loopback")

LAB = ["--lab-network", "127.0.0.0/8"]  # the loopback test server's network, refused without the option
FAST = ["--retries", "0", "--backoff", "0", *LAB]


def _run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _lfw_zip(path: Path) -> bytes:
    """A zip of 4 LFW photos, 2 people x 2 (face encoding costs about 0.1 s per face)."""
    people = ["Ana_Palacio", "Abdullah_Gul"]
    with zipfile.ZipFile(path, "w") as z:
        for person in people:
            for photo in sorted(facedata_path("lfw_deepfunneled", person).iterdir())[:2]:
                z.write(photo, f"{person}/{photo.name}")
    return path.read_bytes()


@pytest.mark.facedata
def test_lfw_zip_behind_two_redirects_is_acquired_scanned_and_reported(tmp_path, server):
    data = _lfw_zip(tmp_path / "kit.zip")
    sha = hashlib.sha256(data).hexdigest()
    server.route(
        "/files/kit.zip",
        File(data, content_type="application/zip", extra_headers={"X-Amz-Request-Id": "4442587FB7D0A2F9"}),
    )
    server.route("/dl/abc", Redirect(server.url("/files/kit.zip"), 307))
    url = server.route("/s/abc", Redirect("/dl/abc", 302))
    ws = str(tmp_path / "ws")
    result = _run(["scan", "-q", "--workers", "1", "--workspace", ws, *FAST, url])
    assert result.exit_code == 0, result.output
    assert f"SHA-256     {sha}" in result.stdout and "redirect    302" in result.stdout
    assert "images      4" in result.stdout and "faces       4" in result.stdout
    out = tmp_path / "report"
    assert _run(["report", "--workspace", ws, "--out", str(out), "--case-uco"]).exit_code == 0

    doc = json.loads((out / "report.json").read_text())
    [web] = doc["acquisition"]["from_web"]
    record = web["record"]
    hops = [server.url("/s/abc"), server.url("/dl/abc"), server.url("/files/kit.zip")]
    assert [(h["from"], h["status"], h["to"]) for h in record["redirects"]] == [
        (hops[0], 302, hops[1]),
        (hops[1], 307, hops[2]),
    ]
    assert [x["url"] for x in record["requests"]] == hops
    assert all(x["peer"] == f"127.0.0.1:{server.port}" and x["sent_at"] for x in record["requests"])
    final_headers = dict(record["requests"][-1]["headers"])
    assert final_headers["X-Amz-Request-Id"] == "4442587FB7D0A2F9" and final_headers["ETag"] == '"v1"'
    assert record["sha256"] == sha and record["md5"] == hashlib.md5(data).hexdigest() and record["bytes"] == len(data)
    assert record["tool"]["facetrace"] == doc["facetrace"] and record["final_url"] == hops[2]
    assert web["sha256_matches"] and web["record_intact"] and web["input"] == 0
    assert doc["acquisition"]["inputs"][0]["sha256"] == sha  # the scan read exactly the acquired bytes
    assert doc["acquisition"]["inputs"][0]["abspath"] == record["path"]
    assert [c["action"] for c in doc["custody"]][:1] == ["acquire"]
    assert doc["custody"][0]["details"]["record_sha256"] == web["record_sha256"]

    page = (out / "report.html").read_text()
    for text in [
        *hops,
        sha,
        record["md5"],
        "4442587FB7D0A2F9",
        "X-Amz-Request-Id",
        f"127.0.0.1:{server.port}",
        "302 Found",
        "307 Temporary Redirect",
        "Acquired from the web (1)",
        web["record_sha256"],
    ]:
        assert text in page, text
    manifest = (out / "manifest.txt").read_text()
    assert f"acquired from {hops[0]}" in manifest and f"SHA-256 {sha})" in manifest

    # the record is part of the signed document: changing a hop breaks the signature
    verified = _run(["report", "verify", str(out / "report.json")])
    assert verified.exit_code == 0, verified.output
    doc["acquisition"]["from_web"][0]["record"]["redirects"][0]["to"] = "http://elsewhere.example/"
    (out / "forged.json").write_text(json.dumps(doc))
    forged = _run(["report", "verify", str(out / "forged.json")])
    assert forged.exit_code == 1 and "section 'acquisition' was changed" in forged.stdout
    assert _run(["acquire", "verify", "--workspace", ws]).exit_code == 0

    # CASE/UCO: the download is an action whose object is the URL and whose result is the scanned file
    graph = json.loads((out / "report.jsonld").read_text())["@graph"]
    [action] = [n for n in graph if n.get("uco-core:name") == "web acquisition"]
    urls = {
        n["@id"]: n["uco-core:hasFacet"][0]["uco-observable:fullValue"]
        for n in graph
        if n["@type"] == "uco-observable:URL"
    }
    assert [urls[o["@id"]] for o in action["uco-action:object"]] == [hops[0], hops[2]]
    assert sha in action["uco-core:description"]
    case_validate = pytest.importorskip("case_utils.case_validate", reason="case-utils is not installed")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = case_validate.validate(str(out / "report.jsonld"), case_version="case-1.5.0", allow_warnings=False)
    assert result.conforms, result.text


def test_scan_url_cut_off_half_way_is_reported_truncated_and_not_scanned(tmp_path, server):
    url = server.route("/kit.zip", File(b"z" * 200_000, cut_after=100_000, ranges=False))
    (tmp_path / "notes.txt").write_text("price list")
    ws = str(tmp_path / "ws")
    result = _run(["scan", "-q", "--workspace", ws, *FAST, url, str(tmp_path / "notes.txt")])
    assert result.exit_code == 5, result.output
    assert f"FAILED {url}: truncated: got 100,000 of 200,000 bytes" in result.stdout
    assert "run the same command again to resume (never scanned)" in result.stdout
    assert "files       1" in result.stdout  # the other input was scanned
    assert f"Error: 1 input(s) not scanned: {url}: truncated: got 100,000 of 200,000 bytes" in result.stderr
    from scanner.pipeline import open_store

    store, _ = open_store(ws)
    [scan] = store.list_scans()
    assert [i["path"] for i in scan["inputs"]] == [str(tmp_path / "notes.txt")]
    store.close()


def test_scan_json_keeps_stdout_for_records(tmp_path, server):
    url = server.route("/notes.txt", File(b"100 faces: 50 USD", content_type="text/plain"))
    result = _run(["scan", "-q", "--json", "--workspace", str(tmp_path / "ws"), *FAST, url])
    assert result.exit_code == 0, result.output
    [member] = [json.loads(line) for line in result.stdout.splitlines()]
    assert member["path"].endswith("/notes.txt") and "/acquired/" in member["path"]
    assert f"Acquired {url}" in result.stderr and "Scan " in result.stderr


def test_scan_refuses_a_part_file_given_as_a_path(tmp_path, server):
    url = server.route("/kit.zip", File(b"z" * 200_000, cut_after=100_000, ranges=False))
    ws = str(tmp_path / "ws")
    assert _run(["acquire", "--workspace", ws, *FAST, url]).exit_code == 5
    [part] = (tmp_path / "ws" / "acquired" / "partial").glob("*/data.part")
    result = _run(["scan", "-q", "--workspace", ws, str(part)])
    assert result.exit_code == 5 and "is an incomplete download" in result.stdout


def test_a_file_over_the_size_limit_is_refused_with_a_clear_message(tmp_path, server):
    url = server.route("/big.bin", File(b"b" * 5000))
    result = _run(["acquire", "--workspace", str(tmp_path / "ws"), "--max-bytes", "4K", *FAST, url])
    assert result.exit_code == 5
    assert (
        f"FAILED {url}: size limit: the server announces 5,000 bytes, over the limit of 4,096 bytes "
        "(raise it with --max-bytes)"
    ) in result.stdout
    assert "Error: 1 acquisition(s) failed" in result.stderr
    assert not list((tmp_path / "ws" / "acquired" / "partial").glob("*/data.part"))


def test_a_resumed_download_yields_the_same_sha256_as_a_full_one(tmp_path, server):
    data = os.urandom(1_000_000)
    cut = server.route("/cut.bin", File(data, cut_after=400_000, cut_times=1))
    whole = server.route("/whole.bin", File(data))
    ws = str(tmp_path / "ws")
    first = _run(["acquire", "--workspace", ws, *FAST, cut])
    assert first.exit_code == 5 and "truncated: got 400,000 of 1,000,000 bytes" in first.stdout
    second = _run(["acquire", "--json", "--workspace", ws, *FAST, cut])
    assert second.exit_code == 0, second.output
    resumed = json.loads(second.stdout)
    assert resumed["resumed_from"]["offset"] == 400_000 and "resumed     from byte 400,000" in second.stderr
    full = json.loads(_run(["acquire", "--json", "--workspace", str(tmp_path / "ws2"), *FAST, whole]).stdout)
    assert resumed["sha256"] == full["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_self_signed_certificate_is_refused_unless_trusted(tmp_path):
    cert, key = self_signed_cert(tmp_path)
    ws = str(tmp_path / "ws")
    with LoopbackServer(tls=(cert, key)) as tls_server:
        url = tls_server.route("/kit.zip", File(b"k" * 1000))
        refused = _run(["acquire", "--workspace", ws, *FAST, url])
        assert refused.exit_code == 5 and "TLS error with 127.0.0.1: certificate verify failed" in refused.stdout
        assert "--ca-bundle FILE" in refused.stdout
        trusted = _run(["acquire", "--workspace", ws, "--ca-bundle", str(cert), *FAST, url])
        assert trusted.exit_code == 0 and "TLSv1" in trusted.stdout
        listed = _run(["acquire", "list", "--workspace", ws]).stdout.splitlines()
        assert [line.split()[2] for line in listed] == ["failed", "complete"]


def test_scan_of_a_page_follows_links_only_when_asked(tmp_path, server):
    server.route("/files/price-list.txt", File(b"100 faces: 50 USD", content_type="text/plain"))
    page = server.route(
        "/post/9", File(b'<p>kit: <a href="/files/price-list.txt">list</a></p>', content_type="text/html")
    )
    ws = str(tmp_path / "ws")
    listed = _run(["scan", "-q", "--workspace", ws, *FAST, page])
    assert listed.exit_code == 2 and "it offers 1 link(s):" in listed.stdout
    assert "pass --follow 1" in listed.stderr
    followed = _run(["scan", "-q", "--workspace", ws, *FAST, "--follow", "1", page])
    assert followed.exit_code == 0, followed.output
    assert "files       1" in followed.stdout
    out = tmp_path / "report"
    assert _run(["report", "--workspace", ws, "--out", str(out), "--no-pictures"]).exit_code == 0
    [web] = json.loads((out / "report.json").read_text())["acquisition"]["from_web"]
    assert web["record"]["requested_url"] == server.url("/files/price-list.txt")
    [related] = web["related"]
    assert related["relation"] == "linked_from" and related["record"]["requested_url"] == page
    assert related["record"]["links"][0]["url"] == server.url("/files/price-list.txt")


def test_out_puts_the_files_and_records_elsewhere(tmp_path, server):
    result = _run(
        [
            "acquire",
            "--json",
            "--workspace",
            str(tmp_path / "ws"),
            "--out",
            str(tmp_path / "evidence"),
            *FAST,
            server.route("/a.bin", File(b"a" * 100)),
        ]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    sha = hashlib.sha256(b"a" * 100).hexdigest()
    assert record["path"] == str(tmp_path / "evidence" / sha / "a.bin") and record["workspace_path"] is None
    assert (tmp_path / "evidence" / "records" / f"{record['id']}.json").exists()
    assert _run(["acquire", "verify", "--workspace", str(tmp_path / "ws")]).exit_code == 0


def test_acquire_verify_names_a_changed_file(tmp_path, server):
    ws = str(tmp_path / "ws")
    result = _run(["acquire", "--json", "--workspace", ws, *FAST, server.route("/a.bin", File(b"a" * 100))])
    path = Path(json.loads(result.stdout)["path"])
    path.chmod(0o644)
    path.write_bytes(b"b" * 100)
    verified = _run(["acquire", "verify", "--workspace", ws])
    assert verified.exit_code == 1 and "changed: SHA-256" in verified.stdout


def test_acquire_refuses_loopback_unless_its_network_is_allowed(tmp_path, server):
    url = server.route("/kit.zip", File(b"k" * 100))
    ws = str(tmp_path / "ws")
    refused = _run(["acquire", "--workspace", ws, "--retries", "0", url])
    assert refused.exit_code == 5 and server.log == []
    assert f"FAILED {url}: address refused for {url}: 127.0.0.1 is a loopback address" in refused.stdout
    assert "--lab-network" in refused.stdout
    allowed = _run(["acquire", "--json", "--workspace", ws, "--retries", "0", "--lab-network", "127.0.0.1/32", url])
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["settings"]["lab_networks"] == ["127.0.0.1/32"]
    bad = _run(["acquire", "--workspace", ws, "--lab-network", "loopback", url])
    assert bad.exit_code == 2 and "not a network" in bad.stderr


def test_not_a_url_is_bad_usage(tmp_path):
    result = _run(["acquire", "--workspace", str(tmp_path / "ws"), "ftp://example.org/kit.zip"])
    assert result.exit_code == 2 and "not an http(s) URL" in result.stderr


def test_acquiring_a_large_file_keeps_memory_flat(tmp_path, server):
    # 64 MiB here to keep the suite fast; benchmarks/bench_acquire.py measures 500 MiB (docs/acquisition.md)
    size = 64 << 20
    url = server.route("/big.bin", File(size=size, block=os.urandom(1 << 20)))
    exe = Path(sys.executable).parent / "facetrace"
    rc, peak_mib, err = run_measured(
        [str(exe), "acquire", "--json", "-q", *FAST, "--workspace", str(tmp_path / "ws"), url], tmp_path / "out.jsonl"
    )
    assert rc == 0, err
    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert record["bytes"] == size and record["status"] == "complete"
    assert peak_mib < 100, f"peak RSS {peak_mib:.0f} MiB"
