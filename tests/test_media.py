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


@pytest.mark.parametrize("channels", [2, 6, 8])
def test_multichannel_audio_is_mixed_to_the_mean_of_its_channels(tmp_path, channels):
    # 8 channels (7.1) crashed the process inside PyAV on planar frames; written here by the
    # standard library's wave module, independently of PyAV.
    import wave

    n = SR // 2
    t = np.arange(n) / SR
    x = np.stack([0.5 * np.sin(2 * np.pi * (110 + 55 * c) * t) for c in range(channels)], axis=1)  # [n, C]
    pcm = np.round(x * 32767).astype("<i2")
    path = tmp_path / f"{channels}ch.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    wav = media.read_audio(path, sample_rate=SR)
    expected = (pcm.astype(np.float64) / 32768).mean(axis=1)
    assert wav.shape == (n,)
    np.testing.assert_allclose(wav, expected, atol=1e-6)


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


def flash_and_click(path, audio_start: float = 0.0, video_start: float = 0.0, seconds: float = 5.0,
                    event: float = 3.0, fmt: str | None = None) -> None:
    """A file whose picture flashes white and whose sound clicks at ``event`` s, its audio track
    starting at ``audio_start`` s and its video track at ``video_start`` s of the file's clock."""
    fps, sr = 25, 22050
    with av.open(str(path), "w", format=fmt) as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = c.add_stream("aac", rate=sr, layout="mono")
        for i in range(round(video_start * fps), round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 255 * (i == round(event * fps)), np.uint8),
                                               format="rgb24")
            frame.pts = i
            c.mux(vs.encode(frame))
        c.mux(vs.encode())
        for start in range(round(audio_start * sr), round(seconds * sr), 1024):
            t = np.arange(start, min(start + 1024, round(seconds * sr)))
            x = np.where((t >= event * sr) & (t < event * sr + 200), 0.8, 0.0).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(x[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sr, start
            c.mux(aus.encode(frame))
        c.mux(aus.encode())


@pytest.mark.parametrize("audio_start, video_start, fmt", [(1.0, 0.0, None), (0.0, 1.0, None), (1.0, 0.0, "matroska")])
def test_sound_and_picture_line_up_when_their_tracks_start_at_different_times(tmp_path, audio_start, video_start,
                                                                            fmt):
    path = tmp_path / ("clip.mkv" if fmt else "clip.mp4")
    flash_and_click(path, audio_start, video_start, fmt=fmt)
    info = media.probe(path)
    assert info.video_start == pytest.approx(video_start, abs=0.05)
    frames = media.read_video(path, fps=8)
    flash = int(np.argmax(frames.mean(axis=(1, 2, 3)))) / 8
    audio = media.read_audio(path, SR, start=info.video_start)
    click = int(np.argmax(np.abs(audio))) / SR
    assert flash == pytest.approx(3.0 - video_start)  # the picture's clock starts at its first frame
    assert click == pytest.approx(flash, abs=0.03)  # was off by the tracks' start difference (1 s)
    assert len(audio) / SR == pytest.approx(5.0 - video_start, abs=0.05)  # silence before a late audio start


def test_a_truncated_matroska_file_is_detected(tmp_path):
    # Matroska declares no stream duration: its muxer writes each track's end as a DURATION tag
    path = tmp_path / "clip.mkv"
    flash_and_click(path, seconds=8.0, fmt="matroska")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MediaError, match="truncated file: the audio track decodes to"):
        media.read_audio(cut, SR)
    with pytest.raises(MediaError, match="truncated file: the video track decodes to"):
        media.read_video(cut, fps=8)
    assert len(media.read_video(path, fps=8)) == 64  # the whole file is not


def test_non_square_pixels_are_stretched_as_players_show_them(tmp_path):
    path = tmp_path / "anamorphic.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = 48, 36, "yuv420p"
        s.codec_context.sample_aspect_ratio = Fraction(4, 3)  # shown as 64 x 36 (16:9)
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(moving_frames(1, 36, 48)[0], format="rgb24")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode())
    assert media.read_video(path, fps=8).shape[1:3] == (36, 64)
    assert media.read_video(path, fps=8, size=18).shape[1:3] == (18, 32)


def test_an_audio_file_with_cover_art_has_no_video_track(tmp_path):
    path = tmp_path / "song.m4a"
    with av.open(str(path), "w", format="mp4") as c:
        aus = c.add_stream("aac", rate=SR, layout="mono")
        cover = c.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        picture.pts = 0
        c.mux(cover.encode(picture))
        c.mux(cover.encode())
        sound = av.AudioFrame.from_ndarray(chord(3 * SR)[None], format="fltp", layout="mono")
        sound.sample_rate, sound.pts = SR, 0
        c.mux(aus.encode(sound))
        c.mux(aus.encode())
    info = media.probe(path)
    assert info.has_audio and not info.has_video
    with pytest.raises(MediaError, match="no video track \\(only a cover picture\\)"):
        media.read_video(path)  # was "truncated file: the video track decodes to 0.00 s"


@pytest.mark.parametrize("fps", [float("inf"), float("nan"), 0.0])
def test_a_frame_rate_that_is_not_a_finite_positive_number_is_refused(tmp_path, fps):
    path = tmp_path / "clip.mp4"
    media.write_mp4(path, moving_frames(8, 32, 48), fps=8)
    with pytest.raises(ValueError, match="fps must be a finite number > 0"):
        next(media.iter_video(path, fps=fps))  # inf wrote frames for ever
