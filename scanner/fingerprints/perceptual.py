"""64-bit perceptual hashes (pHash and dHash) of an upright image, via imagehash."""

from __future__ import annotations

NAME = "imagehash-phash-dhash-64"


def hasher_version() -> str:
    from importlib.metadata import version

    return f"imagehash {version('imagehash')}"


def perceptual_hashes(image) -> tuple[str, str]:
    """Return (pHash, dHash) of a PIL image as 16-hex-digit strings (64 bits each)."""
    import imagehash

    return str(imagehash.phash(image, hash_size=8)), str(imagehash.dhash(image, hash_size=8))
