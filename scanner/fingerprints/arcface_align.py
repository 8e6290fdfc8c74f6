"""Face crops aligned to the ArcFace 5-point template, for embedders trained on such crops.

dlib's ResNet takes its own 150x150 chip (dlib's 5-point model: eye corners and the base of the
nose). Most later face embedders (insightface's ArcFace models, MobileFace, MobileFaceNet) were
trained on crops made by one similarity transform (rotation, uniform scale, shift) that takes
five points (the two eye centres, the nose tip, the two mouth corners) as close as possible to a
fixed template in a 112x112 image; the VGGFace2 MobileNet of docs/embedders.md was trained on
looser detector boxes but does best on this crop too (measured there). dlib's 5-point
model has no mouth corners, so the points come from dlib's 68-point model (installed with
face_recognition_models, `face_recognition.face_landmarks(model="large")` uses the same file):
the eye centres are the means of each eye's six contour points, the nose tip is point 30, the
mouth corners are points 48 and 54.

The transform is the least-squares similarity (Umeyama 1991, without reflection); the crop is
sampled bilinearly, both in numpy, at any output size: the template is scaled to it, so a
224x224 model gets a crop made in one resampling, not a 112x112 crop enlarged. A face much
larger than the crop is first reduced by a whole factor (Pillow's box filter), or bilinear
sampling would skip pixels (aliasing). Coordinates count pixel centres as integers, as dlib's
landmarks do.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# The standard ArcFace template (insightface), x then y in a 112x112 crop: the left eye of the
# image (the person's right eye), the right eye, the nose tip, the left and right mouth corners.
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


def five_points(shape68: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks ([68, 2], x then y) -> the template's 5 points ([5, 2])."""
    p = np.asarray(shape68, dtype=np.float64)
    return np.stack([p[36:42].mean(axis=0), p[42:48].mean(axis=0), p[30], p[48], p[54]])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity matrix that takes the points `src` closest to `dst` (least squares)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a similarity
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / s.var(axis=0).sum()
    return np.hstack([scale * rot, (md - scale * rot @ ms)[:, None]])


def crop(image, points: np.ndarray, size: int = 112) -> np.ndarray:
    """The [size, size, 3] uint8 crop of an RGB PIL image aligned on the template by `points`."""
    m = similarity(points, ARCFACE_112 * (size / 112.0))
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # output pixels per image pixel
    factor = int(1 / (2 * scale)) if scale < 0.5 else 1
    if factor > 1:
        image = image.reduce(factor)
        # reduced pixel r covers pixels factor * r to factor * r + factor - 1: its centre is at
        # factor * r + (factor - 1) / 2 of the image
        half = (factor - 1) / 2
        m = m @ np.array([[factor, 0, half], [0, factor, half], [0, 0, 1.0]])
    inverse = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    return _warp(image, inverse, size)


def _warp(image, inverse: np.ndarray, size: int) -> np.ndarray:
    """Sample an RGB PIL image bilinearly at inverse @ (x, y, 1) for each output pixel (x, y).

    In numpy rather than Pillow's affine transform, whose bilinear filter truncates 8-bit results
    (Pillow 13: a ramp shifted by 0.75 px comes out shifted by 0, every value half a level dark
    on average). Pixels outside the image are black, as in Pillow.
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    # only the part of the image the crop samples is converted to an array
    width, height = image.size
    box = (
        min(max(int(np.floor(sx.min())), 0), width),
        min(max(int(np.floor(sy.min())), 0), height),
        min(max(int(np.floor(sx.max())) + 2, 0), width),
        min(max(int(np.floor(sy.max())) + 2, 0), height),
    )
    if box[0] >= box[2] or box[1] >= box[3]:
        return np.zeros((size, size, 3), np.uint8)
    part = np.asarray(image.crop(box).convert("RGB"), dtype=np.float32)
    h, w = part.shape[:2]
    # a border of black pixels (1 before, 2 after) so every neighbour of a point in [-1, w] is there
    padded = np.zeros((h + 3, w + 3, 3), np.float32)
    padded[1 : h + 1, 1 : w + 1] = part
    sx, sy = sx - box[0], sy - box[1]
    outside = (sx < -1) | (sx > w) | (sy < -1) | (sy > h)
    sx[outside], sy[outside] = -1.0, -1.0  # the black border, exactly
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0).astype(np.float32)[..., None], (sy - y0).astype(np.float32)[..., None]
    flat, stride = padded.reshape(-1, 3), w + 3
    idx = (y0.astype(np.intp) + 1) * stride + x0.astype(np.intp) + 1
    a, b = np.take(flat, idx, axis=0), np.take(flat, idx + 1, axis=0)
    c, d = np.take(flat, idx + stride, axis=0), np.take(flat, idx + stride + 1, axis=0)
    top = a + (b - a) * fx
    bottom = c + (d - c) * fx
    return np.clip(np.rint(top + (bottom - top) * fy), 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _predictor68():
    import dlib

    from scanner.fingerprints.faces import _models_package

    return dlib.shape_predictor(_models_package().pose_predictor_model_location())


def landmarks68(pixels: np.ndarray, boxes) -> list[np.ndarray]:
    """dlib's 68 landmarks ([68, 2] x then y) of each (top, right, bottom, left) box of an RGB array."""
    import dlib

    predict = _predictor68()
    out = []
    for top, right, bottom, left in boxes:
        shape = predict(pixels, dlib.rectangle(left, top, right, bottom))
        out.append(np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64))
    return out


def aligned_crops(image, boxes, size: int = 112) -> np.ndarray:
    """[n, size, size, 3] uint8 template-aligned crops of the faces in `boxes` of an RGB PIL image."""
    pixels = np.asarray(image)
    crops = [crop(image, five_points(s), size) for s in landmarks68(pixels, boxes)]
    return np.stack(crops) if crops else np.empty((0, size, size, 3), np.uint8)
