from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest
from PIL import Image

from scanner.media.sniff import claims_image, sniff
from scanner.models import Kind


def _img(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    "fmt,mime",
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_images_detected_by_content(fmt, mime):
    assert sniff(_img(fmt)[:8192]) == (mime, Kind.IMAGE)


def test_archives_detected_by_content():
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("a.txt", "x")
    assert sniff(zbuf.getvalue()) == ("application/zip", Kind.ARCHIVE)
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    assert sniff(tbuf.getvalue()[:8192]) == ("application/x-tar", Kind.ARCHIVE)
    assert sniff(gzip.compress(tbuf.getvalue())[:8192]) == ("application/gzip", Kind.ARCHIVE)


def test_text_empty_and_binary():
    assert sniff(b"hello, this is text") == ("text/plain", Kind.OTHER)
    assert sniff("价格表: 每人20元".encode("gbk")) == ("text/plain", Kind.OTHER)
    assert sniff(b"") == ("application/x-empty", Kind.OTHER)
    assert sniff(bytes(range(256)))[0] == "application/octet-stream"
    assert sniff(b"BM but only text") == ("text/plain", Kind.OTHER)


def test_claims_image_by_extension():
    assert claims_image("a/b/photo.JPG") and claims_image("x.heic")
    assert not claims_image("notes.txt") and not claims_image("jpg")
