"""Stored pose features: a frozen ST-GCN's output on the training windows, computed once.

The paper trained TriBERT on st-gcn features stored ahead of training. With a frozen ST-GCN
(``model.pose_frozen``) a training window's pose tokens are ``proj(PoseEncoder.features(pose))``,
and ``features`` is a fixed function of the window's pose: it can be computed once per window
instead of at every step (at paper size on a GPU the frozen ST-GCN is about a quarter of the step).
A training window may start at any sample, so the store holds the windows that start on a grid,
every ``grid`` seconds, and with ``data.stored_pose`` the training crops start on that grid (their
audio, frames and pose alike). Each stored feature is the one the ST-GCN computes on that window's
pose, so the tokens are those of the in-loop path (to float16 rounding); evaluation and
``tribert separate`` keep computing them from the pose. ``tribert pose-features`` writes, per clip::

    <clip>/pose_features.npy   float16 [G, K, P, D]: window g starts at sample g * grid_samples,
                               K time segments, P persons, D = C_out * 68 ST-GCN features
    <clip>/pose_features.json  the settings below (``StoreSettings``) and a digest of the clip's
                               pose.npy and pose meta fields (``pose_source_digest``), written last

Size: K * P * D * 2 bytes per window: 209 KB at paper size (3 x 2 x 256 x 68), so 12.5 MB per
minute of video on the default 1-s grid. A store is tied to one ST-GCN by a fingerprint of its
layout and weights (``PoseEncoder.fingerprint``): the training run refuses features another one
computed, and features of a pose that has since changed (a clip's pose detected again, or the clip
prepared again at another pose rate, frame size or length).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from tribert.data.clip import POSE, Clip
from tribert.data.mixing import pose_window
from tribert.device import resolve_device
from tribert.errors import TribertError
from tribert.io import atomic_path, atomic_write_json, read_json, read_npy
from tribert.progress import track

FEATURES = "pose_features.npy"
FEATURES_META = "pose_features.json"
SOURCE_DIGEST = "source_sha1"  # key of pose_source_digest() in FEATURES_META


@dataclass(frozen=True)
class StoreSettings:
    """What a store's windows were cut and computed with; the training run must match every field."""

    fingerprint: str  # PoseEncoder.fingerprint() of the ST-GCN that computed them
    grid_samples: int  # window g starts at sample g * grid_samples
    crop_samples: int  # audio.crop_samples: the window's length
    sample_rate: int  # audio.sample_rate
    pose_frames: int  # video.pose_frames: the window's pose resampled to this many steps
    num_frames: int  # video.num_frames: K time segments
    max_persons: int  # video.max_persons: P
    feature_dim: int  # D = C_out * 68

    @staticmethod
    def of(audio, video, feature_dim: int, fingerprint: str = "", grid_samples: int = 0) -> "StoreSettings":
        """The settings a recipe's windows are cut with (its audio and video sections); the
        fingerprint and the grid are the store's own (empty / 0: what a run reads from the stores)."""
        return StoreSettings(fingerprint=fingerprint, grid_samples=grid_samples, crop_samples=audio.crop_samples,
                             sample_rate=audio.sample_rate, pose_frames=video.pose_frames,
                             num_frames=video.num_frames, max_persons=video.max_persons, feature_dim=feature_dim)

    @staticmethod
    def read(clip_dir: Path) -> "StoreSettings":
        path = Path(clip_dir) / FEATURES_META
        if not path.is_file():
            raise TribertError("no stored pose features (run `tribert pose-features` with the training "
                               "recipe on the folder of this clip)", clip_dir)
        what = "stored pose features' settings"
        raw = read_json(path, what)
        try:
            return StoreSettings(**{f.name: raw[f.name] for f in fields(StoreSettings)})
        except KeyError as err:
            raise TribertError(f"corrupt {what} (no {err})", path) from None

    def differences(self, other: "StoreSettings", skip: tuple[str, ...] = ()) -> list[str]:
        """'field: this vs other' for every field that differs (``skip``: fields not compared)."""
        return [f"{f.name} {getattr(self, f.name)} vs {getattr(other, f.name)}" for f in fields(self)
                if f.name not in skip and getattr(self, f.name) != getattr(other, f.name)]


def pose_source_digest(clip: Clip) -> str:
    """SHA-1 of what a clip's stored features are computed from besides the ST-GCN: its pose.npy
    and the meta fields that place the pose in time and space (pose frame rate, frame size, length).
    A clip whose pose was detected again, or that was prepared again at another rate, size or
    length, gets another digest."""
    path = clip.dir / POSE
    digest = hashlib.sha1()
    try:
        digest.update(path.read_bytes())
    except FileNotFoundError:
        digest.update(b"no pose")
    except OSError as err:
        raise TribertError(f"cannot read pose array ({err.strerror})", path) from None
    width, height = clip.frame_size()
    digest.update(f"|{clip.meta.pose_fps}|{width}x{height}|{clip.meta.num_samples}".encode())
    return digest.hexdigest()


def stored_source_digest(clip: Clip) -> str | None:
    """The ``pose_source_digest`` the stored features were computed from (None: not recorded, as
    in stores written before it was, or unreadable)."""
    try:
        digest = read_json(clip.dir / FEATURES_META, "stored pose features' settings").get(SOURCE_DIGEST)
    except (OSError, TribertError):
        return None
    return digest if isinstance(digest, str) else None


def grid_offsets(num_samples: int, crop_samples: int, grid_samples: int) -> np.ndarray:
    """Start samples of a clip's stored windows: 0, grid, 2 * grid, ... while the crop fits (at
    least the window at 0, which a clip shorter than the crop pads, as training does)."""
    return np.arange(max(num_samples - crop_samples, 0) // grid_samples + 1) * grid_samples


def write_pose_features(clip: Clip, encoder, settings: StoreSettings, device: torch.device,
                        batch_size: int = 32) -> int:
    """Compute and store the features of every grid window of ``clip`` with ``encoder`` (a frozen
    ``PoseEncoder``); the window's pose is cut exactly as ``MixDataset`` cuts it. Returns G."""
    s = settings
    pose = clip.pose(s.max_persons)
    width, height = clip.frame_size()
    offsets = grid_offsets(clip.meta.num_samples, s.crop_samples, s.grid_samples)
    dur = s.crop_samples / s.sample_rate
    out = np.empty((len(offsets), s.num_frames, s.max_persons, s.feature_dim), np.float16)
    for i in range(0, len(offsets), batch_size):
        windows = np.stack([pose_window(pose, clip.meta.pose_fps, int(o) / s.sample_rate, dur, s.pose_frames,
                                        width, height) for o in offsets[i:i + batch_size]])  # [b, P, Tp, 68, 3]
        with torch.no_grad():
            feats = encoder.features(torch.from_numpy(windows).to(device))  # [b, K, P, D]
        out[i:i + batch_size] = feats.float().cpu().numpy()
    (clip.dir / FEATURES_META).unlink(missing_ok=True)  # the settings go last: they mark the store complete
    with atomic_path(clip.dir / FEATURES) as tmp:
        np.save(tmp, out)
    atomic_write_json(clip.dir / FEATURES_META, {**asdict(settings), SOURCE_DIGEST: pose_source_digest(clip)})
    return len(offsets)


@dataclass
class StoreReport:
    written: int  # clips whose features were computed
    skipped: int  # clips that already had these features (same ST-GCN, grid and settings)
    windows: int  # windows computed
    seconds: float


NOT_FROZEN = "stored pose features need a frozen ST-GCN: set model.pose_frozen=true (with train.init_from for trained weights)"


def check_store_options(audio, grid_seconds: float, device: str, batch_size: int) -> tuple[int, torch.device]:
    """``store_pose_features``' options, checked before the model is built: the grid in samples and
    the device, or a one-line error."""
    if not 0 < grid_seconds < math.inf or round(grid_seconds * audio.sample_rate) < 1:
        raise TribertError(f"--grid must be a finite, positive number of seconds, got {grid_seconds}")
    if batch_size < 1:
        raise TribertError(f"--batch must be >= 1, got {batch_size}")
    return round(grid_seconds * audio.sample_rate), resolve_device(device)


def store_pose_features(clips: list[Clip], encoder, audio, video, grid_seconds: float = 1.0,
                        device: str = "auto", batch_size: int = 32, progress: bool = True) -> StoreReport:
    """``tribert pose-features``: store the features of ``clips`` computed by ``encoder``, the frozen
    ``PoseEncoder`` of the model to be trained (``engine.train.build_system``), for crops of
    ``audio.crop_samples`` starting every ``grid_seconds``. Clips that hold these features are skipped."""
    import time

    if not getattr(encoder, "frozen", False):
        raise TribertError(NOT_FROZEN)
    grid, device = check_store_options(audio, grid_seconds, device, batch_size)
    encoder = encoder.to(device).eval()
    settings = StoreSettings.of(audio, video, encoder.feature_dim, encoder.fingerprint(), grid)
    start = time.perf_counter()
    written = skipped = windows = 0
    for clip in track(clips, "pose features", enabled=progress, transient=True):
        try:
            if StoreSettings.read(clip.dir) == settings and stored_source_digest(clip) == pose_source_digest(clip):
                read_stored_features(clip, settings)  # raises for an emptied or truncated file
                skipped += 1
                continue
        except TribertError:  # none yet, or an unreadable one (settings or features): computed again
            pass
        windows += write_pose_features(clip, encoder, settings, device, batch_size)
        written += 1
    return StoreReport(written, skipped, windows, time.perf_counter() - start)


class PoseFeatureStore:
    """The stored features of the training clips, read by ``MixDataset`` (``data.stored_pose``).

    Every clip must have a store cut with ``expected`` (all fields but the fingerprint and the
    grid, which are read from the stores and must be one for all clips); ``check_model`` then ties
    the fingerprint to the model being trained.
    """

    def __init__(self, clips: list[Clip], expected: StoreSettings):
        found: StoreSettings | None = None
        for clip in clips:
            settings = StoreSettings.read(clip.dir)
            wrong = settings.differences(expected, skip=("fingerprint", "grid_samples"))
            if wrong:
                raise TribertError(f"stored pose features were cut with other settings ({'; '.join(wrong)}, "
                                   "stored vs the recipe): run `tribert pose-features` again", clip.dir)
            digest = stored_source_digest(clip)
            if digest is not None and digest != pose_source_digest(clip):
                raise TribertError("the clip's pose.npy or its pose frame rate, frame size or length changed "
                                   "since its pose features were stored: run `tribert pose-features` again",
                                   clip.dir)
            if found is not None and settings.differences(found):
                raise TribertError(f"stored pose features differ from those of the other clips "
                                   f"({'; '.join(settings.differences(found))}): run `tribert pose-features` "
                                   "on the whole folder again", clip.dir)
            found = settings
        if found is None:
            raise TribertError("no clips to read stored pose features of")
        self.settings = found

    @property
    def grid_samples(self) -> int:
        return self.settings.grid_samples

    def check_model(self, fingerprint: str) -> None:
        """One-line error unless the stores were computed by the ST-GCN whose fingerprint is given."""
        if fingerprint != self.settings.fingerprint:
            raise TribertError(f"the stored pose features were computed by another ST-GCN (fingerprint "
                               f"{self.settings.fingerprint}, the model's is {fingerprint}): run `tribert "
                               "pose-features` with this run's recipe and train.init_from")

    def random_offset(self, clip: Clip, crop_samples: int, rng: np.random.Generator) -> int:
        """A training crop's start: one of the clip's stored windows, drawn uniformly."""
        offsets = grid_offsets(clip.meta.num_samples, crop_samples, self.grid_samples)
        return int(offsets[rng.integers(0, len(offsets))])

    def read(self, clip: Clip, offset: int) -> np.ndarray:
        """The stored features of the window starting at ``offset`` -> float32 [K, P, D]."""
        stored = read_stored_features(clip, self.settings)
        return np.asarray(stored[offset // self.settings.grid_samples], dtype=np.float32)


def read_stored_features(clip: Clip, s: StoreSettings) -> np.ndarray:
    """The clip's stored features, memory-mapped [windows, K, P, D]; a TribertError naming the file
    if it cannot be read or does not hold the windows ``s`` cuts from this clip."""
    path = clip.dir / FEATURES
    stored = read_npy(path, "stored pose features", mmap=True)
    count = len(grid_offsets(clip.meta.num_samples, s.crop_samples, s.grid_samples))
    if stored.shape != (count, s.num_frames, s.max_persons, s.feature_dim):
        raise TribertError(f"stored pose features have shape {list(stored.shape)}, expected "
                           f"{[count, s.num_frames, s.max_persons, s.feature_dim]} (run `tribert "
                           "pose-features` again)", path)
    return stored


__all__ = ["FEATURES", "FEATURES_META", "PoseFeatureStore", "StoreReport", "StoreSettings", "grid_offsets",
           "pose_source_digest", "store_pose_features", "write_pose_features"]
