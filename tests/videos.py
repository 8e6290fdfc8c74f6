"""Videos made by the tests from real photos: slideshows, still-photo animations, re-encoded copies."""

from __future__ import annotations

from pathlib import Path

SIZE = 256


def fit(image, size: int = SIZE):
    """The photo centred on a black square of `size` pixels (even sides, as H.264 wants)."""
    from PIL import Image

    image = image.convert("RGB")
    scale = size / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    out = Image.new("RGB", (size, size))
    out.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return out


def write_video(
    path: Path, frames, fps: int = 10, codec: str = "libx264", size: int | None = None, bit_rate: int | None = None
) -> Path:
    """Encode PIL frames into `path` (the container follows the suffix)."""
    import av

    frames = list(frames)
    size = size or frames[0].width
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        if bit_rate:
            stream.bit_rate = bit_rate
        for image in frames:
            if image.width != size:
                image = image.resize((size, size))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def slideshow(photos, seconds_each: float = 2.0, fps: int = 10):
    """Frames showing each photo for `seconds_each`."""
    from PIL import Image

    for p in photos:
        image = fit(Image.open(p))
        for _ in range(round(seconds_each * fps)):
            yield image


def still_animation(photo, seconds: float = 5.0, fps: int = 10):
    """Frames that pan and zoom slowly over one still photo: what liveness-defeating clips do."""
    import math

    from PIL import Image

    base = fit(Image.open(photo), SIZE + 32)
    n = round(seconds * fps)
    for i in range(n):
        zoom = 1.0 + 0.06 * math.sin(i / n * math.pi)
        side = (SIZE + 16) / zoom
        cx = (SIZE + 32) / 2 + 6 * math.sin(i / 7)
        cy = (SIZE + 32) / 2 + 4 * math.cos(i / 9)
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        yield base.resize((SIZE, SIZE), Image.BILINEAR, box=box)


def reencode(src: Path, dst: Path, codec: str = "mpeg4", size: int = 192, bit_rate: int = 300_000) -> Path:
    """Decode `src` and encode it again, smaller and with another codec."""
    import av

    with av.open(str(src)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
        fps = int(round(float(container.streams.video[0].average_rate or 10)))
    return write_video(dst, frames, fps=fps, codec=codec, size=size, bit_rate=bit_rate)
