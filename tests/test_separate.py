"""Separation of real video files: the model sees what training saw; inputs are checked first."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tribert.data.clip import Clip
from tribert.data.mixing import MixDataset, MixSpec
from tribert.data.pose_detect import mediapipe_available
from tribert.data.prepare import prepare
from tribert.data.synth import generate
from tribert.engine.config import Config
from tribert.engine.system import SeparationSystem
from tribert.separate import Separator

TINY = ["train.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32",
        "video.pose_frames=8"]
POSE = "mediapipe" if mediapipe_available() else "none"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Two SynthMUSIC solos as real MP4s (H.264 + AAC), 96x96 frames, 2.5 s."""
    root = tmp_path_factory.mktemp("synth")
    generate(root, 2, seed=3, duration=2.5, workers=1, kinds=(1.0, 0.0, 0.0), splits=(1, 0, 0),
             frame_size=96, progress=False)
    return root, sorted((root / "videos").glob("*.mp4"))


def tiny_system() -> SeparationSystem:
    torch.manual_seed(0)
    return SeparationSystem(Config.load(overrides=TINY)).eval()


def model_inputs(sep: Separator, videos) -> dict:
    """What the model is given in the first window of ``sep.separate(videos)``."""
    seen: dict = {}

    def record(module, args, kwargs):
        if not seen:
            seen.update({k: kwargs[k].clone() for k in ("frames", "pose", "mix_logmag")})

    handle = sep.system.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        sep.separate(videos, pose=POSE)
    finally:
        handle.remove()
    return seen


def test_separator_inputs_equal_the_training_item_of_the_prepared_clip(synth, tmp_path):
    """For the same MP4s, what the separator feeds the model is what training feeds it from the
    clips ``tribert prepare`` made of them. Both go through one path (stream the frames at 8 fps,
    store them 224 px JPEG, detect pose on the stored frames, 16-bit audio; PIL-resize the stored
    frames to the model's size), so the codec losses (H.264, JPEG q90, 16-bit PCM) are the same on
    both sides: frames and pose must be equal, the spectrogram equal up to float summation order
    (1e-5). The separator before this fix read the video at its own size and resized it with
    torch bilinear: its frames differed by ~0.1 (normalised units) on average."""
    root, videos = synth
    system = tiny_system()
    cfg = system.config
    report = prepare(videos, tmp_path / "prepared", pose=POSE, workers=1, min_duration=1.0, progress=False)
    assert report.ok, [r.reason for r in report.failed]
    clips = [Clip(tmp_path / "prepared" / v.stem) for v in videos]
    spec = MixSpec("m", tuple(c.meta.id for c in clips), (0, 0), (1.0, 1.0))  # first window, gain 1
    item = MixDataset(clips, cfg.audio, cfg.video, cfg.data, mixtures=[spec])[0]

    seen = model_inputs(Separator(system), videos)
    assert seen["frames"].shape == item["frames"].shape == (2, cfg.video.num_frames, 3, 32, 32)
    assert torch.equal(seen["frames"], item["frames"])
    assert torch.equal(seen["pose"], item["pose"])
    torch.testing.assert_close(seen["mix_logmag"][:1], item["mix_logmag"][None], atol=1e-5, rtol=0)
    if POSE == "mediapipe":  # solos: one performer searched in the whole frame, as prepare does
        conf = seen["pose"][..., 2]  # [V, P, Tp, 68]
        assert conf[:, 0].max() > 0 and conf[:, 1].max() == 0
