"""Detector-like pose augmentation against the detector statistics it is meant to imitate."""

from __future__ import annotations

import numpy as np

from tribert.data.pose_augment import detector_like
from tribert.skeleton import INDEX, LEFT_HAND_START, NUM_BODY

P, T, K = 2, 24, 68


def exact_pose(rng: np.random.Generator) -> np.ndarray:
    """A generator-like window: person 0 fully seen at confidence 0.8 around the frame centre,
    person 1 absent; x, y in [0.3, 0.7]."""
    pose = np.zeros((P, T, K, 3), np.float32)
    pose[0, ..., :2] = rng.uniform(0.3, 0.7, (T, K, 2))
    pose[0, ..., 2] = 0.8
    return pose


def test_detector_like_errs_as_a_detector_does():
    rng = np.random.default_rng(0)
    hands, frames_seen, moved, body_conf = [], [], [], []
    for _ in range(400):
        pose = exact_pose(rng)
        before = pose.copy()
        out = detector_like(pose, rng)
        np.testing.assert_array_equal(pose, before)  # the input is left alone
        assert out.shape == pose.shape and out.dtype == np.float32 and np.isfinite(out).all()
        assert not (out[1] != 0).any()  # an absent person stays absent
        seen = out[0, ..., 2] > 0
        assert (out[0, ..., :2][seen] >= 0).all() and (out[0, ..., :2][seen] <= 1).all()
        assert (out[0, ..., :2][~seen] == 0).all()  # a missing point carries no position
        hands.append(seen[:, LEFT_HAND_START:].any(0).mean())
        frames_seen.append(seen[:, :NUM_BODY].any(1).mean())
        both = seen & (pose[0, ..., 2] > 0)
        moved.append(np.abs(out[0, ..., :2] - pose[0, ..., :2])[both].mean())
        body_conf.append(out[0, ..., INDEX["nose"], 2][seen[:, INDEX["nose"]]])
    # The measured detector: hands in 12-18% of frames, the performer in ~89%, points a few px off.
    assert 0.12 < np.mean(hands) < 0.28, np.mean(hands)
    assert 0.85 < np.mean(frames_seen) < 0.95, np.mean(frames_seen)
    assert 0.01 < np.median(moved) < 0.05, np.median(moved)  # 2-11 px of a 224-px frame
    conf = np.concatenate(body_conf)
    assert conf.min() >= 0.2 and conf.max() <= 1.0 and conf.std() > 0.1  # not the generator's constant


def test_detector_like_is_reproducible_from_its_generator():
    pose = exact_pose(np.random.default_rng(1))
    a = detector_like(pose, np.random.default_rng(5))
    np.testing.assert_array_equal(a, detector_like(pose, np.random.default_rng(5)))
    assert not np.array_equal(a, detector_like(pose, np.random.default_rng(6)))


def test_pose_kinds_measures_a_known_shift_and_lost_hands(tmp_path):
    """benchmarks/pose_kinds.py, the measurement behind detector_like, on a clip whose "detected"
    copy is its exact pose moved 12 px right (in its 48 x 40 frame), hands and half the frames lost."""
    import json
    import subprocess
    import sys
    from dataclasses import replace

    from helpers import BENCHMARKS, make_clip
    from tribert.data.clip import read_meta, write_meta

    exact = make_clip(tmp_path / "exact", "000001_violin", ["violin"], [440.0])
    detected = make_clip(tmp_path / "detected", "violin_mp4", ["violin"], [440.0])
    write_meta(detected, replace(read_meta(detected), source="videos/000001_violin.mp4", pose_source="mediapipe"))
    pose = np.load(exact / "pose.npy")
    moved = pose.copy()
    moved[..., 0] += 12.0
    moved[:, :, LEFT_HAND_START:, 2] = 0.0
    moved[::2, :, :, 2] = 0.0
    np.save(detected / "pose.npy", moved)
    out = tmp_path / "kinds.json"
    subprocess.run([sys.executable, str(BENCHMARKS / "pose_kinds.py"), "--exact", str(tmp_path / "exact"),
                    "--detected", str(tmp_path / "detected"), "--out", str(out)], check=True, capture_output=True)
    result = json.loads(out.read_text())
    s, nose = result["summary"], result["keypoints"]["nose"]
    assert s["clips"] == 1 and s["hands_given_exact"] == 1.0 and s["hands_given_detected"] == 0.0
    assert s["performer_found_detected"] == 0.5
    assert abs(nose["offset_px"] - 12.0 * 224 / 48) < 1e-3 and nose["jitter_px"] < 1e-3  # 56 px, no jitter
    assert result["keypoints"]["left_shoulder"]["given_exact"] == 0.0  # make_clip's undetected point
