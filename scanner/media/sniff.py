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
ARCHIVE_MIMES = {"application/zip", "application/x-tar", "application/gzip", "application/x-7z-compressed",
                 "application/x-bzip2", "application/x-xz"}
VIDEO_MIMES_PREFIX = "video/"

IMAGE_EXTENSIONS = {
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff",
    ".heic", ".heif", ".avif",
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
    if header[:2] == b"BM" and len(header) >= 26 and header[14:15] in (b"\x0c", b"\x28", b"\x38", b"\x40", b"\x6c", b"\x7c"):
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
