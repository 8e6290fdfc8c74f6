"""Build the README's demo dump from photos that scikit-image ships (no download, no ../shared).

The only person in it is scikit-image's public-domain `astronaut` photo (Eileen Collins, NASA).
The dump imitates a small traded "kit": one folder per person with re-encoded, resized, cropped,
mirrored and EXIF-rotated copies, a byte-identical duplicate, non-face pictures, a truncated JPEG,
a text file posing as a JPEG, a still-photo "liveness" clip and a re-encoded copy of it, and a zip
bundle holding a second copy of the kit.

Usage: python demo/build_demo.py OUT_DIR   (writes OUT_DIR/dump/, OUT_DIR/bundle.zip, OUT_DIR/enroll/)
"""

from __future__ import annotations

import io
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def jpeg(img: Image.Image, quality: int = 92, exif: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def write_video(path: Path, frames: list, fps: int, codec: str, size: int, bit_rate: int | None = None) -> None:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        if bit_rate:
            stream.bit_rate = bit_rate
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_image(image.resize((size, size)))))
        container.mux(stream.encode())


def liveness_clip(photo: Image.Image, seconds: int = 4, fps: int = 10) -> list:
    """A 'photo animation': slow pan and zoom over one still, as sold to defeat liveness checks."""
    import math

    side, frames = min(photo.size), []
    for i in range(seconds * fps):
        zoom = 1.0 + 0.06 * math.sin(i / (seconds * fps) * math.pi)
        crop = side / (1.1 * zoom)
        cx, cy = side / 2 + 6 * math.sin(i / 7), side / 2 + 4 * math.cos(i / 9)
        frames.append(
            photo.resize((256, 256), Image.BILINEAR, box=(cx - crop / 2, cy - crop / 2, cx + crop / 2, cy + crop / 2))
        )
    return frames


def build(out: Path) -> None:
    dump = out / "dump"
    if dump.exists():
        shutil.rmtree(dump)
    (out / "bundle.zip").unlink(missing_ok=True)
    person = dump / "person_0001"
    extras = dump / "extras"
    person.mkdir(parents=True)
    extras.mkdir(parents=True)

    astronaut = Image.fromarray(data.astronaut())  # 512x512 RGB
    w, h = astronaut.size
    files = {
        "astronaut.jpg": jpeg(astronaut, 95),
        "astronaut_q35.jpg": jpeg(astronaut, 35),
        "astronaut_large.jpg": jpeg(astronaut.resize((w * 3, h * 3), Image.LANCZOS), 90),
        "astronaut_small.jpg": jpeg(astronaut.resize((w // 2, h // 2), Image.LANCZOS), 90),
        "astronaut_crop.jpg": jpeg(astronaut.crop((w // 10, h // 10, w - w // 10, h - h // 10)), 90),
        "astronaut_mirror.png": png(astronaut.transpose(Image.FLIP_LEFT_RIGHT)),
    }
    # not a copy of any enrolled photo: rotated, re-framed and recoloured (stands in for another shot)
    selfie = astronaut.rotate(8, resample=Image.BICUBIC).crop((60, 10, 400, 370))
    files["astronaut_selfie.jpg"] = jpeg(Image.eval(selfie, lambda v: min(255, int(v * 1.15))), 85)
    # stored sideways with EXIF orientation 6 ("rotate 90 CW to view"), as phones do
    exif = Image.Exif()
    exif[0x0112] = 6
    files["astronaut_phone.jpg"] = jpeg(astronaut.transpose(Image.ROTATE_90), 90, exif.tobytes())
    for name, blob in files.items():
        (person / name).write_bytes(blob)
    shutil.copyfile(person / "astronaut.jpg", person / "astronaut_copy.jpg")  # byte-identical
    # a liveness-defeating clip made from the head crop, and a re-encoded copy of it
    clip = liveness_clip(astronaut.crop((90, 0, 370, 300)).resize((300, 300)))
    write_video(person / "astronaut_liveness.mp4", clip, 10, "libx264", 256)
    write_video(extras / "clip_reencoded.avi", clip, 10, "mpeg4", 192, 300_000)

    for name, arr in [
        ("coffee.jpg", data.coffee()),
        ("chelsea_cat.png", data.chelsea()),
        ("rocket.jpg", data.rocket()),
        ("coins.png", data.coins()),
    ]:
        img = Image.fromarray(np.asarray(arr))
        (extras / name).write_bytes(jpeg(img.convert("RGB")) if name.endswith(".jpg") else png(img))
    whole = jpeg(astronaut, 90)
    (extras / "broken.jpg").write_bytes(whole[: len(whole) // 2])  # truncated mid-scan
    (extras / "photo_0002.jpg").write_text("20 yuan a person: 20 photos and 5 videos each\n")
    (dump / "price_list.txt").write_text("kit: 1 person, 8 photos. price on request.\n")

    with zipfile.ZipFile(out / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(person.iterdir()):
            zf.write(path, f"kit/{path.name}")
        zf.writestr("kit/notes.txt", "re-packed copy of person_0001\n")
    # The person's own photos for enrolling (with consent) in the registry: each must show exactly
    # one face. At full size the HOG detector also fires on the suit's mission patch, so the demo
    # enrolls a head-and-shoulders crop, a smaller copy and an enlarged crop.
    enroll_dir = out / "enroll"
    if enroll_dir.exists():
        shutil.rmtree(enroll_dir)
    enroll_dir.mkdir()
    head = astronaut.crop((90, 0, 370, 300))
    (enroll_dir / "me_portrait.jpg").write_bytes(jpeg(head, 93))
    (enroll_dir / "me_small.jpg").write_bytes(jpeg(astronaut.resize((w // 2, h // 2), Image.LANCZOS), 88))
    (enroll_dir / "me_closeup.jpg").write_bytes(
        jpeg(head.resize((560, 600), Image.LANCZOS).crop((40, 20, 520, 560)), 90)
    )
    print(f"demo dump written to {dump} and {out / 'bundle.zip'}; enrollment photos in {enroll_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build(Path(sys.argv[1]))
