"""Windowed inference over a recording of any length: every window the model sees is full of the
recording's sound, never padded with silence (the model never trained on a silent tail: padded,
short recordings and the end of long ones separated worse, ``benchmarks/input_length.py``).

A recording longer than the model's crop L is covered by windows that overlap by about half,
starting at 0, hop, 2 hop, ..., and the last one moved back to end where the recording ends. They
are joined by overlap-add: window k's weight is 1, rising as sin^2 over the overlap with the
previous window and falling as cos^2 over the overlap with the next, and the sum is divided by the
weights' sum, so there is no hard cut (a jump where one window's estimate ends and the next begins)
and a recording that fits one window is one window, weight 1.

A recording shorter than L is looped to fill one window, its frames and pose with it (one period
each), and the first period of the estimate kept.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from tribert.audio import AudioFrontEnd, share_masks
from tribert.config import Config
from tribert.data.mixing import frame_window, model_frames, pose_window
from tribert.progress import track
from tribert.separate.inputs import VideoInput


def default_hop(length: int) -> int:
    """Half the window, rounded up, so that no sample is in more than two windows."""
    return (length + 1) // 2


def window_starts(n: int, length: int, hop: int) -> list[int]:
    """First samples of the windows covering ``n`` samples: 0, hop, 2 hop, ..., and n - length last
    (one window if n <= length)."""
    if not 0 < hop <= length or 2 * hop < length:
        raise ValueError(f"hop must be in [length / 2, length], got {hop} for length {length}")
    if n <= length:
        return [0]
    return [k * hop for k in range(-(-(n - length) // hop))] + [n - length]


def crossfade(length: int, hop: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """float32 [length]: the overlap-add weight of one window (see the module docstring)."""
    overlap = length - hop
    weight = np.ones(length, np.float32)
    if overlap > 0:
        rise = (np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2).astype(np.float32)
        if fade_in:
            weight[:overlap] = rise
        if fade_out:
            weight[length - overlap:] = 1.0 - rise
    return weight


def overlap_add(pieces: list[np.ndarray], starts: list[int], n: int, hop: int) -> np.ndarray:
    """Per-window estimates ``pieces[k]`` [S, L] starting at ``starts[k]`` -> [S, n], cross-faded.
    Divided by the summed weights: 1 where windows are ``hop`` apart, and a weighted mean where the
    last window, moved back to end at ``n``, overlaps more."""
    length = pieces[0].shape[-1]
    end = starts[-1] + length
    out = np.zeros((pieces[0].shape[0], end), np.float32)
    total = np.zeros(end, np.float32)
    last = len(pieces) - 1
    for k, (piece, start) in enumerate(zip(pieces, starts)):
        weight = crossfade(length, hop, k > 0, k < last)
        out[:, start:start + length] += piece * weight
        total[start:start + length] += weight
    return out[:, :n] / total[:n]


def loop_inputs(mix: np.ndarray, inputs: list[VideoInput], length: int, sample_rate: int
                ) -> tuple[np.ndarray, list[VideoInput]]:
    """A recording shorter than one window, and its videos, repeated to fill the window: the sound
    [length], and each video's frames and pose over the window's span, indexed by time modulo the
    recording's duration (so each repeat of the sound comes with its own picture and movement)."""
    period, seconds = len(mix) / sample_rate, length / sample_rate

    def looped(rate: float, available: int) -> np.ndarray:  # indices of the frames over the window
        times = np.arange(math.ceil(seconds * rate)) / rate
        return np.minimum(np.floor((times % period) * rate).astype(int), available - 1)

    videos = [dataclasses.replace(x, frames=x.frames[looped(x.fps, len(x.frames))],
                                  pose=x.pose[looped(x.pose_fps, len(x.pose))]) for x in inputs]
    return np.tile(mix, -(-length // len(mix)))[:length], videos


def window_inputs(config: Config, inputs: list[VideoInput], start_s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The visual inputs of the window starting at ``start_s``, as a training item holds them per
    video: frames [V, K, 3, S, S] around the window's centre, pose [V, P, Tp, 68, 3] over its span."""
    v = config.video
    dur = config.audio.crop_samples / config.audio.sample_rate
    frames, poses = [], []
    for x in inputs:
        idx = frame_window(start_s + dur / 2, x.fps, v.num_frames, len(x.frames))
        frames.append(torch.from_numpy(model_frames(x.frames[idx], v.frame_size)))  # [K, 3, S, S]
        h, w = x.frames.shape[1:3]
        poses.append(torch.from_numpy(pose_window(x.pose, x.pose_fps, start_s, dur, v.pose_frames, w, h)))
    return torch.stack(frames), torch.stack(poses)


@dataclasses.dataclass
class WindowedRun:
    stems: np.ndarray  # [sources, n], in the order of ``objects`` flattened
    masks: list[np.ndarray]  # first window's soft mask per source [F, T] (warped grid; a short recording's loop)
    attention: list[np.ndarray]  # first window's visual localisation per video [h, w], if the model has one
    mixture_logmag: np.ndarray  # first window's model input [F, T]: log magnitude on the warped grid


def separate_windows(model: nn.Module, frontend: AudioFrontEnd, config: Config, mix: np.ndarray,
                     inputs: list[VideoInput], objects: list[list[int]], device: torch.device,
                     batch_windows: int = 8, progress: bool = False) -> WindowedRun:
    """Run ``model`` over ``mix`` [n] in windows; ``objects[v]`` are the sources asked of video v
    (-1 the whole video, j person j). Soft masks, as in evaluation. ``batch_windows`` windows go
    through the model in one forward (the model is in eval mode: batching changes no result).
    ``progress``: a bar over the batches of windows, on a terminal."""
    mix = np.asarray(mix, np.float32)
    length, n = config.audio.crop_samples, len(mix)
    if n < length:
        mix, inputs = loop_inputs(mix, inputs, length, config.audio.sample_rate)
    hop = default_hop(length)
    starts = window_starts(len(mix), length, hop)
    n_videos = len(inputs)
    s_max = max(len(o) for o in objects)
    obj = torch.tensor([o + [-1] * (s_max - len(o)) for o in objects], device=device)  # [V, S]
    real = [(vi, si) for vi, o in enumerate(objects) for si in range(len(o))]
    pieces, masks, attention, logmag0 = [], [], [], None
    batches = range(0, len(starts), batch_windows)
    for first in track(batches, "separating", enabled=progress, transient=True):
        chunk = starts[first:first + batch_windows]
        w = len(chunk)
        segs = torch.from_numpy(np.stack([mix[s:s + length] for s in chunk])).to(device)  # [W, L]
        mag, spec = frontend.magnitude(segs)  # [W, 1, F, T], spec [W, F', T]
        logmag = frontend.log(mag)
        visual = [window_inputs(config, inputs, s / config.audio.sample_rate) for s in chunk]
        frames = torch.cat([f for f, _ in visual]).to(device)  # [W*V, K, 3, S, S]
        poses = torch.cat([p for _, p in visual]).to(device)  # [W*V, P, Tp, 68, 3]
        out = model(frames=frames, pose=poses, mix_logmag=logmag.repeat_interleave(n_videos, 0),
                    objects=obj.repeat(w, 1), labels=None, source_labels=None)
        soft = torch.sigmoid(out.mask_logits.float()).view(w, n_videos, s_max, *out.mask_logits.shape[2:])
        chosen = torch.stack([soft[:, vi, si] for vi, si in real], dim=1)  # [W, sources, 1, F, T]
        chosen = share_masks(chosen, config.model.mask_sharing)  # the sources of this one mixture
        for k in range(w):
            pieces.append(frontend.apply_mask(chosen[k], spec[k:k + 1].expand(len(real), -1, -1), length).cpu().numpy())
        if logmag0 is None:
            logmag0 = logmag[0, 0].cpu().numpy()
            masks = [m[0] for m in chosen[0].cpu().numpy()]
            attention = first_window_attention(out, n_videos)
    return WindowedRun(overlap_add(pieces, starts, n, hop), masks, attention, logmag0)


def first_window_attention(out, n_videos: int) -> list[np.ndarray]:
    """Per video, the visual attention map [h, w] of the first window's middle frame's top class,
    scaled to [0, 1] (empty for a model without one). The first ``n_videos`` items are that window."""
    att = getattr(out, "visual_attention", None)
    if att is None:
        return []
    maps = []
    top = out.visual_top_classes[:, att.shape[1] // 2, 0]  # [W*V] top class of the middle frame
    for vi in range(n_videos):
        m = att[vi, att.shape[1] // 2, top[vi]].float()
        maps.append(((m - m.min()) / (m.max() - m.min() + 1e-8)).cpu().numpy())
    return maps


__all__ = ["default_hop", "window_starts", "crossfade", "overlap_add", "window_inputs", "separate_windows",
           "WindowedRun"]
