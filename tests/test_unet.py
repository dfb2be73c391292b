"""The conditioned attention U-Net separator: shapes, switches, conditioning, bad input."""

from __future__ import annotations

import pytest
import torch

from tribert.models.unet import AttentionGate, AttentionUNet, BottleneckFusion, FiLM, level_channels


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_level_channels_double_then_cap():
    assert level_channels(7, 64, 512) == [64, 128, 256, 512, 512, 512, 512]
    assert level_channels(4, 16, 128) == [16, 32, 64, 128]


@torch.no_grad()
def test_paper_depth7_on_256x256():
    torch.manual_seed(0)
    net = AttentionUNet(depth=7, base_channels=64, max_channels=512, cond_dim=1536).eval()
    x, cond = torch.randn(1, 1, 256, 256), torch.randn(1, 1536)
    assert net(x, cond).shape == (1, 1, 256, 256)
    assert net.channels == [64, 128, 256, 512, 512, 512, 512]


@pytest.mark.parametrize("depth", [4, 7])
@pytest.mark.parametrize("gates", [True, False])
@pytest.mark.parametrize("film", [True, False])
def test_switches_keep_shapes(depth, gates, film):
    torch.manual_seed(0)
    size = 2 ** depth * 2  # 2 x 2 bottleneck
    net = AttentionUNet(depth=depth, base_channels=4, max_channels=16, attention_gates=gates, film=film,
                        cond_dim=6)
    x, cond = torch.randn(2, 1, size, 3 * size // 2), torch.randn(2, 6)
    out = net(x, cond)
    assert out.shape == (2, 1, size, 3 * size // 2)
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    has_gates = any(isinstance(m, AttentionGate) for m in net.modules())
    has_film = any(isinstance(m, FiLM) for m in net.modules())
    assert has_gates == gates and has_film == film


def test_gates_and_film_add_parameters():
    kw = dict(depth=4, base_channels=8, max_channels=32, cond_dim=5)
    plain = _params(AttentionUNet(attention_gates=False, **kw))
    assert _params(AttentionUNet(attention_gates=True, **kw)) > plain
    assert _params(AttentionUNet(attention_gates=False, film=True, **kw)) > plain


@pytest.mark.parametrize("fusion,film,upsample", [("attention", False, "transpose"), ("concat", False, "bilinear"),
                                                  ("none", True, "transpose"), ("attention", True, "bilinear")])
@torch.no_grad()
def test_output_depends_on_condition(fusion, film, upsample):
    torch.manual_seed(0)
    net = AttentionUNet(depth=3, base_channels=4, max_channels=8, cond_dim=4, fusion=fusion, film=film,
                        upsample=upsample).eval()
    x = torch.randn(1, 1, 16, 16).expand(2, 1, 16, 16)
    cond = torch.randn(2, 4)
    out = net(x, cond)
    assert out.shape == (2, 1, 16, 16)
    assert not torch.allclose(out[0], out[1], atol=1e-5), "same mixture, different condition, same mask"


@torch.no_grad()
def test_unconditioned_multi_output_for_baselines():
    net = AttentionUNet(out_channels=5, depth=3, base_channels=4, max_channels=8, cond_dim=0).eval()
    assert net.fusion is None
    assert net(torch.randn(2, 1, 16, 8)).shape == (2, 5, 16, 8)


def test_bad_inputs_are_refused():
    net = AttentionUNet(depth=4, base_channels=4, max_channels=8, cond_dim=3)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(1, 1, 24, 32), torch.randn(1, 3))
    with pytest.raises(ValueError, match="condition"):
        net(torch.randn(1, 1, 32, 32), None)
    with pytest.raises(ValueError):
        AttentionUNet(fusion="sum")


def test_attention_gate_only_attenuates():
    torch.manual_seed(0)
    gate = AttentionGate(3, 5, 2).eval()
    g, x = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    out = gate(g, x)
    ratio = out / x  # the same alpha in (0, 1) for every channel of a pixel
    assert ((ratio > 0) & (ratio < 1)).all()
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)


def test_authors_fusion_on_hand_computed_pixels():
    """h = softmax_C(a * f) * f + a, z = MLP(h) + h, worked by hand. Projection f = (c, 2c), MLP
    output layer zeroed (z = h). Pixel 1: a = (1, 0.5), c = 1 -> a * f = (1, 1), softmax over the
    channels (0.5, 0.5), h = (0.5 + 1, 1 + 0.5) = (1.5, 1.5). Pixel 2: a = (0, 0) -> softmax
    (0.5, 0.5), h = (0.5, 1). A softmax over pixels instead of channels, or a missing residual,
    gives other numbers."""
    fusion = BottleneckFusion(cond_dim=1, channels=2, kind="attention")
    with torch.no_grad():
        fusion.proj.weight.copy_(torch.tensor([[1.0], [2.0]]))
        fusion.proj.bias.zero_()
        fusion.mlp[2].weight.zero_()
        fusion.mlp[2].bias.zero_()
    a = torch.tensor([[[[1.0, 0.0]], [[0.5, 0.0]]]])  # [B=1, C=2, h=1, w=2]
    out = fusion(a, torch.tensor([[1.0]]))
    torch.testing.assert_close(out, torch.tensor([[[[1.5, 0.5]], [[1.5, 1.0]]]]))
    with torch.no_grad():  # the MLP adds its output to h: a bias of 0.25 on channel 0 shows up there
        fusion.mlp[2].bias.copy_(torch.tensor([0.25, 0.0]))
    torch.testing.assert_close(fusion(a, torch.tensor([[1.0]])), torch.tensor([[[[1.75, 0.75]], [[1.5, 1.0]]]]))
