"""Decode an image once: format check, pixel-count limit, EXIF orientation, RGB conversion.

Decoding failures raise `ImageDecodeError` with a reason a person can act on; the caller turns it
into the member's "unreadable" record.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

ORIENTATION_TAG = 0x0112


class ImageDecodeError(Exception):
    """The bytes are not a decodable image; the message says why."""


@dataclass
class DecodedImage:
    image: object  # PIL.Image.Image in RGB mode, EXIF orientation applied
    format: str
    orientation: int
    capture: dict | None = None  # EXIF camera make and model, software, time taken, whether GPS is present
    frames: int = 1  # more than one: an animated GIF, WebP or PNG
    animation: object = None  # the opened multi-frame image, to iterate its frames


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode `data` into an upright RGB image, refusing more than `max_pixels` pixels."""
    from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

    _register_heif()
    # Our own limit replaces Pillow's global warning/error pair, so the reason is explicit.
    Image.MAX_IMAGE_PIXELS = None
    # face_recognition sets this to True when imported; a truncated file must be reported, not
    # silently decoded with grey padding.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageDecodeError("not a decodable image (format not recognised by Pillow)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"image header is corrupt: {exc}") from None
    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"{width}x{height} = {width * height} pixels, over the limit of {max_pixels} "
            "(possible decompression bomb): not decoded"
        )
    fmt = im.format or "unknown"
    try:
        frames = int(getattr(im, "n_frames", 1) or 1)
    except (OSError, ValueError, SyntaxError, EOFError):
        frames = 1  # a broken frame table: the first frame is still an image
    opened = im
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd but decodable files
            im.load()  # the pixels first: GIF and other multi-frame formats load their first frame
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageDecodeError(f"image data is truncated or corrupt: {exc}") from None
    capture = None
    try:
        exif = im.getexif()
        orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
        capture = capture_metadata(exif)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the picture itself
        orientation = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if orientation != 1:
                im = ImageOps.exif_transpose(im)
            rgb = _to_rgb(im)
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageDecodeError(f"image data is truncated or corrupt: {exc}") from None
    if frames > 1:
        opened.seek(0)
    return DecodedImage(
        rgb, fmt, orientation if orientation in range(1, 9) else 1, capture, frames, opened if frames > 1 else None
    )


_MAKE, _MODEL, _SOFTWARE, _DATETIME, _EXIF_IFD, _GPS_IFD, _TAKEN = (
    0x010F,
    0x0110,
    0x0131,
    0x0132,
    0x8769,
    0x8825,
    0x9003,
)


def capture_metadata(exif) -> dict | None:
    """The EXIF facts that tell how a photo was captured, or None when the photo carries none."""

    def text(value):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return None if value is None else str(value).strip("\x00 ").strip() or None

    sub = exif.get_ifd(_EXIF_IFD) if _EXIF_IFD in exif else {}
    gps = exif.get_ifd(_GPS_IFD) if _GPS_IFD in exif else {}
    out = {
        "make": text(exif.get(_MAKE)),
        "model": text(exif.get(_MODEL)),
        "software": text(exif.get(_SOFTWARE)),
        "taken": text(sub.get(_TAKEN) or exif.get(_DATETIME)),
        "gps": bool(gps),
    }
    return out if any(v for v in out.values()) else None


_heif_registered = False


def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF (phone photos) through pillow-heif, once per process."""
    global _heif_registered
    if not _heif_registered:
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
        except ImportError:  # pragma: no cover - a dependency of the package
            pass
        _heif_registered = True


def _to_rgb(im):
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(im, dtype=np.float64)
        top = float(arr.max()) or 1.0
        im = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def reduced_copy(image, max_side: int):
    """Return (copy whose longer side is at most `max_side`, scale factor from copy to original)."""
    from PIL import Image

    width, height = image.size
    longest = max(width, height)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.BILINEAR), longest / max_side
