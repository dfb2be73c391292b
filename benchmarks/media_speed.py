"""How long ``tribert.media.write_mp4`` takes for one SynthMUSIC-sized clip (6 s, 224 x 224, 8 fps,
noise-like frames and a chord): the encoder settings in ``media.X264_PRESET`` / ``X264_CRF`` were
chosen for this number (SynthMUSIC writes one MP4 per clip). A speed, so a benchmark, not a test:
on a loaded machine it varies several-fold.

    python benchmarks/media_speed.py --repeats 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tribert import media

SR = 11025


def clip_frames(t: int = 48, size: int = 224, seed: int = 0) -> np.ndarray:
    """uint8 [T, size, size, 3]: gradients, a moving square and noise (the hard case for H.264)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    frames = np.zeros((t, size, size, 3), np.float32)
    frames[..., 0], frames[..., 1], frames[..., 2] = xx * 255 / (size - 1), yy * 255 / (size - 1), 40
    for i in range(t):
        x0 = (i * 2) % (size - 16)
        frames[i, 8:24, x0:x0 + 16] = 255
    return np.clip(frames + rng.normal(0, 6, frames.shape), 0, 255).astype(np.uint8)


def chord(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220.0, 330.0, 523.0), 1))
    return (0.35 * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t)) * x).astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="timed MP4 writes (after one untimed warm-up)")
    args = p.parse_args()
    frames, audio = clip_frames(), chord(6 * SR)
    with tempfile.TemporaryDirectory() as tmp:
        media.write_mp4(Path(tmp) / "warm.mp4", frames, 8, audio, SR)  # the first call loads the codecs
        times = []
        for k in range(args.repeats):
            t0 = time.perf_counter()
            media.write_mp4(Path(tmp) / f"s{k}.mp4", frames, 8, audio, SR)
            times.append(time.perf_counter() - t0)
    print(f"write_mp4 ({media.X264_PRESET}, crf {media.X264_CRF}): best {1000 * min(times):.0f} ms, "
          f"median {1000 * float(np.median(times)):.0f} ms per 6 s 224x224 8 fps clip with audio")


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
