"""Detect a member's type from its first bytes, never from its name.

A seller can name anything `.jpg`; the name is only used to explain a mismatch ("named .jpg but
holds text").
"""

from __future__ import annotations

import posixpath

from scanner.models import Kind

HEADER_BYTES = 8192  # enough for every signature we test, tar's "ustar" at offset 257 included

IMAGE_MIMES = {
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "image/heic",
    "image/heif",
    "image/avif",
}
ARCHIVE_MIMES = {
    "application/zip",
    "application/x-tar",
    "application/gzip",
    "application/x-7z-compressed",
    "application/x-bzip2",
    "application/x-xz",
}
VIDEO_MIMES_PREFIX = "video/"

IMAGE_EXTENSIONS = {
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".webp",
    ".gif",
    ".bmp",
    ".dib",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
    ".avif",
}


def sniff(header: bytes) -> tuple[str, Kind]:
    """Return (MIME type, kind) of a member from its first bytes."""
    if not header:
        return "application/x-empty", Kind.OTHER
    mime = _magic(header)
    if mime in IMAGE_MIMES:
        return mime, Kind.IMAGE
    if mime in ARCHIVE_MIMES:
        return mime, Kind.ARCHIVE
    if mime.startswith(VIDEO_MIMES_PREFIX):
        return mime, Kind.VIDEO
    return mime, Kind.OTHER


def _magic(header: bytes) -> str:
    # BMP's two-byte "BM" signature is checked strictly (filetype accepts any "BM" text file).
    if (
        header[:2] == b"BM"
        and len(header) >= 26
        and header[14:15] in (b"\x0c", b"\x28", b"\x38", b"\x40", b"\x6c", b"\x7c")
    ):
        return "image/bmp"
    import filetype  # light, pure Python; imported late to keep `facetrace --help` instant

    kind = filetype.guess(header)
    if kind is not None and kind.mime != "image/bmp":
        return {"application/x-gzip": "application/gzip"}.get(kind.mime, kind.mime)
    if len(header) > 262 and header[257:262] == b"ustar":
        return "application/x-tar"
    if _looks_like_text(header):
        return "text/plain"
    return "application/octet-stream"


def _looks_like_text(header: bytes) -> bool:
    if b"\x00" in header:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            header.decode(encoding)
            return True
        except UnicodeDecodeError as exc:
            # a multi-byte character cut by the end of the header is still text
            if exc.start >= len(header) - 4:
                return True
    return False


def claims_image(name: str) -> bool:
    """Return True when a member's name says it is an image."""
    return posixpath.splitext(name.lower())[1] in IMAGE_EXTENSIONS


_POINT = None
_PRICE_WORDS = (
    "price",
    "yuan",
    "usd",
    "rmb",
    "per person",
    "for sale",
    "wechat",
    "telegram",
    "元",
    "价格",
    "每人",
    "出售",
    "一套",
    "打包",
    "微信",
)


def content_hint(name: str, header: bytes, mime: str) -> str | None:
    """What a small non-media file is for, from its name and first bytes: the sidecars of a traded kit.

    "landmarks" (face landmark or annotation point lists: .pts, or text/JSON holding five or more
    coordinate pairs), "price_list" (a seller's note naming prices or contacts), "readme".
    """
    import re

    global _POINT
    if _POINT is None:
        _POINT = re.compile(rb"-?\d+(?:\.\d+)?\s*[, \t]\s*-?\d+(?:\.\d+)?")
    lower = name.lower()
    base = posixpath.basename(lower)
    if lower.endswith(".pts") or header.startswith(b"version: 1") and b"n_points" in header[:200]:
        return "landmarks"
    if not (mime.startswith("text/") or mime in ("application/json", "application/octet-stream")) or b"\x00" in header:
        return None
    if len(_POINT.findall(header)) >= 5 and (
        lower.endswith((".txt", ".json", ".pts", ".csv", ".xml")) or mime == "application/json"
    ):
        return "landmarks"
    try:
        text = header.decode("utf-8").lower()
    except UnicodeDecodeError:
        text = header.decode("gb18030", "replace").lower()
    if any(w in text for w in _PRICE_WORDS):
        return "price_list"
    if base.startswith(("readme", "read_me", "说明", "使用说明")):
        return "readme"
    return None
