"""Small hand-made clip folders for tests that must not depend on SynthMUSIC."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from tribert.config import AudioConfig, VideoConfig
from tribert.data.clip import ClipMeta, frame_name, write_meta, write_wav

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` imported as a module (the folder is not a package)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


SR = 11025
AUDIO = AudioConfig(crop_samples=8191, warp_bins=64)  # 32 STFT frames: fast
VIDEO = VideoConfig(frame_size=32, num_frames=3, pose_frames=8)


def make_clip(root: Path, cid: str, labels: list[str], freqs: list[float], seconds: float = 2.0) -> Path:
    d = root / cid
    (d / "frames").mkdir(parents=True)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    stems = [0.3 * np.sin(2 * np.pi * f * t).astype(np.float32) for f in freqs]
    write_wav(d / "audio.wav", sum(stems), SR)
    if len(stems) > 1:
        for i, s in enumerate(stems):
            write_wav(d / "stems" / f"{i}.wav", s, SR)
    nf = int(seconds * 8)
    for i in range(nf):
        Image.fromarray(np.full((40, 48, 3), 10 * i % 255, np.uint8)).save(d / "frames" / frame_name(i))
    pose = np.random.default_rng(0).uniform(0, 40, (nf, len(labels), 68, 3)).astype(np.float32)
    pose[..., 2] = 1.0
    pose[:, :, 5, 2] = 0.0  # an undetected keypoint
    np.save(d / "pose.npy", pose)
    write_meta(d, ClipMeta(id=cid, labels=labels, num_frames=nf, num_samples=n, width=48, height=40,
                           pose_source="ground_truth", num_stems=len(stems) if len(stems) > 1 else 0))
    return d


