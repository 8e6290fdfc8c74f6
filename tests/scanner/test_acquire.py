"""scanner/acquire: downloads from a loopback server, every request recorded, failures as records."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from scanner.acquire import acquire, incomplete_download, list_acquisitions, verify_acquisitions
from scanner.acquire.http import filename_for
from scanner.errors import UsageError
from scanner.models import AcquireOptions
from scanner.pipeline import open_store
from tests.webserver import LOOPBACK, File, LoopbackServer, Redirect, Status, self_signed_cert

# fixtures from tests/conftest.py: server, fake_dns, loopback_only; and for every test here:
pytestmark = pytest.mark.usefixtures("no_proxy_for_loopback")

FAST = AcquireOptions(backoff=0.001, retries=0)
DATA = os.urandom(3_000_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def ws(tmp_path):
    store, root = open_store(str(tmp_path / "ws"))
    yield store, root
    store.close()


def _get(ws, url, options=FAST, **kw):
    """Acquire with the loopback test servers allowed (the lab option), unless a test says otherwise."""
    store, root = ws
    return acquire(url, store, root, options, **{"lab_networks": LOOPBACK, **kw})


def test_two_redirects_every_hop_header_time_and_peer_recorded(tmp_path, server, db_url):
    store, root = open_store(str(tmp_path / "ws"), db_url)
    server.route("/kit.zip", File(DATA, content_type="application/zip", extra_headers={"X-Served-By": "edge-7"}))
    server.route("/dl", Redirect(server.url("/kit.zip"), 302))
    url = server.route("/s/abc", Redirect("/dl", 301))  # a relative Location, made absolute
    result = acquire(url, store, root, FAST, lab_networks=LOOPBACK)
    r = result.record
    assert r.complete and r.kind == "file" and result.files() == [r]
    assert r.sha256 == SHA and r.md5 == hashlib.md5(DATA).hexdigest() and r.bytes == r.expected_bytes == len(DATA)
    assert [(h["status"], h["from"], h["to"]) for h in r.redirects] == [
        (301, url, server.url("/dl")),
        (302, server.url("/dl"), server.url("/kit.zip")),
    ]
    assert r.final_url == server.url("/kit.zip") and r.http_status == 200
    assert [e.attempt for e in r.exchanges] == [1, 2, 3]
    for e in r.exchanges:  # each request: its own time, the socket's peer, every header as received
        assert e.peer == f"127.0.0.1:{server.port}" and e.sent_at.endswith("+00:00") and e.tls is None
        assert ("Date" in dict(e.headers)) and e.request_headers["Accept-Encoding"] == "identity"
    assert dict(r.exchanges[-1].headers)["X-Served-By"] == "edge-7" and r.server == f"127.0.0.1:{server.port}"
    assert r.tool["facetrace"] and r.tool["requests"] and r.settings["max_bytes"] == FAST.max_bytes
    # stored read-only under the SHA-256 of its bytes; the record in the store, its hash in the audit log
    stored = Path(r.path)
    assert stored == Path(root) / "acquired" / SHA / "kit.zip" and stored.read_bytes() == DATA
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444 and r.workspace_path == f"acquired/{SHA}/kit.zip"
    [row] = list_acquisitions(store)
    assert row["record"] == json.loads(json.dumps(r.as_record())) and row["sha256"] == SHA
    copy = Path(root) / "acquired" / "records" / f"{r.id}.json"
    assert json.loads(copy.read_text()) == row["record"]
    assert verify_acquisitions(store) == (1, [])
    assert not (Path(root) / "acquired" / "partial" / "x").exists() and not list(
        (Path(root) / "acquired" / "partial").iterdir()
    )  # nothing half-done is left behind
    store.close()


def test_cookies_set_by_a_hop_are_sent_on_the_next_ones(ws, server):
    # share links often set a session cookie on the first hop and check it on the download
    server.route("/kit.bin", File(b"kit"))
    server.route("/share", Status(302, {"Location": "/kit.bin", "Set-Cookie": "session=abc123; Path=/"}))
    r = _get(ws, server.url("/share")).record
    assert r.complete and server.log[-1]["headers"].get("Cookie") == "session=abc123"
    assert ("Set-Cookie", "session=abc123; Path=/") in r.exchanges[0].headers


def test_a_cut_off_transfer_is_truncated_kept_as_part_and_never_offered_to_scan(ws, server):
    url = server.route("/cut.bin", File(DATA, cut_after=1_000_000, ranges=False))
    result = _get(ws, url)
    r = result.record
    assert not r.complete and r.reason == f"truncated: got 1,000,000 of {len(DATA):,} bytes"
    assert result.files() == [] and result.failed() == [r] and r.sha256 is None and r.md5 is None
    assert r.path.endswith("data.part") and Path(r.path).stat().st_size == 1_000_000
    assert r.partial_sha256 == hashlib.sha256(DATA[:1_000_000]).hexdigest()
    assert incomplete_download(r.path, ws[1])
    assert "the connection closed before the announced length" in r.exchanges[-1].error
    [row] = list_acquisitions(ws[0])
    assert row["status"] == "failed" and row["path"] is None  # a failed acquisition has no stored file


def test_retries_resume_a_cut_off_transfer_within_one_run(ws, server):
    url = server.route("/flaky.bin", File(DATA, cut_after=1_200_000))  # every response breaks off
    waits = []
    r = _get(ws, url, AcquireOptions(retries=3, backoff=0.5), sleep=waits.append).record
    assert r.complete and r.sha256 == SHA
    ranges = [e.request_headers.get("Range") for e in r.exchanges]
    assert ranges == [None, "bytes=1200000-", "bytes=2400000-"]
    assert [e.request_headers.get("If-Range") for e in r.exchanges[1:]] == ['"v1"', '"v1"']
    assert [e.status for e in r.exchanges] == [200, 206, 206] and waits == [0.5, 1.0]  # doubled each time
    assert r.exchanges[0].error.startswith("truncated: got 1,200,000 of 3,000,000 bytes")


def test_a_resumed_download_has_the_sha256_of_a_full_one(ws, server, tmp_path):
    url = server.route("/big.bin", File(DATA, cut_after=len(DATA) // 2, cut_times=1))
    first = _get(ws, url).record
    assert not first.complete and first.reason.startswith("truncated: got 1,500,000 of")
    second = _get(ws, url).record  # the same command again: asks for the rest
    assert second.complete and second.sha256 == SHA
    assert second.resumed_from == {"offset": 1_500_000, "acquisition_ids": [first.id], "validator": '"v1"'}
    assert server.log[-1]["headers"]["Range"] == "bytes=1500000-" and server.log[-1]["headers"]["If-Range"] == '"v1"'
    full_store, full_root = open_store(str(tmp_path / "other"))
    full = acquire(server.route("/whole.bin", File(DATA)), full_store, full_root, FAST, lab_networks=LOOPBACK).record
    assert full.sha256 == second.sha256 == hashlib.sha256(Path(second.path).read_bytes()).hexdigest()
    full_store.close()


def test_an_interrupted_download_is_recorded_and_resumes(ws, server):
    url = server.route("/long.bin", File(DATA))

    def stop(_url, got, _total):
        if got >= 1_000_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _get(ws, url, on_progress=stop)
    [row] = list_acquisitions(ws[0])
    assert row["status"] == "failed" and row["reason"] == "interrupted by the user" and row["size"] >= 1_000_000
    r = _get(ws, url).record
    assert r.complete and r.sha256 == SHA and r.resumed_from["acquisition_ids"] == [row["id"]]
    assert r.resumed_from["offset"] == row["size"]


def test_a_resume_restarts_from_zero_when_the_file_changed(ws, server):
    f = File(DATA, cut_after=1_000_000, cut_times=1)
    url = server.route("/changing.bin", f)
    assert not _get(ws, url).record.complete
    new = os.urandom(2_000_000)
    f.data, f.etag = new, '"v2"'  # If-Range no longer matches: the server sends the whole new file
    r = _get(ws, url).record
    assert r.complete and r.sha256 == hashlib.sha256(new).hexdigest() and r.resumed_from is None
    assert r.exchanges[0].request_headers["If-Range"] == '"v1"' and r.exchanges[0].status == 200
    assert any("restarted from byte 0" in n for n in r.notes)


def test_a_206_that_does_not_continue_the_kept_bytes_restarts_from_zero(ws, server):
    f = File(DATA, cut_after=1_000_000, cut_times=1)
    url = server.route("/liar.bin", f)
    assert not _get(ws, url).record.complete
    answers = []

    def wrong_range(h):  # claims to continue, but from another offset
        answers.append(h.headers.get("Range"))
        if h.headers.get("Range"):
            body = DATA[5:]
            h.send_response(206)
            h.send_header("Content-Range", f"bytes 5-{len(DATA) - 1}/{len(DATA)}")
            h.send_header("Content-Length", str(len(body)))
            h.send_header("ETag", '"v1"')
            h.end_headers()
            h.wfile.write(body)
        else:
            h._file(File(DATA))

    server.route("/liar.bin", wrong_range)
    r = _get(ws, url).record
    assert r.complete and r.sha256 == SHA and answers == ["bytes=1000000-", None]
    assert "does not continue the 1000000 bytes kept" in r.exchanges[0].error


def test_size_limit_refused_from_content_length_before_any_byte(ws, server):
    url = server.route("/huge.bin", File(DATA))
    r = _get(ws, url, AcquireOptions(max_bytes=1 << 20, retries=0)).record
    assert not r.complete and r.reason == (
        f"size limit: the server announces {len(DATA):,} bytes, over the limit "
        f"of 1,048,576 bytes (raise it with --max-bytes)"
    )
    assert r.exchanges[-1].body_bytes == 0 and r.path is None and r.bytes == 0


def test_size_limit_enforced_while_streaming_when_no_length_is_announced(ws, server):
    url = server.route("/stream.bin", File(DATA, announce=False))
    r = _get(ws, url, AcquireOptions(max_bytes=1 << 20, retries=0)).record
    assert not r.complete and r.reason.startswith("size limit: more than 1,048,576 bytes received")
    assert r.path is None  # nothing over the limit is kept


def test_no_announced_length_is_accepted_with_a_note(ws, server):
    r = _get(ws, server.route("/nolen.bin", File(DATA, announce=False))).record
    assert r.complete and r.sha256 == SHA and r.expected_bytes is None
    assert r.server == f"127.0.0.1:{server.port}"  # a connection the server closes still has its peer recorded
    assert any("completeness cannot be proven" in n for n in r.notes)


def test_an_encoded_body_is_stored_as_served_with_a_note(ws, server):
    import gzip

    body = gzip.compress(DATA)
    r = _get(ws, server.route("/enc.bin", File(body, extra_headers={"Content-Encoding": "gzip"}))).record
    assert r.complete and r.sha256 == hashlib.sha256(body).hexdigest() and Path(r.path).read_bytes() == body
    assert any("Content-Encoding: gzip" in n for n in r.notes)


def test_a_chunked_transfer_cut_off_is_truncated(ws, server):
    r = _get(ws, server.route("/chunked.bin", File(DATA, chunked=True, cut_after=100_000))).record
    assert not r.complete and r.reason.startswith("truncated: got 100,000 bytes of a transfer of unknown length")
    assert "chunked transfer ended before its final chunk" in r.reason


def test_404_is_recorded_and_not_retried(ws, server):
    r = _get(ws, server.url("/gone.zip"), AcquireOptions(retries=3, backoff=0.001)).record
    assert not r.complete and r.reason == f"HTTP 404 Not Found from {server.url('/gone.zip')}"
    assert len(server.log) == 1 and r.http_status == 404 and r.exchanges[0].status == 404


def test_503_is_retried_honouring_retry_after(ws, server):
    url = server.route("/busy", Status(503, {"Retry-After": "7"}, times=2, then=File(b"finally")))
    waits = []
    r = _get(ws, url, AcquireOptions(retries=3, backoff=0.5), sleep=waits.append).record
    assert r.complete and Path(r.path).read_bytes() == b"finally" and waits == [7.0, 7.0]
    assert [e.status for e in r.exchanges] == [503, 503, 200]
    assert r.exchanges[0].error == f"HTTP 503 Service Unavailable from {url}"


def test_429_without_retry_after_backs_off_exponentially_then_gives_up(ws, server):
    url = server.route("/limited", Status(429))
    waits = []
    r = _get(ws, url, AcquireOptions(retries=3, backoff=0.25), sleep=waits.append).record
    assert not r.complete and r.reason == f"HTTP 429 Too Many Requests from {url}"
    assert waits == [0.25, 0.5, 1.0] and len(r.exchanges) == 4


def test_a_retry_after_beyond_the_cap_is_not_waited_for(ws, server):
    url = server.route("/later", Status(503, {"Retry-After": "86400"}))
    waits = []
    r = _get(ws, url, AcquireOptions(retries=3, max_backoff=60), sleep=waits.append).record
    assert not r.complete and waits == [] and "asked to retry after 86400 s, longer than the 60 s cap" in r.reason


def test_dns_failure_is_recorded_and_not_retried(ws, monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *args, **kw):
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    waits = []
    r = _get(ws, "http://dump.example.invalid/kit.zip", AcquireOptions(retries=3), sleep=waits.append).record
    assert not r.complete and r.reason == "DNS failure: cannot resolve host 'dump.example.invalid'"
    assert waits == [] and len(r.exchanges) == 1 and r.exchanges[0].status is None
    assert list_acquisitions(ws[0])[0]["reason"] == r.reason  # failures are records too


def test_connection_refused_is_retried_then_recorded(ws):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    waits = []
    r = _get(ws, f"http://127.0.0.1:{port}/x", AcquireOptions(retries=2, backoff=0.1), sleep=waits.append).record
    assert not r.complete and r.reason == f"connection refused by 127.0.0.1:{port}" and waits == [0.1, 0.2]


def test_a_self_signed_certificate_is_refused_unless_trusted_explicitly(ws, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert, key = self_signed_cert(tmp_path)
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
    with LoopbackServer(tls=(cert, key)) as tls_server:
        url = tls_server.route("/kit.zip", File(DATA))
        refused = _get(ws, url).record
        assert not refused.complete and refused.reason.startswith("TLS error with 127.0.0.1: certificate verify failed")
        assert "--ca-bundle" in refused.reason and refused.path is None and refused.bytes == 0
        trusted = _get(ws, url, AcquireOptions(retries=0, ca_bundle=str(cert))).record
        assert trusted.complete and trusted.sha256 == SHA
        tls = trusted.exchanges[-1].tls
        assert tls["verified"] is True and tls["certificate_sha256"] == hashlib.sha256(der).hexdigest()
        assert tls["version"].startswith("TLS") and "facetrace test server" in tls["subject"]
        assert trusted.settings["ca_bundle_sha256"] == hashlib.sha256(cert.read_bytes()).hexdigest()
        insecure = _get(ws, url, AcquireOptions(retries=0, insecure=True)).record
        assert insecure.complete and insecure.exchanges[-1].tls["verified"] is False
        assert insecure.notes[0].startswith("TLS VERIFICATION WAS DISABLED")
        assert insecure.settings["tls_trust"].startswith("NONE")


def test_the_environment_proxy_is_used_and_recorded(ws, server, monkeypatch):
    server.route("/kit.bin", File(DATA))  # the loopback server plays the proxy: it answers absolute URIs
    monkeypatch.setenv("HTTP_PROXY", server.url(""))
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    r = _get(ws, "http://files.example.invalid/kit.bin").record
    assert r.complete and r.sha256 == SHA and server.proxied == ["http://files.example.invalid/kit.bin"]
    assert r.exchanges[0].proxy == server.url("") and r.exchanges[0].peer == f"127.0.0.1:{server.port}"


def test_an_explicit_proxy_password_is_not_recorded(ws, server):
    server.route("/kit.bin", File(b"x"))
    proxy = f"http://agent:s3cret@127.0.0.1:{server.port}"
    r = _get(ws, "http://files.example.invalid/kit.bin", AcquireOptions(retries=0, proxy=proxy)).record
    assert r.complete and "s3cret" not in json.dumps(r.as_record())
    assert r.settings["proxy"] == f"http://agent:***@127.0.0.1:{server.port}"


PAGE = b"""<html><head><base href="/files/"></head><body>
<a href="kit.zip">the <b>kit</b></a> <a href="kit.zip#again">same</a>
<a href="http://localhost:PORT/other.zip">on another host name</a>
<a href="mailto:seller@example.org">mail</a> <img src="/thumb.jpg">
<a href="sub.html">more</a></body></html>"""


def _page(server, path="/post/1"):
    server.route("/files/kit.zip", File(DATA, content_type="application/zip"))
    server.route(
        "/files/sub.html",
        File(f'<a href="http://127.0.0.1:{server.port}/deep.bin">deep</a>'.encode(), content_type="text/html"),
    )
    server.route("/deep.bin", File(b"deep bytes"))
    server.route("/other.zip", File(b"other host"))
    body = PAGE.replace(b"PORT", str(server.port).encode())
    return server.route(path, File(body, content_type="text/html; charset=utf-8"))


def test_an_html_page_is_kept_as_evidence_and_its_links_listed_without_following(ws, server):
    url = _page(server)
    result = _get(ws, url)
    r = result.record
    assert r.complete and r.kind == "page" and r.file_name == "1.html" and result.files() == []
    base = server.url("/files/")
    assert [(link["url"], link["tag"]) for link in r.links] == [
        (base + "kit.zip", "a"),
        (f"http://localhost:{server.port}/other.zip", "a"),
        (server.url("/thumb.jpg"), "img"),
        (base + "sub.html", "a"),
    ]
    assert r.links[0]["text"] == "the kit"
    assert [e["path"] for e in server.log] == ["/post/1"]  # nothing else was fetched
    assert Path(r.path).read_bytes().startswith(b"<html>")


def test_follow_fetches_linked_files_on_allowed_hosts_only(ws, server):
    url = _page(server)
    result = _get(ws, url, AcquireOptions(retries=0, follow_depth=2))
    got = {r.requested_url: r for r in result.followed}
    assert set(got) == {
        server.url("/files/kit.zip"),
        server.url("/thumb.jpg"),
        server.url("/files/sub.html"),
        server.url("/deep.bin"),
    }  # localhost is another host: not allowed by default
    assert got[server.url("/files/kit.zip")].sha256 == SHA and got[server.url("/thumb.jpg")].reason.startswith(
        "HTTP 404"
    )
    assert got[server.url("/deep.bin")].parent_id == got[server.url("/files/sub.html")].id
    assert got[server.url("/deep.bin")].depth == 2 and got[server.url("/files/kit.zip")].parent_id == result.record.id
    assert sorted(r.file_name for r in result.files()) == ["deep.bin", "kit.zip"]
    allowed = (f"localhost:{server.port}",)  # a host on another port than 80 and 443 is named with its port
    only_localhost = _get(ws, url, AcquireOptions(retries=0, follow_depth=1, allow_hosts=allowed))
    assert [r.requested_url for r in only_localhost.followed] == [f"http://localhost:{server.port}/other.zip"]


def test_too_many_redirects_and_non_http_targets_are_refused(ws, server):
    server.route("/loop", Redirect("/loop"))
    r = _get(ws, server.url("/loop"), AcquireOptions(retries=0, max_redirects=3)).record
    assert not r.complete and r.reason == "too many redirects: more than 3 (raise --max-redirects)"
    assert len(r.exchanges) == 4
    server.route("/ftp", Redirect("ftp://example.org/x"))
    r = _get(ws, server.url("/ftp")).record
    assert r.reason == "redirect to a non-HTTP URL refused: ftp://example.org/x"


def test_a_stored_file_is_never_overwritten_and_changes_are_found(ws, server):
    url = server.route("/same.bin", File(DATA))
    first = _get(ws, url).record
    second = _get(ws, url).record
    assert second.path == first.path and any("already stored" in n for n in second.notes)
    path = Path(first.path)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    checked, problems = verify_acquisitions(ws[0])
    assert checked == 2 and any("changed: SHA-256" in p for p in problems) and any("writable" in p for p in problems)
    third = _get(ws, url).record  # the altered file is kept as it is, as evidence; the new copy beside it
    assert Path(third.path).name == f"{third.id}-same.bin" and Path(third.path).read_bytes() == DATA
    assert any(n.startswith("WARNING") and "altered after its acquisition" in n for n in third.notes)


def test_an_edited_record_no_longer_matches_its_audit_entry(ws, server):
    from sqlalchemy import text

    r = _get(ws, server.route("/f.bin", File(DATA))).record
    store = ws[0]
    with store.engine.begin() as conn:
        row = conn.execute(text("SELECT record FROM acquisitions WHERE id = :i"), {"i": r.id}).scalar()
        doc = json.loads(row) if isinstance(row, str) else row
        doc["requested_url"] = "http://innocent.example/"
        conn.execute(text("UPDATE acquisitions SET record = :r WHERE id = :i"), {"r": json.dumps(doc), "i": r.id})
    _checked, problems = verify_acquisitions(store)
    assert problems == [
        f"acquisition {r.id} ({r.requested_url}): its record was altered (its SHA-256 no longer matches the stored one)"
    ]


def test_two_acquisitions_of_one_url_do_not_share_a_part_file(ws, server):
    import fcntl

    url = server.route("/kit.bin", File(DATA))
    folder = Path(ws[1]) / "acquired" / "partial" / hashlib.sha256(url.encode()).hexdigest()[:32]
    folder.mkdir(parents=True)
    with open(folder / "lock", "w") as held:  # as another running acquisition holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UsageError, match="another acquisition of .* is running"):
            _get(ws, url)
    assert _get(ws, url).record.complete


def test_not_an_http_url_is_a_usage_error(ws):
    with pytest.raises(UsageError, match="not an http"):
        _get(ws, "ftp://example.org/kit.zip")
    with pytest.raises(UsageError, match="contradict"):
        _get(ws, "https://example.org/", AcquireOptions(insecure=True, ca_bundle=__file__))


@pytest.mark.parametrize(
    ("url", "disposition", "page", "name"),
    [
        ("http://h/a/kit%20v2.zip?x=1", None, False, "kit v2.zip"),
        ("http://h/dl?id=7", 'attachment; filename="seller kit.7z"', False, "seller kit.7z"),
        ("http://h/dl", "attachment; filename*=UTF-8''%E4%BA%BA%E8%84%B8.zip", False, "人脸.zip"),
        ("http://h/dl", 'attachment; filename="../../etc/passwd"', False, "_.._etc_passwd"),
        ("http://h/", None, False, "download"),
        ("http://h/", None, True, "index.html"),
        ("http://h/post/42", None, True, "42.html"),
    ],
)
def test_file_names_come_from_the_server_and_stay_inside_their_folder(url, disposition, page, name):
    assert filename_for(url, disposition, page) == name


# -- where facetrace may connect (issue: server-side requests to internal addresses) ---------------

PUBLIC_IP = "93.184.215.14"  # a globally routable address; the loopback_only fixture never lets a test reach it


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "0x7f000001",
        "2130706433",
        "127.1",
        "localhost",
        "169.254.169.254",
        "10.0.0.7",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
    ],
)
def test_internal_addresses_are_refused_by_default_before_connecting(ws, server, loopback_only, host):
    url = f"http://{host}:{server.port}/kit.zip"
    server.route("/kit.zip", File(DATA))
    r = _get(ws, url, lab_networks=()).record
    assert not r.complete and r.reason.startswith(f"address refused for {url}: ")
    assert "--lab-network" in r.reason and server.log == [] and loopback_only == []
    [refused] = r.exchanges  # the refused request is in the custody record, with no response
    assert refused.url == url and refused.status is None and refused.error == r.reason
    assert r.settings["lab_networks"] == []


def test_a_redirect_to_an_internal_address_is_refused_and_each_hop_recorded(ws, server, loopback_only):
    lab = ("127.0.0.1/32",)  # the test server's own address only: every other internal one stays refused
    for n, target in enumerate(
        [
            "http://169.254.169.254/latest/meta-data/",
            f"http://127.0.0.2:{server.port}/x",
            f"http://[::1]:{server.port}/x",
            f"http://0x7f000002:{server.port}/x",
            "http://10.1.2.3/",
            "http://[fe80::1]/",
            "http://224.0.0.1/",
        ]
    ):
        url = server.route(f"/share/{n}", Redirect(target))
        r = _get(ws, url, lab_networks=lab).record
        assert not r.complete and r.reason.startswith(f"redirect to {target} refused (hop 1): "), r.reason
        assert [(h["from"], h["to"]) for h in r.redirects] == [(url, target)]
        assert [e.url for e in r.exchanges] == [url, target] and r.exchanges[1].error == r.reason
        assert r.exchanges[1].status is None and r.settings["lab_networks"] == ["127.0.0.1/32"]
    assert [e["path"] for e in server.log] == [f"/share/{n}" for n in range(7)]
    assert set(loopback_only) == {"127.0.0.1"}  # nothing else was even tried


def test_a_name_that_resolves_inside_is_refused_and_the_answer_recorded(ws, server, fake_dns, loopback_only):
    fake_dns.answer("files.inside.test", ["127.0.0.1"])
    fake_dns.answer("mixed.inside.test", [PUBLIC_IP, "10.0.0.9"])  # one internal answer is enough to refuse
    for name, why in (("files.inside.test", "127.0.0.1 (loopback)"), ("mixed.inside.test", "10.0.0.9 (private)")):
        url = f"http://{name}:{server.port}/kit.zip"
        r = _get(ws, url, lab_networks=()).record
        assert not r.complete and r.reason.startswith(f"address refused for {url}: {name!r} resolves to {why}")
    assert server.log == [] and loopback_only == []


def test_the_connection_goes_to_the_address_that_was_checked(ws, server, fake_dns, loopback_only):
    # DNS rebinding: the first answer is public, the next ones loopback. The connection must go to
    # the checked (public) address, which the test refuses to reach, never to a fresh answer.
    fake_dns.answer("rebind.test", [PUBLIC_IP], ["127.0.0.1"])
    server.route("/kit.zip", File(DATA))
    r = _get(ws, f"http://rebind.test:{server.port}/kit.zip", lab_networks=()).record
    assert not r.complete and r.reason == f"connection refused by rebind.test:{server.port}"
    assert fake_dns.lookups["rebind.test"] == 1 and loopback_only == [PUBLIC_IP] and server.log == []


def test_a_pinned_connection_keeps_the_host_name_for_the_host_header_sni_and_certificate(ws, tmp_path, fake_dns):
    cert, key = self_signed_cert(tmp_path)  # names localhost and 127.0.0.1, not other.test
    fake_dns.answer("localhost", ["127.0.0.1"])
    fake_dns.answer("other.test", ["127.0.0.1"])
    with LoopbackServer(tls=(cert, key)) as tls:
        tls.route("/kit.zip", File(DATA))
        ok = _get(ws, f"https://localhost:{tls.port}/kit.zip", AcquireOptions(retries=0, ca_bundle=str(cert))).record
        assert ok.complete and ok.sha256 == SHA and ok.server == f"127.0.0.1:{tls.port}"
        assert tls.sni == ["localhost"] and tls.log[-1]["headers"]["Host"] == f"localhost:{tls.port}"
        # the same address under a name the certificate does not carry: refused, although it names 127.0.0.1
        bad = _get(ws, f"https://other.test:{tls.port}/kit.zip", AcquireOptions(retries=0, ca_bundle=str(cert))).record
        assert not bad.complete and bad.reason.startswith("TLS error with other.test: certificate verify failed")
        assert "other.test" in bad.reason and tls.sni[-1] == "other.test"


def test_through_a_proxy_only_literal_internal_targets_are_refused(ws, server, loopback_only):
    # the proxy (the operator's choice, here on loopback) resolves names itself: facetrace can only
    # refuse what the URL names outright
    proxy = f"http://127.0.0.1:{server.port}"
    server.route("/kit.bin", File(b"via the proxy"))
    r = _get(ws, "http://files.example.invalid/kit.bin", AcquireOptions(retries=0, proxy=proxy), lab_networks=()).record
    assert r.complete and server.proxied == ["http://files.example.invalid/kit.bin"]
    for target in ("http://169.254.169.254/kit.bin", "http://localhost/kit.bin", "http://0x0a000001/kit.bin"):
        r = _get(ws, target, AcquireOptions(retries=0, proxy=proxy), lab_networks=()).record
        assert not r.complete and r.reason.startswith(f"address refused for {target}: "), r.reason
    assert len(server.proxied) == 1 and set(loopback_only) == {"127.0.0.1"}


def test_follow_stays_on_the_page_port_unless_another_is_allowed(ws, server):
    with LoopbackServer() as other:
        other.route("/admin", File(b"another service on the same host"))
        url = server.route(
            "/post/9",
            File(
                f'<a href="http://127.0.0.1:{other.port}/admin">x</a><a href="/kit.zip">kit</a>'.encode(),
                content_type="text/html",
            ),
        )
        server.route("/kit.zip", File(DATA))
        result = _get(ws, url, AcquireOptions(retries=0, follow_depth=1))
        assert [r.requested_url for r in result.followed] == [server.url("/kit.zip")] and other.log == []
        allowed = _get(ws, url, AcquireOptions(retries=0, follow_depth=1, allow_hosts=(f"127.0.0.1:{other.port}",)))
        assert [r.requested_url for r in allowed.followed] == [other.url("/admin")]


def test_a_bad_lab_network_is_a_usage_error(ws):
    with pytest.raises(UsageError, match="not a network"):
        _get(ws, "http://127.0.0.1/x", lab_networks=("127.0.0.300/8",))
