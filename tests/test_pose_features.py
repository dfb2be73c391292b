"""Stored pose features (``tribert pose-features``, ``data.stored_pose``): the training windows' features
are those the frozen ST-GCN computes on the windows' pose, and every mismatch is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import make_clip
from tribert.cli import app
from tribert.config import Config
from tribert.data.clip import Clip
from tribert.data.pose_features import FEATURES, FEATURES_META, grid_offsets, store_pose_features
from tribert.engine.system import SeparationSystem
from tribert.engine.train import build_system, train_loader
from tribert.errors import ConfigError, TribertError

TINY = ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32",
        "video.pose_frames=8", "train.batch_size=2", "train.accelerator=cpu", "train.warmup_frac=0",
        "model.pose_frozen=true", "data.val_dir=''", "data.test_dir=''"]
GRID_S = 0.25


@pytest.fixture
def clips_root(tmp_path):
    root = tmp_path / "clips"
    make_clip(root, "violin", ["violin"], [440.0])
    make_clip(root, "flute", ["flute"], [1320.0], seconds=3.0)
    make_clip(root, "cello", ["cello"], [110.0])
    make_clip(root, "duet", ["violin", "violin"], [330.0, 660.0])
    return root


def config(root, *extra: str) -> Config:
    return Config.load(overrides=TINY + [f"data.train_dir={root}", *extra])


def store(root, cfg: Config, grid_s: float = GRID_S):
    clips = [Clip(p) for p in sorted(root.iterdir())]
    return store_pose_features(clips, build_system(cfg).model.pose, cfg.audio, cfg.video, grid_seconds=grid_s,
                               device="cpu", progress=False)


def test_the_training_items_carry_the_frozen_stgcns_features_of_their_own_windows(clips_root):
    cfg = config(clips_root)
    report = store(clips_root, cfg)
    grid = round(GRID_S * cfg.audio.sample_rate)
    # 2-s clips hold windows at 0, 0.25 .. 1.25 s (6), the 3-s clip 10
    assert report.written == 4 and report.windows == 3 * 6 + 10
    stored_cfg = config(clips_root, "data.stored_pose=true")
    encoder = build_system(stored_cfg).model.pose.eval()
    ds = train_loader(stored_cfg).dataset
    offsets = set()
    for i in range(12):
        item = ds[i]
        offsets |= set(ds._spec(i)[1])
        with torch.no_grad():  # the features of the item's own pose window, computed in the loop
            expected = encoder.features(item.pose[0])  # [N, K, P, D]
        assert item.pose_features.shape == (1, *expected.shape)
        # float16 storage: within its rounding, and far from the features of another window
        torch.testing.assert_close(item.pose_features[0], expected, rtol=2e-3, atol=2e-3)
    assert all(o % grid == 0 for o in offsets) and len(offsets) >= 3  # on the grid, and not only at 0


def test_a_model_reading_stored_features_computes_what_it_computes_from_the_pose(clips_root):
    cfg = config(clips_root)
    store(clips_root, cfg)
    stored_cfg = config(clips_root, "data.stored_pose=true")
    system = build_system(stored_cfg).eval()
    batch = next(iter(train_loader(stored_cfg)))
    with torch.no_grad():
        from_store = system(batch)[1]
        from_pose = system(batch.replace(pose_features=None))[1]
    torch.testing.assert_close(from_store, from_pose, rtol=1e-2, atol=1e-2)
    assert (from_store - from_pose).abs().max() < 0.01 * from_pose.abs().max()


def test_pose_features_skips_finished_clips_and_recomputes_for_another_stgcn(clips_root):
    cfg = config(clips_root)
    assert store(clips_root, cfg).written == 4
    again = store(clips_root, cfg)
    assert (again.written, again.skipped) == (0, 4)
    other = store(clips_root, config(clips_root, "train.seed=7"))  # another random ST-GCN
    assert (other.written, other.skipped) == (4, 0)
    coarser = store(clips_root, config(clips_root, "train.seed=7"), grid_s=0.5)
    assert coarser.written == 4


def test_a_pose_detected_again_is_never_read_through_its_old_features(clips_root):
    """The stored features are a function of the clip's pose: replace pose.npy (a better detector,
    the clip prepared again) and training refuses the old features; pose-features recomputes that
    clip alone."""
    cfg = config(clips_root)
    store(clips_root, cfg)
    train_loader(config(clips_root, "data.stored_pose=true"))  # fine as stored
    path = clips_root / "cello" / "pose.npy"
    pose = np.load(path)
    pose[..., :2] += 5.0  # the performer found 5 px to the side
    np.save(path, pose)
    with pytest.raises(TribertError, match="cello: the clip.s pose.npy or its pose frame rate, .* changed since"):
        train_loader(config(clips_root, "data.stored_pose=true"))
    again = store(clips_root, cfg)
    assert (again.written, again.skipped) == (1, 3)
    train_loader(config(clips_root, "data.stored_pose=true"))


def test_features_of_another_stgcn_layout_or_another_pose_timing_are_computed_again(clips_root):
    """Strides change no weight's shape: a fingerprint of the weights alone took the features of
    model.pose_strides [1, 2] for those of [2, 2]. Features are also a function of the clip's pose
    frame rate, frame size and length (meta.json), not only of pose.npy."""
    assert store(clips_root, config(clips_root, "model.pose_strides=[1,2]")).written == 4
    other = config(clips_root, "model.pose_strides=[2,2]")
    assert store(clips_root, other).written == 4  # was skipped as done
    loader = train_loader(config(clips_root, "model.pose_strides=[2,2]", "data.stored_pose=true"))
    with pytest.raises(TribertError, match="another ST-GCN"):
        loader.dataset.pose_store.check_model(
            build_system(config(clips_root, "model.pose_strides=[1,2]")).model.pose.fingerprint())
    meta_path = clips_root / "flute" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["pose_fps"] = meta["pose_fps"] * 2  # the same pose array, read at another rate
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(TribertError, match="flute: the clip's pose.npy or its pose frame rate"):
        train_loader(config(clips_root, "model.pose_strides=[2,2]", "data.stored_pose=true"))
    again = store(clips_root, other)
    assert (again.written, again.skipped) == (1, 3)


def test_stored_pose_refuses_missing_mismatched_and_damaged_stores(clips_root):
    stored_cfg = config(clips_root, "data.stored_pose=true")
    with pytest.raises(TribertError, match="cello: no stored pose features"):
        train_loader(stored_cfg)
    store(clips_root, config(clips_root))
    other_crop = config(clips_root, "data.stored_pose=true", "audio.crop_samples=4095")
    with pytest.raises(TribertError, match="other settings \\(crop_samples 8191 vs 4095"):
        train_loader(other_crop)
    loader = train_loader(stored_cfg)
    with pytest.raises(TribertError, match="another ST-GCN"):
        loader.dataset.pose_store.check_model(build_system(config(clips_root, "train.seed=3")).model.pose.fingerprint())
    loader.dataset.pose_store.check_model(build_system(stored_cfg).model.pose.fingerprint())  # its own: fine
    # a truncated array: one line naming the file when an item reads it
    path = clips_root / "violin" / FEATURES
    np.save(path, np.load(path)[:2])
    ds = loader.dataset
    with pytest.raises(TribertError, match=f"violin/{FEATURES}: stored pose features have shape \\[2, 3, 2"):
        for i in range(40):
            ds[i]
    path.write_bytes(b"")  # emptied (a full disk): numpy's EOFError has no message
    with pytest.raises(TribertError, match=f"violin/{FEATURES}: cannot read stored pose features: the file is empty"):
        for i in range(40):
            ds[i]
    again = store(clips_root, config(clips_root))  # was counted as "already there" and kept
    assert (again.written, again.skipped) == (1, 3)
    for damage in (b"{not json", b"\xff\xfe{"):  # the second, not UTF-8, was a UnicodeDecodeError traceback
        (clips_root / "flute" / FEATURES_META).write_bytes(damage)
        with pytest.raises(TribertError, match=f"flute/{FEATURES_META}: corrupt stored pose features"):
            train_loader(stored_cfg)
    # one clip stored on another grid
    store(clips_root, config(clips_root), grid_s=0.5)
    meta = json.loads((clips_root / "duet" / FEATURES_META).read_text())
    meta["grid_samples"] = 1234
    (clips_root / "duet" / FEATURES_META).write_text(json.dumps(meta))
    with pytest.raises(TribertError, match="differ from those of the other clips"):
        train_loader(stored_cfg)


def test_stored_pose_needs_a_frozen_stgcn_and_every_clips_pose(clips_root):
    with pytest.raises(ConfigError, match="frozen ST-GCN"):
        config(clips_root, "data.stored_pose=true", "model.pose_frozen=false")
    with pytest.raises(ConfigError, match="frozen ST-GCN"):
        config(clips_root, "data.stored_pose=true", "model.kind=sound_of_pixels")
    with pytest.raises(ConfigError, match="pose_missing"):
        config(clips_root, "data.stored_pose=true", "data.pose_missing=0.5")
    with pytest.raises(ConfigError, match="pose_augment"):
        config(clips_root, "data.stored_pose=true", "data.pose_augment=0.5")
    trained = SeparationSystem(config(clips_root, "model.pose_frozen=false")).model.pose
    clips = [Clip(clips_root / "violin")]
    cfg = config(clips_root)
    with pytest.raises(TribertError, match="model.pose_frozen=true"):
        store_pose_features(clips, trained, cfg.audio, cfg.video, progress=False)
    for grid in (0.0, float("nan"), float("inf")):  # NaN and inf were a ValueError / OverflowError traceback
        with pytest.raises(TribertError, match="--grid must be a finite, positive number of seconds"):
            store_pose_features(clips, build_system(cfg).model.pose, cfg.audio, cfg.video, grid_seconds=grid,
                                progress=False)
    with pytest.raises(TribertError, match="device must be cpu, cuda"):
        store_pose_features(clips, build_system(cfg).model.pose, cfg.audio, cfg.video, device="gpu0", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(TribertError, match="sees no CUDA GPU"):
            store_pose_features(clips, build_system(cfg).model.pose, cfg.audio, cfg.video, device="cuda",
                                progress=False)
    with pytest.raises(TribertError, match="need a frozen ST-GCN"):
        trained(torch.zeros(1, 2, 8, 68, 3), features=torch.zeros(1, 3, 2, trained.feature_dim))


def test_grid_offsets_cover_every_start_where_the_crop_fits():
    assert grid_offsets(10, 4, 3).tolist() == [0, 3, 6]
    assert grid_offsets(9, 4, 3).tolist() == [0, 3]
    assert grid_offsets(3, 4, 3).tolist() == [0]  # shorter than the crop: the padded window at 0


def test_the_cli_stores_features_then_trains_on_them(clips_root, tmp_path):
    runner = CliRunner()
    sets = [arg for kv in TINY + [f"data.train_dir={clips_root}", "train.max_steps=3", "train.epoch_size=4"]
            for arg in ("--set", kv)]
    res = runner.invoke(app, ["pose-features", "--config", "synth_tiny", "--device", "cpu", *sets])
    assert res.exit_code == 0, res.output
    assert "4 clips computed" in res.output
    res = runner.invoke(app, ["train", "--config", "synth_tiny", "--runs-dir", str(tmp_path / "runs"), *sets,
                              "--set", "data.stored_pose=true"])
    assert res.exit_code == 0, res.output
    assert (next((tmp_path / "runs").iterdir()) / "checkpoints" / "last.ckpt").is_file()
    # another seed draws another frozen ST-GCN: refused at the start, in one line
    res = runner.invoke(app, ["train", "--config", "synth_tiny", "--runs-dir", str(tmp_path / "runs"), *sets,
                              "--set", "data.stored_pose=true", "--set", "train.seed=9"])
    assert res.exit_code != 0
    assert "computed by another ST-GCN" in str(res.exception) + res.output
    res = runner.invoke(app, ["pose-features", "--config", "synth_tiny", *sets, "--set", "model.pose_frozen=false"])
    assert res.exit_code == 2 and "model.pose_frozen=true" in res.output
    # options are checked before the model is built: with a missing train.init_from, the option is
    # what is named (it used to be the checkpoint, read first)
    missing = ["--set", f"train.init_from={tmp_path / 'missing.ckpt'}"]
    for option, message in ((["--grid", "0"], "--grid must be"), (["--batch", "0"], "--batch must be >= 1"),
                            (["--device", "tpu"], "device must be cpu, cuda")):
        res = runner.invoke(app, ["pose-features", "--config", "synth_tiny", *sets, *missing, *option])
        assert res.exit_code == 2 and message in res.output, res.output
