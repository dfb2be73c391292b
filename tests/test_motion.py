"""Motion guide: the per-person pose input, the maps it draws, and that a U-Net learns from them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tribert.errors import ConfigError
from tribert.models import ModelConfig, tiny_config
from tribert.models.motion import FEATURES_PER_JOINT, MotionGuide, motion_input
from tribert.models.tribert import TriBERT
from tribert.models.unet import AttentionUNet
from tribert.skeleton import INDEX, NUM_KEYPOINTS


def _person(t: int, generator: torch.Generator) -> torch.Tensor:
    """A random moving skeleton [T, 68, 3] inside the frame, every point seen."""
    xy = 0.3 + 0.4 * torch.rand(1, NUM_KEYPOINTS, 2, generator=generator)
    xy = xy + 0.02 * torch.randn(t, NUM_KEYPOINTS, 2, generator=generator).cumsum(0)
    return torch.cat([xy.clamp(0.01, 0.99), torch.ones(t, NUM_KEYPOINTS, 1)], dim=-1)


def test_motion_input_ignores_where_the_person_stands_and_how_large():
    g = torch.Generator().manual_seed(0)
    person = _person(12, g)
    moved = person.clone()
    centre = torch.tensor([0.5, 0.5])
    moved[..., :2] = (person[..., :2] - centre) * 0.5 + centre + torch.tensor([0.1, -0.05])  # smaller, elsewhere
    a, b = motion_input(torch.stack([person, moved])[None])[0]  # [5*68, T] each
    assert a.shape == (FEATURES_PER_JOINT * NUM_KEYPOINTS, 12)
    assert torch.allclose(a, b, atol=1e-4)
    assert a[:2 * NUM_KEYPOINTS].abs().max() > 0.5  # positions are not all squashed to zero


def test_motion_input_of_an_empty_person_is_zero_and_finite():
    pose = torch.rand(1, 2, 6, NUM_KEYPOINTS, 3)
    pose[0, 1, ..., 2] = 0  # nobody in slot 1 (positions are leftovers)
    pose[0, 0, 2, 5] = float("nan")  # one bad point
    x = motion_input(pose)
    assert torch.isfinite(x).all()
    assert x[0, 1].abs().max() == 0


def test_motion_guide_config_needs_pose_and_is_checked():
    assert ModelConfig(motion_guide=16).unet_in_channels() == 1 + 4
    assert not ModelConfig(motion_guide=16, use_pose=False).uses_motion_guide()  # "without pose" has no guide
    assert ModelConfig(motion_guide=16, use_pose=False).unet_in_channels() == 1
    with pytest.raises(ConfigError, match="motion_guide must be >= 0"):
        ModelConfig(motion_guide=-1)
    with pytest.raises(ConfigError, match="motion_guide_maps"):
        ModelConfig(motion_guide=8, motion_guide_maps=0)


def test_tribert_with_motion_guide_trains_the_guide_and_follows_the_requested_person():
    torch.manual_seed(0)
    model = TriBERT(tiny_config(motion_guide=8, motion_guide_maps=2))
    c = model.config
    g = torch.Generator().manual_seed(1)
    pose = torch.stack([torch.stack([_person(c.pose_frames, g), _person(c.pose_frames, g)]) for _ in range(3)])
    frames = torch.randn(3, c.num_frames, 3, c.frame_size, c.frame_size)
    mix = torch.randn(3, 1, c.spec_bins, c.spec_frames)
    objects = torch.tensor([[0, 1]] * 3)
    out = model(frames, pose, mix, objects)
    assert out.motion.shape == (3, 2, 8, c.pose_frames)
    out.mask_logits.square().mean().backward()
    assert model.motion.temporal[0].weight.grad.abs().sum() > 0  # the separation loss reaches the guide

    model.eval()
    with torch.no_grad():
        enc = model.encode(frames, pose, mix)
        maps, sequence = model.guide(enc, objects)  # [B, S, M, F, T], None (no decoder FiLM)
        swapped, _ = model.guide(enc, objects.flip(1))
    assert sequence is None
    assert maps.shape == (3, 2, 2, c.spec_bins, c.spec_frames)
    assert torch.equal(maps[:, 0], swapped[:, 1])  # the maps are the requested person's
    assert (maps[:, 0] - maps[:, 1]).abs().max() > 1e-3


def test_partner_weights_average_the_other_performers_present():
    from tribert.models.base import partner_weights

    objects = torch.tensor([[0, 1], [0, -1], [1, 0]])
    presence = torch.tensor([[True, True], [True, False], [False, True]])
    expected = torch.tensor([[[0., 1.], [1., 0.]],  # a duet: each the other
                             [[0., 0.], [0., 0.]],  # a solo has no partner; the whole video neither
                             [[0., 0.], [0., 1.]]])  # the only present performer is slot 1
    assert torch.equal(partner_weights(objects, presence), expected)


def test_motion_guide_with_partners_reads_the_duet_partner_and_not_without():
    g = torch.Generator().manual_seed(1)
    for partners in (True, False):
        torch.manual_seed(0)
        model = TriBERT(tiny_config(motion_guide=8, motion_guide_maps=2, motion_guide_partners=partners)).eval()
        c = model.config
        pose = torch.stack([_person(c.pose_frames, g), _person(c.pose_frames, g)])[None]  # a duet
        other = pose.clone()
        other[0, 1] = _person(c.pose_frames, g)  # the partner (slot 1) moves differently
        frames = torch.randn(1, c.num_frames, 3, c.frame_size, c.frame_size)
        mix = torch.randn(1, 1, c.spec_bins, c.spec_frames)
        objects = torch.tensor([[0, 1]])
        with torch.no_grad():
            maps = model.guide(model.encode(frames, pose, mix), objects)[0]  # [1, S, M, F, T]
            moved = model.guide(model.encode(frames, other, mix), objects)[0]
        change = (maps[0, 0] - moved[0, 0]).abs().max()  # person 0's maps
        assert (change > 1e-3) if partners else (change == 0)
        assert (maps[0, 1] - moved[0, 1]).abs().max() > 1e-3  # person 1's own maps change either way


def test_motion_guide_condition_draws_one_movement_differently_per_class_and_not_without():
    for with_condition in (True, False):
        torch.manual_seed(0)
        model = TriBERT(tiny_config(motion_guide=8, motion_guide_maps=2, motion_guide_hidden=16,
                                    motion_guide_condition=with_condition))
        c = model.config
        person = _person(c.pose_frames, torch.Generator().manual_seed(1))
        pose = torch.stack([person, person])[None].repeat(2, 1, 1, 1, 1)  # two videos, the same movement
        frames = torch.randn(2, c.num_frames, 3, c.frame_size, c.frame_size)
        mix = torch.randn(2, 1, c.spec_bins, c.spec_frames)
        labels = torch.tensor([[0, 0], [1, 1]])  # teacher forcing: the true class is the condition
        out = model.train()(frames, pose, mix, torch.tensor([[0, 1], [0, 1]]), source_labels=labels)
        change = (out.motion_maps[0] - out.motion_maps[1]).abs().max()
        assert (change > 1e-3) if with_condition else (change < 1e-5)
        if with_condition:  # the drawing learns from the separation loss through the condition's columns
            out.mask_logits.square().mean().backward()
            assert model.motion.draw[0].weight.grad[:, -c.num_classes:].abs().sum() > 0
    with pytest.raises(ConfigError, match="motion_guide_condition needs motion_guide_hidden"):
        tiny_config(motion_guide=8, motion_guide_condition=True).validate()


def test_motion_guide_film_modulates_every_decoder_level_over_time():
    torch.manual_seed(0)
    model = TriBERT(tiny_config(motion_guide=8, motion_guide_film=True))
    c = model.config
    films = [up.guide_film for up in model.separator.up]
    assert len(films) == c.unet_depth - 1 and all(f is not None for f in films)
    g = torch.Generator().manual_seed(1)
    pose = torch.stack([torch.stack([_person(c.pose_frames, g), _person(c.pose_frames, g)]) for _ in range(2)])
    out = model(torch.randn(2, c.num_frames, 3, c.frame_size, c.frame_size), pose,
                torch.randn(2, 1, c.spec_bins, c.spec_frames), torch.tensor([[0, 1], [1, -1]]),
                valid=torch.tensor([[True, True], [True, False]]))
    out.mask_logits.square().mean().backward()
    assert all(f.conv.weight.grad.abs().sum() > 0 for f in films)
    # A time-varying FiLM: a guide that changes in one frame changes the output only near that frame.
    from tribert.models.unet import TimeFiLM
    film = TimeFiLM(4, 3)
    x = torch.randn(1, 3, 5, 16)
    guide = torch.randn(1, 4, 16)
    bumped = guide.clone()
    bumped[..., 12] += 1.0
    diff = (film(x, bumped) - film(x, guide)).abs().sum(dim=(0, 1, 2))  # [T]
    assert diff[12] > 0 and diff[:10].max() == 0


def _toy_batch(batch: int, frames: int, bins: int, generator: torch.Generator):
    """Two sources of one timbre (same harmonic comb) that play at different times; the right
    wrist of each player jumps up while they play. Only the motion says which notes are whose.

    Returns pose [B, 2, T, 68, 3], mixture log-magnitude [B, 1, F, T], target masks [B, 2, 1, F, T].
    """
    comb = torch.zeros(bins)
    comb[4::6] = 1.0
    active = torch.rand(batch, 2, frames, generator=generator) < 0.5  # [B, 2, T]
    active[:, 1] &= ~active[:, 0]  # never both at once: each time frame belongs to one player
    mags = comb[None, None, :, None] * active[:, :, None, :]  # [B, 2, F, T]
    mix = mags.sum(1, keepdim=True)  # [B, 1, F, T]
    masks = (mags > 0).float()[:, :, None]  # [B, 2, 1, F, T]
    pose = torch.full((batch, 2, frames, NUM_KEYPOINTS, 3), 0.5)
    pose[..., 2] = 1.0
    pose[..., 0] += torch.linspace(-0.2, 0.2, NUM_KEYPOINTS)  # a fixed spread-out skeleton
    pose[..., INDEX["right_wrist"], 1] -= 0.2 * active.float()
    return pose, torch.log1p(mix), masks


@pytest.mark.parametrize("seed", [0])
def test_a_unet_learns_from_the_motion_guide_what_it_cannot_without(seed):
    """Same-timbre toy duet: with the guide the U-Net's mask loss falls far below the no-guide
    U-Net's, which cannot know whose each note is (its best is ~0.69 nats on the played cells)."""
    frames, bins, steps = 16, 16, 150
    losses = {}
    for use_guide in (True, False):
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        guide = MotionGuide(dim=16, maps=2, bins=bins) if use_guide else None
        unet = AttentionUNet(in_channels=3 if use_guide else 1, depth=2, base_channels=8, max_channels=16)
        params = list(unet.parameters()) + (list(guide.parameters()) if guide else [])
        opt = torch.optim.Adam(params, lr=3e-3)
        for _ in range(steps):
            pose, mix, masks = _toy_batch(16, frames, bins, g)
            x = mix[:, None].expand(-1, 2, -1, -1, -1)  # [B, 2, 1, F, T]: one run per player
            if guide is not None:
                maps = guide.maps(guide.features(pose).flatten(0, 1), frames).unflatten(0, (16, 2))
                x = torch.cat([x, maps], dim=2)
            logits = unet(x.flatten(0, 1)).unflatten(0, (16, 2))
            played = (mix > 0)[:, None].expand_as(masks)  # score only where something sounds
            loss = F.binary_cross_entropy_with_logits(logits[played], masks[played])
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses[use_guide] = loss.item()
    assert losses[False] > 0.6  # without the guide: a coin flip per played cell
    assert losses[True] < 0.5 * losses[False], losses
