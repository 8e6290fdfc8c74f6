"""dlib's HOG frontal face detector re-implemented and compiled (numba), rectangle for rectangle.

`detect(pixels, upsample)` returns the rectangles `dlib.get_frontal_face_detector()(pixels, upsample)`
returns (what face_recognition.face_locations(model="hog") calls), as (left, top, right, bottom)
in the same order; `run(pixels, upsample, adjust_threshold)` also returns their scores and
detector indices, like the detector's `run`. Input: an RGB uint8 array [H, W, 3] (dlib's
grayscale path differs and is not replicated). The scan's default engine detects with it.

What it replicates (dlib 19.x/20.0.1 sources: tools/python/src/simple_object_detector_py.h,
image_processing/{object_detector,scan_fhog_pyramid,box_overlap_testing}.h,
image_transforms/{fhog,image_pyramid,interpolation,spatial_filtering}.h):

- upsampling: `pyramid_up` with pyramid_down<2>: an image of R x C becomes (2R+1) x (2C+2) through
  dlib's RGB `resize_image` (bilinear). That function is reproduced bit for bit, float32 SIMD
  arithmetic included: the 4-lane column positions accumulated in float32 (they drift up to
  ~1e-3 px from exact positions), weights `(1-tb)*(1-lr)` etc. rounded to float32, the sum
  `((tl*w1 + tr*w2) + bl*w3) + br*w4` in float32 (compiled without fast-math, so without fused
  multiply-adds), truncation to uint8, and the double-precision scalar path for the last columns.
  Measured: identical to dlib.resize_image and dlib.pyramid_down(6) on every tested size.
- the feature pyramid: pyramid_down<6> (size floor(5n/6), the same resize), as many levels as
  `scan_fhog_pyramid::load` makes (rect_down until a side is under 64 px).
- FHOG (cell 8, 31 planes, padded by the 10x10 filter size): per pixel the colour channel with the
  largest gradient, with dlib's tie rules (the 8-pixel SIMD blocks prefer the later channel, the
  scalar last columns the earlier one), its length a float32 square root, orientation snapped to
  dlib's 9 float32 unit vectors with dlib's float32 products and strict comparisons (18 signed
  bins), bilinear votes into cells, block energies, truncation at 0.2 (as
  min(h, 0.2*sqrt(e))*0.1/(0.2*sqrt(e))), the 4 texture features. Only the order of float additions differs (votes are summed in float64).
- the 5 filters from the detector dlib itself serialises (`__getstate__`, parsed here; never a
  shipped copy): dlib applies each as separable rank-1 filters from its own SVD of the 10x10
  weights (singular values under max(1e-4, 0.1% of the largest) dropped). Here the same 305
  rank-1 components (about 2 per plane and detector) are applied in float32 with fast-math to
  find candidates, and every window within 1e-3 of a threshold is rescored in float64 from the
  dense truncated filter and that window's features recomputed in float64.
- detections: saliency >= bias (+ adjust), rectangle = fhog_to_image then rect_up through the
  levels in doubles, all 5 detectors' detections sorted by score, greedy non-maximum suppression
  with the serialised test_box_overlap (intersection over the bounding box of the pair > 0.330,
  or either box covered > 0.789), then rect_down through the upsampling (floor(x + 0.5)).
  One rule is measured, not read: the installed dlib rounds the rect_up result half away from
  zero (a left edge of exactly -22.5 becomes -23), not by drectangle's floor(x + 0.5) that the
  sources show (and that dlib's Python rect_up binding gives); only windows past the image's
  left or top edge reach a negative half (with floor(x + 0.5), 9 images of facedata came out one
  pixel off at adjust -1 and 4 at upsample 0; none at the scan's settings).

How it is fast: each pass is a numba kernel written so that its inner loop vectorises (resize:
each source row's neighbours gathered once, then a branch-free row pass; FHOG: a branch-free
gradient and orientation pass per row, then the bilinear votes summed per band of 8 rows; the
filters: 10 taps unrolled per component, rows padded to 16 floats), and every working array
(levels, histograms, planes) is per-thread scratch reused from level to level and image to image
(fresh arrays of a few MB cost page faults measured at a third of the FHOG time). On a CPU with
AVX-512 or AVX2 (AVX512, AVX2 below; FACETRACE_HOG_PORTABLE=1 turns both off) two passes are
explicit LLVM vector code (numba intrinsics): the resizes, whose column gathers were most of the
pyramid's time, take each block of 16 (AVX2: 8) columns' neighbours from two contiguous loads and
permutes (vpermi2ps; AVX2: vpermps and a blend) and compute straight from the two source rows
(LFW's pyramid 2.5 -> 0.8 ms with AVX-512, 1.0 ms with the AVX2 kernel on the same CPU), and the
gradient and orientation pass runs 16 pixels at a time (plain vectors: about 20% less with AVX-512,
11% less compiled for an AVX2 CPU); both give the portable kernels' values bit for bit (tested),
so the rectangles do not depend on the CPU.
numba compiles the kernels once into its cache (`make setup` does it: hog.warm(); cache_dir()
says where; the cache is per CPU model and features); loading them costs about 1 s per process.

Exactness (benchmarks/bench_detector.py on every image of ../shared/facedata, at the scan's
detection size): the same rectangles as dlib's, in the same order, with the same detector index.
Scores are dlib's to ~1e-6, not bit for bit (dlib sums in float32 in another order), so a detection
within ~1e-5 of its threshold, or two overlapping ones that close in score, could still go the
other way; none of facedata's comes near. The measured figures (rectangles per setting, score
differences, time per photo against dlib's, by machine) are in docs/performance.md, "The
detector, compiled and exact".
"""

from __future__ import annotations

import math
import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

f32 = np.float32
CELL = 8
NUM_PLANES = 31
TAPS = 10  # the frontal face detector's filters are 10x10 cells; the filter kernel is unrolled for it


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
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
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
        if (self.fh, self.fw) != (TAPS, TAPS):
            raise ValueError(f"filters of {self.fh}x{self.fw} cells are not supported")
        self.thresholds = []
        filters, components = [], []
        for d in range(count):
            nr, nc = abs(r.int()), abs(r.int())
            w = np.array([r.double() for _ in range(nr * nc)])
            dense, parts = _separable_equivalent(w[:dims].reshape(NUM_PLANES, self.fh, self.fw))
            filters.append(dense)
            components += [(d, *part) for part in parts]
            self.thresholds.append(float(w[dims]))
        if r.pos != len(data):
            raise ValueError("trailing bytes in dlib object_detector serialisation")
        self.filters = np.stack(filters)  # [D, 31, fh, fw] float64, for exact rescoring
        # the rank-1 components as the filter kernel takes them: detector, plane, taps (float32)
        self.comp_det = np.array([c[0] for c in components], np.intp)
        self.comp_plane = np.array([c[1] for c in components], np.intp)
        self.comp_cols = np.array([c[2] for c in components], f32)
        self.comp_rows = np.array([c[3] for c in components], f32)


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


def _separable_equivalent(f: np.ndarray):
    """What build_fhog_filterbank keeps of each 10x10 plane: its SVD without the singular values
    under max(1e-4, 0.1% of the largest) (dlib 19.x/20; older releases used 1e-3 and 1%; the
    serialised filters have no singular values in between, so both give these filters). Returns
    the kept filters densely and as (plane, vertical taps, horizontal taps) rank-1 components."""
    out = np.zeros_like(f)
    parts = []
    for i, plane in enumerate(f):
        u, s, vt = np.linalg.svd(plane)
        keep = s >= max(1e-4, s.max() * 0.001)
        out[i] = (u[:, keep] * s[keep]) @ vt[keep]
        parts += [(i, u[:, k] * s[k], vt[k]) for k in np.nonzero(keep)[0]]
    return out, parts


@lru_cache(maxsize=1)
def model() -> Model:
    """The frontal face detector's parameters, read from dlib once per process.

    Building dlib's detector to serialise it costs about 0.6 s, in every worker of every scan, so
    its serialisation is kept in the cache directory (cache_dir()) under a name made of dlib's
    version and its extension module's size and modification time; a missing, unreadable or
    unparsable copy is replaced from dlib."""
    path = _model_cache_path()
    try:
        return Model(path.read_bytes())
    except (OSError, ValueError, IndexError):
        pass
    data = detector_bytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:  # a read-only installation: no copy, dlib builds it each time
        pass
    return Model(data)


def detector_bytes() -> bytes:
    """dlib's own serialisation of get_frontal_face_detector()."""
    import dlib

    return dlib.get_frontal_face_detector().__getstate__()[0]


def cache_dir() -> Path:
    """Where numba keeps the compiled kernels of this module ($NUMBA_CACHE_DIR, else the module's
    __pycache__ folder) and where the detector's serialisation is kept beside them."""
    configured = os.environ.get("NUMBA_CACHE_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parent / "__pycache__"


def _model_cache_path() -> Path:
    import importlib.util

    import dlib

    spec = importlib.util.find_spec("_dlib_pybind11")
    stat = os.stat(spec.origin) if spec and spec.origin else None
    key = f"{dlib.__version__}-{stat.st_size}-{stat.st_mtime_ns}" if stat else dlib.__version__
    return cache_dir() / f"hog-frontal-face-detector-{key}.dat"


# ----------------------------------------------------------------------------------------------
# working arrays


class _Scratch(threading.local):
    """Per-thread working arrays, reused from level to level and image to image: fresh arrays of
    a few MB cost page faults, measured at about a third of the FHOG time of an LFW photo. An
    array over LIMIT bytes (the levels of a large photo) is used once and not kept."""

    LIMIT = 16 << 20

    def __init__(self):
        self.kept: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        size = math.prod(shape)
        flat = self.kept.get(name)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = np.empty(size, dtype)
            if flat.nbytes <= self.LIMIT:
                self.kept[name] = flat
        return flat[:size].reshape(shape)


_SCRATCH = _Scratch()


# ----------------------------------------------------------------------------------------------
# dlib::resize_image for RGB images, bit for bit


@lru_cache(maxsize=256)
def _resize_plan(in_nr: int, in_nc: int, out_nr: int, out_nc: int):
    """Source columns and rows, and dlib's float32 weights, for one resize."""
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
    lr = np.ascontiguousarray((xs - left.astype(f32)).reshape(-1)[:n])
    cols_l = np.ascontiguousarray(left.reshape(-1)[:n].astype(np.intp))
    ys = np.empty(out_nr)
    y = -y_scale
    for r in range(out_nr):  # y accumulates in double
        y += y_scale
        ys[r] = y
    top = np.floor(ys).astype(np.intp)
    bottom = np.minimum(top + 1, in_nr - 1)
    tb = ys - top
    tail = []
    xd = -x_scale + 4 * nsimd * x_scale
    for c in range(4 * nsimd, out_nc):  # the scalar loop, in double
        xd += x_scale
        lo = math.floor(xd)
        tail.append((c, lo, min(lo + 1, in_nc - 1), xd - lo))
    tail_cols = np.array([t[:3] for t in tail], np.intp).reshape(-1, 3)
    tail_lr = np.array([t[3] for t in tail], np.float64)
    return (cols_l, top, bottom, (1 - tb).astype(f32), tb.astype(f32), lr, f32(1) - lr, tb, tail_cols, tail_lr)


@njit(cache=True, nogil=True, boundscheck=False)
def _resize_kernel(
    src, out, gl, gr, cols_l, top, bottom, itbf, tbf, lr, ilr, tb, tail_cols, tail_lr
):  # pragma: no cover
    # compiled by numba (coverage cannot see inside); src, out: planar float32 images of integer
    # values; gl, gr: [in rows, n] scratch for each source row's left and right neighbours
    n = cols_l.shape[0]
    in_nr = src.shape[1]
    for ch in range(3):
        for row in range(in_nr):  # each source row's left and right neighbours, gathered once
            s = src[ch, row]
            a = gl[row]
            b = gr[row]
            for c in range(n):
                a[c] = s[cols_l[c]]
                b[c] = s[cols_l[c] + 1]
        for r in range(out.shape[1]):
            t = top[r]
            bo = bottom[r]
            p = itbf[r]
            q = tbf[r]
            lt = gl[t]
            rt = gr[t]
            lb = gl[bo]
            rb = gr[bo]
            o = out[ch, r]
            for c in range(n):
                # dlib's simd4f arithmetic: float32 weights (1-tb)*(1-lr) etc., the sum
                # ((tl*w1 + tr*w2) + bl*w3) + br*w4 in float32 (no fused multiply-add), truncated
                v = lt[c] * (p * ilr[c]) + rt[c] * (p * lr[c])
                v = v + lb[c] * (q * ilr[c])
                v = v + rb[c] * (q * lr[c])
                o[c] = np.float32(np.int32(v))
            _tail_columns(src[ch, t], src[ch, bo], o, tb[r], tail_cols, tail_lr)


def resize_planar(src: np.ndarray, out_nr: int, out_nc: int, out: np.ndarray | None = None) -> np.ndarray:
    """dlib::resize_image (RGB, bilinear) on a planar [3, H, W] image of 0..255 values, as float32
    integer values (into `out`, a [3, out_nr, out_nc] float32 array, when given)."""
    src = np.ascontiguousarray(src, dtype=f32)
    if out is None:
        out = np.empty((3, out_nr, out_nc), f32)
    plan = _resize_plan(src.shape[1], src.shape[2], out_nr, out_nc)
    if AVX512 or AVX2:
        blocks = _block_plan(src.shape[1], src.shape[2], out_nr, out_nc, 16 if AVX512 else 8)
        if blocks is not None:
            (_resize_kernel_avx512 if AVX512 else _resize_kernel_avx2)(src, out, *blocks, *plan)
            return out
    n = plan[0].shape[0]
    gl = _SCRATCH.array("resize_left", (src.shape[1], n), f32)
    gr = _SCRATCH.array("resize_right", (src.shape[1], n), f32)
    _resize_kernel(src, out, gl, gr, *plan)
    return out


# dlib::resize_image again, for CPUs with AVX-512 or AVX2: each block of 16 (8) output columns
# gets its left and right neighbours from one row with two contiguous loads and permutes (AVX-512:
# one two-register vpermi2ps each; AVX2: two vpermps and a blend), instead of 32 (16) gathered
# loads; then the same float32 arithmetic as _resize_kernel's, a block at a time, straight from the
# two source rows (no gathered copy of every row: about a third of the time of the kernel above
# on LFW's pyramids with AVX-512). The same values bit for bit (tested).


def _host_features() -> set[str]:
    """The CPU features numba compiles for: its configured ones ($NUMBA_CPU_FEATURES), else the
    host's (none when $NUMBA_CPU_NAME names another CPU without features)."""
    from numba.core import config

    if config.CPU_FEATURES is not None:
        features = config.CPU_FEATURES
    elif config.CPU_NAME in (None, "host"):
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    else:
        features = ""
    return {f[1:] for f in features.split(",") if f.startswith("+")}


_FEATURES = _host_features() if os.environ.get("FACETRACE_HOG_PORTABLE", "") in ("", "0") else set()
AVX512 = "avx512f" in _FEATURES
AVX2 = not AVX512 and "avx2" in _FEATURES


@lru_cache(maxsize=256)
def _block_plan(in_nr: int, in_nc: int, out_nr: int, out_nc: int, lanes: int):
    """For the block kernels: per block of `lanes` output columns of the SIMD part (the last block
    ends at its last column, overlapping the one before when the count is not a multiple), its
    first column, the first of the 2 x lanes source columns it loads (at most in_nc - 2 x lanes,
    so that loads stay inside the row) and its left neighbours' offsets from there (the right
    ones are +1); None when a block's neighbours span more than 2 x lanes columns (shrinking by
    more than about 2x) or a row is shorter than that."""
    cols = _resize_plan(in_nr, in_nc, out_nr, out_nc)[0]
    n, width = cols.shape[0], 2 * lanes
    if in_nc < width or n < lanes:
        return None
    firsts = list(range(0, n - lanes + 1, lanes))
    if n % lanes:
        firsts.append(n - lanes)
    starts = np.empty(len(firsts), np.intp)
    offsets = np.empty(len(firsts) * lanes, np.int32)
    for k, first in enumerate(firsts):
        block = cols[first : first + lanes]
        start = min(int(block[0]), in_nc - width)
        if block[-1] + 1 - start > width - 1:
            return None
        starts[k] = start
        offsets[lanes * k : lanes * k + lanes] = block - start
    return np.array(firsts, np.intp), starts, offsets


def _bilinear_codegen(lanes: int):  # pragma: no cover
    """The LLVM code of one block of `lanes` output columns of one row of one channel; the
    intrinsics' arguments: row_t, row_b (the top and bottom source rows), start (the block's first
    source column loaded), offsets and k (offsets[lanes*k:lanes*k+lanes]: the left neighbours'
    columns from start), col (the block's first output column), ilr, lr (the columns' float32
    weights 1 - lr and lr), p, q (the row's 1 - tb and tb), out (the output row). The arithmetic is
    _resize_kernel's: ((tl*(p*ilr) + tr*(p*lr)) + bl*(q*ilr)) + br*(q*lr) in float32 without
    fused multiply-adds, truncated."""

    def codegen(context, builder, signature, args):
        rt, rb, first, offs, blk, col, w_l, w_r, pp, qq, dst = args
        kinds = signature.args
        fv = ir.VectorType(ir.FloatType(), lanes)
        iv = ir.VectorType(ir.IntType(32), lanes)

        def data(i, value):
            return context.make_array(kinds[i])(context, builder, value).data

        def load(pointer, index, kind):
            return builder.load(builder.bitcast(builder.gep(pointer, [index]), kind.as_pointer()), align=4)

        def splat(x):
            v = builder.insert_element(ir.Constant(fv, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(v, ir.Constant(fv, ir.Undefined), ir.Constant(iv, [0] * lanes))

        if lanes == 16:
            vpermi2 = builder.module.declare_intrinsic(
                "llvm.x86.avx512.vpermi2var.ps.512", fnty=ir.FunctionType(fv, [fv, iv, fv])
            )

            def pick(lo, hi, index):
                return builder.call(vpermi2, [lo, index, hi])
        else:
            vperm = builder.module.declare_intrinsic("llvm.x86.avx2.permps", fnty=ir.FunctionType(fv, [fv, iv]))
            eight = ir.Constant(iv, [8] * lanes)

            def pick(lo, hi, index):  # vpermps uses an index's low 3 bits: 0-7 from lo, 8-15 from hi
                high = builder.icmp_signed(">=", index, eight)
                return builder.select(high, builder.call(vperm, [hi, index]), builder.call(vperm, [lo, index]))

        left = load(data(3, offs), builder.mul(blk, ir.Constant(blk.type, lanes)), iv)
        right = builder.add(left, ir.Constant(iv, [1] * lanes))

        def neighbours(i, row):
            at = builder.bitcast(builder.gep(data(i, row), [first]), fv.as_pointer())
            lo = builder.load(at, align=4)
            hi = builder.load(builder.gep(at, [ir.Constant(ir.IntType(64), 1)]), align=4)
            return pick(lo, hi, left), pick(lo, hi, right)

        tl, tr = neighbours(0, rt)
        bl, br = neighbours(1, rb)
        wl, wr = load(data(6, w_l), col, fv), load(data(7, w_r), col, fv)
        pv, qv = splat(pp), splat(qq)
        v = builder.fadd(builder.fmul(tl, builder.fmul(pv, wl)), builder.fmul(tr, builder.fmul(pv, wr)))
        v = builder.fadd(v, builder.fmul(bl, builder.fmul(qv, wl)))
        v = builder.fadd(v, builder.fmul(br, builder.fmul(qv, wr)))
        v = builder.sitofp(builder.fptosi(v, iv), fv)
        builder.store(v, builder.bitcast(builder.gep(data(10, dst), [col]), fv.as_pointer()), align=4)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _bilinear16(typingctx, row_t, row_b, start, offsets, k, col, ilr, lr, p, q, out):  # pragma: no cover
    """16 output columns from AVX-512 permutes (_bilinear_codegen)."""
    return types.void(row_t, row_b, start, offsets, k, col, ilr, lr, p, q, out), _bilinear_codegen(16)


@intrinsic
def _bilinear8(typingctx, row_t, row_b, start, offsets, k, col, ilr, lr, p, q, out):  # pragma: no cover
    """8 output columns from AVX2 permutes (_bilinear_codegen)."""
    return types.void(row_t, row_b, start, offsets, k, col, ilr, lr, p, q, out), _bilinear_codegen(8)


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _tail_columns(above, below, o, tb, tail_cols, tail_lr):  # pragma: no cover
    """The scalar loop's last columns of one output row, in double."""
    for k in range(tail_cols.shape[0]):
        lo = tail_cols[k, 1]
        hi = tail_cols[k, 2]
        w = tail_lr[k]
        up = (1 - w) * np.float64(above[lo]) + w * np.float64(above[hi])
        down = (1 - w) * np.float64(below[lo]) + w * np.float64(below[hi])
        o[tail_cols[k, 0]] = np.float32(np.int32((1 - tb) * up + tb * down))


@njit(cache=True, nogil=True, boundscheck=False)
def _resize_kernel_avx512(
    src, out, firsts, starts, offsets, cols_l, top, bottom, itbf, tbf, lr, ilr, tb, tail_cols, tail_lr
):  # pragma: no cover
    for ch in range(3):
        for r in range(out.shape[1]):
            above, below, o = src[ch, top[r]], src[ch, bottom[r]], out[ch, r]
            for k in range(starts.shape[0]):
                _bilinear16(above, below, starts[k], offsets, k, firsts[k], ilr, lr, itbf[r], tbf[r], o)
            _tail_columns(above, below, o, tb[r], tail_cols, tail_lr)


@njit(cache=True, nogil=True, boundscheck=False)
def _resize_kernel_avx2(
    src, out, firsts, starts, offsets, cols_l, top, bottom, itbf, tbf, lr, ilr, tb, tail_cols, tail_lr
):  # pragma: no cover
    for ch in range(3):
        for r in range(out.shape[1]):
            above, below, o = src[ch, top[r]], src[ch, bottom[r]], out[ch, r]
            for k in range(starts.shape[0]):
                _bilinear8(above, below, starts[k], offsets, k, firsts[k], ilr, lr, itbf[r], tbf[r], o)
            _tail_columns(above, below, o, tb[r], tail_cols, tail_lr)


def pyramid_up_size(nr: int, nc: int) -> tuple[int, int]:
    """pyramid_up with pyramid_down<2>: rect_up of the image rectangle, rounded."""
    bottom = math.floor((nr - 1 + 0.75) * 2 + 0.5)
    right = math.floor((nc - 1 + 1.25) * 2 + 0.5)
    return bottom + 1, right + 1


# ----------------------------------------------------------------------------------------------
# FHOG


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _better(d, o, best, b):  # pragma: no cover
    """One step of dlib's orientation search: `if (dot > best) ...; if (-dot > best) ...` (strict)
    is `|dot| > best`, bin o for a positive dot and o + 9 for a negative one."""
    a = abs(d)
    if a > best:
        return a, (np.int32(o) if d > 0 else np.int32(o + 9))
    return best, b


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _orientation(gx, gy):  # pragma: no cover
    """dlib's orientation bin of a float32 gradient: it walks o = 0..8 testing dot > best, then
    -dot > best, with dlib's float32 unit vectors (fhog.h) and products; bin 0 when nothing
    beats 0."""
    best, b = np.float32(0), np.int32(0)
    best, b = _better(gx * np.float32(1.0) + gy * np.float32(0.0), 0, best, b)
    best, b = _better(gx * np.float32(0.9397) + gy * np.float32(0.342), 1, best, b)
    best, b = _better(gx * np.float32(0.766) + gy * np.float32(0.6428), 2, best, b)
    best, b = _better(gx * np.float32(0.5) + gy * np.float32(0.866), 3, best, b)
    best, b = _better(gx * np.float32(0.1736) + gy * np.float32(0.9848), 4, best, b)
    best, b = _better(gx * np.float32(-0.1736) + gy * np.float32(0.9848), 5, best, b)
    best, b = _better(gx * np.float32(-0.5) + gy * np.float32(0.866), 6, best, b)
    best, b = _better(gx * np.float32(-0.766) + gy * np.float32(0.6428), 7, best, b)
    best, b = _better(gx * np.float32(-0.9397) + gy * np.float32(0.342), 8, best, b)
    return b


@njit(cache=True, nogil=True, boundscheck=False)
def _gradient_row(u0, u1, u2, m0, m1, m2, d0, d1, d2, x0, x1, later_wins, bins, lengths):  # pragma: no cover
    """Pixels x0..x1-1 of one row (u, m, d: the rows above, at and below it, per channel): the
    colour channel with the largest gradient (ties: the later channel when later_wins, as in
    dlib's 8-pixel SIMD blocks, else the earlier one, as in its scalar loop), its squared length
    (exact in float32) and orientation bin."""
    for x in range(x0, x1):
        gx = np.float32(m0[x + 1]) - np.float32(m0[x - 1])
        gy = np.float32(d0[x]) - np.float32(u0[x])
        v = gx * gx + gy * gy
        ax = np.float32(m1[x + 1]) - np.float32(m1[x - 1])
        ay = np.float32(d1[x]) - np.float32(u1[x])
        av = ax * ax + ay * ay
        if (av >= v) if later_wins else (av > v):
            gx, gy, v = ax, ay, av
        ax = np.float32(m2[x + 1]) - np.float32(m2[x - 1])
        ay = np.float32(d2[x]) - np.float32(u2[x])
        av = ax * ax + ay * ay
        if (av >= v) if later_wins else (av > v):
            gx, gy, v = ax, ay, av
        bins[x] = _orientation(gx, gy)
        lengths[x] = v


@njit(cache=True, nogil=True, boundscheck=False)
def _gradient_blocks(u0, u1, u2, m0, m1, m2, d0, d1, d2, end, vx, bins, lengths):  # pragma: no cover
    """Pixels 1..vx-1 of a row: 1..end-1 where dlib's 8-pixel SIMD blocks run (ties: the later
    channel), the rest as its scalar loop (ties: the earlier channel)."""
    _gradient_row(u0, u1, u2, m0, m1, m2, d0, d1, d2, 1, end, True, bins, lengths)
    _gradient_row(u0, u1, u2, m0, m1, m2, d0, d1, d2, end, vx, False, bins, lengths)


@njit(cache=True, nogil=True, boundscheck=False)
def _gradient_blocks_vector(u0, u1, u2, m0, m1, m2, d0, d1, d2, end, vx, bins, lengths):  # pragma: no cover
    """The same pixels as _gradient_blocks, 16 at a time. The scalar loop's last pixels come first,
    as the 16 ending at vx - 1 with the earlier channel's tie rule (the ones before `end` among them
    are then overwritten by the blocks of the later-channel part, which ends with the 16 pixels
    before `end`, overlapping the block before it): no pixel is left to a scalar loop."""
    if end < vx:
        if vx >= 17:
            _gradient16_earlier(u0, u1, u2, m0, m1, m2, d0, d1, d2, vx - 16, bins, lengths)
        else:
            _gradient_row(u0, u1, u2, m0, m1, m2, d0, d1, d2, end, vx, False, bins, lengths)
    if end < 17:
        _gradient_row(u0, u1, u2, m0, m1, m2, d0, d1, d2, 1, end, True, bins, lengths)
        return
    x = 1
    while x + 16 <= end:
        _gradient16(u0, u1, u2, m0, m1, m2, d0, d1, d2, x, bins, lengths)
        x += 16
    if x < end:
        _gradient16(u0, u1, u2, m0, m1, m2, d0, d1, d2, end - 16, bins, lengths)


# dlib's float32 unit vectors of the 9 orientations (fhog.h), as _orientation uses them
_DIRECTIONS = (
    (1.0, 0.0),
    (0.9397, 0.342),
    (0.766, 0.6428),
    (0.5, 0.866),
    (0.1736, 0.9848),
    (-0.1736, 0.9848),
    (-0.5, 0.866),
    (-0.766, 0.6428),
    (-0.9397, 0.342),
)


@intrinsic
def _gradient16(typingctx, u0, u1, u2, m0, m1, m2, d0, d1, d2, x, bins, lengths):  # pragma: no cover
    """_gradient_row(..., x, x + 16, later_wins=True, ...) as 16-lane vectors: the same float32
    operations (no fused multiply-adds), comparisons and selections, lane by lane."""
    return types.void(u0, u1, u2, m0, m1, m2, d0, d1, d2, x, bins, lengths), _gradient16_codegen(True)


@intrinsic
def _gradient16_earlier(typingctx, u0, u1, u2, m0, m1, m2, d0, d1, d2, x, bins, lengths):  # pragma: no cover
    """The same with later_wins=False (ties: the earlier channel), as dlib's scalar last columns."""
    return types.void(u0, u1, u2, m0, m1, m2, d0, d1, d2, x, bins, lengths), _gradient16_codegen(False)


def _gradient16_codegen(later_wins: bool):  # pragma: no cover
    """The LLVM code of 16 pixels of _gradient_row from pixel args[9]."""

    def codegen(context, builder, signature, args):
        kinds = signature.args
        f16 = ir.VectorType(ir.FloatType(), 16)
        i16 = ir.VectorType(ir.IntType(32), 16)
        at = args[9]

        def data(i):
            return context.make_array(kinds[i])(context, builder, args[i]).data

        def load(i, shift):
            index = builder.add(at, ir.Constant(at.type, shift)) if shift else at
            return builder.load(builder.bitcast(builder.gep(data(i), [index]), f16.as_pointer()), align=4)

        def fconst(v):
            return ir.Constant(f16, [float(np.float32(v))] * 16)

        gx = gy = v = None
        for ch in range(3):
            ax = builder.fsub(load(3 + ch, 1), load(3 + ch, -1))
            ay = builder.fsub(load(6 + ch, 0), load(ch, 0))
            av = builder.fadd(builder.fmul(ax, ax), builder.fmul(ay, ay))
            if gx is None:
                gx, gy, v = ax, ay, av
            else:
                later = builder.fcmp_ordered(">=" if later_wins else ">", av, v)
                gx, gy, v = builder.select(later, ax, gx), builder.select(later, ay, gy), builder.select(later, av, v)
        # the orientations in dlib's order, each |dot| > best taking the bin; the dot of a mirrored
        # direction (-c, s) is gy*s - gx*c, exactly gx*(-c) + gy*s (a negated product is exact)
        products = {0: (gx, builder.fmul(gy, fconst(0.0)))}
        for o in range(1, 5):
            cx, cy = _DIRECTIONS[o]
            products[o] = (builder.fmul(gx, fconst(cx)), builder.fmul(gy, fconst(cy)))
        best, best_dot = fconst(0.0), fconst(0.0)
        b = ir.Constant(i16, [0] * 16)
        magnitude = ir.Constant(i16, [0x7FFFFFFF] * 16)
        for o in range(9):
            px, py = products[o if o < 5 else 9 - o]
            d = builder.fadd(px, py) if o < 5 else builder.fsub(py, px)
            a = builder.bitcast(builder.and_(builder.bitcast(d, i16), magnitude), f16)
            better = builder.fcmp_ordered(">", a, best)
            best = builder.select(better, a, best)
            best_dot = builder.select(better, d, best_dot)
            b = builder.select(better, ir.Constant(i16, [o] * 16), b)
        # a negative winning dot is the opposite bin, o + 9 (the winner's dot is never 0)
        b = builder.add(
            b,
            builder.select(
                builder.fcmp_ordered("<", best_dot, fconst(0.0)), ir.Constant(i16, [9] * 16), ir.Constant(i16, [0] * 16)
            ),
        )
        builder.store(b, builder.bitcast(builder.gep(data(10), [at]), i16.as_pointer()), align=4)
        builder.store(v, builder.bitcast(builder.gep(data(11), [at]), f16.as_pointer()), align=4)
        return context.get_dummy_value()

    return codegen


@njit(cache=True, nogil=True, boundscheck=False)
def _histogram(level, vy, vx, tail, ixs, fxs, hist, energy):  # pragma: no cover
    """_histogram_of with the portable gradient pass."""
    _histogram_of(level, vy, vx, tail, ixs, fxs, hist, energy, _gradient_blocks)


@njit(cache=True, nogil=True, boundscheck=False)
def _histogram_vector(level, vy, vx, tail, ixs, fxs, hist, energy):  # pragma: no cover
    """_histogram_of with the gradient pass 16 pixels at a time (plain LLVM vectors: one register
    with AVX-512, two with AVX2)."""
    _histogram_of(level, vy, vx, tail, ixs, fxs, hist, energy, _gradient_blocks_vector)


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _histogram_of(level, vy, vx, tail, ixs, fxs, hist, energy, gradient_blocks):  # pragma: no cover
    """The bilinear orientation histogram of every cell (hist: [cnr+2, (cnc+2)*18] with a 1-cell
    border) and each cell's energy (energy: [cnr, cnc], the squared norm of its 9 unsigned bins).

    Pixel rows y with the same cell row iy (a band) vote into cell rows iy+1 and iy+2 with weights
    1-fy and fy. Each pixel adds its two horizontal votes to the band's running sum s0 only; after
    each row the running sum is added to acc. The band's fy-weighted sum s1 = sum_j fy_j V_j (V_j:
    row j's votes) is then, by summation by parts and fy_{j+1} - fy_j = 1/8 exactly,
    fy_last * s0 - (acc - s0) / 8; the band adds s0 - s1 and s1 when it ends (float64: the same sums
    to ~1e-16; two scattered additions a pixel instead of four)."""
    hc18 = hist.shape[1]
    hist[:] = 0
    s0 = np.zeros(hc18)
    acc = np.zeros(hc18)
    bins = np.zeros(vx + 1, np.int32)
    lengths = np.zeros(vx + 1, np.float32)
    left = np.zeros(vx + 1)
    right = np.zeros(vx + 1)
    band = -2
    fy_last = 0.0
    for y in range(1, vy):
        u0, u1, u2 = level[0, y - 1], level[1, y - 1], level[2, y - 1]
        m0, m1, m2 = level[0, y], level[1, y], level[2, y]
        d0, d1, d2 = level[0, y + 1], level[1, y + 1], level[2, y + 1]
        gradient_blocks(u0, u1, u2, m0, m1, m2, d0, d1, d2, tail + 1, vx, bins, lengths)
        yp = (y + 0.5) / 8 - 0.5
        iy = int(math.floor(yp))
        if iy != band:
            if band >= -1:
                _flush_band(hist, band, s0, acc, fy_last)
            band = iy
        fy_last = yp - iy
        for x in range(vx):  # magnitudes (float32 square roots) and their horizontal weights, vectorised
            mag = np.float64(np.sqrt(lengths[x]))
            left[x] = mag * (1 - fxs[x])
            right[x] = mag * fxs[x]
        for x in range(1, vx):  # bilinear votes
            k = ixs[x] * 18 + bins[x]
            s0[k] += left[x]
            s0[k + 18] += right[x]
        for q in range(hc18):
            acc[q] += s0[q]
    _flush_band(hist, band, s0, acc, fy_last)
    for r in range(energy.shape[0]):
        row = hist[r + 1]
        for c in range(energy.shape[1]):
            e = 0.0
            base = (c + 1) * 18
            for o in range(9):
                s = row[base + o] + row[base + o + 9]
                e += s * s
            energy[r, c] = e


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _flush_band(hist, band, s0, acc, fy_last):  # pragma: no cover
    a = hist[band + 1]
    b = hist[band + 2]
    for q in range(s0.shape[0]):
        s1 = fy_last * s0[q] - 0.125 * (acc[q] - s0[q])
        a[q] += s0[q] - s1
        b[q] += s1
        s0[q] = 0
        acc[q] = 0


@njit(cache=True, nogil=True, boundscheck=False)
def _features(hist, energy, hnr, hnc, oy, ox, r0, c0, out):  # pragma: no cover
    """Fill out[:, y, x] with the 31 features of padded-plane position (r0 + y, c0 + x): the
    planes' cell (r, c) is at (oy + r, ox + c), and positions with no cell (the padding, and the
    columns past the planes' width) are zeros. Computed in float64, stored as out's type."""
    for y in range(out.shape[1]):
        r = r0 + y - oy
        if r < 0 or r >= hnr:
            out[:, y, :] = 0
            continue
        e0, e1, e2 = energy[r], energy[r + 1], energy[r + 2]
        cell = hist[r + 2]
        for x in range(out.shape[2]):
            c = c0 + x - ox
            if c < 0 or c >= hnc:
                for o in range(31):
                    out[o, y, x] = 0
                continue
            # dlib's 4 normalisations, in the order of its simd4f lanes; truncation at 0.2 as
            # min(h, 0.2*sqrt(e)) * 0.1 / (0.2*sqrt(e))
            n0 = 0.2 * math.sqrt(e1[c + 1] + e1[c + 2] + e2[c + 1] + e2[c + 2] + 0.0001)
            n1 = 0.2 * math.sqrt(e0[c + 1] + e0[c + 2] + e1[c + 1] + e1[c + 2] + 0.0001)
            n2 = 0.2 * math.sqrt(e1[c] + e1[c + 1] + e2[c] + e2[c + 1] + 0.0001)
            n3 = 0.2 * math.sqrt(e0[c] + e0[c + 1] + e1[c] + e1[c + 1] + 0.0001)
            k0, k1, k2, k3 = 0.1 / n0, 0.1 / n1, 0.1 / n2, 0.1 / n3
            t0 = t1 = t2 = t3 = 0.0
            base = (c + 2) * 18
            for o in range(18):  # contrast-sensitive
                h = cell[base + o]
                a0, a1, a2, a3 = min(h, n0) * k0, min(h, n1) * k1, min(h, n2) * k2, min(h, n3) * k3
                out[o, y, x] = ((a0 + a1) + a2) + a3
                t0 += a0
                t1 += a1
                t2 += a2
                t3 += a3
            for o in range(9):  # contrast-insensitive
                h = cell[base + o] + cell[base + o + 9]
                out[18 + o, y, x] = ((min(h, n0) * k0 + min(h, n1) * k1) + min(h, n2) * k2) + min(h, n3) * k3
            out[27, y, x] = t0 * (2 * 0.2357)  # texture
            out[28, y, x] = t1 * (2 * 0.2357)
            out[29, y, x] = t2 * (2 * 0.2357)
            out[30, y, x] = t3 * (2 * 0.2357)


@njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def _feature_planes(hist, energy, hnr, hnc, oy, ox, out):  # pragma: no cover
    """_features(..., 0, 0, out) for the filter kernel's float32 planes, vectorised along each
    row: each cell row's 18 bins are first copied into bin-major rows (so that every feature is a
    contiguous pass over the cells), then the 31 features are computed in float32 with fast-math.
    They feed only the approximate filter pass (whose candidates are rescored from _features'
    float64 values), so float32 rounding is harmless: a few ulp per feature."""
    bins = np.empty((18, hnc), np.float32)
    rows = np.empty((12, hnc), np.float32)  # the 4 norms, their 0.1 / norm and the 4 texture sums, per cell
    n0, n1, n2, n3 = rows[0], rows[1], rows[2], rows[3]
    k0, k1, k2, k3 = rows[4], rows[5], rows[6], rows[7]
    t0, t1, t2, t3 = rows[8], rows[9], rows[10], rows[11]
    out[:] = 0
    for r in range(hnr):
        y = r + oy
        e0, e1, e2 = energy[r], energy[r + 1], energy[r + 2]
        cell = hist[r + 2]
        for c in range(hnc):
            base = (c + 2) * 18
            for o in range(18):
                bins[o, c] = cell[base + o]
        for c in range(hnc):  # dlib's 4 normalisations, as _features makes them
            n0[c] = 0.2 * math.sqrt(e1[c + 1] + e1[c + 2] + e2[c + 1] + e2[c + 2] + 0.0001)
            n1[c] = 0.2 * math.sqrt(e0[c + 1] + e0[c + 2] + e1[c + 1] + e1[c + 2] + 0.0001)
            n2[c] = 0.2 * math.sqrt(e1[c] + e1[c + 1] + e2[c] + e2[c + 1] + 0.0001)
            n3[c] = 0.2 * math.sqrt(e0[c] + e0[c + 1] + e1[c] + e1[c + 1] + 0.0001)
            k0[c], k1[c] = np.float32(0.1) / n0[c], np.float32(0.1) / n1[c]
            k2[c], k3[c] = np.float32(0.1) / n2[c], np.float32(0.1) / n3[c]
            t0[c] = t1[c] = t2[c] = t3[c] = 0
        for o in range(18):  # contrast-sensitive, and the texture sums
            row, h = out[o, y, ox : ox + hnc], bins[o]
            for c in range(hnc):
                a0, a1 = min(h[c], n0[c]) * k0[c], min(h[c], n1[c]) * k1[c]
                a2, a3 = min(h[c], n2[c]) * k2[c], min(h[c], n3[c]) * k3[c]
                row[c] = a0 + a1 + a2 + a3
                t0[c] += a0
                t1[c] += a1
                t2[c] += a2
                t3[c] += a3
        for o in range(9):  # contrast-insensitive
            row, h0, h1 = out[18 + o, y, ox : ox + hnc], bins[o], bins[o + 9]
            for c in range(hnc):
                h = h0[c] + h1[c]
                row[c] = min(h, n0[c]) * k0[c] + min(h, n1[c]) * k1[c] + min(h, n2[c]) * k2[c] + min(h, n3[c]) * k3[c]
        texture = np.float32(2 * 0.2357)
        r27, r28 = out[27, y, ox : ox + hnc], out[28, y, ox : ox + hnc]
        r29, r30 = out[29, y, ox : ox + hnc], out[30, y, ox : ox + hnc]
        for c in range(hnc):
            r27[c], r28[c], r29[c], r30[c] = t0[c] * texture, t1[c] * texture, t2[c] * texture, t3[c] * texture


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
    xp = (np.arange(vx + 1) + 0.5) / CELL - 0.5
    ix = np.floor(xp)
    return dict(cnr=cnr, cnc=cnc, hnr=hnr, hnc=hnc, vy=vy, vx=vx, tail=tail, ixs=(ix + 1).astype(np.intp), fxs=xp - ix)


class Features:
    """One pyramid level's FHOG, as dlib::extract_fhog_features(rgb, cell 8, fh, fw) makes it:
    `planes32`, the [31, hnr+fh-1, hnc+fw-1] planes with zero borders in float32 (widened with
    zeros to the filter kernel's row length), and `window(r, c)`, the fh x fw window at (r, c) in
    float64. The arrays are per-thread scratch: valid until the next level is computed."""

    def __init__(self, level: np.ndarray, fh: int, fw: int, p: dict):
        self.fh, self.fw, self.hnr, self.hnc = fh, fw, p["hnr"], p["hnc"]
        self.oy, self.ox = (fh - 1) // 2, (fw - 1) // 2
        self.rows, self.cols = p["hnr"] + fh - 1, p["hnc"] + fw - 1
        self.hist = _SCRATCH.array("fhog_hist", (p["cnr"] + 2, (p["cnc"] + 2) * 18), np.float64)
        self.energy = _SCRATCH.array("fhog_energy", (p["cnr"], p["cnc"]), np.float64)
        (_histogram_vector if AVX512 or AVX2 else _histogram)(
            level, p["vy"], p["vx"], p["tail"], p["ixs"], p["fxs"], self.hist, self.energy
        )
        self.planes32 = _SCRATCH.array("fhog_planes", (NUM_PLANES, self.rows, _filter_widths(self.hnc)[0]), f32)
        _feature_planes(self.hist, self.energy, self.hnr, self.hnc, self.oy, self.ox, self.planes32)

    def window(self, r: int, c: int) -> np.ndarray:
        out = np.empty((NUM_PLANES, self.fh, self.fw))
        _features(self.hist, self.energy, self.hnr, self.hnc, self.oy, self.ox, r, c, out)
        return out


def fhog(level: np.ndarray, fh: int, fw: int) -> Features | None:
    """The FHOG features of a planar [3, H, W] level (float32 integer values); None for an image
    too small to have features."""
    p = _fhog_plan(level.shape[1], level.shape[2])
    if p is None:
        return None
    return Features(np.ascontiguousarray(level, dtype=f32), fh, fw, p)


# ----------------------------------------------------------------------------------------------
# the filters


def _filter_widths(hnc: int) -> tuple[int, int]:
    """The filter kernel's row lengths for hnc windows per row: (input, output), multiples of 16."""
    out = -(-hnc // 16) * 16
    return out + 16, out


@njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def _filter_kernel(planes, comp_plane, comp_det, rows, cols, scores, wv, wh):  # pragma: no cover
    """scores[d, r, c] = sum over detector d's separable components k (plane p_k, vertical taps
    cols[k], horizontal taps rows[k]) of sum_i cols[k,i] sum_j rows[k,j] planes[p_k, r+i, c+j],
    for c < wh (a multiple of 16, so the loops vectorise without remainders; columns past the
    real ones are ignored by the caller). The vertical pass makes four output rows from the 13
    plane rows they share (each plane value loaded once for four rows: a quarter less time than
    one row at a time), then the horizontal pass runs on each. fastmath: float32, any order; the
    caller rescores every window near a threshold exactly."""
    v0 = np.empty(wv, np.float32)
    v1 = np.empty(wv, np.float32)
    v2 = np.empty(wv, np.float32)
    v3 = np.empty(wv, np.float32)
    scores[:] = 0
    nr = scores.shape[1]
    for k in range(comp_plane.shape[0]):
        a0, a1, a2, a3, a4 = cols[k, 0], cols[k, 1], cols[k, 2], cols[k, 3], cols[k, 4]
        a5, a6, a7, a8, a9 = cols[k, 5], cols[k, 6], cols[k, 7], cols[k, 8], cols[k, 9]
        b0, b1, b2, b3, b4 = rows[k, 0], rows[k, 1], rows[k, 2], rows[k, 3], rows[k, 4]
        b5, b6, b7, b8, b9 = rows[k, 5], rows[k, 6], rows[k, 7], rows[k, 8], rows[k, 9]
        plane = planes[comp_plane[k]]
        out = scores[comp_det[k]]
        r = 0
        while r < nr:
            block = min(4, nr - r)
            if block == 4:
                s0, s1, s2, s3, s4 = plane[r], plane[r + 1], plane[r + 2], plane[r + 3], plane[r + 4]
                s5, s6, s7, s8, s9 = plane[r + 5], plane[r + 6], plane[r + 7], plane[r + 8], plane[r + 9]
                s10, s11, s12 = plane[r + 10], plane[r + 11], plane[r + 12]
                for c in range(wv):
                    x0, x1, x2, x3, x4, x5, x6 = s0[c], s1[c], s2[c], s3[c], s4[c], s5[c], s6[c]
                    x7, x8, x9, x10, x11, x12 = s7[c], s8[c], s9[c], s10[c], s11[c], s12[c]
                    v0[c] = (
                        a0 * x0
                        + a1 * x1
                        + a2 * x2
                        + a3 * x3
                        + a4 * x4
                        + a5 * x5
                        + a6 * x6
                        + a7 * x7
                        + a8 * x8
                        + a9 * x9
                    )
                    v1[c] = (
                        a0 * x1
                        + a1 * x2
                        + a2 * x3
                        + a3 * x4
                        + a4 * x5
                        + a5 * x6
                        + a6 * x7
                        + a7 * x8
                        + a8 * x9
                        + a9 * x10
                    )
                    v2[c] = (
                        a0 * x2
                        + a1 * x3
                        + a2 * x4
                        + a3 * x5
                        + a4 * x6
                        + a5 * x7
                        + a6 * x8
                        + a7 * x9
                        + a8 * x10
                        + a9 * x11
                    )
                    v3[c] = (
                        a0 * x3
                        + a1 * x4
                        + a2 * x5
                        + a3 * x6
                        + a4 * x7
                        + a5 * x8
                        + a6 * x9
                        + a7 * x10
                        + a8 * x11
                        + a9 * x12
                    )
            else:  # the last rows, one at a time
                s0, s1, s2, s3, s4 = plane[r], plane[r + 1], plane[r + 2], plane[r + 3], plane[r + 4]
                s5, s6, s7, s8, s9 = plane[r + 5], plane[r + 6], plane[r + 7], plane[r + 8], plane[r + 9]
                for c in range(wv):
                    v0[c] = (
                        a0 * s0[c]
                        + a1 * s1[c]
                        + a2 * s2[c]
                        + a3 * s3[c]
                        + a4 * s4[c]
                        + a5 * s5[c]
                        + a6 * s6[c]
                        + a7 * s7[c]
                        + a8 * s8[c]
                        + a9 * s9[c]
                    )
                block = 1
            for q in range(block):
                v = v0 if q == 0 else (v1 if q == 1 else (v2 if q == 2 else v3))
                o = out[r + q]
                for c in range(wh):
                    o[c] += (
                        b0 * v[c]
                        + b1 * v[c + 1]
                        + b2 * v[c + 2]
                        + b3 * v[c + 3]
                        + b4 * v[c + 4]
                        + b5 * v[c + 5]
                        + b6 * v[c + 6]
                        + b7 * v[c + 7]
                        + b8 * v[c + 8]
                        + b9 * v[c + 9]
                    )
            r += block


# ----------------------------------------------------------------------------------------------
# detection


@njit(cache=True, nogil=True, boundscheck=False)
def _planar(pixels, out):  # pragma: no cover
    """[H, W, 3] uint8 -> [3, H, W] float32."""
    for y in range(pixels.shape[0]):
        for x in range(pixels.shape[1]):
            for ch in range(3):
                out[ch, y, x] = pixels[y, x, ch]


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
    rect = [
        _fhog_to_image(left, m.fw),
        _fhog_to_image(top, m.fh),
        _fhog_to_image(left + w - 1, m.fw),
        _fhog_to_image(top + h - 1, m.fh),
    ]
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


@njit(cache=True, nogil=True, boundscheck=False)
def _candidates(approx, limits, hnc):  # pragma: no cover
    """(detector, r, c) of every window whose approximate score reaches its detector's limit."""
    found = []
    for d in range(approx.shape[0]):
        limit = limits[d]
        for r in range(approx.shape[1]):
            row = approx[d, r]
            for c in range(hnc):
                if row[c] >= limit:
                    found.append((d, r, c))
    return found


def _scores(feats: Features, m: Model, adjust: float) -> list[tuple[float, int, int, int]]:
    """(saliency - threshold, detector, r, c) for every window at or above threshold + adjust."""
    hnr, hnc = feats.rows - m.fh + 1, feats.cols - m.fw + 1
    wv, wh = _filter_widths(hnc)
    approx = _SCRATCH.array("scores", (len(m.thresholds), hnr, wh), f32)
    _filter_kernel(feats.planes32, m.comp_plane, m.comp_det, m.comp_rows, m.comp_cols, approx, wv, wh)
    # float32 sums are within ~1e-5 of the exact ones: every window within 1e-3 of its threshold
    # is rescored in float64 from the dense filter
    limits = np.array([t + adjust - 1e-3 for t in m.thresholds], f32)
    out = []
    for d, r, c in _candidates(approx, limits, hnc):
        thresh = m.thresholds[d]
        exact = float(np.sum(feats.window(r, c) * m.filters[d]))
        saliency = float(f32(exact))  # dlib's saliency image is float
        if saliency >= thresh + adjust:
            out.append((saliency - thresh, d, r, c))
    return out


def run(pixels: np.ndarray, upsample: int = 1, adjust_threshold: float = 0.0):
    """Like dlib's fhog_object_detector.run(img, upsample, adjust_threshold): (rectangles as
    (left, top, right, bottom), scores, detector indices), in dlib's order."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError("expected an RGB uint8 image [H, W, 3]")
    m = model()
    if pixels.size == 0:
        return [], [], []
    image = _SCRATCH.array("image", (3,) + pixels.shape[:2], f32)
    _planar(np.ascontiguousarray(pixels), image)
    # the levels alternate between two scratch arrays, never resizing into the one being read
    current = "image"
    for _ in range(upsample):
        rows, cols = pyramid_up_size(image.shape[1], image.shape[2])
        current = "level_b" if current == "level_a" else "level_a"
        image = resize_planar(image, rows, cols, _SCRATCH.array(current, (3, rows, cols), f32))
    dets = []
    level = image
    for lv in range(_levels(image.shape[1], image.shape[2], m)):
        if lv:
            rows, cols = (5 * level.shape[1]) // 6, (5 * level.shape[2]) // 6
            current = "level_b" if current == "level_a" else "level_a"
            level = resize_planar(level, rows, cols, _SCRATCH.array(current, (3, rows, cols), f32))
        feats = fhog(level, m.fh, m.fw)
        if feats is None:
            continue
        for score, d, r, c in _scores(feats, m, adjust_threshold):
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


def warm() -> None:
    """Compile every kernel into numba's cache (and keep the detector's serialisation there), so
    that no scan pays for it: about 15 s once per installation (`make setup` runs it), then about
    1 s per process to load."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    run(pixels, 1, -3.0)  # weak detections: the float64 window features are compiled too
