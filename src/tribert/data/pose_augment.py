"""Detector-like pose augmentation: training pose made to err the way a real detector errs.

A checkpoint trained on SynthMUSIC's generator skeletons separates SynthMUSIC's own MP4s badly when
``tribert separate`` detects their pose with MediaPipe: the two kinds of pose differ far more than
``tribert.data.synth.noise.detector_noise`` (a few pixels of jitter, drawn once when the data set is
made) imitates. Measured on 60 SynthMUSIC test solos, generator pose against MediaPipe's on the
clip's own MP4 (224-px frames; README, "Separating videos"):

- hands: the generator draws them in ~87% of frames, MediaPipe finds them in 12-18%;
- the performer: MediaPipe misses them in 11% of frames;
- confidences: the generator's are ~0.79 everywhere; MediaPipe's are 1.0 on the face, shoulders and
  hips, 0.8-0.9 on elbows and wrists, ~0.6 on knees and ~0.3 on ankles, toes and heels;
- position: the body sits a clip-wide 4 px (median) from the generator's, but 20-80 px (mostly
  vertically) in one clip out of ten; on top of that 4-15 px of frame-to-frame jitter, most on the legs
  (``benchmarks/pose_kinds.py``).

``detector_like`` draws such errors afresh for every training window, so the model learns a
condition that survives them. Not in the paper (its pose came from a detector in the first place).
"""

from __future__ import annotations

import numpy as np

from tribert.skeleton import INDEX, LEFT_HAND_START, NUM_BODY, NUM_HAND, NUM_KEYPOINTS, RIGHT_HAND_START

# Body points with a detector's larger frame-to-frame jitter and lower confidence (legs, feet).
_LEGS = np.array([INDEX[n] for n in ("left_knee", "right_knee", "left_ankle", "right_ankle", "left_big_toe",
                                     "right_big_toe", "left_small_toe", "right_small_toe", "left_heel",
                                     "right_heel")])
# Frame-to-frame jitter per point, a fraction of the frame: 1.5%, 4% on the legs (pose_kinds.py).
_JITTER_SIGMA = np.full(NUM_KEYPOINTS, 0.015)
_JITTER_SIGMA[_LEGS] = 0.04


def detector_like(pose: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One window's pose with detector-like errors drawn from ``rng``.

    Per person: a hand kept with probability 0.2 (each hand on its own, at confidence 1 where kept),
    the performer lost in a random 0-20% of the frames, a whole-skeleton shift (sigma 1% of the frame,
    10% of the time 10%), a fixed offset per point (sigma 1%), frame-to-frame jitter (1.5%; 4% on
    the legs) and a confidence per point drawn once in [0.2, 1] (legs [0.1, 0.7]). Points the input
    lacks stay missing; a shifted point that leaves the frame is dropped.

    Args:
        pose: [P, T, 68, 3] float32, x and y in [0, 1] (``mixing.pose_window``), confidence 0 = missing.
    Returns:
        A new array of the same shape and dtype.
    """
    P, T, K, _ = pose.shape
    out = pose.copy()
    for p in range(P):
        person = out[p]                                   # [T, 68, 3] (a view)
        seen = person[..., 2] > 0                         # [T, 68]
        if not seen.any():
            continue
        big = rng.random() < 0.1
        shift = rng.normal(0, 0.1 if big else 0.01, 2)
        offset = rng.normal(0, 0.01, (K, 2))
        jitter = rng.normal(0, 1, (T, K, 2)) * _JITTER_SIGMA[None, :, None]
        person[..., :2] += shift + offset[None] + jitter
        conf = rng.uniform(0.2, 1.0, K)
        conf[_LEGS] = rng.uniform(0.1, 0.7, len(_LEGS))
        conf[NUM_BODY:] = 1.0
        for start in (LEFT_HAND_START, RIGHT_HAND_START):
            if rng.random() >= 0.2:
                seen[:, start:start + NUM_HAND] = False
        seen[rng.random(T) < rng.uniform(0.0, 0.2)] = False  # frames where the detector finds nobody
        inside = ((person[..., :2] >= 0) & (person[..., :2] <= 1)).all(-1)
        keep = seen & inside
        person[..., 2] = np.where(keep, conf[None], 0.0)
        person[..., :2] *= keep[..., None]
    return out


__all__ = ["detector_like"]
