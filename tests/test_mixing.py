"""The mix-and-separate data set on small hand-made clip folders (independent of SynthMUSIC)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tribert.config import Config, DataConfig
from tribert.data.mixing import (StepSampler, MixDataset, load_clips, make_mixture_list, pose_withheld,
                                 read_mixture_list, write_mixture_list)
from tribert.errors import ConfigError, TribertError

from helpers import AUDIO, VIDEO, make_clip

REMOVE = object()  # a field left out of meta.json


@pytest.fixture
def clip_root(tmp_path):
    make_clip(tmp_path, "solo_violin", ["violin"], [440.0])
    make_clip(tmp_path, "solo_flute", ["flute"], [880.0])
    make_clip(tmp_path, "solo_cello", ["cello"], [220.0])
    make_clip(tmp_path, "duet", ["violin", "violin"], [330.0, 660.0])
    return tmp_path


def test_training_items(clip_root):
    data = DataConfig()
    ds = MixDataset(load_clips(clip_root, data.classes), AUDIO, VIDEO, data, length=8, seed=1)
    item = ds[0]  # a MixBatch of one mixture
    s, n = data.num_mix * VIDEO.max_persons, data.num_mix
    assert item.batch_size == 1 and item.num_videos == n and item.slots_per_video == VIDEO.max_persons
    assert item.mix_wav.shape == (1, 8191)
    assert item.mix_logmag.shape == (1, 1, 64, 32) and item.source_mags.shape == (1, s, 1, 64, 32)
    assert item.frames.shape == (1, n, 3, 3, 32, 32)
    assert item.pose.shape == (1, n, 2, 8, 68, 3)
    assert item.labels.shape == (1, n, 21)
    valid = item.source_valid[0]
    # The mixture is exactly the sum of its (gained, 1/N-scaled) sources.
    torch.testing.assert_close(item.real(0, item.source_wavs).sum(0), item.mix_wav[0])
    assert torch.all(item.source_wavs[0][~valid] == 0)
    assert set(item.masks.unique().tolist()) <= {0.0, 1.0}
    # Pose is normalised to [0, 1]; undetected points carry no position.
    p = item.pose
    assert p[..., :2].max() <= 1.0 and torch.all(p[..., 5, :] == 0)
    # Same seed and index -> same item, also from another data set object; the sampler gives the
    # next epoch new indices.
    again = MixDataset(load_clips(clip_root, data.classes), AUDIO, VIDEO, data, length=8, seed=1)
    torch.testing.assert_close(again[0].mix_wav, item.mix_wav, rtol=0, atol=0)
    assert not torch.allclose(ds[1].mix_wav, item.mix_wav)
    sampler = StepSampler(len(ds), batch_size=1)
    sampler.steps_done = lambda: len(ds)  # one epoch of steps done
    first = next(iter(sampler))
    assert first == len(ds) and not torch.allclose(ds[first].mix_wav, item.mix_wav)


def test_gains_are_in_range(clip_root):
    data = DataConfig()
    clips = load_clips(clip_root, data.classes)
    solos = [c for c in clips if c.meta.num_stems == 0]
    ds = MixDataset(solos, AUDIO, VIDEO, data, length=20, seed=3)
    for i in range(20):
        item = ds[i]
        for w in item.real(0, item.source_wavs):
            peak = w.abs().max().item() / 0.3  # the stems are 0.3-amplitude sines
            assert 0.5 / 2 - 0.01 <= peak <= 1.5 / 2 + 0.01


def test_duet_with_stems_brings_two_sources(clip_root):
    data = DataConfig()
    clips = load_clips(clip_root, data.classes)
    specs = make_mixture_list(clips, 2, AUDIO.crop_samples, seed=0)
    ds = MixDataset(clips, AUDIO, VIDEO, data, mixtures=specs)
    duet_idx = next(i for i, m in enumerate(specs) if m.clip_ids[0] == "duet")
    item = ds[duet_idx]
    assert item.source_valid.sum() == 3  # two performers + the partner video
    # Slots are [video 0: person 0, person 1, video 1: whole video, padding].
    assert item.source_object.tolist() == [[0, 1, -1, -1]]
    assert item.source_valid.tolist() == [[True, True, True, False]]
    assert item.source_video.tolist() == [[0, 0, 1, 1]]
    # Without stems the duet is one source conditioned on the whole video.
    ds2 = MixDataset(clips, AUDIO, VIDEO, DataConfig(use_stems=False), mixtures=specs)
    assert ds2[duet_idx].source_valid.sum() == 2


def test_duet_weight_draws_duets_that_many_times_as_often(clip_root):
    clips = load_clips(clip_root, DataConfig().classes)  # 3 solos and 1 duet with stems
    draws = 3000
    for weight, expected in ((1.0, 1 / 4), (3.0, 3 / 6)):  # a video's first pick: weight share of the duet
        ds = MixDataset(clips, AUDIO, VIDEO, DataConfig(duet_weight=weight), length=draws, seed=0)
        share = sum(ds._spec(i)[0][0].meta.id == "duet" for i in range(draws)) / draws
        assert abs(share - expected) < 0.03, (weight, share)
    # without stems a duet is one source, so no clip counts as a duet
    ds = MixDataset(clips, AUDIO, VIDEO, DataConfig(duet_weight=3.0, use_stems=False), length=draws, seed=0)
    assert ds.draw_p is None or len(set(ds.draw_p.tolist())) == 1
    with pytest.raises(ConfigError, match="data.duet_weight must be > 0"):
        MixDataset(clips, AUDIO, VIDEO, DataConfig(duet_weight=0.0), length=8)
    with pytest.raises(ConfigError, match="data.duet_weight must be > 0"):  # refused when the config loads
        Config.load(overrides=["data.duet_weight=-1"])


def test_same_class_mix_draws_players_of_one_instrument(clip_root):
    clips = load_clips(clip_root, DataConfig().classes)  # violin solo, violin duet, flute, cello
    draws = 2000

    def sharing(mix: float) -> float:
        ds = MixDataset(clips, AUDIO, VIDEO, DataConfig(same_class_mix=mix), length=draws, seed=0)
        groups = [ds._spec(i)[0] for i in range(draws)]
        return sum(bool(set(a.meta.labels) & set(b.meta.labels)) for a, b in groups) / draws

    # A first pick that has a partner (the two violin clips: half the draws) gets one with
    # probability `mix`; at random, 1 of the 3 others shares its instrument: 1/2 * 1/3 = 1/6.
    for mix, expected in ((0.0, 1 / 6), (0.6, 1 / 6 + 0.6 * (1 / 2 - 1 / 6)), (1.0, 1 / 2)):
        assert abs(sharing(mix) - expected) < 0.04, (mix, sharing(mix))
    with pytest.raises(ConfigError, match="data.same_class_mix must be in"):
        Config.load(overrides=["data.same_class_mix=1.5"])


def test_pose_missing_withholds_the_same_clips_in_training_and_evaluation(clip_root):
    # The choice is a fixed fraction of ids, and a larger fraction withholds a superset.
    ids = [f"clip{i:04d}" for i in range(2000)]
    for fraction in (0.2, 0.5):
        share = sum(pose_withheld(i, fraction) for i in ids) / len(ids)
        assert abs(share - fraction) < 0.04, (fraction, share)
    assert {i for i in ids if pose_withheld(i, 0.2)} <= {i for i in ids if pose_withheld(i, 0.5)}
    assert not any(pose_withheld(i, 0.0) for i in ids) and all(pose_withheld(i, 1.0) for i in ids)

    clips = load_clips(clip_root, DataConfig().classes)

    def threshold(cid: str) -> float:  # the smallest fraction (to 1/1000) that withholds a clip
        return next(k / 1000 for k in range(1, 1001) if pose_withheld(cid, k / 1000))

    fraction = sorted(threshold(c.meta.id) for c in clips)[1]  # withholds two of the four clips
    withheld = {c.meta.id for c in clips if pose_withheld(c.meta.id, fraction)}
    assert len(withheld) == 2, withheld

    def seen(ds: MixDataset, n: int) -> dict[str, bool]:  # clip id -> whether any keypoint was seen
        out = {}
        for i in range(n):
            group = ds._spec(i)[0]
            pose = ds[i].pose[0]  # [N, P, T, 68, 3]
            for clip, p in zip(group, pose):
                out[clip.meta.id] = bool((p[..., 2] > 0).any())
        return out

    data = DataConfig(pose_missing=fraction)
    train = seen(MixDataset(clips, AUDIO, VIDEO, data, length=16, seed=0), 16)
    test = seen(MixDataset(clips, AUDIO, VIDEO, data, mixtures=make_mixture_list(clips, 2, AUDIO.crop_samples, 0)), 2)
    for drawn in (train, test):
        assert drawn and all(has_pose == (cid not in withheld) for cid, has_pose in drawn.items()), drawn
    assert set(train) == {c.meta.id for c in clips}  # every clip was drawn, so both kinds were checked


def test_pose_augment_changes_only_training_pose_and_keeps_the_mixtures(clip_root):
    clips = load_clips(clip_root, DataConfig().classes)
    plain = MixDataset(clips, AUDIO, VIDEO, DataConfig(), length=8, seed=3)
    noisy = MixDataset(clips, AUDIO, VIDEO, DataConfig(pose_augment=1.0), length=8, seed=3)
    changed = 0
    for i in range(8):
        a, b = plain[i], noisy[i]
        torch.testing.assert_close(b.mix_wav, a.mix_wav, rtol=0, atol=0)  # its own random stream
        torch.testing.assert_close(b.frames, a.frames, rtol=0, atol=0)
        seen_a, seen_b = a.pose[..., 2] > 0, b.pose[..., 2] > 0
        assert not (seen_b & ~seen_a).any()  # a detector's errors never invent a point
        changed += int(not torch.equal(a.pose, b.pose))
    assert changed == 8
    # Fixed evaluation mixtures keep the clips' own pose whatever pose_augment says.
    mixtures = make_mixture_list(clips, 2, AUDIO.crop_samples, 0)
    ev_plain = MixDataset(clips, AUDIO, VIDEO, DataConfig(), mixtures=mixtures)
    ev_noisy = MixDataset(clips, AUDIO, VIDEO, DataConfig(pose_augment=1.0), mixtures=mixtures)
    torch.testing.assert_close(ev_noisy[0].pose, ev_plain[0].pose, rtol=0, atol=0)


@pytest.mark.parametrize("override, message", [
    ("data.mask=soft", "data.mask must be 'binary' or 'ratio'"),
    ("data.num_mix=0", "data.num_mix must be >= 1"),
    ("data.gain_min=2.0", "gain_min <= gain_max"),
    ("data.gain_min=-0.5", "0 <= gain_min"),
    ("data.num_workers=-1", "data.num_workers must be >= 0"),
    ("data.pose_missing=1.5", "data.pose_missing must be in"),
    ("data.pose_augment=-0.1", "data.pose_augment must be in"),
])
def test_data_values_no_data_set_can_use_are_refused_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        Config.load(overrides=[override])


def test_fixed_mixture_list_round_trip_and_determinism(clip_root, tmp_path):
    data = DataConfig()
    clips = load_clips(clip_root, data.classes)
    a = make_mixture_list(clips, 2, AUDIO.crop_samples, seed=7)
    assert a == make_mixture_list(clips, 2, AUDIO.crop_samples, seed=7)
    path = tmp_path / "test_mixtures.csv"
    write_mixture_list(path, a)
    assert read_mixture_list(path) == a
    for m in a:  # partners are of other classes when possible, and test crops are centred
        labels = [set(next(c for c in clips if c.meta.id == cid).meta.labels) for cid in m.clip_ids]
        assert labels[0].isdisjoint(labels[1])
        assert m.gains == (1.0, 1.0)
    # The list read back gives the very same mixtures; each entry is its own mixture.
    ds = MixDataset(clips, AUDIO, VIDEO, data, mixtures=a)
    back = MixDataset(clips, AUDIO, VIDEO, data, mixtures=read_mixture_list(path))
    for i in range(len(a)):
        torch.testing.assert_close(back[i].mix_wav, ds[i].mix_wav, rtol=0, atol=0)
    assert not torch.allclose(ds[0].mix_wav, ds[1].mix_wav)


def test_ratio_masks(clip_root):
    ds = MixDataset(load_clips(clip_root, DataConfig().classes), AUDIO, VIDEO, DataConfig(mask="ratio"), length=2)
    m = ds[0].masks
    assert m.min() >= 0 and m.max() <= 1 and len(m.unique()) > 2


def test_bad_data_gives_clear_errors(clip_root, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TribertError, match="no prepared clips"):
        load_clips(tmp_path / "empty", ("violin",))
    with pytest.raises(TribertError, match="data folder not found"):
        load_clips(tmp_path / "missing", ("violin",))
    with pytest.raises(TribertError, match=r"1 of 4 clips have labels outside the 2 configured classes "
                                           r"\(data.classes\): 'cello'; the first: solo_cello"):
        load_clips(clip_root, ("violin", "flute"))
    with pytest.raises(TribertError, match=r"3 of 4 clips .*: 'flute', 'violin'; the first: duet"):
        load_clips(clip_root, ("cello",))
    emptied = next(c for c in load_clips(clip_root, ("violin", "flute", "cello")) if (c.dir / "pose.npy").exists())
    (emptied.dir / "pose.npy").write_bytes(b"")  # np.load's EOFError printed as "Aborted." by the CLI
    with pytest.raises(TribertError, match=f"{emptied.dir.name}/pose.npy: cannot read pose array: the file is empty"):
        emptied.pose()
    with open(emptied.dir / "pose.npy", "wb") as f:  # np.load gives an NpzFile for an archive: no .astype
        np.savez(f, pose=np.zeros((4, 2, 68, 3), np.float32))
    with pytest.raises(TribertError, match="pose.npy: cannot read pose array: an .npz archive"):
        emptied.pose()
    with pytest.raises(TribertError, match=f"{emptied.dir}: is one prepared clip: give the folder that holds its "
                                           f"clips \\({emptied.dir.parent}\\)"):  # was "no prepared clips found"
        load_clips(emptied.dir, ("violin", "flute", "cello"))
    (emptied.dir / "pose.npy").unlink()  # was read as "nobody there": 5 dB lower, without a word
    with pytest.raises(TribertError, match=f"{emptied.dir.name}/pose.npy: missing: meta.json says the clip has pose"):
        emptied.pose()
    bad = tmp_path / "bad.csv"
    bad.write_text("nonsense\n1,2\n")
    with pytest.raises(TribertError, match="malformed mixture list"):
        read_mixture_list(bad)


@pytest.mark.parametrize("fields, problem", [
    ({"labels": None}, '"labels" must be a list of class names, one per performer, got None'),
    ({"labels": "violin"}, '"labels" must be a list of class names, one per performer, got \'violin\''),
    ({"labels": [1]}, '"labels" must be a list of class names'),
    ({"labels": REMOVE}, "missing field(s) 'labels'"),
    ({"fps": "8"}, '"fps" must be a number, got \'8\''),
    ({"colour": "red"}, "unknown field(s) 'colour' (known: id, labels,"),
    ({"num_stems": 2, "labels": ["flute"]}, '"labels" must name each of the 2 stems ("num_stems") or be empty'),
])
def test_a_hand_written_meta_json_with_a_wrong_field_is_named(clip_root, fields, problem):
    meta = clip_root / "solo_flute" / "meta.json"
    data = json.loads(meta.read_text())
    for key, value in fields.items():
        data.pop(key) if value is REMOVE else data.__setitem__(key, value)
    meta.write_text(json.dumps(data))
    with pytest.raises(TribertError) as err:
        load_clips(clip_root, ("violin", "flute", "cello"))
    assert str(err.value).startswith(f"{meta}: {problem}")


def test_a_clip_with_stems_and_no_labels_trains_with_unknown_classes(clip_root):
    """A duet with stems and "labels": [] was an IndexError inside the loader (retrieve, train)."""
    meta = clip_root / "duet" / "meta.json"
    data = json.loads(meta.read_text())
    assert data["num_stems"] == 2
    data["labels"] = []
    meta.write_text(json.dumps(data))
    from tribert.data.mixing import MixBatch

    config = DataConfig(use_stems=True)  # the duet's two stems are two sources
    ds = MixDataset(load_clips(clip_root, config.classes), AUDIO, VIDEO, config, length=16, seed=0)
    labels = []
    for i in range(16):
        item, group = ds[i], ds._spec(i)[0]
        labels += [item.source_label[0, MixBatch.slot(v, j, VIDEO.max_persons)].item()
                   for v, clip in enumerate(group) if clip.meta.id == "duet" for j in (0, 1)]
    assert labels and set(labels) == {-1}


def test_a_meta_json_that_is_not_an_object_is_named(clip_root):
    meta = clip_root / "solo_flute" / "meta.json"
    meta.write_text('["flute"]')
    with pytest.raises(TribertError, match="meta.json must hold a JSON object, got list"):
        load_clips(clip_root, ("violin", "flute", "cello"))


def test_ddp_ranks_draw_the_planned_mixtures_without_repeats():
    """Two processes (simulated: one sampler each, as every DDP process builds its own), batch 3,
    20 mixtures per epoch -> 3 steps per epoch; over 2 epochs step g must use exactly the indices
    [6g, 6g + 6), rank 0 the first half. The old sampler started an epoch at global_step x batch
    (per-process), so epoch 2 repeated half of epoch 1 under DDP."""
    from types import SimpleNamespace

    from torch.utils.data import DataLoader

    from tribert.engine.train import StepSamplerSync

    batch, world = 3, 2
    trainers = [SimpleNamespace(global_step=0, world_size=world, global_rank=rank) for rank in range(world)]
    samplers = [StepSampler(20, batch) for _ in trainers]
    for sampler, trainer in zip(samplers, trainers):
        StepSamplerSync(sampler).setup(trainer, None, "fit")  # what each process's run does
    drawn = []
    for epoch in range(2):
        loaders = [iter(DataLoader(range(1000), batch_size=batch, sampler=s, drop_last=True)) for s in samplers]
        assert all(len(s) == 3 * batch for s in samplers)  # 20 // (2 x 3) = 3 steps per epoch
        for _ in range(3):
            g = trainers[0].global_step
            rank0, rank1 = (next(it).tolist() for it in loaders)
            assert rank0 == list(range(6 * g, 6 * g + 3)) and rank1 == list(range(6 * g + 3, 6 * g + 6))
            drawn += rank0 + rank1
            for trainer in trainers:  # one optimiser step, taken by every process
                trainer.global_step += 1
        assert all(next(it, None) is None for it in loaders)  # the epoch ends on time
    assert drawn == list(range(36))  # 2 epochs x 3 steps x 6: planned, no repeats
    sync = StepSamplerSync(StepSampler(5, batch))
    with pytest.raises(ConfigError, match="less than one step"):  # 5 < 2 x 3
        sync.setup(trainers[0], None, "fit")


def test_frame_augmentation_crops_and_flips_a_video_as_one():
    import numpy as np

    from tribert.data.mixing import augment_frames, model_frames

    # A left-right ramp image (pixel value = column * 4); frame k adds 20 * k to every pixel.
    ramp = np.tile((np.arange(48) * 4).astype(np.uint8)[None, :, None], (48, 1, 3))
    frames = np.stack([ramp + 20 * k for k in range(3)])  # [K=3, 48, 48, 3]
    plain = model_frames(frames, 32)
    # No margin, no flip: exactly the evaluation view.
    np.testing.assert_array_equal(augment_frames(frames, 32, 0.0, False, np.random.default_rng(0)), plain)
    flips = 0
    for seed in range(12):
        x = augment_frames(frames, 32, 0.25, True, np.random.default_rng(seed))  # 40 px -> 32 px crop
        assert x.shape == (3, 3, 32, 32) and x.dtype == np.float32
        # One crop for the whole video: the frames still differ by the same constant everywhere.
        for a, b in ((0, 1), (1, 2)):
            diff = (x[b] - x[a]).reshape(3, -1)  # per channel (each has its own normalisation)
            assert np.ptp(diff, axis=1).max() < 1e-4 and diff.mean() > 0.3
        row = x[0, 0, 16]
        increasing = row[-1] > row[0]
        flips += not increasing
        # A crop is narrower than the whole ramp (40 px scaled, 32 kept): the span shrinks by 32/40.
        full = plain[0, 0, 16]
        assert abs(abs(row[-1] - row[0]) - (full[-1] - full[0]) * 32 / 40) < 0.05 * (full[-1] - full[0])
    assert 2 <= flips <= 10  # about half of the videos flipped


def test_training_frames_are_augmented_evaluation_frames_are_not(clip_root, tmp_path):
    from dataclasses import replace

    import numpy as np
    from PIL import Image

    from tribert.data.clip import frame_name
    from helpers import make_clip

    root = tmp_path / "textured"
    for name, label in (("a", "violin"), ("b", "flute")):
        d = make_clip(root, name, [label], [440.0])
        rng = np.random.default_rng(0)
        for i in range(len(list((d / "frames").iterdir()))):
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(d / "frames" / frame_name(i))
    data = DataConfig()
    clips = load_clips(root, data.classes)
    on = MixDataset(clips, AUDIO, VIDEO, data, length=4, seed=1)
    off = MixDataset(clips, AUDIO, replace(VIDEO, crop_margin=0.0, flip=False), data, length=4, seed=1)
    # Augmentation changes the frames only: the same mixtures, crops and gains either way.
    torch.testing.assert_close(on[0].mix_wav, off[0].mix_wav, rtol=0, atol=0)
    assert not torch.allclose(on[0].frames, off[0].frames)
    # Fixed evaluation mixtures never augment.
    specs = make_mixture_list(clips, 2, AUDIO.crop_samples, seed=0)
    ev_on = MixDataset(clips, AUDIO, VIDEO, data, mixtures=specs)
    ev_off = MixDataset(clips, AUDIO, replace(VIDEO, crop_margin=0.0, flip=False), data, mixtures=specs)
    torch.testing.assert_close(ev_on[0].frames, ev_off[0].frames, rtol=0, atol=0)


def test_clip_cache_gives_the_same_items_without_rereading(clip_root):
    import shutil
    from dataclasses import replace

    data = DataConfig()
    cached = replace(data, cache_clips=True)
    specs = make_mixture_list(load_clips(clip_root, data.classes), 2, AUDIO.crop_samples, seed=0)
    for kwargs in (dict(length=6, seed=2), dict(mixtures=specs)):  # training (augmented) and evaluation
        plain = MixDataset(load_clips(clip_root, data.classes), AUDIO, VIDEO, data, **kwargs)
        fast = MixDataset(load_clips(clip_root, data.classes), AUDIO, VIDEO, cached, **kwargs)
        for i in range(len(plain)):
            a, b = plain[i], fast[i]
            for name, x in a.tensors().items():
                torch.testing.assert_close(getattr(b, name), x, rtol=0, atol=0, msg=name)
    # The cached data set no longer reads the clip folders: move them away and read again.
    moved = clip_root.parent / (clip_root.name + "-moved")  # clip_root is tmp_path itself
    clips = load_clips(clip_root, data.classes)
    fast = MixDataset(clips, AUDIO, VIDEO, cached, mixtures=specs)
    first = [fast[i].frames for i in range(len(fast))]
    training = MixDataset(clips, AUDIO, VIDEO, cached, length=6, seed=2)
    training.preload()  # every clip, before any item was drawn
    shutil.move(str(clip_root), moved)
    try:
        again = [fast[i].frames for i in range(len(fast))]
        drawn = [training[i] for i in range(len(training))]
    finally:
        shutil.move(str(moved), clip_root)
    for x, y in zip(first, again):
        torch.testing.assert_close(y, x, rtol=0, atol=0)
    assert len(drawn) == 6
    shutil.move(str(clip_root), moved)
    try:
        with pytest.raises(TribertError):  # without the cache the moved folders are missed
            MixDataset(clips, AUDIO, VIDEO, data, mixtures=specs)[0]
    finally:
        shutil.move(str(moved), clip_root)


def test_clip_frames_come_in_order_and_a_frame_of_another_size_is_named(clip_root):
    from PIL import Image

    from tribert.data.clip import Clip, frame_name

    clip = Clip(clip_root / "solo_flute")
    frames = clip.frames()
    assert frames.shape == (clip.meta.num_frames, 40, 48, 3) and frames.dtype == np.uint8
    assert np.array_equal(clip.frames([2, 0]), frames[[2, 0]])
    odd = clip_root / "solo_flute" / "frames" / frame_name(3)
    Image.fromarray(np.zeros((20, 48, 3), np.uint8)).save(odd)
    with pytest.raises(TribertError, match=f"{odd}: frame is 48x20, the clip's first 48x40"):
        clip.frames()
    with pytest.raises(TribertError, match=f"{odd}: frame is 48x20, the clip's first 48x40"):
        clip.stored_frames()


def test_stored_frames_stand_for_the_decoded_frames(clip_root, tmp_path):
    from tribert import media
    from tribert.data.clip import Clip

    clip = Clip(clip_root / "solo_flute")
    frames, stored = clip.frames(), clip.stored_frames()
    assert stored.shape == frames.shape and len(stored) == len(frames) and stored.dtype == np.uint8
    assert np.array_equal(np.asarray(stored), frames)
    assert np.array_equal(stored[3], frames[3]) and np.array_equal(stored[np.array([[2, 0], [1, 1]])],
                                                                  frames[np.array([[2, 0], [1, 1]])])
    assert np.array_equal(np.asarray(stored[1:4]), frames[1:4])
    assert all(np.array_equal(a, b) for a, b in zip(stored, frames))
    media.write_mp4(tmp_path / "from_array.mp4", frames, 8)
    media.write_mp4(tmp_path / "from_stored.mp4", stored, 8)  # frame by frame
    assert (tmp_path / "from_array.mp4").read_bytes() == (tmp_path / "from_stored.mp4").read_bytes()
