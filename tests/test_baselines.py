"""Baselines (tribert.models.baselines): interface, gradients, trainability and what conditions them."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tribert.audio import AudioFrontEnd
from tribert.errors import ConfigError, TribertError
from tribert.models import tiny_config
from tribert.models.base import SeparatorOutput, source_weights
from tribert.config import KINDS
from tribert.models import SEPARATORS, TriBERT, build_separator
from tribert.models.baselines import AudioOnlyUNet, MusicGestureStyle, SoundOfPixels

NAMES = ("sound_of_pixels", "music_gesture", "audio_only")
V, S, C = 2, 2, 5  # videos, sources per video, classes


@pytest.fixture
def config():
    # 32x32 frames and spectrogram, U-Net depth 4 (4..16 channels, FiLM), ST-GCN 2 x 8 channels, T=8.
    return tiny_config(num_classes=C)


def build(name: str, config):
    """The baseline ``name`` through the one factory."""
    return build_separator(dataclasses.replace(config, kind=name))


def make_batch(config, seed: int = 0) -> dict:
    """Random inputs of the separator interface; every person present, one -1 (whole video) slot."""
    g = torch.Generator().manual_seed(seed)
    fs, sb, sf = config.frame_size, config.spec_bins, config.spec_frames
    pose = torch.rand(V, config.num_objects, config.pose_frames, 68, 3, generator=g)
    pose[..., 2] = 1.0  # all keypoints detected
    labels = torch.zeros(V, C)
    labels[0, 1] = 1
    labels[1, [2, 4]] = 1  # a duet of two classes
    return {
        "frames": torch.randn(V, config.num_frames, 3, fs, fs, generator=g),
        "pose": pose,
        "mix_logmag": torch.randn(V, 1, sb, sf, generator=g),
        "objects": torch.tensor([[0, 1], [-1, 0]]),
        "labels": labels,
        "source_labels": torch.tensor([[1, 1], [-1, 2]]),
    }


def weighted_bce(mask_logits, masks, mix_logmag):
    """The training loop's mask loss: per-pixel BCE weighted by clamp(log1p(mix_mag), 1e-3, 10)."""
    weight = AudioFrontEnd.loss_weight(mix_logmag.exp())[:, None]  # [V, 1, 1, F, T]
    return (F.binary_cross_entropy_with_logits(mask_logits, masks, reduction="none") * weight).mean()


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", NAMES)
def test_output_shape(config, name):
    model = build(name, config)
    out = model(**make_batch(config))
    assert isinstance(out, SeparatorOutput)
    assert out.mask_logits.shape == (V, S, 1, config.spec_bins, config.spec_frames)
    assert torch.isfinite(out.mask_logits).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_finite_gradient(config, name):
    torch.manual_seed(0)
    model = build(name, config).train()
    batch = make_batch(config)
    masks = (torch.rand(V, S, 1, config.spec_bins, config.spec_frames) > 0.5).float()
    weighted_bce(model(**batch).mask_logits, masks, batch["mix_logmag"]).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not missing, f"no gradient: {missing}"
    assert not bad, f"non-finite gradient: {bad}"


@pytest.mark.parametrize("name", NAMES)
def test_short_training_lowers_the_mask_loss(config, name):
    torch.manual_seed(0)
    model = build(name, config).train()
    batch = make_batch(config)
    batch["source_labels"] = torch.tensor([[1, 3], [-1, 2]])  # the two sources of a video differ
    # Source 0 owns the low half of the spectrogram, source 1 the high half: learnable only if
    # the model tells the sources apart. SoP cannot (one mask per video), so it gets one target.
    masks = torch.zeros(V, S, 1, config.spec_bins, config.spec_frames)
    masks[:, 0, :, : config.spec_bins // 2] = 1
    masks[:, 1, :, config.spec_bins // 2:] = 1
    if name == "sound_of_pixels":
        masks[:, 1] = masks[:, 0]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = weighted_bce(model(**batch).mask_logits, masks, batch["mix_logmag"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_audio_only_ignores_frames_and_pose_but_follows_labels(config):
    torch.manual_seed(0)
    model = AudioOnlyUNet(config).eval()
    a, b = make_batch(config, seed=0), make_batch(config, seed=1)
    other_video = {**a, "frames": b["frames"], "pose": b["pose"], "objects": b["objects"].flip(1)}
    with torch.no_grad():
        ref = model(**a).mask_logits
        assert torch.equal(model(**other_video).mask_logits, ref)
        assert torch.equal(model(None, None, a["mix_logmag"], a["objects"], a["labels"],
                                 a["source_labels"]).mask_logits, ref)
        # Another class for video 0, source 0 changes that mask and no other.
        relabelled = a["source_labels"].clone()
        relabelled[0, 0] = 3
        out = model(**{**a, "source_labels": relabelled}).mask_logits
        assert max_diff(out[0, 0], ref[0, 0]) > 1e-4
        assert torch.equal(out[0, 1], ref[0, 1]) and torch.equal(out[1], ref[1])
        # Source label -1 reads the video's multi-hot labels.
        labels = a["labels"].clone()
        labels[1] = F.one_hot(torch.tensor(0), C).float()
        out = model(**{**a, "labels": labels}).mask_logits
        assert max_diff(out[1, 0], ref[1, 0]) > 1e-4  # the -1 slot follows labels[1]
        assert torch.equal(out[1, 1], ref[1, 1])  # source label 2 does not
        # -1 on a solo labelled c is the same as asking for class c.
        solo = {**a, "source_labels": torch.tensor([[-1, 1], [-1, 2]])}
        assert torch.equal(model(**solo).mask_logits[0, 0], ref[0, 0])


def test_audio_only_rejects_out_of_range_labels(config):
    batch = make_batch(config)
    batch["source_labels"] = torch.tensor([[C, 0], [0, 0]])
    with pytest.raises(TribertError, match="source_labels"):
        AudioOnlyUNet(config)(**batch)


@pytest.mark.parametrize("name", SEPARATORS)
def test_objects_out_of_range_raise_a_clear_error(config, name):
    batch = make_batch(config)
    batch["objects"] = torch.tensor([[0, config.num_objects], [-1, -1]])
    with pytest.raises(TribertError, match=rf"objects must be in -1..{config.num_objects - 1}, got \[-1, 0, 2\]"):
        build(name, config)(**batch)


def test_music_gesture_separates_persons_by_pose(config):
    torch.manual_seed(0)
    model = MusicGestureStyle(config).eval()
    batch = make_batch(config)
    batch["objects"] = torch.tensor([[0, 1], [1, 0]])
    with torch.no_grad():
        out = model(**batch).mask_logits
        assert max_diff(out[0, 0], out[0, 1]) > 1e-4 and max_diff(out[1, 0], out[1, 1]) > 1e-4
        # The pose is what differs: two identical players get the same mask.
        same = batch["pose"].clone()
        same[:, 1] = same[:, 0]
        out = model(**{**batch, "pose": same}).mask_logits
        assert torch.allclose(out[:, 0], out[:, 1], atol=1e-6)
        # Whole video (-1) = mean over the persons present: with only person 0 there, it is person 0.
        solo = batch["pose"].clone()
        solo[:, 1, ..., 2] = 0  # person 1 missing
        out = model(**{**batch, "pose": solo, "objects": torch.tensor([[0, -1], [-1, 0]])}).mask_logits
        assert torch.equal(out[:, 0], out[:, 1])
        assert max_diff(out[0, 0], model(**{**batch, "pose": solo}).mask_logits[0, 1]) > 1e-4


def test_source_weights_of_the_persons_present():
    present = torch.tensor([[True, True], [True, False], [False, False]])
    objects = torch.tensor([[-1, 1], [-1, 0], [-1, 1]])
    w = source_weights(objects, present)
    expected = torch.tensor([[[0.5, 0.5], [0, 1]], [[1, 0], [1, 0]], [[0.5, 0.5], [0, 1]]])
    assert torch.allclose(w, expected)


def test_sound_of_pixels_gives_every_object_the_video_mask(config):
    torch.manual_seed(0)
    model = SoundOfPixels(config, num_components=8).eval()
    a, b = make_batch(config, seed=0), make_batch(config, seed=1)
    with torch.no_grad():
        out = model(**a).mask_logits
        assert torch.equal(out[:, 0], out[:, 1])  # objects 0 / 1 / -1 alike
        # ... but the frames do condition it (and the pose does not).
        assert max_diff(model(**{**a, "frames": b["frames"]}).mask_logits, out) > 1e-4
        assert torch.equal(model(**{**a, "pose": b["pose"]}).mask_logits, out)
    assert model.visual_proj.out_channels == 8 and model.sound.head.out_channels == 8


def test_sound_of_pixels_uses_a_dilated_resnet18(config):
    model = SoundOfPixels(config)
    feats = model.trunk.features(torch.zeros(1, 3, config.frame_size, config.frame_size))
    assert feats.shape[-1] == config.frame_size // 16  # last stage dilated: output stride 16
    assert sum(1 for _ in model.trunk.layer4) == config.visual_layers[3]
    assert model.sound.up[-1].gate is None and model.sound.fusion is None  # plain, unconditioned U-Net


def test_baselines_share_the_configured_unet(config):
    for name in ("music_gesture", "audio_only"):
        unet = build(name, config).separator
        assert unet.depth == config.unet_depth
        assert unet.channels[0] == config.unet_base_channels
        assert (unet.up[0].film is not None) == config.film
        assert (unet.up[0].gate is not None) == config.attention_gates


def test_factory_and_input_errors(config):
    assert tuple(SEPARATORS) == KINDS == ("tribert", *NAMES)  # the config's list is the factory's
    assert isinstance(build_separator(config), TriBERT)  # kind "tribert", the default
    with pytest.raises(ConfigError, match="kind must be one of"):
        build("nope", config)
    batch = make_batch(config)
    model = build("music_gesture", config)
    with pytest.raises(TribertError, match="objects"):
        model(**{**batch, "objects": torch.tensor([[0, 2], [0, 0]])})
    with pytest.raises(TribertError, match="pose"):
        model(**{**batch, "pose": batch["pose"][:, :1]})
