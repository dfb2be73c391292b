"""tribert.media: MP4 round trip, constant-rate resampling, and one-line errors on bad files."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from tribert import media
from tribert.errors import MediaError

SR = 11025


def moving_frames(t: int, h: int, w: int) -> np.ndarray:
    """uint8 [T, H, W, 3]: smooth gradients plus a bright square whose position encodes the index."""
    yy, xx = np.mgrid[:h, :w]
    frames = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i, ..., 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
        frames[i, ..., 1] = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
        frames[i, ..., 2] = 40
        x0 = (i * 2) % (w - 16)  # unique for i < (w - 16) / 2
        frames[i, 8:24, x0:x0 + 16] = 255
    return frames


def chord(n: int, sr: int = SR) -> np.ndarray:
    """float32 [n]: three harmonic tones with a slow envelope, peak < 1."""
    t = np.arange(n) / sr
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t)
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220.0, 330.0, 523.0), 1))
    return (0.35 * env * x).astype(np.float32)


def test_round_trip(tmp_path):
    frames = moving_frames(48, 96, 128)  # 6 s at 8 fps
    audio = chord(6 * SR)
    path = tmp_path / "clip.mp4"
    media.write_mp4(path, frames, fps=8, audio=audio, sample_rate=SR)

    info = media.probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.fps, info.sample_rate) == (128, 96, 8.0, SR)
    assert info.duration == pytest.approx(6.0, abs=0.05)

    video = media.read_video(path, fps=8)
    assert video.shape == frames.shape and video.dtype == np.uint8
    # Codec tolerance: H.264 crf 20 + yuv420p chroma subsampling -> mean abs error < 4 levels.
    err = np.abs(video.astype(float) - frames).mean()
    assert err < 4.0, err
    # Frames come back in order: the square of frame i is nearest to frame i of the original.
    for i in (0, 17, 47):
        dists = np.abs(video[i].astype(float) - frames.astype(float)).mean(axis=(1, 2, 3))
        assert int(np.argmin(dists)) == i

    wav = media.read_audio(path, sample_rate=SR)
    assert wav.dtype == np.float32 and wav.shape == audio.shape  # AAC padding trimmed
    snr = 10 * np.log10((audio ** 2).sum() / ((audio - wav) ** 2).sum())
    assert snr > 20.0, snr  # AAC 64 kbit/s mono; measured ~35 dB on this signal
    assert np.corrcoef(audio, wav)[0, 1] > 0.99

    wav22 = media.read_audio(path, sample_rate=22050)  # resampled on read
    assert abs(len(wav22) - 2 * len(audio)) <= 2


def test_constant_rate_resampling_and_resize(tmp_path):
    """A 25 fps video read at 8 fps picks the frame nearest to each i/8 s; int size keeps aspect."""
    t, h, w = 50, 64, 96  # 2 s at 25 fps
    frames = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i] = i * 5  # brightness encodes the source index
    path = tmp_path / "v25.mp4"
    media.write_mp4(path, frames, fps=25)

    video = media.read_video(path, fps=8)
    assert len(video) == 16  # 2.0 s * 8 fps
    got = np.round(video.reshape(len(video), -1).mean(axis=1) / 5).astype(int)
    want = np.round(np.arange(16) / 8 * 25).astype(int)  # nearest source frame to i/8 s
    assert np.abs(got - want).max() <= 1, (got, want)

    small = media.read_video(path, fps=4, size=32)  # shorter side 32, aspect kept
    assert small.shape == (8, 32, 48, 3)
    exact = media.read_video(path, fps=4, size=(40, 20))
    assert exact.shape == (8, 20, 40, 3)


def test_the_shorter_side_sets_the_size_and_a_strip_is_held_to_four_to_one():
    assert media.output_size(1280, 720, 224) == (398, 224)
    assert media.output_size(720, 1280, 224) == (224, 398)
    assert media.output_size(2000, 40, 224) == (896, 224)  # not 11200 x 224
    assert media.output_size(40, 2000, 224) == (224, 896)
    assert media.output_size(2000, 40, None) == (2000, 40)
    assert media.output_size(2000, 40, (300, 10)) == (300, 10)


def test_odd_size_is_padded(tmp_path):
    frames = moving_frames(4, 33, 51)
    media.write_mp4(tmp_path / "odd.mp4", frames, fps=8)
    info = media.probe(tmp_path / "odd.mp4")
    assert (info.width, info.height) == (52, 34)


def test_write_is_atomic_on_error(tmp_path):
    with pytest.raises(ValueError):
        media.write_mp4(tmp_path / "bad.mp4", np.zeros((4, 8, 8), np.uint8), fps=8)
    assert list(tmp_path.iterdir()) == []


def _bad_files(tmp_path):
    good = tmp_path / "good.mp4"
    media.write_mp4(good, moving_frames(48, 64, 64), 8, chord(6 * SR), SR)
    data = good.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    (tmp_path / "empty.mp4").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("name, reason", [
    ("missing.mp4", "file not found"),
    ("truncated.mp4", "truncated"),
    ("text.mp4", "not a readable media file"),
    ("empty.mp4", "not a readable media file"),
])
def test_bad_files_raise_one_line_media_error(tmp_path, name, reason):
    root = _bad_files(tmp_path)
    for fn in (media.probe, media.read_video, media.read_audio):
        with pytest.raises(MediaError) as info:
            fn(root / name)
        msg = str(info.value)
        assert "\n" not in msg and name in msg and reason in msg, msg


def test_truncated_faststart_file_is_detected(tmp_path):
    """With the index at the front (faststart) a cut file still opens: decoding must notice."""
    path = tmp_path / "fs.mp4"
    frames = moving_frames(48, 64, 64)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=Fraction(8))
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(vs.encode(vf))
        c.mux(vs.encode(None))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert len(media.read_video(path)) == 48
    with pytest.raises(MediaError, match="truncated"):
        media.read_video(cut)


def test_missing_tracks(tmp_path):
    frames = moving_frames(8, 32, 32)
    media.write_mp4(tmp_path / "silent.mp4", frames, fps=8)  # no audio track
    with pytest.raises(MediaError, match="no audio track"):
        media.read_audio(tmp_path / "silent.mp4")
    assert not media.probe(tmp_path / "silent.mp4").has_audio

    # audio only (no video track)
    media.write_wav(tmp_path / "a.wav", chord(SR), SR)
    with pytest.raises(MediaError, match="no video track"):
        media.read_video(tmp_path / "a.wav")
    assert len(media.read_audio(tmp_path / "a.wav", SR)) == SR
    with pytest.raises(MediaError, match="is a folder"):
        media.probe(tmp_path)


@pytest.mark.parametrize("degrees, turns", [(-90, 3), (90, 1), (180, 2)])
def test_a_rotated_video_is_read_upright(tmp_path, degrees, turns):
    """A phone video: stored 96x64 (W x H) with a display matrix that players apply; frames come
    back as players show them, at the displayed shape, for the shorter-side and (W, H) sizes."""
    stored = np.zeros((64, 96, 3), np.uint8)
    stored[:, :48, 0] = 255  # left half red, right half blue
    stored[:, 48:, 2] = 255
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.set_display_rotation(degrees)  # counter-clockwise, as VideoFrame.rotation reads it
        for i in range(8):
            f = av.VideoFrame.from_ndarray(stored, format="rgb24")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode())
    shown = np.rot90(stored, turns)  # numpy turns counter-clockwise too
    frames = media.read_video(path, fps=8)
    assert frames.shape[1:3] == shown.shape[:2]
    assert np.abs(frames[0].astype(float) - shown).mean() < 6  # codec tolerance
    small = media.read_video(path, fps=8, size=32)  # the shorter side, of the picture as shown
    assert min(small.shape[1:3]) == 32 and (small.shape[1] > small.shape[2]) == (turns % 2 == 1)
    if turns % 2:
        assert media.read_video(path, fps=8, size=(20, 30)).shape[1:3] == (30, 20)


def test_non_finite_audio_is_one_line_error(tmp_path):
    path = tmp_path / "nan.wav"  # a 32-bit float WAV with one NaN sample
    x = np.zeros((1, SR), np.float32)
    x[0, 100] = np.nan
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_f32le", rate=SR, layout="mono")
        f = av.AudioFrame.from_ndarray(x, format="flt", layout="mono")
        f.sample_rate = SR
        c.mux(s.encode(f))
        c.mux(s.encode())
    with pytest.raises(MediaError, match="NaN or infinite samples") as err:
        media.read_audio(path, sample_rate=SR)
    assert str(path) in str(err.value)
