"""dlib's HOG frontal face detector re-implemented in numpy, rectangle for rectangle.

`detect(pixels, upsample)` returns the rectangles `dlib.get_frontal_face_detector()(pixels, upsample)`
returns (what face_recognition.face_locations(model="hog") calls), as (left, top, right, bottom)
in the same order; `run(pixels, upsample, adjust_threshold)` also returns their scores and
detector indices, like the detector's `run`. Input: an RGB uint8 array [H, W, 3] (dlib's
grayscale path differs and is not replicated).

What it replicates (dlib 19.x/20.0.1 sources: tools/python/src/simple_object_detector_py.h,
image_processing/{object_detector,scan_fhog_pyramid,box_overlap_testing}.h,
image_transforms/{fhog,image_pyramid,interpolation,spatial_filtering}.h):

- upsampling: `pyramid_up` with pyramid_down<2>: an image of R x C becomes (2R+1) x (2C+2) through
  dlib's RGB `resize_image` (bilinear). That function is reproduced bit for bit, float32 SIMD
  arithmetic included: the 4-lane column positions accumulated in float32 (they drift up to
  ~1e-3 px from exact positions), weights `(1-tb)*(1-lr)` etc. rounded to float32, the sum
  `((tl*w1 + tr*w2) + bl*w3) + br*w4` in float32, truncation to uint8, and the double-precision
  scalar path for the last columns. Measured: identical to dlib.resize_image and
  dlib.pyramid_down(6) on every tested size.
- the feature pyramid: pyramid_down<6> (size floor(5n/6), the same resize), as many levels as
  `scan_fhog_pyramid::load` makes (rect_down until a side is under 64 px).
- FHOG (cell 8, 31 planes, padded by the 10x10 filter size): per pixel the colour channel with the
  largest gradient, with dlib's tie rules (the 8-pixel SIMD blocks prefer the later channel, the
  scalar last columns the earlier one), orientation snapped to dlib's 9 float32 unit vectors
  (18 signed bins; a lookup table built from the same float32 products), bilinear votes into
  cells, block energies, truncation at 0.2 (as min(h, 0.2*sqrt(e))*0.1/(0.2*sqrt(e))), the 4
  texture features. Only the order of float additions differs (votes are summed in float64).
- the 5 filters from the detector dlib itself serialises (`__getstate__`, parsed here; never a
  shipped copy): dlib applies each as separable rank-1 filters from its own SVD of the 10x10
  weights (singular values under max(1e-4, 0.1% of the largest) dropped); here the same truncated
  SVD is rebuilt in float64 and applied densely (float32 GEMM to find candidates, then each
  candidate within 1e-3 of a threshold rescored in float64).
- detections: saliency >= bias (+ adjust), rectangle = fhog_to_image then rect_up through the
  levels in doubles, all 5 detectors' detections sorted by score, greedy non-maximum suppression
  with the serialised test_box_overlap (intersection over the bounding box of the pair > 0.330,
  or either box covered > 0.789), then rect_down through the upsampling (floor(x + 0.5)).
  One rule is measured, not read: the installed dlib rounds the rect_up result half away from
  zero (a left edge of exactly -22.5 becomes -23), not by drectangle's floor(x + 0.5) that the
  sources show (and that dlib's Python rect_up binding gives); only windows past the image's
  left or top edge reach a negative half (with floor(x + 0.5), 9 images of facedata came out one
  pixel off at adjust -1 and 4 at upsample 0; none at the scan's settings).

Measured equality (benchmarks/bench_detector.py: all 2,065 images of ../shared/facedata, each
reduced to a 1024 px longer side as a scan reduces it; dlib-bin 20.0.1): identical rectangles,
same order, same detector index, on every image at upsample 1 (2,194 rectangles), at upsample 0
(2,124) and at upsample 1 with adjust_threshold -1 (4,012, mostly weak detections at the image
edges); score differences at most 3.3e-6, while the detection closest to a threshold was 2.3e-4
from it. A stress run (600 LFW runs at adjust -2.5/-2.0 on whole photos and random crops, 40
noise and blocky images at -3.0; 16,183 rectangles) also matched. Scores are dlib's to ~1e-6,
not bit for bit (dlib sums in float32 in another order), so a detection within ~1e-5 of its
threshold, or two overlapping ones that close in score, could still go the other way; none of
facedata's comes near. With the floor(x + 0.5) rounding above instead of the measured one, 9
images differed at adjust -1 and 4 at upsample 0.

Speed (same run, one thread, this 2-core VM shared with other work): 250x250 LFW photo at
upsample 1: dlib 25.9 ms, this module 74.9 ms (2.9x slower; the pyramid ~26 ms, FHOG ~32 ms,
filters ~11 ms); detection copies of >= 900 px: dlib 284 ms, this module 1374 ms. It is a
verified executable specification of the detector, not a faster one: numpy's per-pass costs
(gathers, scatter-adds, one memory pass per operation) exceed dlib's C++ loops, and the scan
keeps dlib's detector.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

f32 = np.float32
CELL = 8
NUM_PLANES = 31

# dlib's unit vectors for the 9 unsigned orientations (fhog.h), as float32 like dlib's code
_DIRECTIONS = np.array([[1.0000, 0.0000], [0.9397, 0.3420], [0.7660, 0.6428], [0.500, 0.8660],
                        [0.1736, 0.9848], [-0.1736, 0.9848], [-0.5000, 0.8660], [-0.7660, 0.6428],
                        [-0.9397, 0.3420]], dtype=f32)


# ----------------------------------------------------------------------------------------------
# the model, from dlib's own serialisation

class _Reader:
    """dlib's serialisation: integers as a length byte (bit 7 = negative) and little-endian bytes;
    floating point as (int64 mantissa, int16 exponent)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def double(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return math.ldexp(float(mantissa), exponent)


class Model:
    """The frontal face detector's scanner settings, overlap test and 5 filter banks."""

    def __init__(self, data: bytes):
        r = _Reader(data)
        if r.int() != 2 or r.int() != 1:  # object_detector version 2, scan_fhog_pyramid version 1
            raise ValueError("unexpected dlib object_detector serialisation")
        r.int(), r.int()  # feats: an empty dlib::array (max_size, size)
        self.cell_size, self.padding = r.int(), r.int()
        self.window_width, self.window_height = r.int(), r.int()
        self.max_levels, self.min_width, self.min_height = r.int(), r.int(), r.int()
        r.double()  # nuclear norm regularisation strength (training only)
        dims = r.int()
        self.match_thresh, self.overlap_thresh = r.double(), r.double()
        count = r.int()
        if self.cell_size != CELL:
            raise ValueError(f"cell size {self.cell_size} is not supported")
        # compute_fhog_window_size: the window in cells, grown by the padding
        self.fh, self.fw = _fhog_window(self.window_width, self.window_height, self.padding)
        if dims != NUM_PLANES * self.fh * self.fw:
            raise ValueError("filter size does not match the window")
        self.filters, self.thresholds = [], []
        for _ in range(count):
            nr, nc = abs(r.int()), abs(r.int())
            w = np.array([r.double() for _ in range(nr * nc)])
            self.filters.append(_separable_equivalent(w[:dims].reshape(NUM_PLANES, self.fh, self.fw)))
            self.thresholds.append(float(w[dims]))
        if r.pos != len(data):
            raise ValueError("trailing bytes in dlib object_detector serialisation")
        self.filters = np.stack(self.filters)  # [D, 31, fh, fw] float64
        # GEMM layout: [(plane, column), (detector, row)]
        self.gemm = np.ascontiguousarray(
            self.filters.transpose(1, 3, 0, 2).reshape(NUM_PLANES * self.fw, -1)).astype(f32)


def _fhog_window(width: int, height: int, padding: int) -> tuple[int, int]:
    """scan_fhog_pyramid::compute_fhog_window_size: (rows, cols) of the filters."""
    def centered(p, size):  # centered_rect(point(0,0), size, ...) along one axis
        lo = p - size // 2
        return lo, lo + size - 1

    def to_fhog(v):  # image_to_fhog(point) with padding 1: (p-1)/cell - 1 (C++ division truncates)
        q = v - 1
        return int(q / CELL) - 1

    (l, r), (t, b) = centered(0, width), centered(0, height)
    w = to_fhog(r) - to_fhog(l) + 1 + 2 * padding
    h = to_fhog(b) - to_fhog(t) + 1 + 2 * padding
    return h, w


def _separable_equivalent(f: np.ndarray) -> np.ndarray:
    """What build_fhog_filterbank keeps of each 10x10 plane: its SVD without the singular values
    under max(1e-4, 0.1% of the largest) (dlib 19.x/20; older releases used 1e-3 and 1%; the
    serialised filters have no singular values in between, so both give these filters)."""
    out = np.zeros_like(f)
    for i, plane in enumerate(f):
        u, s, vt = np.linalg.svd(plane)
        keep = s >= max(1e-4, s.max() * 0.001)
        out[i] = (u[:, keep] * s[keep]) @ vt[keep]
    return out


@lru_cache(maxsize=1)
def model() -> Model:
    """The frontal face detector's parameters, read from dlib once per process."""
    import dlib

    return Model(dlib.get_frontal_face_detector().__getstate__()[0])


def version() -> str:
    """Names what this detector reproduces (dlib's version and the weights' digest)."""
    import hashlib

    import dlib

    digest = hashlib.sha256(dlib.get_frontal_face_detector().__getstate__()[0]).hexdigest()[:16]
    return f"numpy-fhog-1 (dlib {dlib.__version__} frontal_face_detector {digest})"


# ----------------------------------------------------------------------------------------------
# dlib::resize_image for RGB images, bit for bit

@lru_cache(maxsize=256)
def _resize_plan(in_nr: int, in_nc: int, out_nr: int, out_nc: int):
    x_scale = (in_nc - 1) / float(max(out_nc - 1, 1))
    y_scale = (in_nr - 1) / float(max(out_nr - 1, 1))
    # the SIMD loop: 4 lanes starting at x = -4*x_scale + k*x_scale (doubles cast to float),
    # each step adds float(4*x_scale) in float32; it stops at the first block whose last right
    # neighbour falls outside the image
    x = -4 * x_scale
    lanes = np.array([x, x + x_scale, x + 2 * x_scale, x + 3 * x_scale], dtype=f32)
    step = f32(4 * x_scale)
    blocks = (out_nc + 3) // 4 + 1
    xs = np.empty((blocks, 4), f32)
    for k in range(blocks):
        lanes = lanes + step
        xs[k] = lanes
    left = xs.astype(np.int32)  # truncation, like simd4i(simd4f)
    inside = left[:, 3] + 1 < in_nc
    nsimd = blocks if inside.all() else int(np.argmin(inside))
    n = min(4 * nsimd, out_nc)
    lr = (xs - left.astype(f32)).reshape(-1)[:n]
    ilr = f32(1) - lr
    cols_l = left.reshape(-1)[:n].astype(np.intp)
    ys = np.empty(out_nr)
    y = -y_scale
    for r in range(out_nr):  # y accumulates in double
        y += y_scale
        ys[r] = y
    top = np.floor(ys).astype(np.intp)
    bottom = np.minimum(top + 1, in_nr - 1)
    tb = ys - top
    tbf, itbf = tb.astype(f32), (1 - tb).astype(f32)
    weights = (itbf[:, None] * ilr, itbf[:, None] * lr, tbf[:, None] * ilr, tbf[:, None] * lr)
    tail = []
    xd = -x_scale + 4 * nsimd * x_scale
    for c in range(4 * nsimd, out_nc):  # the scalar loop, in double
        xd += x_scale
        lo = math.floor(xd)
        tail.append((c, lo, min(lo + 1, in_nc - 1), xd - lo))
    return n, cols_l, top, bottom, tb, weights, tail


def resize_planar(src: np.ndarray, out_nr: int, out_nc: int) -> np.ndarray:
    """dlib::resize_image (RGB, bilinear) on planar float32 [3, H, W] integer values."""
    n, cols_l, top, bottom, tb, (w_tl, w_tr, w_bl, w_br), tail = _resize_plan(
        src.shape[1], src.shape[2], out_nr, out_nc)
    out = np.empty((3, out_nr, out_nc), f32)
    if n:
        left = np.take(src, cols_l, axis=2)
        right = np.take(src, cols_l + 1, axis=2)
        o = out[:, :, :n]
        np.multiply(left[:, top], w_tl, out=o)
        t = right[:, top]
        t *= w_tr
        o += t
        t = left[:, bottom]
        t *= w_bl
        o += t
        t = right[:, bottom]
        t *= w_br
        o += t
        np.trunc(o, out=o)
    if tail:
        up, down = src[:, top].astype(np.float64), src[:, bottom].astype(np.float64)
        tbd = tb[None, :]
        for c, lo, hi, lr in tail:
            v = (1 - tbd) * ((1 - lr) * up[:, :, lo] + lr * up[:, :, hi]) + \
                tbd * ((1 - lr) * down[:, :, lo] + lr * down[:, :, hi])
            out[:, :, c] = np.trunc(v)
    return out


def pyramid_up_size(nr: int, nc: int) -> tuple[int, int]:
    """pyramid_up with pyramid_down<2>: rect_up of the image rectangle, rounded."""
    bottom = math.floor((nr - 1 + 0.75) * 2 + 0.5)
    right = math.floor((nc - 1 + 1.25) * 2 + 0.5)
    return bottom + 1, right + 1


# ----------------------------------------------------------------------------------------------
# FHOG

def _orientation_table() -> np.ndarray:
    """For every integer gradient (gx, gy) in [-255, 255]^2, indexed by gx*512 + gy (negative
    indices wrap): |g|^2 * 128 + dlib's orientation bin, from dlib's float32 dot products."""
    g = np.arange(-255, 256, dtype=f32)
    gx, gy = np.meshgrid(g, g, indexing="ij")
    dots = (gx[..., None] * _DIRECTIONS[:, 0]) + (gy[..., None] * _DIRECTIONS[:, 1])
    # dlib walks o = 0..8 testing dot > best, then -dot > best (strictly): the first maximum of
    # the sequence (+d0, -d0, +d1, -d1, ...), bin 0 when nothing beats 0
    cand = np.empty(dots.shape[:2] + (18,), f32)
    cand[..., 0::2], cand[..., 1::2] = dots, -dots
    k = np.argmax(cand, axis=2)
    best = np.take_along_axis(cand, k[..., None], 2)[..., 0]
    bins = np.where(best > 0, np.where(k % 2 == 0, k // 2, k // 2 + 9), 0)
    lengths = gx.astype(np.int64) ** 2 + gy.astype(np.int64) ** 2
    table = np.zeros(512 * 512, np.int32)
    i = np.arange(-255, 256)
    table[(i[:, None] * 512 + i[None, :]) % (512 * 512)] = lengths * 128 + bins
    return table


_TABLE = _orientation_table()


@lru_cache(maxsize=256)
def _fhog_plan(nr: int, nc: int):
    cnr = int(float(f32(nr) / f32(CELL)) + 0.5)
    cnc = int(float(f32(nc) / f32(CELL)) + 0.5)
    hnr, hnc = max(cnr - 2, 0), max(cnc - 2, 0)
    if min(cnr, cnc, hnr, hnc) == 0:
        return None
    vy, vx = min(cnr * CELL, nr) - 1, min(cnc * CELL, nc) - 1  # pixels 1..vy-1 x 1..vx-1
    x = 1
    while x < vx - 7:  # the 8-wide SIMD blocks; the rest is the scalar loop
        x += 8
    tail = x - 1
    ys, xs = np.arange(1, vy), np.arange(1, vx)
    yp, xp = (ys + 0.5) / CELL - 0.5, (xs + 0.5) / CELL - 0.5
    iy, ix = np.floor(yp).astype(np.int64), np.floor(xp).astype(np.int64)
    fy, fx = yp - iy, xp - ix
    hc = cnc + 2  # the histogram has a 1-cell border
    rowkey = (iy + 1) * hc * 18
    colkey = (ix + 1) * 18
    return dict(cnr=cnr, cnc=cnc, hnr=hnr, hnc=hnc, vy=vy, vx=vx, tail=tail, hc=hc, rowkey=rowkey,
                colkey=colkey, fy=fy[:, None], fx=fx[None, :])


_PRIO = np.array([0, 32, 64], np.int32)[:, None, None]  # SIMD blocks: the later channel wins ties
_PRIO_TAIL = np.array([64, 32, 0], np.int32)[:, None, None]  # scalar loop: the earlier one does


def fhog(level: np.ndarray, fh: int, fw: int) -> np.ndarray | None:
    """dlib::extract_fhog_features(rgb, cell 8, fh, fw): planar [31, hnr+fh-1, hnc+fw-1] float64,
    zero borders; None for an image too small to have features."""
    p = _fhog_plan(level.shape[1], level.shape[2])
    if p is None:
        return None
    vy, vx = p["vy"], p["vx"]
    ny, nx = vy - 1, vx - 1
    # per channel: gx*512 + gy, looked up -> |g|^2*128 + bin, plus the channel's tie priority
    idx = level[:, 1:vy, 2:vx + 1] - level[:, 1:vy, 0:vx - 1]
    idx *= f32(512)
    idx += level[:, 2:vy + 1, 1:vx]
    idx -= level[:, 0:vy - 1, 1:vx]
    keys = _TABLE[idx.astype(np.intp)]
    tail = p["tail"]
    keys_tail = keys[:, :, tail:] + _PRIO_TAIL
    keys += _PRIO
    best = np.maximum(np.maximum(keys[0], keys[1]), keys[2])
    if tail < nx:
        best[:, tail:] = keys_tail.max(0)
    bins = best & 31
    mag = np.sqrt((best >> 7).astype(np.float64))
    # bilinear votes into the (cnr+2) x (cnc+2) x 18 histogram
    cnr, hc = p["cnr"], p["hc"]
    size = (cnr + 2) * hc * 18
    key = ((p["rowkey"][:, None] + p["colkey"]) + bins).ravel()
    fy, fx = p["fy"], p["fx"]
    left, right = mag * (1 - fx), mag * fx
    hist = np.bincount(key, (left * (1 - fy)).ravel(), minlength=size)
    hist[18:] += np.bincount(key, (right * (1 - fy)).ravel(), minlength=size)[:size - 18]
    hist[hc * 18:] += np.bincount(key, (left * fy).ravel(), minlength=size)[:size - hc * 18]
    hist[hc * 18 + 18:] += np.bincount(key, (right * fy).ravel(), minlength=size)[:size - hc * 18 - 18]
    return _features(hist.reshape(cnr + 2, hc, 18), p, fh, fw)


def _features(hist: np.ndarray, p: dict, fh: int, fw: int) -> np.ndarray:
    cnr, cnc, hnr, hnc = p["cnr"], p["cnc"], p["hnr"], p["hnc"]
    cells = hist[1:cnr + 1, 1:cnc + 1]
    s9 = cells[..., :9] + cells[..., 9:]
    energy = (s9 * s9).sum(-1)

    def blk(a, b):
        return energy[a:a + hnr, b:b + hnc]

    # dlib's 4 normalisations, in the order of its simd4f lanes
    blocks = np.stack([blk(1, 1) + blk(1, 2) + blk(2, 1) + blk(2, 2), blk(0, 1) + blk(0, 2) + blk(1, 1) + blk(1, 2),
                       blk(1, 0) + blk(1, 1) + blk(2, 0) + blk(2, 1), blk(0, 0) + blk(0, 1) + blk(1, 0) + blk(1, 1)])
    nn = 0.2 * np.sqrt(blocks + 0.0001)  # [4, hnr, hnc]
    scale = 0.1 / nn
    h = hist[2:hnr + 2, 2:hnc + 2].transpose(2, 0, 1)  # [18, hnr, hnc]
    out = np.zeros((NUM_PLANES, hnr + fh - 1, hnc + fw - 1))
    oy, ox = (fh - 1) // 2, (fw - 1) // 2
    inner = out[:, oy:oy + hnr, ox:ox + hnc]
    texture = np.zeros((4, hnr, hnc))
    for o in range(18):  # contrast-sensitive
        t = np.minimum(h[o], nn) * scale
        inner[o] = t.sum(0)
        texture += t
    for o in range(9):  # contrast-insensitive
        inner[18 + o] = (np.minimum(h[o] + h[o + 9], nn) * scale).sum(0)
    inner[27:31] = texture * (2 * 0.2357)
    return out


# ----------------------------------------------------------------------------------------------
# detection

def _levels(nr: int, nc: int, m: Model) -> int:
    """scan_fhog_pyramid::load: how many pyramid levels (pyramid_down<6>::rect_down, rounded)."""
    left, top, right, bottom = 0, 0, nc - 1, nr - 1
    levels = 0
    while True:
        left, top, right, bottom = (math.floor((v - 0.3) * (5 / 6.0) + 0.5) for v in (left, top, right, bottom))
        levels += 1
        if not (right - left + 1 >= m.min_width and bottom - top + 1 >= m.min_height and levels < m.max_levels):
            return levels


def _fhog_to_image(v: int, size: int) -> int:
    """fhog_to_image along one axis, filters of `size` cells: (p + 1 - (size-1)/2)*8 + 1, then
    moved to the cell centre (+/- cell/2 by sign)."""
    v = (v + 1 - (size - 1) // 2) * CELL + 1
    return v + (CELL // 2 if v >= 0 else -(CELL // 2))


def _level_rect(r: int, c: int, level: int, m: Model) -> tuple[int, int, int, int]:
    """The image rectangle of the detection window centred on saliency pixel (r, c)."""
    h, w = m.fh - 2 * m.padding, m.fw - 2 * m.padding
    left, top = c - w // 2, r - h // 2
    rect = [_fhog_to_image(left, m.fw), _fhog_to_image(top, m.fh), _fhog_to_image(left + w - 1, m.fw),
            _fhog_to_image(top + h - 1, m.fh)]
    vals = [float(v) for v in rect]
    for _ in range(level):  # pyramid_down<6>::rect_up, in doubles
        vals = [v * (6 / 5.0) + 0.3 for v in vals]
    if not level:
        return tuple(rect)
    # rounded half away from zero: measured (a left edge of exactly -22.5 becomes -23 in dlib, not
    # -22 as drectangle's floor(x + 0.5) would give; only negative halves tell the two apart)
    return tuple(int(math.copysign(math.floor(abs(v) + 0.5), v)) for v in vals)


def _area(r) -> int:
    return 0 if r[2] < r[0] or r[3] < r[1] else (r[2] - r[0] + 1) * (r[3] - r[1] + 1)


def _overlaps(a, b, m: Model) -> bool:
    """test_box_overlap"""
    inner = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > m.match_thresh or inner / _area(a) > m.overlap_thresh or inner / _area(b) > m.overlap_thresh


def _scores(planes: np.ndarray, m: Model, adjust: float) -> list[tuple[float, int, int, int]]:
    """(saliency - threshold, detector, r, c) for every window at or above threshold + adjust."""
    _, pr, pc = planes.shape
    hnr, hnc = pr - m.fh + 1, pc - m.fw + 1
    view = np.lib.stride_tricks.sliding_window_view(planes.astype(f32), m.fw, axis=2)  # [31, pr, hnc, fw]
    x = np.ascontiguousarray(view.transpose(1, 2, 0, 3)).reshape(pr * hnc, -1)
    z = (x @ m.gemm).reshape(pr, hnc, len(m.thresholds), m.fh)
    approx = sum(z[i:i + hnr, :, :, i] for i in range(m.fh))  # [hnr, hnc, D]
    out = []
    for d, thresh in enumerate(m.thresholds):
        for r, c in zip(*np.nonzero(approx[:, :, d] >= thresh + adjust - 1e-3)):
            exact = float(np.sum(planes[:, r:r + m.fh, c:c + m.fw] * m.filters[d]))
            saliency = float(f32(exact))  # dlib's saliency image is float
            if saliency >= thresh + adjust:
                out.append((saliency - thresh, d, int(r), int(c)))
    return out


def run(pixels: np.ndarray, upsample: int = 1, adjust_threshold: float = 0.0):
    """Like dlib's fhog_object_detector.run(img, upsample, adjust_threshold): (rectangles as
    (left, top, right, bottom), scores, detector indices), in dlib's order."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError("expected an RGB uint8 image [H, W, 3]")
    m = model()
    image = np.ascontiguousarray(pixels.transpose(2, 0, 1)).astype(f32)
    if image.size == 0:
        return [], [], []
    for _ in range(upsample):
        image = resize_planar(image, *pyramid_up_size(image.shape[1], image.shape[2]))
    dets = []
    level = image
    for lv in range(_levels(image.shape[1], image.shape[2], m)):
        if lv:
            level = resize_planar(level, (5 * level.shape[1]) // 6, (5 * level.shape[2]) // 6)
        planes = fhog(level, m.fh, m.fw)
        if planes is None:
            continue
        for score, d, r, c in _scores(planes, m, adjust_threshold):
            # saliency pixel (r + fh//2, c + fw//2) of the filtered plane is the window's centre
            dets.append((score, d, _level_rect(r + m.fh // 2, c + m.fw // 2, lv, m)))
    dets.sort(key=lambda t: -t[0])
    kept = []
    for det in dets:
        if not any(_overlaps(k[2], det[2], m) for k in kept):
            kept.append(det)
    rects = []
    for _, _, rect in kept:
        vals = [float(v) for v in rect]
        for _ in range(upsample):  # pyramid_down<2>::rect_down
            vals = [vals[0] / 2.0 - 1.25, vals[1] / 2.0 - 0.75, vals[2] / 2.0 - 1.25, vals[3] / 2.0 - 0.75]
        rects.append(tuple(math.floor(v + 0.5) for v in vals))
    return rects, [k[0] for k in kept], [k[1] for k in kept]


def detect(pixels: np.ndarray, upsample: int = 1) -> list[tuple[int, int, int, int]]:
    """dlib.get_frontal_face_detector()(pixels, upsample) as (left, top, right, bottom) tuples."""
    return run(pixels, upsample)[0]
