"""``MixBatch``: B mix-and-separate mixtures, the one type that travels from data to engine.

Sizes: B mixtures, N videos per mixture (``data.num_mix``), P = ``video.max_persons`` source slots
per video, S = N * P source slots per mixture, F x T the warped spectrogram, L samples, K frames,
Tp pose steps, C classes. An item of ``MixDataset`` is a ``MixBatch`` with B = 1; ``collate``
joins items along B, so these are the only shapes to know::

    mix_wav [B,L]                  mixture waveform
    mix_mag, mix_logmag [B,1,F,T]  warped mixture magnitude and log(mag + eps)
    weight [B,1,F,T]               per-pixel loss weight clamp(log1p(mix_mag), 1e-3, 10)
    source_wavs [B,S,L]            each source as it sits in the mixture (gain and 1/N applied)
    source_mags, masks [B,S,1,F,T] warped source magnitudes and binary/ratio mask targets
    source_video [B,S] long        which of the N videos a slot belongs to
    source_object [B,S] long       object to condition on (-1 = whole video, else person index)
    source_label [B,S] long        class index of the source (-1 if unknown / several / padding)
    source_valid [B,S] bool        False for padding slots (zero audio, never separated or scored)
    frames [B,N,K,3,H,W]           K consecutive RGB frames around the crop centre, ImageNet-normalised
    pose [B,N,P,Tp,68,3]           pose over the crop resampled to Tp steps; x, y in [0, 1]
    labels [B,N,C]                 multi-hot class labels per video
    pose_features [B,N,K,P,D]      optional (None): the frozen ST-GCN's pooled output on ``pose``,
                                   stored ahead of training (``data.stored_pose``), D = C * 68

The slot layout: slot ``n * P + j`` holds person j of video n, or the whole video n (object -1) in
slot ``n * P``. So [B, S] reshapes to [B, N, P], and the separators, which see V = B * N video
items with P requested sources each, take [V, P] (``slots_by_video``; ``slots_by_mixture`` goes
back). This class is the only place that arithmetic lives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor


@dataclass
class MixBatch:
    mix_wav: Tensor
    mix_mag: Tensor
    mix_logmag: Tensor
    weight: Tensor
    source_wavs: Tensor
    source_mags: Tensor
    masks: Tensor
    source_video: Tensor
    source_object: Tensor
    source_label: Tensor
    source_valid: Tensor
    frames: Tensor
    pose: Tensor
    labels: Tensor
    pose_features: Tensor | None = None

    def __post_init__(self) -> None:
        # A CPU copy of source_valid that stays behind when the batch moves to an accelerator: the
        # separators pick the real sources with it (``video_inputs``), which on the CPU costs no
        # host sync, where reading the moved mask would stall the accelerator's queue every step.
        self._host_valid = self.source_valid if self.source_valid.device.type == "cpu" else None

    # --- sizes ------------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.mix_wav.shape[0]

    @property
    def num_videos(self) -> int:
        return self.frames.shape[1]

    @property
    def slots_per_video(self) -> int:
        return self.source_valid.shape[1] // self.num_videos

    # --- the slot layout --------------------------------------------------------------------------
    @staticmethod
    def slot(video: int, person: int, slots_per_video: int) -> int:
        """Slot of person ``person`` (0 also for the whole video) of video ``video``."""
        return video * slots_per_video + person

    @staticmethod
    def slot_videos(num_videos: int, slots_per_video: int) -> Tensor:
        """[S] long: the video of every slot (the ``source_video`` of one mixture)."""
        return torch.arange(num_videos * slots_per_video) // slots_per_video

    def slots_by_video(self, x: Tensor) -> Tensor:
        """[B, S, ...] -> [V, P, ...] (V = B * N): the slots of each video item."""
        return x.reshape(self.batch_size * self.num_videos, self.slots_per_video, *x.shape[2:])

    def slots_by_mixture(self, x: Tensor) -> Tensor:
        """[V, P, ...] -> [B, S, ...], the inverse of ``slots_by_video``."""
        return x.reshape(self.batch_size, self.num_videos * self.slots_per_video, *x.shape[2:])

    def by_video(self, x: Tensor) -> Tensor:
        """A per-video field [B, N, ...] -> [V, ...]."""
        return x.flatten(0, 1)

    def video_labels(self) -> Tensor:
        """[V, C] multi-hot labels of each video item."""
        return self.by_video(self.labels)

    def mixture_labels(self) -> Tensor:
        """[V, C]: every class heard in the video's mixture, for each video item."""
        return self.labels.amax(1).repeat_interleave(self.num_videos, 0)

    def video_inputs(self) -> dict[str, Tensor]:
        """The separator interface's keyword inputs (:mod:`tribert.models.base`), V = B * N items."""
        inputs = {
            "frames": self.by_video(self.frames),  # [V, K, 3, H, W]
            "pose": self.by_video(self.pose),  # [V, P, Tp, 68, 3]
            "mix_logmag": self.mix_logmag.repeat_interleave(self.num_videos, 0),  # [V, 1, F, T]
            "objects": self.slots_by_video(self.source_object),  # [V, P]
            "labels": self.video_labels(),  # [V, C]
            "source_labels": self.slots_by_video(self.source_label),  # [V, P]
            # [V, P]: padding is not separated; the CPU copy where the batch has one
            "valid": self.slots_by_video(self.source_valid if self._host_valid is None else self._host_valid),
        }
        if self.pose_features is not None:  # only TriBERT with a frozen ST-GCN reads them
            inputs["pose_features"] = self.by_video(self.pose_features)  # [V, K, P, D]
        return inputs

    def real(self, i: int, x: Tensor) -> Tensor:
        """The real (non-padding) sources of mixture i from a [B, S, ...] tensor -> [S_i, ...]."""
        return x[i][self.source_valid[i]]

    # --- moving and joining -----------------------------------------------------------------------
    def tensors(self) -> dict[str, Tensor]:
        """Every field that holds a tensor (an optional field left None is not listed)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def replace(self, **changes: Tensor) -> "MixBatch":
        new = dataclasses.replace(self, **changes)
        if "source_valid" not in changes:
            new._host_valid = self._host_valid
        return new

    def to(self, device: str | torch.device, non_blocking: bool = False) -> "MixBatch":
        """Every tensor on ``device`` (Lightning calls this to move a batch); the CPU copy of
        ``source_valid`` stays."""
        moved = MixBatch(**{k: v.to(device, non_blocking=non_blocking) for k, v in self.tensors().items()})
        moved._host_valid = self._host_valid if self._host_valid is not None else moved._host_valid
        return moved

    def pin_memory(self) -> "MixBatch":
        """Page-locked copy (the DataLoader calls this with ``pin_memory=True``)."""
        return MixBatch(**{k: v.pin_memory() for k, v in self.tensors().items()})

    @staticmethod
    def collate(items: Iterable["MixBatch"]) -> "MixBatch":
        """Join items (or batches) along B: the ``collate_fn`` of every mixture DataLoader."""
        items = list(items)
        return MixBatch(**{name: torch.cat([x.tensors()[name] for x in items]) for name in items[0].tensors()})


__all__ = ["MixBatch"]
