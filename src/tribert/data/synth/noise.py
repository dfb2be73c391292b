"""Detector noise: exact keypoints made to look like the output of a real pose detector, so that
a model trained on SynthMUSIC pose meets the same kind of errors it gets from mediapipe on real
videos (:mod:`tribert.data.pose_detect`)."""

from __future__ import annotations

import numpy as np

from tribert.skeleton import LEFT_HAND_START, NUM_HAND, NUM_KEYPOINTS, RIGHT_HAND_START


def detector_noise(kp: np.ndarray, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Make exact keypoints look like a pose detector's output.

    Gaussian jitter of a few pixels (more on the hands), random confidences, random drop-outs and
    occasional whole missing hands (a few frames long). Points outside the frame, and dropped
    points, get confidence 0 and x = y = 0.

    Args:
        kp: [T, P, 68, 2] pixels. Returns: float32 [T, P, 68, 3].
    """
    T, P = kp.shape[:2]
    sigma = rng.uniform(0.6, 2.0)
    scale = np.ones(NUM_KEYPOINTS)
    scale[LEFT_HAND_START:] = 1.4
    xy = kp + rng.normal(0, 1, kp.shape) * sigma * scale[None, None, :, None]
    conf = np.clip(rng.beta(6, 1.6, (T, P, NUM_KEYPOINTS)), 0.05, 1.0)
    conf[..., LEFT_HAND_START:] *= rng.uniform(0.7, 1.0)
    conf[rng.random((T, P, NUM_KEYPOINTS)) < rng.uniform(0.01, 0.05)] = 0.0
    for p in range(P):  # missing hands: bursts of a few frames
        for s0 in (LEFT_HAND_START, RIGHT_HAND_START):
            t = 0
            while t < T:
                if rng.random() < 0.04:
                    n = int(rng.integers(1, 6))
                    conf[t:t + n, p, s0:s0 + NUM_HAND] = 0.0
                    t += n
                t += 1
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    conf = np.where(inside, conf, 0.0)
    xy = np.where(conf[..., None] > 0, xy, 0.0)
    return np.concatenate([xy, conf[..., None]], -1).astype(np.float32)


__all__ = ["detector_noise"]
