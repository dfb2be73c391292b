"""Mix-and-separate data set over prepared clip folders or SynthMUSIC.

Each item mixes N clips ("videos"). A clip contributes one source (its whole audio, conditioned on
the whole video, object index -1) or, when it has ground-truth stems and ``use_stems`` is set, one
source per performer (object index = person index, left to right). Training draws random clips,
random crops and random gains (0.5-1.5, mixture divided by N, as the authors' code); evaluation
reads a fixed mixture list (CSV) so every model scores the very same mixtures.

An item is a ``MixBatch`` of one mixture (:mod:`tribert.data.batch` documents every field, its
shape and the source-slot layout); ``mix_loader`` makes a DataLoader that joins items into batches.
"""

from __future__ import annotations

import csv
import hashlib
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tribert.audio import AudioFrontEnd, crop
from tribert.config import AudioConfig, DataConfig, VideoConfig
from tribert.data.batch import MixBatch
from tribert.data.clip import Clip, list_clips
from tribert.data.pose_augment import detector_like
from tribert.errors import TribertError
from tribert.io import atomic_path

if TYPE_CHECKING:  # (pose_features reads pose windows from this module)
    from tribert.data.pose_features import PoseFeatureStore

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalise_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB [K, H, W, 3] -> float32 [K, 3, H, W], ImageNet-normalised (the visual nets' input)."""
    x = (frames.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return x.transpose(0, 3, 1, 2)


def frame_window(centre_s: float, fps: float, count: int, total: int) -> list[int]:
    """Indices of ``count`` consecutive frames around ``centre_s``, clamped to the ``total`` frames."""
    first = int(round(centre_s * fps)) - count // 2
    return [min(max(i, 0), total - 1) for i in range(first, first + count)]


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB [K, H, W, 3] -> uint8 [K, size, size, 3]: PIL bilinear (the aspect ratio is not kept)."""
    from PIL import Image

    if frames.shape[1:3] == (size, size):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in frames])


def model_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Stored frames -> the visual nets' input; training and separation both go through it.

    uint8 RGB [K, H, W, 3] -> float32 [K, 3, size, size]: ``resize_frames`` then ImageNet
    normalisation.
    """
    return normalise_frames(resize_frames(frames, size))


def augmented_size(size: int, margin: float) -> int:
    """Side of the frames a random ``size`` crop is taken from (at least ``size``)."""
    return max(size, int(round((1 + margin) * size)))


def augment_frames(frames: np.ndarray, size: int, margin: float, flip: bool,
                   rng: np.random.Generator) -> np.ndarray:
    """Training-time view of a video's frames: the same random crop and flip for all K of them.

    uint8 RGB [K, H, W, 3] -> float32 [K, 3, size, size]: PIL bilinear resize to
    ``round((1 + margin) * size)`` square, a random ``size`` x ``size`` crop, a left-right flip with
    probability 1/2 (if ``flip``), ImageNet normalisation. The pose is left as it is: no stream
    carries positions into the transformer, so nothing ties frame pixels to pose coordinates.
    """
    big = augmented_size(size, margin)
    x = model_frames(frames, big)  # [K, 3, big, big]
    top, left = (int(v) for v in rng.integers(0, big - size + 1, size=2))
    x = x[:, :, top:top + size, left:left + size]
    if flip and rng.random() < 0.5:
        x = x[..., ::-1]
    return np.ascontiguousarray(x)


def pose_window(pose: np.ndarray, pose_fps: float, start_s: float, dur_s: float, frames: int,
                width: int, height: int) -> np.ndarray:
    """Pose [T, P, 68, 3] (pixels) over [start, start + dur] resampled (nearest) to ``frames``
    steps -> [P, frames, 68, 3] with x, y in [0, 1]; undetected points carry no position."""
    times = start_s + (np.arange(frames) + 0.5) * dur_s / frames
    idx = np.clip(np.floor(times * pose_fps).astype(int), 0, len(pose) - 1)
    out = pose[idx].astype(np.float32, copy=True)
    out[..., 0] /= width
    out[..., 1] /= height
    out[..., :2] *= out[..., 2:3] > 0
    return out.transpose(1, 0, 2, 3)


@dataclass(frozen=True)
class MixSpec:
    """One fixed evaluation mixture: which clips, where to crop (samples), which gains."""

    mix_id: str
    clip_ids: tuple[str, ...]
    offsets: tuple[int, ...]
    gains: tuple[float, ...]


def load_clips(root: str | Path, classes: tuple[str, ...]) -> list[Clip]:
    """All finished clips under ``root``; a clip with a label outside ``classes`` is an error."""
    clips = [Clip(d) for d in list_clips(root)]
    if not clips:
        raise TribertError("no prepared clips found (run `tribert prepare` or `tribert synth`)", root)
    known = set(classes)
    unknown = [c for c in clips if not known.issuperset(c.meta.labels)]
    if unknown:  # every offending label at once: fixing them one rerun at a time wastes a day
        labels = sorted({lab for c in unknown for lab in c.meta.labels if lab not in known})
        raise TribertError(f"{len(unknown)} of {len(clips)} clips have labels outside the {len(classes)} configured "
                           f"classes (data.classes): {', '.join(map(repr, labels))}; the first: {unknown[0].dir.name}",
                           root)
    return clips


def clip_sources(clip: Clip, use_stems: bool) -> int:
    """How many sources a clip contributes."""
    return clip.meta.num_stems if use_stems and clip.meta.num_stems >= 2 else 1


def make_mixture_list(clips: list[Clip], num_mix: int, crop_samples: int, seed: int) -> list[MixSpec]:
    """A fixed evaluation list: every clip once as the first video, partners drawn with ``seed``.

    Crops are centred (test protocol); gains are 1. Partners of a different class set are preferred,
    as in the paper's mix-and-separate protocol.
    """
    if len(clips) < num_mix:
        raise TribertError(f"need at least {num_mix} clips to mix, found {len(clips)}",
                           clips[0].dir.parent if clips else None)
    rng = np.random.default_rng(seed)
    specs = []
    for i, first in enumerate(clips):
        others = [c for c in clips if c is not first and set(c.meta.labels).isdisjoint(first.meta.labels)]
        if len(others) < num_mix - 1:
            others = [c for c in clips if c is not first]
        picks = rng.choice(len(others), size=num_mix - 1, replace=False)
        group = [first] + [others[j] for j in picks]
        offsets = tuple(max(c.meta.num_samples - crop_samples, 0) // 2 for c in group)
        specs.append(MixSpec(f"mix{i:05d}", tuple(c.meta.id for c in group), offsets, (1.0,) * num_mix))
    return specs


def write_mixture_list(path: str | Path, specs: list[MixSpec]) -> None:
    """CSV: mix_id, clip ids, crop offsets (samples), gains; ';' separates the N entries."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["mix_id", "clip_ids", "offsets", "gains"])
            for s in specs:
                w.writerow([s.mix_id, ";".join(s.clip_ids), ";".join(map(str, s.offsets)),
                            ";".join(f"{g:.6g}" for g in s.gains)])


def read_mixture_list(path: str | Path) -> list[MixSpec]:
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [MixSpec(r["mix_id"], tuple(r["clip_ids"].split(";")),
                        tuple(int(x) for x in r["offsets"].split(";")),
                        tuple(float(x) for x in r["gains"].split(";"))) for r in rows]
    except FileNotFoundError:
        raise TribertError("mixture list not found", path) from None
    except (KeyError, ValueError, AttributeError) as err:
        raise TribertError(f"malformed mixture list ({err})", path) from None


def pose_withheld(clip_id: str, fraction: float) -> bool:
    """Whether ``data.pose_missing = fraction`` withholds this clip's pose: a hash of the id, so the
    choice is the same in every run, split and process, and a larger fraction withholds a superset."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(clip_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < fraction


class MixDataset(Dataset):
    """Mix-and-separate over prepared clips; one class for real data and SynthMUSIC.

    Args:
        clips: the clips to draw from (see ``load_clips``).
        audio, video, data: configs (crop length, spectrogram, frames, pose length, N, gains, mask).
        mixtures: a fixed mixture list (evaluation); None draws random mixtures (training).
        length: items per epoch for random mixtures (default: one per clip).
        seed: base seed for random mixtures; index i always gives the mixture drawn from seed
            (seed, i). ``StepSampler`` hands out indices tied to the training step, so every epoch
            sees new mixtures, a run is reproducible and a resumed run sees the same data.
        pose_store: training only (``data.stored_pose``): crops start on the store's grid and each
            item carries the stored ST-GCN features of its windows (``MixBatch.pose_features``).
    """

    def __init__(self, clips: list[Clip], audio: AudioConfig, video: VideoConfig, data: DataConfig,
                 mixtures: list[MixSpec] | None = None, length: int | None = None, seed: int = 0,
                 pose_store: PoseFeatureStore | None = None):
        if pose_store is not None and mixtures is not None:
            raise ValueError("stored pose features are for training mixtures; evaluation computes them")
        self.clips = clips
        self.pose_store = pose_store
        self.by_id = {c.meta.id: c for c in clips}
        self.audio, self.video, self.data = audio, video, data
        self.mixtures = mixtures
        self.length = length or len(clips)
        self.seed = seed
        self.frontend = AudioFrontEnd(audio)
        self.class_index = {name: i for i, name in enumerate(data.classes)}
        self.slots = data.num_mix * video.max_persons
        self._cache: dict[str, dict] = {}  # clip id -> what was read from it (data.cache_clips)
        data.validate()
        # what every item would fail on, said once before any training starts
        if mixtures is None and len(clips) < data.num_mix:
            raise TribertError(f"need at least {data.num_mix} clips to mix (data.num_mix), found {len(clips)}",
                               clips[0].dir.parent if clips else None)
        for clip in clips:
            if clip.meta.sample_rate != audio.sample_rate:
                raise TribertError(f"clip audio is {clip.meta.sample_rate} Hz, config wants {audio.sample_rate} Hz "
                                   f"(set audio.sample_rate to the clips' rate)", clip.dir)
        self.draw_p = None  # training draws: every clip alike, or duets duet_weight times as often
        if data.duet_weight != 1.0 and mixtures is None:  # a fixed mixture list draws nothing
            w = np.array([data.duet_weight if clip_sources(c, data.use_stems) > 1 else 1.0 for c in clips])
            self.draw_p = w / w.sum()
        self.same_class: list[np.ndarray] = []  # clip index -> the other clips sharing an instrument
        if data.same_class_mix > 0 and mixtures is None:
            by_label: dict[str, set[int]] = {}
            for j, c in enumerate(clips):
                for name in c.meta.labels:
                    by_label.setdefault(name, set()).add(j)
            self.same_class = [np.array(sorted(set().union(*(by_label[n] for n in c.meta.labels)) - {j}), dtype=int)
                               for j, c in enumerate(clips)]
        if mixtures is not None:
            missing = [cid for m in mixtures for cid in m.clip_ids if cid not in self.by_id]
            if missing:
                raise TribertError(f"mixture list names clip {missing[0]!r} that is not in the data")

    def __len__(self) -> int:
        return len(self.mixtures) if self.mixtures is not None else self.length

    # --- choosing the mixture -------------------------------------------------------------------
    def _spec(self, index: int) -> tuple[list[Clip], list[int], list[float]]:
        if self.mixtures is not None:
            m = self.mixtures[index]
            return [self.by_id[c] for c in m.clip_ids], list(m.offsets), list(m.gains)
        rng = np.random.default_rng((self.seed, index))
        n = self.data.num_mix
        idx = rng.choice(len(self.clips), size=n, replace=False, p=self.draw_p)
        # (the extra draw only with same_class_mix, so other runs keep their mixtures)
        if self.same_class and n > 1 and rng.random() < self.data.same_class_mix:
            partners = self.same_class[idx[0]]
            if len(partners) >= n - 1:
                idx[1:] = rng.choice(partners, size=n - 1, replace=False)
        group = [self.clips[j] for j in idx]
        L = self.audio.crop_samples
        if self.pose_store is not None:  # a window the store holds
            offsets = [self.pose_store.random_offset(c, L, rng) for c in group]
        else:
            offsets = [int(rng.integers(0, max(c.meta.num_samples - L, 0) + 1)) for c in group]
        gains = [float(rng.uniform(self.data.gain_min, self.data.gain_max)) for _ in group]
        return group, offsets, gains

    # --- reading one video ----------------------------------------------------------------------
    def preload(self) -> None:
        """With ``data.cache_clips``: read every clip into the cache now (the first epoch is then
        as fast as the later ones); without it, nothing."""
        if not self.data.cache_clips:
            return
        for clip in self.clips:
            self._all_frames(clip)
            self._cached(clip, "frame_size", clip.frame_size)
            self._cached(clip, "pose", lambda: clip.pose(self.video.max_persons))
            if clip_sources(clip, self.data.use_stems) > 1:
                self._cached(clip, "stems", clip.stems)
            else:
                self._cached(clip, "audio", clip.audio)

    def _cached(self, clip: Clip, key, read: Callable):
        """``read()``, or with ``data.cache_clips`` its stored result after the first call."""
        if not self.data.cache_clips:
            return read()
        store = self._cache.setdefault(clip.meta.id, {})
        if key not in store:
            store[key] = read()
        return store[key]

    def _augments(self) -> bool:
        """Training items (random mixtures) with a random crop or flip of their frames."""
        v = self.video
        return self.mixtures is None and (v.crop_margin > 0 or v.flip)

    def _read_size(self) -> int:
        """Side the frames are resized to when read: the crop's source size when augmenting."""
        v = self.video
        return augmented_size(v.frame_size, v.crop_margin) if self._augments() else v.frame_size

    def _all_frames(self, clip: Clip) -> np.ndarray:
        """Every frame of the clip at ``_read_size`` (uint8 [N, S, S, 3]), kept (data.cache_clips)."""
        size = self._read_size()
        return self._cached(clip, ("frames", size), lambda: resize_frames(clip.frames(), size))

    def _frames(self, clip: Clip, centre_s: float, rng: np.random.Generator | None) -> np.ndarray:
        """K consecutive frames around ``centre_s`` -> float32 [K, 3, H, W], ImageNet-normalised;
        for training items randomly cropped and flipped with ``rng`` (``augment_frames``)."""
        idx = frame_window(centre_s, clip.meta.fps, self.video.num_frames, clip.meta.num_frames)
        v = self.video
        if self.data.cache_clips:  # every frame of the clip resized once, then picked
            frames = self._all_frames(clip)[idx]
        else:
            frames = resize_frames(clip.frames(idx), self._read_size())
        if self._augments():
            return augment_frames(frames, v.frame_size, v.crop_margin, v.flip, rng)
        return normalise_frames(frames)

    def _pose(self, clip: Clip, start_s: float, dur_s: float, rng: np.random.Generator | None) -> np.ndarray:
        """Pose over [start, start + dur] resampled to Tp frames -> [P, Tp, 68, 3], xy in [0,1];
        all zeros for a clip whose pose is withheld (``data.pose_missing``); for training items,
        with probability ``data.pose_augment`` given a detector's errors drawn from ``rng``."""
        if pose_withheld(clip.meta.id, self.data.pose_missing):
            return np.zeros((self.video.max_persons, self.video.pose_frames, 68, 3), np.float32)
        w, h = self._cached(clip, "frame_size", clip.frame_size)
        pose = self._cached(clip, "pose", lambda: clip.pose(self.video.max_persons))
        window = pose_window(pose, clip.meta.pose_fps, start_s, dur_s, self.video.pose_frames, w, h)
        if rng is not None and rng.random() < self.data.pose_augment:
            return detector_like(window, rng)
        return window

    def _labels(self, names: list[str]) -> np.ndarray:
        y = np.zeros(len(self.data.classes), np.float32)
        for name in names:
            y[self.class_index[name]] = 1.0
        return y

    # --- the item -------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> MixBatch:
        group, offsets, gains = self._spec(index)
        # Frame augmentation draws from its own stream, so turning it on or off keeps the mixtures.
        augment = np.random.default_rng((self.seed, index, 1)) if self._augments() else None
        # So does pose augmentation (training items only).
        pose_rng = (np.random.default_rng((self.seed, index, 2))
                    if self.mixtures is None and self.data.pose_augment > 0 else None)
        a, L, n, p = self.audio, self.audio.crop_samples, len(group), self.video.max_persons
        scale = 1.0 / n if self.data.divide_by_n else 1.0
        sources, slots, src_object, src_label = [], [], [], []
        frames, poses, labels, pose_features = [], [], [], []
        for v, (clip, offset, gain) in enumerate(zip(group, offsets, gains)):
            if clip_sources(clip, self.data.use_stems) > 1:
                if clip.meta.num_stems > p:
                    raise TribertError(f"clip has {clip.meta.num_stems} performers, more than "
                                       f"video.max_persons = {p}", clip.dir)
                for j, stem in enumerate(self._cached(clip, "stems", clip.stems)):
                    sources.append(crop(stem, L, offset)[0] * gain * scale)
                    slots.append(MixBatch.slot(v, j, p))
                    src_object.append(j)
                    src_label.append(self.class_index[clip.meta.labels[j]] if clip.meta.labels else -1)
            else:
                sources.append(crop(self._cached(clip, "audio", clip.audio), L, offset)[0] * gain * scale)
                slots.append(MixBatch.slot(v, 0, p))
                src_object.append(-1)
                src_label.append(self.class_index[clip.meta.labels[0]] if len(clip.meta.labels) == 1 else -1)
            start_s = offset / a.sample_rate
            frames.append(self._frames(clip, start_s + L / a.sample_rate / 2, augment))
            poses.append(self._pose(clip, start_s, L / a.sample_rate, pose_rng))
            if self.pose_store is not None:
                pose_features.append(self.pose_store.read(clip, offset))  # [K, P, D]
            labels.append(self._labels(clip.meta.labels))

        slot = torch.tensor(slots)
        wavs = torch.zeros(self.slots, L)
        wavs[slot] = torch.from_numpy(np.stack(sources))
        mix = wavs.sum(0)
        fe = self.frontend
        with torch.no_grad():
            mags, _ = fe.magnitude(torch.cat([mix[None], wavs[slot]]))  # [1 + sources, 1, F, T]
        mix_mag = mags[:1]
        source_mags = torch.zeros(self.slots, *mix_mag.shape[1:])
        source_mags[slot] = mags[1:]
        # data.mask is "binary" or "ratio" (DataConfig.validate)
        mask = fe.binary_mask if self.data.mask == "binary" else fe.ratio_mask
        masks = mask(source_mags, mix_mag)

        def per_slot(values: list, fill) -> torch.Tensor:
            out = torch.full((self.slots,), fill)
            out[slot] = torch.tensor(values, dtype=out.dtype)
            return out

        return MixBatch(
            mix_wav=mix[None],
            mix_mag=mix_mag,
            mix_logmag=fe.log(mix_mag),
            weight=fe.loss_weight(mix_mag),
            source_wavs=wavs[None],
            source_mags=source_mags[None],
            masks=masks[None],
            source_video=MixBatch.slot_videos(n, p)[None],
            source_object=per_slot(src_object, -1)[None],
            source_label=per_slot(src_label, -1)[None],
            source_valid=per_slot([True] * len(slots), False)[None],
            frames=torch.from_numpy(np.stack(frames))[None],
            pose=torch.from_numpy(np.stack(poses))[None],
            labels=torch.from_numpy(np.stack(labels))[None],
            pose_features=torch.from_numpy(np.stack(pose_features))[None] if pose_features else None,
        )


def ignore_ctrl_c(worker_id: int) -> None:
    """A loader worker leaves Ctrl-C and SIGTERM to the main process: training stops after the
    step in hand, which would wait for ever on a worker that had quit on the terminal's SIGINT,
    or fail on one that a SIGTERM to the process group (SLURM, ``kill -TERM -PGID``) killed. A
    worker still ends with its main process (PyTorch's workers watch it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def mix_loader(dataset: MixDataset, **kwargs) -> DataLoader:
    """A DataLoader of ``MixBatch`` es over ``dataset`` (``kwargs`` as for ``DataLoader``)."""
    if kwargs.get("num_workers", 0) > 0:
        kwargs.setdefault("worker_init_fn", ignore_ctrl_c)
    return DataLoader(dataset, collate_fn=MixBatch.collate, **kwargs)


class StepSampler(torch.utils.data.Sampler):
    """Random-mixture indices tied to the optimisation step, shared out among DDP processes.

    Step g of a run uses the block of ``world_size * batch_size`` indices starting at
    ``g * world_size * batch_size``; process ``rank`` takes the rank-th ``batch_size`` of them. An
    epoch is ``length // (world_size * batch_size)`` steps from ``steps_done()`` (the optimiser steps
    done when the epoch's iterator is made, after a checkpoint is restored). So every epoch sees new
    mixtures, no two processes draw the same one, and a resumed run, even one restored from a
    checkpoint written mid-epoch, draws exactly what the uninterrupted run would have.
    ``rank``, ``world_size`` and ``steps_done`` are set by the training run (``StepSamplerSync``).
    """

    def __init__(self, length: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.length, self.batch_size = length, batch_size
        self.rank, self.world_size = rank, world_size
        self.steps_done: Callable[[], int] | None = None  # None: from step 0

    def steps_per_epoch(self) -> int:
        return self.length // (self.batch_size * self.world_size)

    def __len__(self) -> int:
        return self.steps_per_epoch() * self.batch_size

    def __iter__(self) -> Iterator[int]:
        b, w = self.batch_size, self.world_size
        first = self.steps_done() if self.steps_done is not None else 0
        for step in range(first, first + self.steps_per_epoch()):
            start = (step * w + self.rank) * b
            yield from range(start, start + b)