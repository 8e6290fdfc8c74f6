"""Pictures for a report's findings, cut from the dump itself at report time.

The workspace keeps no photos, so a report that shows what was found re-reads the scanned dump,
checks each member's SHA-256 against the scan, and cuts the finding's face (or, for a copy of a
whole photo, a thumbnail). Redacted pictures (the default) are pixelated so coarsely that they
show a face exists where the finding says, not whose it is; `--unredacted` keeps them sharp.
"""

from __future__ import annotations

import base64
import io
import os

REDACTED_BLOCKS = 7  # pixel blocks across a face's box: a face shape, not a recognisable face
FACE_MARGIN = 0.3  # context around a face's box, as a share of its size, on each side
FACE_SIDE = 112  # the longer side of a face picture, in pixels
PHOTO_SIDE = 144  # the longer side of a whole-photo thumbnail
JPEG_QUALITY = 82


def redaction_method(unredacted: bool) -> str:
    if unredacted:
        return "none: faces shown as found (--unredacted)"
    return (
        f"pixelated: a face picture has {REDACTED_BLOCKS} blocks across the face's box; a whole-photo "
        f"thumbnail has {2 * REDACTED_BLOCKS} blocks across and each face in it is one block"
    )


def pictures_for_findings(
    items: list[dict], members: list[dict], inputs: list[str], *, unredacted: bool, max_pixels: int
) -> tuple[dict[tuple[int, int | None], dict], list[str]]:
    """Cut a picture for each finding item; return {(member_seq, face_index): picture} and notes.

    `members` are the scan's member rows (faces and SHA-256); `inputs` the dump's paths to re-read.
    A member whose bytes changed since the scan, or that cannot be read any more, gets no picture
    and a note saying why.
    """
    from scanner.ingest import MemberReader
    from scanner.media.images import ImageDecodeError
    from scanner.media.video import VideoDecodeError
    from scanner.models import ScanOptions

    by_seq = {m["seq"]: m for m in members}
    faces_by_sha = {m["sha256"]: m["faces"] for m in members if m["sha256"] and m["faces"]}
    wanted: dict[str, list[tuple[int, int | None]]] = {}  # relpath -> finding keys
    expected: dict[str, str] = {}
    for item in items:
        m = by_seq.get(item["member_seq"])
        if m is None or not m["sha256"]:
            continue
        wanted.setdefault(m["relpath"], []).append((item["member_seq"], item["face_index"]))
        expected[m["relpath"]] = m["sha256"]
    notes: list[str] = []
    pictures: dict[tuple[int, int | None], dict] = {}
    if not wanted:
        return pictures, notes
    present = [p for p in inputs if os.path.lexists(p)]
    if len(present) < len(inputs):
        notes.append(
            "not found at report time, so its findings have no picture: "
            + ", ".join(p for p in inputs if p not in present)
        )
    found: set[str] = set()
    for read in MemberReader(ScanOptions()).read(present):
        rel = read.member.relpath
        if rel not in wanted or rel in found:
            continue
        found.add(rel)
        if read.member.sha256 != expected[rel]:
            notes.append(
                f"{read.member.logical_path} changed since the scan (SHA-256 {read.member.sha256}): no picture"
            )
            continue
        faces = faces_by_sha.get(expected[rel], [])
        if read.data is None and read.path is None:
            notes.append(f"{read.member.logical_path} could not be read again ({read.reason}): no picture")
            continue
        try:
            frames = _frames_needed(read, wanted[rel], faces, max_pixels)
        except (ImageDecodeError, VideoDecodeError) as exc:
            notes.append(f"{read.member.logical_path} could not be decoded again ({exc}): no picture")
            continue
        for key in wanted[rel]:
            face_index = key[1]
            if face_index is not None and face_index < len(faces):
                image = frames.get(faces[face_index].get("frame_ms"))
                if image is None:
                    notes.append(
                        f"{read.member.logical_path}: the frame at {faces[face_index]['frame_ms']} ms "
                        "could not be decoded again: no picture"
                    )
                    continue
                pic = _face_picture(image, faces[face_index], unredacted)
            else:
                pic = _photo_picture(frames[None], [f for f in faces if f.get("frame_ms") is None], unredacted)
            pictures[key] = {
                "media_type": "image/jpeg",
                "redacted": not unredacted,
                "source_sha256": expected[rel],
                "data_base64": pic,
            }
        if len(found) == len(wanted):
            break
    for rel in sorted(set(wanted) - found):
        if all(os.path.lexists(p) for p in inputs):
            notes.append(f"{rel} is no longer in the dump: no picture")
    return pictures, notes


def _frames_needed(read, keys, faces: list[dict], max_pixels: int) -> dict:
    """Decode what the findings need: {None: the image} for a photo, {ms: frame} for a video's faces."""
    from scanner.media.images import decode_image
    from scanner.media.video import frames_at

    times = sorted({faces[i].get("frame_ms") for _seq, i in keys if i is not None and i < len(faces)} - {None})
    if read.member.kind.value == "video":
        return frames_at(read.data if read.data is not None else read.path, times, max_pixels)
    decoded = decode_image(read.data, max_pixels)
    out = {None: decoded.image}
    if times and decoded.animation is not None:
        out.update(frames_at(decoded.animation, times, max_pixels))
    return out


def _face_picture(image, face: dict, unredacted: bool) -> str:
    width, height = image.size
    top, right, bottom, left = face["top"], face["right"], face["bottom"], face["left"]
    mx, my = (right - left) * FACE_MARGIN, (bottom - top) * FACE_MARGIN
    box = (max(0, int(left - mx)), max(0, int(top - my)), min(width, int(right + mx)), min(height, int(bottom + my)))
    if box[2] <= box[0] or box[3] <= box[1]:
        box = (0, 0, width, height)
    crop = _fit(image.crop(box), FACE_SIDE)
    if not unredacted:
        crop = _pixelate(crop, REDACTED_BLOCKS * (box[2] - box[0]) / max(1, right - left))
    return _jpeg(crop)


def _photo_picture(image, faces: list[dict], unredacted: bool) -> str:
    from PIL import Image

    if unredacted:
        return _jpeg(_fit(image, PHOTO_SIDE))
    out = _pixelate(image, 2 * REDACTED_BLOCKS)
    for f in faces:  # faces get no more detail than a face picture would
        box = (max(0, f["left"]), max(0, f["top"]), min(image.width, f["right"]), min(image.height, f["bottom"]))
        if box[2] > box[0] and box[3] > box[1]:
            region = image.crop(box).resize((1, 1), Image.BOX).resize((box[2] - box[0], box[3] - box[1]))
            out.paste(region, box[:2])
    return _jpeg(_fit(out, PHOTO_SIDE, Image.NEAREST))


def _pixelate(image, blocks_across: float):
    from PIL import Image

    width, height = image.size
    small_w = max(1, round(blocks_across))
    small_h = max(1, round(blocks_across * height / max(1, width)))
    return image.resize((small_w, small_h), Image.BOX).resize((width, height), Image.NEAREST)


def _fit(image, side: int, resample=None):
    from PIL import Image

    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS if resample is None else resample)


def _jpeg(image) -> str:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=JPEG_QUALITY)
    return base64.b64encode(buf.getvalue()).decode("ascii")
