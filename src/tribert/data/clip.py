"""The prepared-clip folder: the one on-disk format every data path reads and writes.

``tribert prepare`` (real videos) and ``tribert synth`` (SynthMUSIC) both write it; the
mix-and-separate data set reads only it::

    <root>/<clip_id>/
        meta.json       ClipMeta below
        frames/000000.jpg, 000001.jpg, ...   RGB frames at meta.fps (8 fps), JPEG
        audio.wav       mono, meta.sample_rate (11025 Hz), 16-bit PCM
        pose.npy        float32 [T, persons, 68, 3]: x, y (pixels of the stored frames), confidence;
                        T frames at meta.pose_fps; absent when meta.pose_source == "none"
        stems/0.wav ... optional ground-truth audio per performer (SynthMUSIC), same order as
                        meta.labels and as the persons of pose.npy (left to right in the frame)
        pose_features.npy / .json  optional: a frozen ST-GCN's features of the training windows
                        (``tribert pose-features``; ``tribert.data.pose_features``)

A clip folder is written in a temporary folder and renamed into place when complete, so a folder
with a ``meta.json`` is always a finished clip (resume skips it).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tribert.errors import TribertError
from tribert.io import atomic_write_json, read_json, read_npy
from tribert.io import read_wav, write_wav  # noqa: F401 (re-exported: the clip format's WAV files)

META = "meta.json"
FRAMES = "frames"
AUDIO = "audio.wav"
POSE = "pose.npy"
STEMS = "stems"
DERIVED = "pose_features."  # files computed from the clip, not part of its data


@dataclass
class ClipMeta:
    id: str
    labels: list[str]  # one class name per performer / object (a duet has two)
    fps: float = 8.0
    sample_rate: int = 11025
    num_frames: int = 0
    num_samples: int = 0
    width: int = 0  # stored frame size in pixels (0: read it from the first frame)
    height: int = 0
    pose_fps: float = 8.0
    pose_source: str = "none"  # "ground_truth" (SynthMUSIC), "mediapipe", or "none"
    num_stems: int = 0  # ground-truth per-performer stems in stems/
    split: str | None = None  # "train" / "val" / "test" where known
    source: str | None = None  # the original video file
    extra: dict = field(default_factory=dict)  # generator parameters etc.

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


def frame_name(i: int) -> str:
    return f"{i:06d}.jpg"


def write_meta(clip_dir: str | Path, meta: ClipMeta) -> None:
    from dataclasses import asdict

    atomic_write_json(Path(clip_dir) / META, asdict(meta))


def read_meta(clip_dir: str | Path) -> ClipMeta:
    path = Path(clip_dir) / META
    try:
        data = read_json(path, "meta.json", expect_object=False)  # meta_problem names a non-object
    except FileNotFoundError:
        raise TribertError("not a prepared clip (no meta.json)", clip_dir) from None
    problem = meta_problem(data)
    if problem:  # a hand-written meta.json: say which field, not a TypeError from deep inside
        raise TribertError(problem, path)
    return ClipMeta(**data)


_NUMBERS = ("fps", "sample_rate", "num_frames", "num_samples", "width", "height", "pose_fps", "num_stems")


def meta_problem(data) -> str | None:
    """What is wrong with the fields of a parsed meta.json, or None."""
    if not isinstance(data, dict):
        return f"meta.json must hold a JSON object, got {type(data).__name__}"
    known = set(ClipMeta.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        return f"unknown field(s) {', '.join(map(repr, unknown))} (known: {', '.join(ClipMeta.__dataclass_fields__)})"
    missing = [k for k in ("id", "labels") if k not in data]
    if missing:
        return f"missing field(s) {', '.join(map(repr, missing))}"
    labels = data["labels"]
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        return f'"labels" must be a list of class names, one per performer, got {labels!r}'
    for key in _NUMBERS:
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f'"{key}" must be a number, got {value!r}'
    stems = data.get("num_stems", 0)
    if stems >= 2 and labels and len(labels) != stems:
        return f'"labels" must name each of the {stems} stems ("num_stems") or be empty, got {labels!r}'
    return None


def is_clip(clip_dir: str | Path) -> bool:
    return (Path(clip_dir) / META).is_file()


def holds_clips(folder: str | Path) -> bool:
    """Whether ``folder`` is a prepared clip or a folder of them: what training and evaluation
    read, so no command writes its outputs there."""
    folder = Path(folder)
    return folder.is_dir() and (is_clip(folder) or any(d.is_dir() and is_clip(d) for d in folder.iterdir()))


def list_clips(root: str | Path) -> list[Path]:
    """Finished clip folders directly under ``root`` (sorted); temporary folders are ignored."""
    root = Path(root)
    if root.is_file():
        raise TribertError("is a file, not a folder of prepared clips (tribert prepare makes them)", root)
    if not root.is_dir():
        raise TribertError("data folder not found", root)
    if is_clip(root):  # read as a folder of clips, it held none
        raise TribertError(f"is one prepared clip: give the folder that holds its clips ({root.parent})", root)
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_clip(p))


def solo_clips(root: str | Path) -> list[Path]:
    """The clips of ``list_clips(root)`` with one performer."""
    return [p for p in list_clips(root) if len(read_meta(p).labels) == 1]


class Clip:
    """Lazy reader of one prepared clip folder."""

    def __init__(self, clip_dir: str | Path):
        self.dir = Path(clip_dir)
        self.meta = read_meta(self.dir)

    def __repr__(self) -> str:
        return f"Clip({self.dir}, labels={self.meta.labels})"

    def audio(self) -> np.ndarray:
        """float32 [num_samples] mono at meta.sample_rate."""
        audio, _ = read_wav(self.dir / AUDIO)
        return audio

    def stems(self) -> list[np.ndarray]:
        """Ground-truth per-performer audio, [] when the clip has none."""
        return [read_wav(self.dir / STEMS / f"{i}.wav")[0] for i in range(self.meta.num_stems)]

    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the stored frames: the pixel space of pose.npy."""
        if self.meta.width and self.meta.height:
            return self.meta.width, self.meta.height
        from PIL import Image

        path = self.dir / FRAMES / frame_name(0)
        try:
            with Image.open(path) as im:
                return im.size
        except OSError as err:
            raise TribertError(f"cannot read frame ({err})", path) from None

    def files_stamp(self) -> str:
        """The size and modification time of every file the clip's data is read from (meta.json,
        audio, pose, each frame and stem; not the derived pose features): a cache of something
        computed from the clip misses when any of them is replaced, without reading the media."""
        def walk(folder: Path):
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=True):
                    yield from walk(Path(entry.path))
                elif not entry.name.startswith(DERIVED):
                    st = entry.stat()
                    yield f"{Path(entry.path).relative_to(self.dir)}:{st.st_size}:{st.st_mtime_ns}"

        try:
            return "|".join(walk(self.dir))
        except OSError as err:
            raise TribertError(f"cannot list the clip's files ({err.strerror})", self.dir) from None

    def frame_paths(self) -> list[Path]:
        return [self.dir / FRAMES / frame_name(i) for i in range(self.meta.num_frames)]

    def frames(self, indices: list[int] | None = None) -> np.ndarray:
        """uint8 [K, H, W, 3] RGB frames (all, or the given indices, clamped to the clip)."""
        from PIL import Image

        n = self.meta.num_frames
        idx = range(n) if indices is None else [min(max(int(i), 0), n - 1) for i in indices]
        out: np.ndarray | None = None  # filled in place: a list then np.stack held a long video twice
        for k, i in enumerate(idx):
            path = self.dir / FRAMES / frame_name(i)
            try:
                with Image.open(path) as im:
                    frame = np.asarray(im.convert("RGB"))
            except (OSError, FileNotFoundError) as err:
                raise TribertError(f"cannot read frame ({err})", path) from None
            if out is None:
                out = np.empty((len(idx), *frame.shape), np.uint8)
            elif frame.shape != out.shape[1:]:
                raise TribertError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the clip's first "
                                   f"{out.shape[2]}x{out.shape[1]}", path)
            out[k] = frame
        if out is None:
            raise TribertError("no frames", self.dir / FRAMES)
        return out

    def stored_frames(self) -> "StoredFrames":
        """Every frame, kept as its JPEG file's bytes (decoded when indexed): what separation holds
        of a whole recording, at about a tenth of the memory of ``frames()``."""
        from PIL import Image

        jpegs, size = [], None
        for path in self.frame_paths():
            try:
                data = path.read_bytes()
                with Image.open(io.BytesIO(data)) as im:  # the header only: no decoding
                    shape = im.size
            except OSError as err:
                raise TribertError(f"cannot read frame ({err})", path) from None
            if size is None:
                size = shape
            elif shape != size:
                raise TribertError(f"frame is {shape[0]}x{shape[1]}, the clip's first {size[0]}x{size[1]}", path)
            jpegs.append(data)
        if size is None:
            raise TribertError("no frames", self.dir / FRAMES)
        return StoredFrames(jpegs, height=size[1], width=size[0])

    def pose(self, max_persons: int = 2) -> np.ndarray:
        """float32 [T, max_persons, 68, 3]; zeros (confidence 0) where there is no pose."""
        path = self.dir / POSE
        if self.meta.pose_source == "none":
            t = max(1, round(self.meta.duration * self.meta.pose_fps))
            return np.zeros((t, max_persons, 68, 3), np.float32)
        if not path.exists():  # read as "nobody there", it cost a pose-trained model 5 dB, silently
            raise TribertError(f"missing: meta.json says the clip has pose ({self.meta.pose_source}); prepare the "
                               "clip again, or set its pose_source to \"none\"", path)
        pose = read_npy(path, "pose array").astype(np.float32)
        if pose.ndim != 4 or pose.shape[2:] != (68, 3):
            raise TribertError(f"pose must be [T, persons, 68, 3], got {list(pose.shape)}", path)
        if pose.shape[1] >= max_persons:
            return pose[:, :max_persons]
        pad = np.zeros((pose.shape[0], max_persons - pose.shape[1], 68, 3), np.float32)
        return np.concatenate([pose, pad], axis=1)


class StoredFrames:
    """RGB frames held as JPEG bytes and decoded when indexed: it stands for the uint8 [T, H, W, 3]
    array of ``Clip.frames()`` (``len``, ``shape``, ``dtype``, iteration and ``np.asarray`` as
    for it; an int gives a frame [H, W, 3], an index array the frames [..., H, W, 3], a slice
    another ``StoredFrames``). A 1-hour recording at 8 fps is ~8 GB decoded, ~1 GB so."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, jpegs: list[bytes], height: int, width: int):
        self._jpegs, self._height, self._width = jpegs, height, width

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return len(self._jpegs), self._height, self._width, 3

    def __len__(self) -> int:
        return len(self._jpegs)

    def _decode(self, data: bytes) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))  # [H, W, 3]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return StoredFrames(self._jpegs[index], self._height, self._width)
        if isinstance(index, (int, np.integer)):
            return self._decode(self._jpegs[index])
        index = np.asarray(index)
        out = np.empty((index.size, self._height, self._width, 3), np.uint8)
        for k, i in enumerate(index.reshape(-1)):
            out[k] = self._decode(self._jpegs[i])
        return out.reshape(*index.shape, self._height, self._width, 3)

    def __iter__(self):
        return (self._decode(data) for data in self._jpegs)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)
