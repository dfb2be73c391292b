"""benchmarks/stream_probe.py: the features it reads, and its ``--test-without-pose`` input."""

from __future__ import annotations

import torch

from tribert.config import Config
from tribert.engine.system import SeparationSystem

from helpers import benchmark, make_clip

TINY = ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32",
        "video.pose_frames=8", "train.batch_size=4", "model.dropout=0", "model.attention_dropout=0",
        "model.token_mask_prob=0", "model.visual_dropout=0"]


def probe_features(tmp_path, coattention: bool, drop_pose: bool):
    torch.manual_seed(0)
    system = SeparationSystem(Config.load(overrides=TINY + [f"model.coattention={str(coattention).lower()}"])).eval()
    return benchmark("stream_probe").solo_features(system, str(tmp_path), mixtures=4, drop_pose=drop_pose)


def test_without_pose_changes_vision_only_through_coattention(tmp_path):
    for i, (label, freq) in enumerate((("violin", 440.0), ("flute", 880.0), ("cello", 220.0), ("trumpet", 660.0))):
        make_clip(tmp_path, f"solo{i}", [label], [freq])
    for coattention in (False, True):
        feats, _, classes, has_pose = probe_features(tmp_path, coattention, drop_pose=False)
        blind, _, blind_classes, blind_has_pose = probe_features(tmp_path, coattention, drop_pose=True)
        assert has_pose.all() and not blind_has_pose.any()  # the clips have pose; the probe took it all away
        assert torch.equal(classes, blind_classes)
        assert torch.equal(feats["vision before"], blind["vision before"])  # the frame encoder never sees pose
        assert not torch.allclose(feats["pose before"], blind["pose before"])
        vision_after_moved = (feats["vision after"] - blind["vision after"]).abs().max()
        if coattention:  # the vision stream reads the pose tokens
            assert vision_after_moved > 1e-4, vision_after_moved
        else:  # streams meet only in co-attention
            assert vision_after_moved < 1e-6, vision_after_moved
