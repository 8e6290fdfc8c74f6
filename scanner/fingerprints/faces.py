"""Face detection and 128-d encodings.

`FaceEngine` is the small interface every embedder implements; its `name` and `version` are stored
beside every encoding, because encodings from different engines must never be compared.
`DlibFaceEngine` is face_recognition on dlib: HOG (default) or CNN detection on a reduced copy of
the image, then landmarks and the ResNet encoding on the full-resolution image.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from functools import lru_cache
from typing import Protocol

from scanner.errors import DependencyError
from scanner.media.images import reduced_copy
from scanner.models import Face, FaceBox, ScanOptions

INSTALL_HINT = "install facetrace with its dependencies: `make setup` (uv sync) in the facetrace checkout"


class FaceEngine(Protocol):
    name: str
    version: str

    def faces(self, image) -> list[Face]:
        """Return every face of an upright RGB PIL image, boxes in its own pixel coordinates."""
        ...


def _face_recognition():
    try:
        with warnings.catch_warnings():
            # face_recognition_models imports pkg_resources, which warns that it is deprecated
            warnings.simplefilter("ignore")
            import face_recognition
            import face_recognition_models  # noqa: F401
    except ImportError as exc:
        raise DependencyError(f"face_recognition is not importable ({exc}); {INSTALL_HINT}") from None
    return face_recognition


class DlibFaceEngine:
    """face_recognition 1.3 on dlib: the reference engine."""

    name = "face_recognition-dlib-resnet-v1"

    def __init__(self, options: ScanOptions):
        self.options = options
        self._fr = _face_recognition()
        self.version = engine_versions()["face_recognition"]

    def faces(self, image) -> list[Face]:
        import numpy as np

        fr = self._fr
        opts = self.options
        small, scale = reduced_copy(image, opts.detect_max_side)
        boxes = fr.face_locations(np.asarray(small), number_of_times_to_upsample=opts.upsample, model=opts.detector)
        if not boxes:
            return []
        width, height = image.size
        full_boxes = [_scale_box(b, scale, width, height) for b in boxes]
        encodings = fr.face_encodings(np.asarray(image), known_face_locations=full_boxes, num_jitters=1, model="small")
        return [
            Face(FaceBox(*box), tuple(float(v) for v in enc))
            for box, enc in zip(full_boxes, encodings, strict=True)
        ]


def _scale_box(box, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    top, right, bottom, left = box
    if scale != 1.0:
        top, right, bottom, left = (round(v * scale) for v in (top, right, bottom, left))
    return max(top, 0), min(right, width), min(bottom, height), max(left, 0)


@lru_cache(maxsize=1)
def engine_versions() -> dict[str, str]:
    """Return the versions of every package that shapes an encoding."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("face-recognition", "face-recognition-models", "dlib-bin", "imagehash", "pillow", "numpy"):
        try:
            out[dist.replace("-", "_")] = version(dist)
        except PackageNotFoundError:
            out[dist.replace("-", "_")] = "not installed"
    return out


@lru_cache(maxsize=1)
def model_file_checksums() -> dict[str, str]:
    """Return SHA-256 of each dlib model file face_recognition uses (about 30 MB, hashed once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import face_recognition_models as frm
        except ImportError as exc:
            raise DependencyError(f"face_recognition_models is not importable ({exc}); {INSTALL_HINT}") from None
    files = [
        frm.pose_predictor_five_point_model_location(),
        frm.face_recognition_model_location(),
        frm.cnn_face_detector_model_location(),
    ]
    out = {}
    for path in files:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[os.path.basename(path)] = h.hexdigest()
    return out
