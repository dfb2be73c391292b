"""Separation inputs: a video file or clip folder -> ``VideoInput`` (frames, audio, pose), decoded
and pose-detected exactly as training data is, and the cheap checks run before any of it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tribert.data.clip import Clip, StoredFrames, is_clip
from tribert.data.prepare import FRAME_SIZE
from tribert.errors import MediaError, TribertError

POSE_CHOICES = ("mediapipe", "none")


@dataclass
class VideoInput:
    """One video as the separator needs it: frames at ``fps``, mono audio, pose in pixels."""

    name: str
    frames: np.ndarray | StoredFrames  # uint8 [T, H, W, 3] (StoredFrames: as JPEG bytes, for long videos)
    audio: np.ndarray  # float32 [N] at the model's sample rate
    pose: np.ndarray  # float32 [Tp, P, 68, 3] at pose_fps, x/y in pixels of ``frames``
    fps: float
    pose_fps: float
    path: str = ""
    pose_source: str = ""  # where the pose came from (a clip's meta.pose_source: mediapipe, none, ...); "" unknown


def load_video(path: str | Path, sample_rate: int, fps: float, pose: str = "mediapipe", persons: int = 1,
               max_persons: int = 2, audio_required: bool = True,
               frame_size: int | None = FRAME_SIZE, progress: bool = False) -> VideoInput:
    """A video file or a prepared clip folder -> VideoInput, as training data sees it.

    A video file goes through ``prepare`` (into a temporary folder) exactly as training videos do:
    frames streamed at ``fps`` and stored with the shorter side ``frame_size`` (JPEG), pose detected
    on those frames (``persons`` 1: the whole frame, a solo; 2: left and right halves, a duet),
    16-bit audio. Only the stored frames stay in memory, never the video at its own resolution.
    ``audio_required=False`` accepts a video without audio (a silent track: visual cues only).
    ``progress``: a bar over the frames while they are decoded, on a terminal.
    """
    from tribert.data.indexes import IndexEntry, safe_id
    from tribert.data.prepare import PrepareOptions, prepare_clip

    path = Path(path)
    if path.is_dir() and is_clip(path):
        return _from_clip(Clip(path), sample_rate, max_persons)
    with tempfile.TemporaryDirectory(prefix="tribert-separate-") as tmp:
        entry = IndexEntry(id=safe_id(path.stem), path=path, source=str(path))
        opts = PrepareOptions(fps=fps, frame_size=frame_size, pose=pose, pose_fps=fps, sample_rate=sample_rate,
                              min_duration=1.0 / fps, persons=persons, audio_required=audio_required,
                              cut_audio_to_picture=False,  # the user's audio is kept: length_notes says so
                              frame_progress=progress)
        result = prepare_clip(entry, tmp, opts)
        if result.status != "prepared":
            raise MediaError(result.reason, path)
        video = _from_clip(Clip(Path(tmp) / entry.id), sample_rate, max_persons)
    video.name, video.path = path.stem, str(path)
    return video


def _from_clip(clip: Clip, sample_rate: int, max_persons: int) -> VideoInput:
    if clip.meta.sample_rate != sample_rate:
        raise TribertError(f"clip audio is {clip.meta.sample_rate} Hz, the model wants {sample_rate} Hz", clip.dir)
    return VideoInput(clip.meta.id, clip.stored_frames(), clip.audio(), clip.pose(max_persons), clip.meta.fps,
                      clip.meta.pose_fps, str(clip.dir), clip.meta.pose_source)


def check_video(path: str | Path, audio_required: bool = True) -> None:
    """Cheap checks of one input (no decoding): a readable video file with the tracks it needs,
    or a prepared clip folder. Raises a one-line MediaError / TribertError naming the file."""
    from tribert import media

    path = Path(path)
    if path.is_dir():
        if not is_clip(path):
            raise TribertError("is a folder but not a prepared clip (no meta.json): give a video file or a "
                               "clip folder of `tribert prepare`", path)
        Clip(path)  # reads meta.json
        return
    info = media.probe(path)
    if not info.has_video:
        raise MediaError("no video track", path)
    if audio_required and not info.has_audio:
        raise MediaError("no audio track (give a mixture recording, --mixture, to use this video "
                         "only as visual and pose cues)", path)


def check_inputs(videos: list, mixture=None) -> None:
    """The cheap checks of every input of a separation, before the model is loaded or a frame
    decoded: each video (``check_video``; with a ``mixture`` file they need no audio track), no
    video given twice (it would be mixed with itself), and a mixture file with an audio track."""
    from tribert import media

    files = [Path(x) for x in videos if isinstance(x, (str, Path))]
    for path in files:
        check_video(path, audio_required=mixture is None)
    seen: dict[Path, Path] = {}
    for path in files:
        key = path.resolve()
        if key in seen:
            also = "" if seen[key] == path else f" (also as {seen[key]})"
            raise TribertError(f"given twice{also}: a video mixed with itself has nothing to separate", path)
        seen[key] = path
    if isinstance(mixture, (str, Path)) and not media.probe(mixture).has_audio:
        raise MediaError("no audio track: nothing to separate in this mixture", mixture)


__all__ = ["VideoInput", "load_video", "check_inputs", "check_video", "POSE_CHOICES"]
