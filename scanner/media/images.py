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
            "(possible decompression bomb): not decoded")
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
    try:
        orientation = int(im.getexif().get(ORIENTATION_TAG, 1) or 1)
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
    return DecodedImage(rgb, fmt, orientation if orientation in range(1, 9) else 1, frames,
                        opened if frames > 1 else None)


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
