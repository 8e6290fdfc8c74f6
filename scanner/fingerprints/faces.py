"""Face detection and 128-d encodings.

`FaceEngine` is the small interface every embedder implements; its `name` and `version` are stored
beside every encoding, because encodings from different models must never be compared. Its
`runtime` says what executed the model; it is recorded with each scan, not with each encoding,
because two runtimes of one model are held to the same output (within 1e-4, tested).

- `DlibFaceEngine` (`--engine dlib`) is face_recognition on dlib, the reference: HOG (default) or
  CNN detection on a reduced copy of the image, then landmarks and the ResNet encoding on the
  full-resolution image.
- `OnnxFaceEngine` (`--engine onnx`, the default) detects with scanner/fingerprints/hog.py, a
  compiled (numba) re-implementation of dlib's HOG detector that gives dlib's rectangles box for
  box and about twice as fast (the CNN detector is dlib's own), finds landmarks and aligns
  exactly as the reference does (the same dlib calls), then runs dlib's ResNet as an ONNX graph
  built from the same installed model file (scanner/fingerprints/onnxnet.py). It is 10x or more
  faster per face (docs/performance.md). Its `located` (boxes and aligned chips: everything
  before the network) and `describe` (the network, on any number of chips) let a worker send the
  faces of several photos or video frames through the network in one call: the output of a chip
  does not depend on the chips beside it (tested), and one call for several photos costs about a
  fifth less per face than one call per photo.
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


ENGINES = ("onnx", "dlib", "model")  # "model": the workspace's pinned ONNX model (modelfile.py)
# One name for both engines: they compute one model's function (the same model file, alignment
# and output within 1e-4), so their encodings are comparable and a registry enrolled with one is
# searched with the other. The runtime is recorded with each scan.
EMBEDDER = "face_recognition-dlib-resnet-v1"
CHIP = 150  # the network's aligned face chips: 150x150 RGB
NET_BATCH = 32  # chips per network call at most (ONNX Runtime's working memory grows with it)


class FaceEngine(Protocol):
    name: str
    version: str
    runtime: str

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

    name = EMBEDDER
    batches = False  # True: `located` and `describe` split `faces`, for batches across images

    def __init__(self, options: ScanOptions):
        self.options = options
        self._fr = _face_recognition()
        self.version = engine_versions()["face_recognition"]
        self.runtime = engine_runtime("dlib")

    def _locate(self, pixels) -> list[tuple[int, int, int, int]]:
        return self._fr.face_locations(
            pixels, number_of_times_to_upsample=self.options.upsample, model=self.options.detector
        )

    def boxes(self, image) -> list[tuple[int, int, int, int]]:
        """Detect faces on a reduced copy; return (top, right, bottom, left) boxes in `image`'s pixels."""
        import numpy as np

        small, scale = reduced_copy(image, self.options.detect_max_side)
        found = self._locate(np.asarray(small))
        width, height = image.size
        return [_scale_box(b, scale, width, height) for b in found]

    def encodings(self, pixels, boxes) -> list:
        return self._fr.face_encodings(pixels, known_face_locations=boxes, num_jitters=1, model="small")

    def faces(self, image) -> list[Face]:
        import numpy as np

        boxes = self.boxes(image)
        if not boxes:
            return []
        return faces_from(boxes, self.encodings(np.asarray(image), boxes))


class OnnxFaceEngine(DlibFaceEngine):
    """The reference's detection, landmarks and alignment; dlib's ResNet run by ONNX Runtime.

    It makes face_recognition's dlib calls itself, with the same model files, instead of importing
    face_recognition: that import loads the 68-point landmark model and dlib's own ResNet, about
    130 MB in every worker that this engine never uses.
    """

    batches = True

    def __init__(self, options: ScanOptions):
        self.options = options
        self.version = engine_versions()["face_recognition"]
        self.runtime = engine_runtime("onnx")
        self._detect, self._landmarks = _dlib_models(options.detector)
        self._net = _onnx_descriptors()
        self._hog = _compiled_hog() if options.detector == "hog" else None

    def _locate(self, pixels) -> list[tuple[int, int, int, int]]:
        # face_recognition.face_locations: the detector's rectangles as (top, right, bottom, left),
        # trimmed to the image
        import numpy as np

        height, width = pixels.shape[:2]
        if self.options.detector == "cnn":
            rects = [d.rect for d in self._detect(pixels, self.options.upsample)]
            rects = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        else:
            rects = self._hog.detect(np.ascontiguousarray(pixels), self.options.upsample)
        return [
            (max(top, 0), min(right, width), min(bottom, height), max(left, 0)) for left, top, right, bottom in rects
        ]

    def _chips(self, pixels, boxes):
        import dlib
        import numpy as np

        # the 5-point landmarks and the 150x150 chip (padding 0.25) that dlib's
        # compute_face_descriptor makes from them, as face_recognition calls it: one face at a time.
        # get_face_chips (plural) shares one image pyramid among all faces, which changes a large
        # face's chip (3.8e-3 on a 714 px face of multiface/deepface_couple.jpg).
        shapes = [
            self._landmarks(pixels, dlib.rectangle(left, top, right, bottom)) for top, right, bottom, left in boxes
        ]
        if not shapes:
            return np.empty((0, CHIP, CHIP, 3), np.uint8)
        return np.stack(
            [np.asarray(dlib.get_face_chip(pixels, shape, size=CHIP, padding=0.25), dtype=np.uint8) for shape in shapes]
        )

    def located(self, image):
        """The faces of a PIL image up to the network: (boxes, [n, 150, 150, 3] uint8 chips)."""
        import numpy as np

        boxes = self.boxes(image)
        return boxes, self._chips(np.asarray(image) if boxes else None, boxes)

    def describe(self, chips):
        """The 128-d descriptors ([n, 128] float64) of aligned chips, NET_BATCH at a time."""
        import numpy as np

        if len(chips) <= NET_BATCH:
            return self._net(chips)
        return np.concatenate([self._net(chips[i : i + NET_BATCH]) for i in range(0, len(chips), NET_BATCH)])

    def faces_of(self, located: list) -> list[list[Face]]:
        """The faces of several images' `located` (boxes, chips) pairs, all their chips through
        the network together: one list of faces per pair, in order."""
        import numpy as np

        if not any(boxes for boxes, _ in located):
            return [[] for _ in located]
        descriptors = self.describe(np.concatenate([chips for boxes, chips in located if boxes]))
        found, start = [], 0
        for boxes, _ in located:
            found.append(faces_from(boxes, descriptors[start : start + len(boxes)]))
            start += len(boxes)
        return found

    def faces(self, image) -> list[Face]:
        return self.faces_of([self.located(image)])[0]

    def encodings(self, pixels, boxes) -> list:
        return list(self.describe(self._chips(pixels, boxes)))


def faces_from(boxes, encodings) -> list[Face]:
    """Faces from (top, right, bottom, left) boxes and their encodings, in order."""
    return [Face(FaceBox(*box), tuple(float(v) for v in enc)) for box, enc in zip(boxes, encodings, strict=True)]


@lru_cache(maxsize=2)
def _dlib_models(detector: str):
    """dlib's CNN detector (None for HOG, which hog.py runs) and face_recognition's 5-point
    landmark model, loaded once per process."""
    try:
        import dlib
    except ImportError as exc:
        raise DependencyError(f"dlib is not importable ({exc}); {INSTALL_HINT}") from None
    frm = _models_package()
    detect = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location()) if detector == "cnn" else None
    return detect, dlib.shape_predictor(frm.pose_predictor_five_point_model_location())


def compiled_code_cache(workspace: str) -> None:
    """Where numba keeps the HOG detector's compiled kernels: the installation's own
    scanner/fingerprints/__pycache__ (beside the .pyc files; `make setup` fills it) when it is
    writable, else the workspace's cache/numba, so that a read-only installation does not fall back
    to numba's per-user cache under $HOME. An explicit $NUMBA_CACHE_DIR is left as it is. Set
    before the worker processes start (they inherit it); numba itself is not imported here."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    tree = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    if not os.access(tree if os.path.isdir(tree) else os.path.dirname(tree), os.W_OK):
        os.environ["NUMBA_CACHE_DIR"] = os.path.join(workspace, "cache", "numba")


@lru_cache(maxsize=1)
def _compiled_hog():
    """Load the compiled HOG detector (numba: about 3 s the first time in a process, more the first
    time on a machine, when it compiles into its cache) and check it on a blank image."""
    import numpy as np

    try:
        from scanner.fingerprints import hog
    except ImportError as exc:
        raise DependencyError(f"numba is not importable ({exc}); {INSTALL_HINT}, or scan with --engine dlib") from None
    hog.detect(np.zeros((64, 64, 3), np.uint8), 1)
    return hog


@lru_cache(maxsize=1)
def _onnx_descriptors():
    """Build the ONNX graph from the installed model file, once per process (about 1 s)."""
    import gc

    from scanner.fingerprints.dlibnet import load
    from scanner.fingerprints.onnxnet import OnnxDescriptors, release_freed_memory

    try:
        descriptors = OnnxDescriptors(load())
    except ImportError as exc:
        raise DependencyError(
            f"onnxruntime or onnx is not importable ({exc}); {INSTALL_HINT}, or scan with --engine dlib"
        ) from None
    gc.collect()
    release_freed_memory()
    return descriptors


def engine_runtime(engine: str, model=None) -> str:
    """Name what executes the embedder for `engine` ("onnx", "dlib" or "model"), with its version."""
    versions = engine_versions()
    if engine == "model":
        crop = f"{model.alignment} crop {model.size}x{model.size}" if model is not None else "no model"
        return (
            f"onnxruntime {versions['onnxruntime']}; operator model {model.label if model else '?'} ({crop}); "
            f"HOG detector: facetrace hog.py (dlib's, compiled by numba {versions['numba']})"
        )
    return {
        "onnx": f"onnxruntime {versions['onnxruntime']}; "
        f"HOG detector: facetrace hog.py (dlib's, compiled by numba {versions['numba']})",
        "dlib": f"dlib {versions['dlib_bin']}",
    }[engine]


def make_engine(options: ScanOptions) -> FaceEngine:
    """Return the face engine `options.engine` names."""
    if options.engine == "model":
        from scanner.fingerprints.modelfile import OnnxModelEngine

        return OnnxModelEngine(options)
    return {"onnx": OnnxFaceEngine, "dlib": DlibFaceEngine}[options.engine](options)


def embedder_of(options: ScanOptions) -> tuple[str, str]:
    """(name, version) of the encodings a scan with these options makes: stored beside each one."""
    if options.engine == "model" and options.model is not None:
        return options.model.embedder, options.model.sha256
    return EMBEDDER, engine_versions()["face_recognition"]


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
    for dist in (
        "face-recognition",
        "face-recognition-models",
        "dlib-bin",
        "onnxruntime",
        "onnx",
        "numba",
        "imagehash",
        "pillow",
        "numpy",
    ):
        try:
            out[dist.replace("-", "_")] = version(dist)
        except PackageNotFoundError:
            out[dist.replace("-", "_")] = "not installed"
    return out


def _models_package():
    with warnings.catch_warnings():
        # face_recognition_models imports pkg_resources, which warns that it is deprecated
        warnings.simplefilter("ignore")
        try:
            import face_recognition_models
        except ImportError as exc:
            raise DependencyError(f"face_recognition_models is not importable ({exc}); {INSTALL_HINT}") from None
    return face_recognition_models


@lru_cache(maxsize=1)
def model_file_checksums() -> dict[str, str]:
    """Return SHA-256 of each dlib model file face_recognition uses (about 30 MB, hashed once)."""
    frm = _models_package()
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
