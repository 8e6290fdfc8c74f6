"""Request bodies are limited while they stream (issue item 5): an anonymous caller cannot make the
service hold more than the limits, and an oversized body is refused before it is read.

Raw sockets on a loopback server: the test sends the headers (and part of a body), then reads the
answer without sending the rest. A server that waits for the whole body never answers, and the
test fails on its socket timeout."""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import requests

BOUNDARY = "facetrace-test-boundary"
FORM = f"multipart/form-data; boundary={BOUNDARY}"


def _exchange(url: str, method: str, path: str, headers: dict, chunks=(), timeout: float = 10.0):
    """Send the request line and headers, then `chunks` (raw bytes), and read the answer; never send more."""
    port = urlsplit(url).port
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        )
        sock.sendall(head.encode())
        for chunk in chunks:
            sock.sendall(chunk)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()
    finally:
        sock.close()


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    kind = "Content-Type: image/jpeg\r\n" if filename else ""
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + value + b"\r\n"


def _error(body: bytes) -> dict:
    return json.loads(body)["error"]


def test_a_declared_oversized_enrollment_is_refused_before_its_body_is_read(live):
    _app, url = live()
    t = time.monotonic()
    status, body = _exchange(url, "POST", "/v1/subjects", {"Content-Type": FORM, "Content-Length": str(1 << 30)})
    assert status == 413 and _error(body)["code"] == "too_large", body
    assert str(64 << 20) in _error(body)["message"]
    assert time.monotonic() - t < 5  # answered at once, not after a gigabyte
    status, body = _exchange(url, "POST", "/enroll", {"Content-Type": FORM, "Content-Length": str(1 << 30)})
    assert status == 413 and b"data-code='too_large'" in body  # the page gets a page


def test_an_oversized_photo_is_refused_while_it_streams(live):
    _app, url = live(max_photo_bytes=100_000, max_form_bytes=1_000_000)
    start = _part("consent", b"true") + _part("consent_version", b"1")
    photo = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\n'.encode()
    chunks = [_chunked(start + photo)] + [_chunked(b"\xff" * 10_000) for _ in range(12)]  # 120 kB, no end
    status, body = _exchange(
        url, "POST", "/v1/subjects", {"Content-Type": FORM, "Transfer-Encoding": "chunked"}, chunks
    )
    assert status == 413 and _error(body)["code"] == "too_large"
    assert "100000" in _error(body)["message"] and "photo" in _error(body)["message"]


def test_an_undeclared_body_past_the_form_limit_is_refused_while_it_streams(live):
    _app, url = live(max_photo_bytes=200_000, max_form_bytes=300_000)
    chunks = [_chunked(_part("photos", b"\xff" * 190_000, f"{i}.jpg")) for i in range(2)]  # 380 kB, no end
    status, body = _exchange(
        url, "POST", "/v1/subjects", {"Content-Type": FORM, "Transfer-Encoding": "chunked"}, chunks
    )
    assert status == 413 and _error(body)["code"] == "too_large" and "300000" in _error(body)["message"]


def test_too_many_photos_are_refused(live):
    _app, url = live(max_photos=5)
    files = [("photos", (f"{i}.jpg", b"not a photo", "image/jpeg")) for i in range(6)]
    r = requests.post(f"{url}/v1/subjects", files=files, data={"consent": "true", "consent_version": "1"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text
    assert "at most 5 photos" in r.json()["error"]["message"]


def test_a_body_that_does_not_arrive_in_time_is_refused(live):
    _app, url = live(form_timeout_s=1.0)
    t = time.monotonic()
    status, body = _exchange(
        url, "POST", "/v1/subjects", {"Content-Type": FORM, "Content-Length": "5000"}, [_part("consent", b"true")]
    )
    assert status == 408 and _error(body)["code"] == "too_slow"
    assert time.monotonic() - t < 5


def test_other_routes_take_small_bodies_only(live):
    _app, url = live()
    # no key is needed to be refused: the body is not read (FastAPI reads a JSON body before the key check)
    status, body = _exchange(
        url, "POST", "/v1/keys", {"Content-Type": "application/json", "Content-Length": str(100 << 20)}
    )
    assert status == 413 and _error(body)["code"] == "too_large"
    status, body = _exchange(
        url,
        "PUT",
        "/v1/subjects/0123456789abcdef/webhook",
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        [_chunked(b'{"url": "' + b"x" * 70_000)],
    )
    assert status == 413 and _error(body)["code"] == "too_large"
