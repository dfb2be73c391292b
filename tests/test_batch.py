"""``MixBatch``: the slot layout helpers on hand-built batches, collation through a DataLoader with
worker processes, and the move to a device as Lightning does it."""

from __future__ import annotations

import dataclasses

import lightning as L
import pytest
import torch

from tribert.config import DataConfig
from tribert.data.batch import MixBatch
from tribert.data.mixing import MixDataset, load_clips, make_mixture_list, mix_loader

from helpers import AUDIO, VIDEO, make_clip


def hand_batch() -> MixBatch:
    """B = 2 mixtures of N = 2 videos, P = 2 slots per video (S = 4), C = 3 classes, L = 5 samples.

    Mixture 0: video 0 is a duet (persons 0 and 1, classes 0 and 1), video 1 a solo of class 2.
    Mixture 1: two solos (classes 1 and 0), each leaving its second slot as padding.
    Every tensor holds numbers that name where they are, so a wrong reshape shows.
    """
    b, s, n, length = 2, 4, 2, 5
    f, t = 3, 2
    slot_id = 10 * torch.arange(b)[:, None] + torch.arange(s)[None]
    return MixBatch(
        mix_wav=torch.arange(b * length, dtype=torch.float32).view(b, length),
        mix_mag=torch.ones(b, 1, f, t),
        mix_logmag=torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, 1, f, t).clone(),
        weight=torch.ones(b, 1, f, t),
        source_wavs=slot_id[..., None].float().expand(b, s, length).clone(),
        source_mags=slot_id[..., None, None, None].float().expand(b, s, 1, f, t).clone(),
        masks=torch.zeros(b, s, 1, f, t),
        source_video=torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]]),
        source_object=torch.tensor([[0, 1, -1, -1], [-1, -1, -1, -1]]),
        source_label=torch.tensor([[0, 1, 2, -1], [1, -1, 0, -1]]),
        source_valid=torch.tensor([[True, True, True, False], [True, False, True, False]]),
        frames=(10 * torch.arange(b)[:, None] + torch.arange(n)[None]).float().view(b, n, 1, 1, 1, 1)
        .expand(b, n, 3, 3, 4, 4).clone(),
        pose=torch.zeros(b, n, 2, 4, 68, 3),
        labels=torch.tensor([[[1., 1., 0.], [0., 0., 1.]], [[0., 1., 0.], [1., 0., 0.]]]),
    )


def test_slot_layout_on_a_hand_built_batch():
    batch = hand_batch()
    assert (batch.batch_size, batch.num_videos, batch.slots_per_video) == (2, 2, 2)
    assert [MixBatch.slot(v, j, 2) for v in (0, 1) for j in (0, 1)] == [0, 1, 2, 3]
    assert MixBatch.slot(2, 1, 3) == 7
    assert MixBatch.slot_videos(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    # [B, S] -> [V, P]: video item v = 2 * mixture + video, rows are that video's slots.
    by_video = batch.slots_by_video(batch.source_object)
    assert by_video.tolist() == [[0, 1], [-1, -1], [-1, -1], [-1, -1]]
    ids = batch.slots_by_video(batch.source_wavs)[..., 0]  # [V, P]: 10 * mixture + slot
    assert ids.tolist() == [[0, 1], [2, 3], [10, 11], [12, 13]]
    assert torch.equal(batch.slots_by_mixture(batch.slots_by_video(batch.source_mags)), batch.source_mags)
    # the real sources of a mixture, in slot order
    assert batch.real(0, batch.source_label).tolist() == [0, 1, 2]
    assert batch.real(1, batch.source_wavs)[:, 0].tolist() == [10.0, 12.0]


def test_video_inputs_pair_each_video_with_its_slots():
    batch = hand_batch()
    x = batch.video_inputs()
    assert x["frames"][:, 0, 0, 0, 0].tolist() == [0.0, 1.0, 10.0, 11.0]  # mixture-major
    assert x["mix_logmag"][:, 0, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]  # each video sees its mixture
    assert x["objects"].tolist() == [[0, 1], [-1, -1], [-1, -1], [-1, -1]]
    assert x["source_labels"].tolist() == [[0, 1], [2, -1], [1, -1], [0, -1]]
    assert x["valid"].tolist() == [[True, True], [True, False], [True, False], [True, False]]
    assert x["labels"].tolist() == [[1, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]]
    # every class heard in the mixture, for each of its videos
    assert batch.mixture_labels().tolist() == [[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 0]]


def test_collate_and_replace():
    batch = hand_batch()
    stored = batch.replace(pose_features=torch.randn(2, batch.num_videos, 3, 2, 5))  # the optional field
    for whole in (batch, stored):
        one = [MixBatch(**{k: v[i:i + 1] for k, v in whole.tensors().items()}) for i in range(2)]
        joined = MixBatch.collate(one)
        assert joined.tensors().keys() == whole.tensors().keys()
        assert all(torch.equal(joined.tensors()[k], v) for k, v in whole.tensors().items())
    assert batch.pose_features is None and "pose_features" not in batch.video_inputs()
    assert stored.video_inputs()["pose_features"].shape == (2 * batch.num_videos, 3, 2, 5)
    assert {f.name for f in dataclasses.fields(MixBatch)} - set(batch.tensors()) == {"pose_features"}
    louder = batch.replace(mix_wav=batch.mix_wav * 2)
    assert torch.equal(louder.mix_wav, 2 * batch.mix_wav) and louder.frames is batch.frames


@pytest.fixture
def dataset(tmp_path):
    make_clip(tmp_path, "violin", ["violin"], [440.0])
    make_clip(tmp_path, "flute", ["flute"], [880.0])
    make_clip(tmp_path, "duet", ["violin", "cello"], [330.0, 110.0])
    data = DataConfig()
    clips = load_clips(tmp_path, data.classes)
    return MixDataset(clips, AUDIO, VIDEO, data, mixtures=make_mixture_list(clips, 2, AUDIO.crop_samples, 0))


def test_a_dataloader_with_workers_brings_the_items_back_as_one_batch(dataset):
    batches = list(mix_loader(dataset, batch_size=3, num_workers=2))
    assert len(batches) == 1 and isinstance(batches[0], MixBatch)
    expected = MixBatch.collate(dataset[i] for i in range(3))
    assert batches[0].tensors().keys() == expected.tensors().keys()
    for name, want in expected.tensors().items():
        got = batches[0].tensors()[name]
        assert got.dtype == want.dtype and torch.equal(got, want), name
    assert batches[0].mix_wav.shape == (3, AUDIO.crop_samples)
    assert batches[0].source_valid.shape == (3, 4) and batches[0].frames.shape[:2] == (3, 2)


def test_lightning_moves_a_batch_to_the_device(dataset):
    batch = MixBatch.collate([dataset[0], dataset[1]])
    moved = L.LightningModule().transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert isinstance(moved, MixBatch)
    assert all(v.device.type == "meta" for v in moved.tensors().values())
    assert all(v.device.type == "cpu" for v in batch.tensors().values())  # the original stays
    assert all(v.device.type == "meta" for v in batch.to("meta").tensors().values())


def test_a_moved_batch_keeps_a_host_copy_of_which_sources_are_real(dataset):
    # The separators pick the real sources with this mask; read on the host it costs an
    # accelerator no sync, so the moved batch hands them its CPU copy.
    batch = MixBatch.collate([dataset[0], dataset[1]])
    moved = L.LightningModule().transfer_batch_to_device(batch, torch.device("meta"), 0)
    valid = moved.video_inputs()["valid"]
    assert valid.device.type == "cpu" and torch.equal(valid, batch.video_inputs()["valid"])
    assert moved.video_inputs()["frames"].device.type == "meta"
    assert moved.replace(mix_wav=moved.mix_wav * 2).video_inputs()["valid"].device.type == "cpu"
    # a new mask replaces the copy: the batch never hands over a stale one
    fewer = moved.replace(source_valid=torch.zeros_like(moved.source_valid))
    assert fewer.video_inputs()["valid"].device.type == "meta"
    # a batch built on the device itself has no host copy and hands over its own mask
    on_device = MixBatch(**moved.tensors())
    assert on_device.video_inputs()["valid"].device.type == "meta"
