"""Decode a video (or an animated image) into sampled frames: PyAV for videos, Pillow for GIF/WebP.

Every frame is decoded, but only a few are kept: one per `every_ms` and every scene change (a
frame whose 32x18 grey thumbnail differs from the last kept one by more than `scene_change` on
average). Decoding is cheap next to a face encoding, and decoding everything is what lets a cut
be seen. A video that breaks off part-way keeps the frames before the break and says where it
stopped.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

THUMB = (32, 18)


class VideoDecodeError(Exception):
    """The bytes are not a decodable video; the message says why."""


@dataclass
class VideoInfo:
    container: str
    codec: str
    width: int
    height: int
    fps: float | None
    duration_ms: int | None  # from the container; None when it does not say


@dataclass
class SampledFrame:
    ms: int  # presentation time in milliseconds from the start
    image: object  # RGB PIL image
    scene_change: bool


@dataclass
class Sampling:
    """The outcome of sampling, filled in as frames are produced."""

    info: VideoInfo | None = None
    frames_decoded: int = 0
    last_ms: int = 0
    stopped: str | None = None  # why decoding ended before the end of the stream


def _thumb(image):
    import numpy as np

    return np.asarray(image.convert("L").resize(THUMB), dtype=np.float32)


def _select(
    frames: Iterator[tuple[int, object]], state: Sampling, every_ms: int, scene_change: float, max_frames: int
) -> Iterator[SampledFrame]:
    """Keep one frame per `every_ms` and every scene change from (ms, PIL image) frames."""
    import numpy as np

    last_kept_ms: int | None = None
    last_thumb = None
    kept = 0
    for ms, image in frames:
        state.frames_decoded += 1
        state.last_ms = ms
        thumb = _thumb(image)
        cut = last_thumb is not None and float(np.mean(np.abs(thumb - last_thumb))) > scene_change
        due = last_kept_ms is None or ms - last_kept_ms >= every_ms
        if due or cut:
            if kept >= max_frames:
                state.stopped = f"stopped after {max_frames} sampled frames (the --video-max-frames limit)"
                return
            kept += 1
            last_kept_ms, last_thumb = ms, thumb
            yield SampledFrame(ms, image, cut and not due)


def sample_video(
    source: bytes | str, state: Sampling, *, every_ms: int, scene_change: float, max_frames: int, max_pixels: int
) -> Iterator[SampledFrame]:
    """Yield the sampled frames of a video given as bytes or a path; fill `state` as it goes."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise VideoDecodeError(f"PyAV is not importable ({exc})") from None
    try:
        container = av.open(
            io.BytesIO(source) if isinstance(source, bytes) else source, mode="r", metadata_errors="ignore"
        )
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoDecodeError(f"not a decodable video: {_av_reason(exc)}") from None
    with container:
        if not container.streams.video:
            raise VideoDecodeError("the container holds no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        width, height = ctx.width or 0, ctx.height or 0
        if width * height > max_pixels:
            raise VideoDecodeError(f"{width}x{height} frames, over the limit of {max_pixels} pixels: not decoded")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = int(stream.duration * stream.time_base * 1000)
        elif container.duration is not None:
            duration = int(container.duration / 1000)
        rate = stream.average_rate or stream.guessed_rate
        state.info = VideoInfo(container.format.name, ctx.name, width, height, float(rate) if rate else None, duration)

        def frames():
            try:
                for frame in container.decode(stream):
                    ms = int(round(frame.time * 1000)) if frame.time is not None else state.last_ms
                    yield ms, frame.to_image()
            except (av.FFmpegError, OSError, ValueError, MemoryError) as exc:
                state.stopped = f"decoding stopped at {fmt_ms(state.last_ms)}: {_av_reason(exc)}"

        yield from _select(frames(), state, every_ms, scene_change, max_frames)


MAX_ANIMATION_PIXELS_FACTOR = 20  # an animation may decode up to 20x the single-image pixel limit in all


def sample_animation(
    image, state: Sampling, *, every_ms: int, scene_change: float, max_frames: int, max_pixels: int
) -> Iterator[SampledFrame]:
    """Yield the sampled frames of an animated Pillow image (GIF, WebP, APNG)."""
    from PIL import ImageSequence

    from scanner.media.images import _to_rgb

    n = getattr(image, "n_frames", 1)
    if n * image.width * image.height > MAX_ANIMATION_PIXELS_FACTOR * max_pixels:
        raise VideoDecodeError(
            f"animation of {n} frames of {image.width}x{image.height}: over the limit of "
            f"{MAX_ANIMATION_PIXELS_FACTOR * max_pixels} pixels in all (possible bomb)"
        )
    state.info = VideoInfo(
        f"animated {image.format or 'image'}", image.format or "", image.width, image.height, None, None
    )

    def frames():
        ms = 0
        try:
            for frame in ImageSequence.Iterator(image):
                yield ms, _to_rgb(frame.convert("RGBA").convert("RGB") if frame.mode == "P" else frame)
                ms += int(frame.info.get("duration") or 100)
        except (OSError, ValueError, EOFError) as exc:
            state.stopped = f"decoding stopped at frame {state.frames_decoded + 1} of {n}: {exc}"
        state.info.duration_ms = ms

    yield from _select(frames(), state, every_ms, scene_change, max_frames)


def frames_at(source, times_ms: list[int], max_pixels: int) -> dict[int, object]:
    """Decode the frames shown at each of `times_ms` (sorted) again: {ms: RGB image}.

    `source` is a video's bytes or path, or an opened animated Pillow image. Frames are read in
    one pass; a time with no frame is left out.
    """
    from PIL import Image

    wanted = list(times_ms)
    out: dict[int, object] = {}
    if not wanted:
        return out
    sample = sample_animation if isinstance(source, Image.Image) else sample_video
    frames = sample(source, Sampling(), every_ms=1, scene_change=255.0, max_frames=10**9, max_pixels=max_pixels)
    for frame in frames:
        ms, image = frame.ms, frame.image
        while wanted and wanted[0] <= ms:
            if wanted[0] == ms:
                out[ms] = image
            wanted.pop(0)
        if not wanted:
            break
    return out


def fmt_ms(ms: int) -> str:
    """00:12 for 12 s; 1:02:03 past an hour."""
    s = ms // 1000
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _av_reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.split(": '")[0] if len(text) > 200 else text
