"""tribert prepare: good and bad videos side by side, resume, atomicity, CLI exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tribert import media
from tribert.cli import app
from tribert.data import prepare as prep
from tribert.data.clip import Clip, list_clips
from tribert.errors import TribertError

SR = 11025


def make_video(path: Path, seconds: float, audio: bool = True, size: tuple[int, int] = (96, 64),
               seed: int = 0) -> Path:
    """A small synthetic MP4: moving gradient frames at 8 fps and a two-tone signal."""
    rng = np.random.default_rng(seed)
    t, (w, h) = int(round(seconds * 8)), size
    yy, xx = np.mgrid[:h, :w]
    base = rng.integers(0, 200)
    frames = np.stack([np.stack([(xx * 3 + 5 * i + base) % 256, (yy * 3) % 256,
                                 np.full_like(xx, 90)], -1) for i in range(t)]).astype(np.uint8)
    n = int(round(seconds * SR))
    wav = 0.3 * np.sin(2 * np.pi * (220 + 50 * seed) * np.arange(n) / SR).astype(np.float32)
    media.write_mp4(path, frames, 8, wav if audio else None, SR)
    return path


@pytest.fixture
def videos(tmp_path):
    """good (violin), good2 (cello) and five broken inputs."""
    src = tmp_path / "videos"
    (src / "violin").mkdir(parents=True)
    (src / "cello").mkdir()
    good = make_video(src / "violin" / "good.mp4", 6.0)
    good2 = make_video(src / "cello" / "good2.mp4", 6.5, seed=1)
    bad = tmp_path / "bad"
    bad.mkdir()
    data = good.read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 2])
    make_video(bad / "noaudio.mp4", 6.0, audio=False)
    make_video(bad / "onesec.mp4", 1.0)
    (bad / "text.mp4").write_text("definitely not a video\n")
    missing = bad / "missing.mp4"
    bad_files = {"truncated.mp4": "truncated", "noaudio.mp4": "no audio track",
                 "onesec.mp4": "too short", "text.mp4": "not a readable media file",
                 "missing.mp4": "file not found"}
    return {"good": good, "good2": good2, "bad": [bad / n for n in bad_files],
            "reasons": bad_files, "missing": missing}


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_prepare_good_clip_layout(videos, tmp_path):
    out = tmp_path / "out"
    report = prep.prepare([videos["good"]], out, pose="none", workers=1, progress=False)
    assert [r.status for r in report.results] == ["prepared"] and report.ok
    clip = Clip(out / "good")
    assert clip.meta.labels == ["violin"]  # from the parent folder name
    assert clip.meta.num_frames == 48 and clip.meta.fps == 8.0
    assert clip.meta.num_samples == 6 * SR and clip.meta.sample_rate == SR
    assert (clip.meta.width, clip.meta.height) == (336, 224)  # 96x64 -> shorter side 224, aspect kept
    assert clip.frames([0, 47]).shape == (2, 224, 336, 3)
    audio = clip.audio()
    ref = media.read_audio(videos["good"], SR)
    assert np.corrcoef(audio, ref)[0, 1] > 0.999
    assert clip.meta.pose_source == "none" and not (out / "good" / "pose.npy").exists()
    assert clip.pose().shape == (48, 2, 68, 3) and clip.pose()[..., 2].max() == 0


def test_bad_inputs_fail_alone_and_good_clips_survive(videos, tmp_path):
    out = tmp_path / "out"
    first = prep.prepare([videos["good"]], out, pose="none", workers=1, progress=False)
    assert first.ok
    before = snapshot(out / "good")

    # Second run: the finished clip, a new good video and five broken inputs, in 2 processes.
    inputs = [videos["good"], *videos["bad"], videos["good2"]]
    report = prep.prepare(inputs, out, pose="none", workers=2, progress=False)
    by_id = {r.id: r for r in report.results}
    assert by_id["good"].status == "skipped"
    assert by_id["good2"].status == "prepared"
    assert len(report.failed) == 5 and not report.ok
    for r in report.failed:
        name = Path(r.source).name
        assert name in videos["reasons"], r
        assert videos["reasons"][name] in r.reason, r
        assert "\n" not in r.reason
    assert snapshot(out / "good") == before  # untouched: same bytes, same mtimes
    assert [p.name for p in list_clips(out)] == ["good", "good2"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers

    # Resume: everything good is skipped, nothing is rewritten.
    before2 = snapshot(out)
    again = prep.prepare([videos["good"], videos["good2"]], out, pose="none", workers=1, progress=False)
    assert [r.status for r in again.results] == ["skipped", "skipped"]
    assert snapshot(out) == before2


def test_interrupted_clip_leaves_nothing(videos, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C hit just before the clip was finished

    monkeypatch.setattr(prep, "write_meta", boom)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare([videos["good"]], out, pose="none", workers=1, progress=False)
    assert list(out.iterdir()) == []
    monkeypatch.undo()
    assert prep.prepare([videos["good"]], out, pose="none", workers=1, progress=False).ok


def test_existing_unfinished_folder_is_not_touched(videos, tmp_path):
    out = tmp_path / "out"
    (out / "good").mkdir(parents=True)
    (out / "good" / "notes.txt").write_text("mine")
    report = prep.prepare([videos["good"]], out, pose="none", workers=1, progress=False)
    assert report.failed and "not a finished clip" in report.failed[0].reason
    assert (out / "good" / "notes.txt").read_text() == "mine"


def test_missing_mediapipe_fails_up_front(videos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    out = tmp_path / "out"
    with pytest.raises(TribertError, match="pip install --no-deps mediapipe==0.10.21"):
        prep.prepare([videos["good"]], out, pose="mediapipe", workers=1, progress=False)
    assert not out.exists() or not list(out.iterdir())
    assert prep.prepare([videos["good"]], out, pose="none", workers=1, progress=False).ok


def test_an_indexed_video_not_found_names_the_folder_searched(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    index = tmp_path / "lists" / "index.json"
    index.parent.mkdir()
    index.write_text(json.dumps({"videos": {"violin": ["gone"]}}))
    report = prep.prepare([index], tmp_path / "out", video_root=videos, pose="none", workers=1, progress=False)
    assert [(r.source, r.reason) for r in report.failed] == [(str(index), f"no video file gone.* under {videos}")]
    # a SoP CSV entry: no video under the index's folder, and its frames folder is missing too
    csv = tmp_path / "lists" / "sop.csv"
    csv.write_text("./audio/flute/x.wav,./frames/flute/x.mp4,48\n")
    report = prep.prepare([csv], tmp_path / "out", pose="none", workers=1, progress=False)
    assert [r.reason for r in report.failed] == [
        f"no video file x.* under {csv.parent}, nor its frames folder {csv.parent / 'frames/flute/x.mp4'}"]


def test_audio_that_outlasts_the_picture_is_cut_at_its_end_with_a_note(tmp_path):
    frames = np.zeros((24, 64, 96, 3), np.uint8)  # 3 s of picture
    wav = 0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * SR) / SR).astype(np.float32)  # 10 s of sound
    media.write_mp4(tmp_path / "long_audio.mp4", frames, 8, wav, SR)
    report = prep.prepare([tmp_path / "long_audio.mp4"], tmp_path / "out", pose="none", workers=1,
                          min_duration=1.0, progress=False)
    assert [r.reason for r in report.prepared] == ["its audio (10.00 s) outlasts its picture (3.00 s): cut at 3.00 s"]
    clip = Clip(tmp_path / "out" / "long_audio")
    assert (clip.meta.num_frames, clip.meta.num_samples) == (24, 3 * SR)  # a crop past 3 s paired sound with no picture


@pytest.mark.parametrize("fps", [float("inf"), float("nan")])
def test_a_frame_rate_that_is_not_finite_is_refused_before_any_work(tmp_path, fps):
    make_video(tmp_path / "v.mp4", 6.0)
    with pytest.raises(TribertError, match="fps and pose_fps must be finite numbers > 0"):
        prep.prepare([tmp_path / "v.mp4"], tmp_path / "out", pose="none", fps=fps, progress=False)
    assert not (tmp_path / "out").exists()  # inf wrote JPEGs until the disk was full


def test_sound_of_pixels_csv_with_frames_and_audio(tmp_path):
    """A SoP CSV whose entries are extracted 8 fps frames + audio (no video file)."""
    from PIL import Image

    frames_dir = tmp_path / "data" / "frames" / "flute" / "abc123.mp4"  # SoP names the folder .mp4
    frames_dir.mkdir(parents=True)
    for i in range(48):
        Image.fromarray(np.full((120, 160, 3), i * 5, np.uint8)).save(frames_dir / f"{i + 1:06d}.jpg")
    audio_path = tmp_path / "data" / "audio" / "flute" / "abc123.wav"
    wav = 0.2 * np.sin(2 * np.pi * 440 * np.arange(6 * 22050) / 22050).astype(np.float32)
    media.write_wav(audio_path, wav, 22050)
    index = tmp_path / "train.csv"
    index.write_text("./data/audio/flute/abc123.wav,./data/frames/flute/abc123.mp4,48\n")
    out = tmp_path / "out"
    report = prep.prepare([index], out, pose="none", workers=1, progress=False)
    assert report.ok, report.failed
    clip = Clip(out / "abc123")
    assert clip.meta.labels == ["flute"] and clip.meta.num_frames == 48
    assert clip.meta.num_samples == 6 * SR  # 22050 Hz resampled to 11025 Hz
    assert (clip.meta.width, clip.meta.height) == (299, 224)
    means = clip.frames([0, 10, 47]).reshape(3, -1).mean(axis=1)
    assert np.allclose(means, [0, 50, 235], atol=3)  # frame order kept


def test_pose_on_a_real_photo_video(tmp_path):
    """A clip made of the astronaut photo: MediaPipe finds a person in (almost) every frame."""
    pytest.importorskip("mediapipe", reason="mediapipe is not installed (optional pose extra)")
    from skimage import data

    img = data.astronaut()[::2, ::2]  # [256, 256, 3]
    frames = np.stack([np.roll(img, 2 * i, axis=1) for i in range(16)])  # a slow pan, 2 s
    src = tmp_path / "violin"
    src.mkdir()
    media.write_mp4(src / "astro.mp4", frames, 8, 0.1 * np.ones(2 * SR, np.float32), SR)
    out = tmp_path / "out"
    report = prep.prepare([src], out, pose="mediapipe", workers=1, min_duration=1.0, progress=False)
    assert report.ok, report.failed
    clip = Clip(out / "astro")
    pose = clip.pose()  # [16, 2, 68, 3] in pixels of the stored 224x224 frames
    assert pose.shape == (16, 2, 68, 3) and clip.meta.pose_source == "mediapipe"
    nose = pose[:, 0, 0]  # [T, 3]
    assert (nose[:, 2] > 0.5).mean() >= 0.9
    # The face is around x 150-250, y 55-165 of the 512 photo -> scaled by 224/512 (+ pan).
    assert np.all((nose[:, 1] > 20) & (nose[:, 1] < 80))
    assert pose[:, 1, :, 2].max() == 0  # a solo: the second person is empty


def test_cli_exit_codes(videos, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    ok = runner.invoke(app, ["prepare", str(videos["good"]), "--out", str(out), "--no-pose", "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    mixed = runner.invoke(app, ["prepare", str(videos["good"]), str(videos["missing"]), "--out", str(out),
                                "--no-pose", "--workers", "1"])
    assert mixed.exit_code == 1, mixed.output
    assert f"error: {videos['missing']}: file not found" in mixed.output
    bad_index = tmp_path / "index.json"
    bad_index.write_text("{not json")
    usage = runner.invoke(app, ["prepare", str(bad_index), "--out", str(out), "--no-pose"])
    assert usage.exit_code == 2 and "corrupt JSON index" in usage.output


def test_min_duration_lets_real_short_clips_in(tmp_path):
    """MUSIC clips of 5.92 s (65280 samples) are refused at the default minimum (one 6-s crop);
    --min-duration lets them in (issue 10.9)."""
    from typer.testing import CliRunner

    from tribert.cli import app

    src = tmp_path / "flute"
    src.mkdir()
    short = make_video(src / "short.mp4", 65280 / SR)
    res = CliRunner().invoke(app, ["prepare", str(short), "--out", str(tmp_path / "a"), "--no-pose", "--workers", "1"])
    assert res.exit_code == 1 and "too short" in res.output
    res = CliRunner().invoke(app, ["prepare", str(short), "--out", str(tmp_path / "b"), "--no-pose", "--workers", "1",
                                   "--min-duration", "3"])
    assert res.exit_code == 0, res.output
    assert Clip(tmp_path / "b" / "short").meta.num_samples >= 65000
    for bad in (-1, float("nan"), float("inf")):  # NaN failed per clip, after an empty OUT was made
        with pytest.raises(TribertError, match="min_duration must be a finite number of seconds > 0"):
            prep.prepare([short], tmp_path / "c", pose="none", workers=1, min_duration=bad, progress=False)
        assert not (tmp_path / "c").exists()


def test_split_of_is_stable_and_follows_the_fractions():
    ids = [f"video{i:04d}" for i in range(4000)]
    fractions = (0.75, 0.05, 0.2)
    got = [prep.split_of(i, fractions, seed=0) for i in ids]
    shares = {s: got.count(s) / len(ids) for s in prep.SPLITS}
    # binomial spread of 4000 draws: sd <= 0.007, so 0.03 is > 4 sd
    assert all(abs(shares[s] - f) < 0.03 for s, f in zip(prep.SPLITS, fractions)), shares
    # a video's split does not depend on the other videos, only on its id and the seed
    assert [prep.split_of(i, fractions, seed=0) for i in reversed(ids)] == got[::-1]
    other_seed = [prep.split_of(i, fractions, seed=1) for i in ids]
    assert 0.2 < sum(a != b for a, b in zip(got, other_seed)) / len(ids) < 0.6
    assert {prep.split_of(i, (1, 0, 0)) for i in ids[:200]} == {"train"}
    assert {prep.split_of(i, (0, 0, 3)) for i in ids[:200]} == {"test"}


def test_prepare_into_splits_never_prepares_a_video_twice(tmp_path):
    src = tmp_path / "videos" / "violin"
    src.mkdir(parents=True)
    for i in range(6):
        make_video(src / f"v{i}.mp4", 6.0, seed=i)
    out = tmp_path / "out"
    fractions = (0.5, 0.0, 0.5)
    runner = CliRunner()
    res = runner.invoke(app, ["prepare", str(src.parent), "--out", str(out), "--no-pose", "--workers", "1",
                              "--splits", "0.5,0,0.5"])
    assert res.exit_code == 0, res.output
    placed = {p.name: s for s in prep.SPLITS if (out / s).is_dir() for p in list_clips(out / s)}
    assert len(placed) == 6 and not list_clips(out)  # nothing left at the top level
    assert all(placed[i] == prep.split_of(i, fractions) for i in placed)
    assert all(Clip(out / s / i).meta.split == s for i, s in placed.items())
    assert f"train {sum(s == 'train' for s in placed.values())}" in res.output
    before = snapshot(out)
    # other fractions: every video is already prepared somewhere, kept there, nothing written
    res = runner.invoke(app, ["prepare", str(src.parent), "--out", str(out), "--no-pose", "--workers", "1",
                              "--splits", "0,0,1"])
    assert res.exit_code == 0, res.output
    assert snapshot(out) == before
    moved = [i for i, s in placed.items() if s != "test"]
    notes = [line for line in res.output.splitlines() if "already prepared as train/" in line]
    assert moved and sorted(notes) == sorted(f"note: {src / (i + '.mp4')}: already prepared as train/{i} (kept there)"
                                             for i in moved)
    for splits in ("0.5,x,1", "nan,0,1", "inf,0,1", "0.5,0.5", "1e308,1e308,0"):  # the last: a sum of inf  # NaN and inf were taken (all clips to test)
        bad = runner.invoke(app, ["prepare", str(src.parent), "--out", str(out), "--no-pose", "--splits", splits])
        assert bad.exit_code == 2 and "--splits must be three finite non-negative numbers" in bad.output
    with pytest.raises(TribertError, match="splits must be three finite non-negative"):
        prep.prepare(src.parent, out, pose="none", splits=(float("nan"), 0, 1), progress=False)
    # the same OUT without --splits: the clips in the split folders are found (each video was
    # prepared a second time at the top level)
    report = prep.prepare([src.parent], out, pose="none", workers=1, progress=False)
    assert len(report.skipped) == 6 and not report.prepared and snapshot(out) == before


def test_prepare_without_splits_then_with_them_keeps_the_first_clips(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    for i in range(3):
        make_video(src / f"v{i}.mp4", 6.0, seed=i)
    out = tmp_path / "out"
    assert len(prep.prepare([src], out, pose="none", workers=1, progress=False).prepared) == 3
    before = snapshot(out)
    report = prep.prepare([src], out, pose="none", workers=1, splits=(0.5, 0.0, 0.5), progress=False)
    assert len(report.skipped) == 3 and not report.prepared and snapshot(out) == before
    assert all("already prepared as v" in r.reason and "(kept there)" in r.reason
               for r in report.skipped if prep.split_of(r.id, (0.5, 0.0, 0.5)) != "")


def test_a_rerun_with_more_videos_prepares_each_video_once(tmp_path, monkeypatch):
    """Ids of files that share a name depend on which files meet in one run; a rerun finds the
    clips by the file they came from, so no video is prepared twice or skipped for another's."""
    root = tmp_path / "videos"
    (root / "violin").mkdir(parents=True)
    (root / "cello").mkdir()
    make_video(root / "violin" / "take.mp4", 6.0, seed=1)
    make_video(root / "a_b.mp4", 6.0, seed=2)
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    first = prep.prepare([Path("videos/violin/take.mp4"), root / "a_b.mp4"], out, pose="none", workers=1,
                         splits=(0.5, 0.0, 0.5), progress=False)
    assert len(first.prepared) == 2
    before = snapshot(out)
    make_video(root / "cello" / "take.mp4", 6.0, seed=3)  # the same file name in another folder
    make_video(root / "a b.mp4", 6.0, seed=4)  # a name that becomes the id a_b
    report = prep.prepare([root], out, pose="none", workers=1, splits=(0.5, 0.0, 0.5), progress=False)
    # the two first videos (given relative / absolute before, found under a folder now) are kept
    assert sorted(r.source for r in report.skipped) == sorted(str(root / v) for v in ("violin/take.mp4", "a_b.mp4"))
    assert {Path(r.source).name for r in report.prepared} == {"take.mp4", "a b.mp4"} and not report.failed
    assert all(snapshot(out)[k] == v for k, v in before.items())  # nothing of the first run rewritten
    sources = [Clip(c).meta.source for s in prep.SPLITS if (out / s).is_dir() for c in list_clips(out / s)]
    assert len(sources) == 4 and len({Path(s).resolve() for s in sources}) == 4  # one clip per video
    # a third run finds all four, whatever their ids
    again = prep.prepare([root], out, pose="none", workers=1, splits=(0.5, 0.0, 0.5), progress=False)
    assert len(again.skipped) == 4 and not again.prepared
    # an index whose videos are not found (a wrong --video-root): its prepared ids are kept, not failed
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"videos": {"violin": ["a_b"]}}))
    (tmp_path / "elsewhere").mkdir()
    lost = prep.prepare([index], out, video_root=tmp_path / "elsewhere", pose="none", workers=1,
                        splits=(0.5, 0.0, 0.5), progress=False)
    assert [r.id for r in lost.skipped] == ["a_b"] and not lost.failed


def test_names_that_differ_only_in_case_get_their_own_clip_and_stem(tmp_path):
    """Take.mp4 and take.mp4 are two videos on Linux but one file name on macOS and Windows, where
    the second clip folder (or separated stem) would be the first: it was skipped as prepared, a
    video silently lost. Such names get a suffix, in one run, in a later run and in separate."""
    from tribert.separate import source_names

    root = tmp_path / "videos"
    for folder in ("violin", "cello", "viola"):
        (root / folder).mkdir(parents=True)
    make_video(root / "violin" / "Take.mp4", 6.0, seed=1)
    make_video(root / "cello" / "take.mp4", 6.0, seed=2)
    out = tmp_path / "out"
    first = prep.prepare([root], out, pose="none", workers=1, progress=False)
    ids = [r.id for r in first.prepared]
    assert len(ids) == 2 and len({i.casefold() for i in ids}) == 2
    make_video(root / "viola" / "TAKE.mp4", 6.0, seed=3)
    second = prep.prepare([root], out, pose="none", workers=1, progress=False)
    assert len(second.skipped) == 2 and len(second.prepared) == 1
    assert second.prepared[0].id.casefold() not in {i.casefold() for i in ids}
    assert len(list_clips(out)) == 3
    assert source_names([root / "violin" / "Take.mp4", root / "cello" / "take.mp4"]) == ["Take", "take-2"]
    assert source_names([root / "violin" / "Mixture.mp4", root / "cello" / "b.mp4"])[0] == "Mixture-2"
    assert source_names([root / ".take.mp4", root / "cello" / "take.mp4"]) == ["take", "take-2"]  # not hidden


def prepare_in_background(tmp_path, videos: int, workers: int):
    """``tribert prepare`` of ``videos`` 6-s videos at 32 fps (slow enough to stop midway) in a
    process group of its own, as a terminal runs it -> (process, videos folder, output folder)."""
    src = tmp_path / "videos"
    src.mkdir()
    for i in range(videos):
        make_video(src / f"v{i:02d}.mp4", 6.0, seed=i)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tribert.cli", "prepare", str(src), "--out", str(out),
                             "--no-pose", "--workers", str(workers), "--fps", "32"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=terminal_signals)
    return proc, src, out


def terminal_signals() -> None:
    """SIGINT and SIGTERM as a user's terminal gives them: a shell's background job (CI may run so)
    ignores SIGINT, and so would its children; and neither signal blocked."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def wait_for(condition, proc, what: str) -> None:
    """Until ``condition()`` holds (at most 120 s); a skip if prepare finished first (a loaded
    machine can starve this loop until every clip is done)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    assert condition(), f"{what}: not within 120 s"
    if proc.poll() is not None:
        pytest.skip("prepare finished before it could be stopped")


def exit_status(proc, signal_name: str) -> int:
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"prepare did not stop within 60 s of {signal_name}; its stderr ends: {err[-3000:]}")
    return proc.returncode


def test_ctrl_c_stops_the_workers_and_leaves_no_half_clip(tmp_path):
    proc, src, out = prepare_in_background(tmp_path, videos=24, workers=2)
    wait_for(lambda: out.is_dir() and list_clips(out), proc, "a clip prepared")
    # Ctrl-C twice in a terminal: SIGINT to the whole process group, twice (a worker killed by it
    # in the middle of the pool's hand-over left the pool waiting for ever)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    assert exit_status(proc, "Ctrl-C") != 0
    left = sorted(p.name for p in out.iterdir())
    assert len(list_clips(out)) < 24 and all(not n.startswith(".") for n in left), left  # no temporary folder
    report = prep.prepare([src], out, pose="none", fps=32, workers=1, progress=False)  # a rerun finishes the job
    assert report.ok and len(report.prepared) + len(report.skipped) == 24


def test_a_worker_killed_once_costs_no_video(tmp_path):
    """A worker killed (out of memory, the OOM killer) breaks the pool: it gave a BrokenProcessPool
    traceback, then failed every unfinished video. Now the videos it had in flight are prepared
    again one by one, and the rest go on in a fresh pool."""
    proc, src, out = prepare_in_background(tmp_path, videos=12, workers=2)
    wait_for(lambda: out.is_dir() and any(p.name.startswith(".") for p in out.iterdir()), proc, "a clip begun")
    workers = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
               if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert prep.RETRIED_ALONE in err  # the videos in flight say what happened to them
    assert len(list_clips(out)) == 12 and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_video_that_crashes_its_worker_fails_alone_and_named(tmp_path):
    """A video whose decoding kills the worker (a segfault) used to take every unfinished video of
    the batch down with it, on every rerun."""
    src = tmp_path / "videos"
    src.mkdir()
    for i in range(6):
        make_video(src / f"v{i}.mp4", 2.0, seed=i)
    out = tmp_path / "out"
    script = ("import sys, crashing_worker, tribert.data.prepare as prep\n"
              "prep.prepare_clip = crashing_worker.prepare_clip\n"
              f"r = prep.prepare([{str(src)!r}], {str(out)!r}, pose='none', fps=8, workers=2, min_duration=1.0, progress=False)\n"
              "print(sorted(x.id for x in r.prepared), [(x.id, x.reason) for x in r.failed])")
    env = {**os.environ, "TRIBERT_TEST_CRASH": "v2",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"{['v0', 'v1', 'v3', 'v4', 'v5']} {[('v2', prep.WORKER_DIED)]}"
    assert sorted(p.name for p in out.iterdir()) == ["v0", "v1", "v3", "v4", "v5"]  # no temporary folder


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_prepare_and_leaves_no_temporary_folder(tmp_path, workers):
    # timeout, SLURM and docker stop end a program with SIGTERM, which by default kills it before
    # the clip being built can remove its temporary folder
    proc, _, out = prepare_in_background(tmp_path, videos=12, workers=workers)
    wait_for(lambda: out.is_dir() and any(p.name.startswith(".") for p in out.iterdir()), proc, "a clip begun")
    os.killpg(proc.pid, signal.SIGTERM)  # as timeout does: the whole process group
    assert exit_status(proc, "SIGTERM") == 143
    left = sorted(p.name for p in out.iterdir())
    assert len(list_clips(out)) < 12 and all(not n.startswith(".") for n in left), left


def test_bad_output_folders_and_empty_inputs_are_one_line_before_any_work(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "v0.mp4", 6.0, seed=0)
    afile = tmp_path / "afile.txt"
    afile.write_text("keep")
    with pytest.raises(TribertError, match="is not a folder") as err:
        prep.prepare([src], afile / "sub", pose="none", workers=1, progress=False)
    assert "\n" not in str(err.value) and afile.read_text() == "keep"
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    try:
        if not os.access(locked, os.W_OK):  # root writes anywhere: nothing to check there
            with pytest.raises(TribertError, match="cannot write into"):
                prep.prepare([src], locked / "out", pose="none", workers=1, progress=False)
    finally:
        os.chmod(locked, 0o755)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TribertError, match="no videos found in"):
        prep.prepare([empty], tmp_path / "out", pose="none", workers=1, progress=False)
    assert not (tmp_path / "out").exists()
    for one in (str(src), src):  # one folder, not in a list: not read letter by letter
        report = prep.prepare(one, tmp_path / "one", pose="none", workers=1, progress=False)
        assert [r.id for r in report.prepared + report.skipped] == ["v0"] and not report.failed


def test_a_rerun_with_other_settings_says_what_it_kept(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    make_video(src / "v0.mp4", 6.0, seed=0)
    out = tmp_path / "out"
    assert prep.prepare([src], out, pose="none", workers=1, progress=False).ok
    same = prep.prepare([src], out, pose="none", workers=1, progress=False)
    assert [r.reason for r in same.skipped] == [""]
    other = prep.prepare([src], out, pose="none", fps=4, workers=1, progress=False)
    assert len(other.skipped) == 1 and "kept as prepared earlier, at 8 fps without pose" in other.skipped[0].reason
    assert Clip(out / "v0").meta.fps == 8.0
