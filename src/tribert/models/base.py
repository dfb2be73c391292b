"""The one interface every separator implements, so one training/evaluation loop serves them all.

A *video item* is one video of a mixture, seen together with the mixture's spectrogram. V video
items (batch x num_mix) go through the model at once; each asks for S sources (S = max persons):
``objects[v, s]`` says what to separate — ``-1`` the whole video, ``j >= 0`` person/object j —
and padding slots are simply ignored by the loss.

    out = model(frames, pose, mix_logmag, objects, labels, source_labels, valid)
    out.mask_logits  # [V, S, 1, F, T]

Inputs:
    frames        [V, K, 3, H, W]  ImageNet-normalised RGB frames
    pose          [V, P, Tp, 68, 3] x, y in [0, 1], confidence (0 = missing)
    mix_logmag    [V, 1, F, T]     log-frequency log-magnitude of the mixture
    objects       [V, S] long      -1 = whole video, j = object / person j
    labels        [V, C]           multi-hot labels of the video (used only by label-conditioned baselines)
    source_labels [V, S] long      class of each requested source, -1 unknown (idem)
    valid         [V, S] bool or None  sources that exist; a model may skip the others (their
                                   masks are ignored by the loss), which saves the padding's cost;
                                   on any device (``MixBatch`` passes a CPU copy: picking the
                                   real sources then costs an accelerator no host sync)

A model may return more than ``mask_logits`` (TriBERT returns class scores and embeddings);
the training system reads what it knows.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tribert.errors import TribertError


# The top-level modules of a model that make the masks from a condition: the U-Net of every model
# and TriBERT's motion guide (paired ablations: drawn from their own seed, gradient clipped apart).
SEPARATOR_MODULES = ("separator", "motion")


def run_seed_plus(offset: int) -> int:
    """The run's seed (``torch.initial_seed()``) plus ``offset``, as a valid generator seed."""
    return (torch.initial_seed() + offset) % 2**63


@contextmanager
def drawn_from_seed(seed: Optional[int]) -> Iterator[None]:
    """Weights built inside are drawn from ``torch.manual_seed(seed)``, and the global generator is
    left where it was, so what is built after them draws as if they did not exist (paired
    ablations: ``model.separator_own_init``, ``model.coattention_own_init``). ``None``: no effect."""
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def check_shape(name: str, x: Optional[Tensor], expected: tuple) -> None:
    """One-line TribertError when input ``x`` does not match ``expected`` (None entries match anything)."""
    if x is None:
        raise TribertError(f"{name} is required by this model")
    if x.dim() != len(expected) or any(e is not None and e != s for e, s in zip(expected, x.shape)):
        shape = ", ".join("*" if e is None else str(e) for e in expected)
        raise TribertError(f"{name} must have shape [{shape}], got {list(x.shape)}")


def check_range(name: str, x: Tensor, low: int, high: int) -> None:
    """One-line TribertError unless every entry of ``x`` is in ``low..high``.

    Checked where that is free, on the CPU. On an accelerator, reading the values back would stall
    its queue at every call (several per training step), so there they are not: the training
    batches and ``tribert separate`` build these tensors on the CPU, from the data.
    """
    if x.device.type == "cpu" and bool(((x < low) | (x > high)).any()):
        raise TribertError(f"{name} must be in {low}..{high}, got {x.unique().tolist()}")


def check_objects(objects: Tensor, num_videos: int, num_objects: int) -> None:
    """objects must be [V, S] with entries in -1..num_objects-1 (one-line TribertError otherwise;
    the entries on the CPU only, see ``check_range``)."""
    if objects.dim() != 2 or objects.shape[0] != num_videos:
        raise TribertError(f"objects must be [V, S] with V = {num_videos}, got {list(objects.shape)}")
    check_range("objects", objects, -1, num_objects - 1)


@dataclass
class SeparatorOutput:
    mask_logits: Tensor  # [V, S, 1, F, T]


def source_weights(objects: Tensor, presence: Tensor) -> Tensor:
    """How much each object slot counts for each requested source: one-hot for object ``o >= 0``,
    and for ``o = -1`` (the whole video) the mean over the objects marked in ``presence`` (over
    every object when a video has none marked).

    objects [B, S] long in -1..O-1, presence [B, O] bool -> weights [B, S, O] (rows sum to 1).
    """
    num_objects = presence.shape[1]
    check_objects(objects, presence.shape[0], num_objects)
    one_hot = F.one_hot(objects.clamp_min(0).long(), num_objects).float()  # [B, S, O]
    presence = presence | ~presence.any(1, keepdim=True)  # nobody marked: every object
    whole = presence.float() / presence.sum(1, keepdim=True)  # [B, O]
    return torch.where((objects < 0)[..., None], whole[:, None].expand_as(one_hot), one_hot)


def partner_weights(objects: Tensor, presence: Tensor) -> Tensor:
    """The mean over the *other* objects marked in ``presence`` for each requested object ``o >= 0``
    (all-zero weights when there is no other, and for ``o = -1``, the whole video).

    objects [B, S] long in -1..O-1, presence [B, O] bool -> weights [B, S, O] (rows sum to 1 or 0).
    """
    own = source_weights(objects, presence)  # validates objects; one-hot rows for o >= 0
    others = presence[:, None, :].float() * (1 - own) * (objects >= 0)[..., None]  # [B, S, O]
    return others / others.sum(-1, keepdim=True).clamp_min(1)


def select_objects(per_object: Tensor, objects: Tensor, presence: Optional[Tensor] = None) -> Tensor:
    """What each requested source is conditioned on: object ``o``'s entry, or for ``o = -1`` the
    mean over the objects marked in ``presence`` (default: all objects; see ``source_weights``).

    per_object [B, O, ...] (TriBERT's pooled SOS [B, O, Dc] or motion [B, O, Dm, Tp], a baseline's
    person features), objects [B, S], presence [B, O] bool -> [B, S, ...].
    """
    if presence is None:
        presence = torch.ones(per_object.shape[:2], dtype=torch.bool, device=per_object.device)
    return weigh_objects(per_object, source_weights(objects, presence))


def weigh_objects(per_object: Tensor, weights: Tensor) -> Tensor:
    """per_object [B, O, ...] averaged with weights [B, S, O] (``source_weights``,
    ``partner_weights``) -> [B, S, ...]."""
    return torch.einsum("bso,bo...->bs...", weights.to(per_object.dtype), per_object)


# The index of the real sources on each accelerator, kept per pattern of ``valid``: a CUDA graph
# (train.cuda_graph) cannot capture a copy from host memory, and a fixed pattern (MUSIC21's
# all-solo batches) then costs no transfer per step. Bounded: duet batches have a few hundred.
_REAL_INDEX: dict[tuple, Tensor] = {}
_REAL_INDEX_SIZE = 1024


def real_source_index(valid: Tensor, device: torch.device) -> Tensor:
    """Flat indices [N] of the True entries of ``valid`` [V, S], on ``device``.

    ``valid`` is read on the host, so a mask already on an accelerator costs a sync there
    (``MixBatch`` passes a CPU copy). A host mask's index for an accelerator is cached per pattern.
    """
    flat = valid.flatten()
    if flat.device.type != "cpu" or torch.device(device).type == "cpu":
        return flat.nonzero().squeeze(1).to(device, non_blocking=True)
    key = (str(device), flat.numpy().tobytes())
    index = _REAL_INDEX.get(key)
    if index is None:
        if len(_REAL_INDEX) >= _REAL_INDEX_SIZE:
            _REAL_INDEX.pop(next(iter(_REAL_INDEX)))  # the oldest pattern
        index = _REAL_INDEX[key] = flat.nonzero().squeeze(1).to(device)
    return index


def separate_sources(unet: nn.Module, mix_logmag: Tensor, cond: Tensor, valid: Optional[Tensor] = None,
                     maps: Optional[Tensor] = None, sequence: Optional[Tensor] = None) -> Tensor:
    """One conditioned U-Net run per requested (video, source), the padding skipped.

    mix_logmag [V, 1, F, T], cond [V, S, D], valid [V, S] bool or None (any device); optionally per source
    ``maps`` [V, S, M, F, T] (M more U-Net input channels) and a ``sequence`` [V, S, Dg, Tg]
    (the U-Net's guide) -> mask logits [V, S, 1, F, T] (logit 0 where not valid).
    """
    v, s, _ = cond.shape
    # Pick the real (video, source) rows first, so that no input is copied for the padding.
    real = None if valid is None else real_source_index(valid, cond.device)  # [N]

    def pick(per_source: Tensor) -> Tensor:  # [V, S, ...] -> [N, ...]
        flat = per_source.flatten(0, 1)
        return flat if real is None else flat.index_select(0, real)

    videos = torch.arange(v, device=cond.device).repeat_interleave(s) if real is None else real // s
    x = mix_logmag.index_select(0, videos)  # [N, 1, F, T]
    if maps is not None:
        x = torch.cat([x, pick(maps).to(x.dtype)], dim=1)  # [N, 1 + M, F, T]
    logits = unet(x, pick(cond), *([pick(sequence)] if sequence is not None else []))  # [N, 1, F, T]
    if real is None:
        return logits.unflatten(0, (v, s))
    return logits.new_zeros(v * s, *logits.shape[1:]).index_copy(0, real, logits).unflatten(0, (v, s))
