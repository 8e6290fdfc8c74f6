"""Videos and animated images: sampled frames, faces, people's time ranges, animations, copies.

The videos are made from ../shared/facedata photos by tests/videos.py, next to the real clip
../shared/facedata/video/short_hamilton_clip.mp4 (Lin-Manuel Miranda on stage, then the audience).
"""

from __future__ import annotations

import shutil
import zipfile

import pytest

from scanner.consent import ConsentInput
from scanner.pipeline import match_against_registry, open_store
from scanner.registry import enroll, open_registry
from tests.conftest import by_relpath, facedata_path, run_scan
from tests.videos import reencode, slideshow, still_animation, write_video

# slow: every test needs the module's video case, scanned once (about 10 s)
pytestmark = [pytest.mark.facedata, pytest.mark.slow]


@pytest.fixture(scope="module")
def video_case(tmp_path_factory):
    base = tmp_path_factory.mktemp("video")
    person = sorted(facedata_path("lfw_deepfunneled", "Ana_Palacio").iterdir())
    stranger = sorted(facedata_path("lfw_deepfunneled", "Abdullah_Gul").iterdir())
    still = sorted(facedata_path("lfw_deepfunneled", "Al_Gore").iterdir())[0]
    lin = facedata_path("fr_examples", "lin_manuel_miranda", "lin-manuel-miranda.png")
    clip = facedata_path("video", "short_hamilton_clip.mp4")
    dump = base / "dump"
    dump.mkdir()
    # 0-2 s a stranger, 2-8 s three photos of the enrolled person, 8-10 s the stranger again
    write_video(dump / "slideshow.mp4", slideshow([stranger[0], *person[3:6], stranger[1]]))
    reencode(dump / "slideshow.mp4", dump / "slideshow_copy.avi")
    write_video(dump / "animation.mp4", still_animation(still))
    shutil.copy(clip, dump / "hamilton.mp4")
    frames = list(slideshow(person[3:6], seconds_each=0.5, fps=2))
    frames[0].save(dump / "animated.gif", save_all=True, append_images=frames[1:], duration=500, loop=0)
    write_video(base / "kit.webm", slideshow(person[3:5]), codec="libvpx")
    with zipfile.ZipFile(dump / "kit.zip", "w") as z:
        z.write(base / "kit.webm", "person_0001/clip.webm")
    (dump / "broken.mp4").write_bytes((dump / "slideshow.mp4").read_bytes()[:4000])
    store, root = open_store(str(base / "ws"))
    reg = open_registry(store, root)
    ana = enroll(reg, [(p.name, p.read_bytes()) for p in person[:3]], ConsentInput()).subject_id
    lin_id = enroll(reg, [(lin.name, lin.read_bytes())], ConsentInput()).subject_id
    summary, results = run_scan([dump], base / "ws")
    findings = match_against_registry(store, root, summary.scan_id, actor="tester")
    return summary, by_relpath(results), findings, {"ana": ana, "lin": lin_id, "base": base}


def _ranges(finding):
    return finding["evidence"]["video"]["time_ranges_ms"]


def test_the_person_in_the_real_clip_is_found_with_the_right_time_range(video_case):
    _, results, findings, ids = video_case
    (f,) = [f for f in findings if f["logical_path"].endswith("hamilton.mp4")]
    assert f["subject_id"] == ids["lin"] and f["kind"] == "same_person"
    # He is on stage at the start (wide shot) and at the microphone from about 3.9 s to 7.9 s
    # (player time); from 8.4 s the camera shows the audience.
    assert any(a <= 4500 and b >= 7400 for a, b in _ranges(f))
    assert all(b < 8300 for _, b in _ranges(f))
    video = results["hamilton.mp4"].video
    assert video.animation is None and 9000 <= video.duration_ms <= 9300 and video.frames_decoded == 275


def test_a_slideshow_finds_the_enrolled_person_only_where_they_are_shown(video_case):
    _, results, findings, ids = video_case
    mine = [f for f in findings if f["logical_path"].endswith("slideshow.mp4")]
    assert {f["subject_id"] for f in mine} == {ids["ana"]}
    (rng,) = _ranges(mine[0])
    assert 2000 <= rng[0] <= 3000 and 7000 <= rng[1] < 8000
    r = results["slideshow.mp4"]
    assert r.video.animation is None
    # the stranger (shown at the start and at the end: one person, two ranges) and the enrolled person
    assert [len(t.ranges) for t in r.video.tracks] == [2, 1]
    record = r.to_json("s")
    assert record["video"]["tracks"] and all("frame_ms" in face and "track" in face for face in record["faces"])


def test_a_still_photo_animation_is_flagged_and_real_footage_is_not(video_case):
    _, results, _, _ = video_case
    assert "single still" in results["animation.mp4"].video.animation
    for name in ("slideshow.mp4", "hamilton.mp4", "slideshow_copy.avi"):
        assert results[name].video.animation is None, name


def test_a_reencoded_copy_matches_its_original_and_nothing_else(video_case):
    summary, results, _, _ = video_case
    assert results["slideshow_copy.avi"].member.sha256 != results["slideshow.mp4"].member.sha256
    pairs = {
        (r["evidence"]["original"].rsplit("/", 1)[1], r["evidence"]["copy"].rsplit("/", 1)[1]): r
        for r in summary.relations
    }
    assert set(pairs) == {("slideshow.mp4", "slideshow_copy.avi")}
    rel = pairs["slideshow.mp4", "slideshow_copy.avi"]
    assert rel["kind"] == "reencoded_copy" and rel["evidence"]["shared_frames"] >= 0.8


def test_animated_gifs_and_videos_inside_archives_are_sampled(video_case):
    summary, results, findings, ids = video_case
    gif = results["animated.gif"]
    assert gif.video is not None and gif.video.frames_decoded == 3 and len(gif.faces) >= 3
    webm = results["kit.zip!/person_0001/clip.webm"]
    assert webm.status.value == "ok" and webm.video.codec == "vp8" and len(webm.faces) >= 2
    assert any(f["logical_path"].endswith("clip.webm") and f["subject_id"] == ids["ana"] for f in findings)
    assert summary.counts["videos"] == 6 and summary.counts["animations"] == 1


def test_a_truncated_video_is_reported_not_fatal(video_case):
    _, results, _, _ = video_case
    r = results["broken.mp4"]
    assert r.status.value == "unreadable" and r.reason


def test_report_pictures_of_video_findings_are_cut_from_the_matched_frame(video_case):
    import json

    from scanner.evidence import write_report

    _, _, findings, ids = video_case
    store, root = open_store(str(ids["base"] / "ws"))
    out = write_report(store, root, str(ids["base"] / "report"), actor="tester")
    doc = json.loads(open(out["json"], encoding="utf-8").read())
    items = [i for s in doc["findings"] for i in s["items"]]
    assert len(items) == len(findings) and doc["pictures"]["notes"] == []
    videos = [i for i in items if "video" in i["evidence"]]
    assert videos and all(i["picture"] and i["picture"]["redacted"] for i in videos)
    page = open(out["html"], encoding="utf-8").read()
    assert "hamilton.mp4 at 00:00, 00:04-00:07 (person 0)" in page
