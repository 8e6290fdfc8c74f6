"""A batch of images (one network call for all their faces) gives exactly what one image at a
time gives: same boxes, bit-identical encodings, same errors, in order."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from scanner import workers
from scanner.media.images import decode_image
from scanner.models import ScanOptions
from tests.conftest import facedata_path, jpeg_bytes

pytestmark = pytest.mark.facedata


def _items():
    root = facedata_path()
    lfw = sorted((root / "lfw_deepfunneled").glob("*/*.jpg"))[:4]
    photos = [p.read_bytes() for p in lfw]
    group = (root / "multiface" / "fr_two_people.jpg").read_bytes()
    nonface = next(p for p in sorted((root / "nonface").iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    frames = [Image.open(p).convert("RGB") for p in lfw[:3]]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=400)
    small = jpeg_bytes(Image.open(lfw[0]).convert("RGB").resize((60, 60)))
    # faces, a group photo, no face, not an image, an animation (sampled like a video), a truncated
    # JPEG, a photo too small for any face, and the first photo again (its own result, not shared)
    return [
        photos[0],
        group,
        nonface.read_bytes(),
        b"not an image at all",
        gif.getvalue(),
        photos[1][: len(photos[1]) // 2],
        photos[2],
        small,
        photos[3],
        photos[0],
    ]


def test_a_batch_equals_one_image_at_a_time():
    workers.init_worker(ScanOptions())
    items = _items()
    alone = [workers.analyse(data) for data in items]
    together = workers.analyse_many(items)
    assert together == alone  # dataclass equality: boxes, every float of every encoding, errors
    faces = [len(a.faces) for a in alone]
    assert sum(faces) >= 6 and faces[1] >= 2 and faces[2] == 0  # the batch really held faces
    assert alone[3].error and alone[4].video is not None


def test_a_chip_is_described_the_same_whatever_is_beside_it():
    workers.init_worker(ScanOptions())
    engine = workers._get_engine()
    root = facedata_path()
    chips = []
    for path in sorted((root / "multiface").glob("*.jpg"))[:3]:
        chips.append(engine.located(decode_image(path.read_bytes(), 100_000_000).image)[1])
    chips = np.concatenate(chips)
    assert len(chips) >= 5
    one_by_one = np.concatenate([engine.describe(chips[i : i + 1]) for i in range(len(chips))])
    assert np.array_equal(engine.describe(chips), one_by_one)
    assert np.array_equal(engine.describe(chips[::-1])[::-1], one_by_one)


def test_video_frames_share_network_calls_and_give_the_same_faces(monkeypatch):
    from types import SimpleNamespace

    import scanner.fingerprints.faces as faces_module
    from scanner.fingerprints.video import analyse_video_frames

    workers.init_worker(ScanOptions())
    engine = workers._get_engine()
    root = facedata_path()
    paths = sorted((root / "lfw_deepfunneled").glob("*/*.jpg"))[:5] + [root / "multiface" / "fr_two_people.jpg"]
    frames = [
        SimpleNamespace(ms=500 * i, image=decode_image(p.read_bytes(), 100_000_000).image) for i, p in enumerate(paths)
    ]

    class OneFrameAtATime:
        batches = False

        def faces(self, image):
            return engine.faces(image)

    calls = []
    monkeypatch.setattr(faces_module, "NET_BATCH", 3)  # a flush in the middle, and one at the end
    monkeypatch.setattr(engine, "describe", lambda chips, real=engine.describe: calls.append(len(chips)) or real(chips))
    batched = analyse_video_frames(frames, engine)
    batched_calls = list(calls)
    assert batched == analyse_video_frames(frames, OneFrameAtATime())
    assert len(batched[1]) >= 7 and len(batched_calls) < len(frames) and max(batched_calls) >= 3
