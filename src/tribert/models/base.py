"""The one interface every separator implements, so one training/evaluation loop serves them all.

A *video item* is one video of a mixture, seen together with the mixture's spectrogram. V video
items (batch x num_mix) go through the model at once; each asks for S sources (S = max persons):
``objects[v, s]`` says what to separate — ``-1`` the whole video, ``j >= 0`` person/object j —
and padding slots are simply ignored by the loss.

    out = model(frames, pose, mix_logmag, objects, labels, source_labels)
    out.mask_logits  # [V, S, 1, F, T]

Inputs:
    frames        [V, K, 3, H, W]  ImageNet-normalised RGB frames
    pose          [V, P, Tp, 68, 3] x, y in [0, 1], confidence (0 = missing)
    mix_logmag    [V, 1, F, T]     log-frequency log-magnitude of the mixture
    objects       [V, S] long      -1 = whole video, j = object / person j
    labels        [V, C]           multi-hot labels of the video (used only by label-conditioned baselines)
    source_labels [V, S] long      class of each requested source, -1 unknown (idem)

A model may return more than ``mask_logits`` (TriBERT returns class scores and embeddings);
the training system reads what it knows.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class SeparatorOutput:
    mask_logits: Tensor  # [V, S, 1, F, T]
