"""The three modality encoders: torchvision-compatible ResNet, visual segmentation net, ST-GCN pose
encoder, VGGish audio encoder. CPU, tiny sizes, plus one forward pass each at paper size."""

from __future__ import annotations

import math

import pytest
import torch

from tribert.errors import CheckpointError
from tribert.models.audio import VGGishEncoder
from tribert.models.pose import STGCN, PoseEncoder, pose_presence, prepare_pose, spatial_partition
from tribert.models.resnet import ResNet, Bottleneck, load_resnet_weights, resnet18, resnet50
from tribert.models.visual import VisualSegmentationNet
from tribert.skeleton import CENTER, EDGES, INDEX, NUM_KEYPOINTS

TINY_VISUAL = dict(num_classes=5, backbone="resnet18", backbone_width=8, backbone_layers=(1, 1, 1, 1),
                   feature_dim=16, num_objects=2)
TINY_POSE = dict(num_frames=3, token_dim=16, num_persons=2, channels=(8, 8, 16), pose_frames=16)
TINY_AUDIO = dict(channels=(8, 8, 16), convs_per_block=(1, 1, 2), out_dim=12)


def param_count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def assert_all_grads(model: torch.nn.Module) -> None:
    """Every parameter received a finite, not-all-zero gradient."""
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient for {name}"


# --- ResNet: the torchvision state_dict, written out from the published architecture ----------------

def torchvision_resnet_entries(bottleneck: bool, layers: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of ``torchvision.models.resnet{18,50}().state_dict()`` in order.

    Derived from the architecture (torchvision/models/resnet.py), independently of our model code;
    the published totals checked below (entries, parameters) guard this table itself.
    """
    entries: list[tuple[str, tuple[int, ...]]] = []

    def conv(name: str, out_ch: int, in_ch: int, k: int) -> None:
        entries.append((f"{name}.weight", (out_ch, in_ch, k, k)))

    def bn(name: str, c: int) -> None:
        entries.extend([(f"{name}.weight", (c,)), (f"{name}.bias", (c,)), (f"{name}.running_mean", (c,)),
                        (f"{name}.running_var", (c,)), (f"{name}.num_batches_tracked", ())])

    expansion = 4 if bottleneck else 1
    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            if bottleneck:
                conv(f"{p}.conv1", planes, inplanes, 1), bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3), bn(f"{p}.bn2", planes)
                conv(f"{p}.conv3", planes * 4, planes, 1), bn(f"{p}.bn3", planes * 4)
            else:
                conv(f"{p}.conv1", planes, inplanes, 3), bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3), bn(f"{p}.bn2", planes)
            if b == 0 and (stage > 1 or inplanes != planes * expansion):
                conv(f"{p}.downsample.0", planes * expansion, inplanes, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    entries += [("fc.weight", (1000, 512 * expansion)), ("fc.bias", (1000,))]
    return entries


@pytest.mark.parametrize("build, bottleneck, layers, n_entries, n_params", [
    (resnet50, True, (3, 4, 6, 3), 320, 25_557_032),
    (resnet18, False, (2, 2, 2, 2), 122, 11_689_512),
])
def test_resnet_state_dict_equals_torchvision(build, bottleneck, layers, n_entries, n_params):
    expected = torchvision_resnet_entries(bottleneck, layers)
    assert len(expected) == n_entries
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert sum(math.prod(s) for k, s in expected if not k.endswith(buffers)) == n_params
    model = build()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == expected
    assert param_count(model) == n_params


def test_resnet_features_and_dilation():
    x = torch.randn(2, 3, 64, 96)
    tiny = ResNet(Bottleneck, (1, 1, 1, 1), width=8, num_classes=0).eval()
    assert tiny.out_channels == 8 * 8 * 4
    assert tiny.features(x).shape == (2, 256, 2, 3)
    dilated = ResNet(Bottleneck, (1, 1, 1, 1), width=8, replace_stride_with_dilation=(False, False, True),
                     num_classes=7).eval()
    assert dilated.features(x).shape == (2, 256, 4, 6)
    assert dilated(x).shape == (2, 7)
    with pytest.raises(ValueError):
        tiny(x)  # no classifier: forward() is not available


def test_resnet_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    src = resnet18(width=8, layers=(1, 1, 1, 1), num_classes=10).eval()
    with torch.no_grad():  # non-trivial BN statistics, so buffers are checked too
        for m in src.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    path = tmp_path / "r18.pth"
    torch.save(src.state_dict(), path)
    x = torch.randn(2, 3, 64, 64)

    torch.manual_seed(1)
    dst = resnet18(width=8, layers=(1, 1, 1, 1), num_classes=10).eval()
    assert not torch.allclose(dst(x), src(x))
    assert load_resnet_weights(dst, path) == []
    assert torch.equal(dst(x), src(x))

    # Lightning/DDP-style wrapping loads too.
    wrapped = tmp_path / "wrapped.ckpt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, wrapped)
    dst2 = resnet18(width=8, layers=(1, 1, 1, 1), num_classes=10).eval()
    load_resnet_weights(dst2, wrapped)
    assert torch.equal(dst2(x), src(x))

    # The classifier may differ: a headless trunk skips fc.*, another class count keeps its own fc.
    trunk = resnet18(width=8, layers=(1, 1, 1, 1), num_classes=0).eval()
    assert sorted(load_resnet_weights(trunk, path)) == ["fc.bias", "fc.weight"]
    assert torch.equal(trunk.features(x), src.features(x))
    other = resnet18(width=8, layers=(1, 1, 1, 1), num_classes=3).eval()
    own_fc = other.fc.weight.detach().clone()
    assert sorted(load_resnet_weights(other, path)) == ["fc.bias", "fc.weight"]
    assert torch.equal(other.fc.weight, own_fc)
    assert torch.equal(other.features(x), src.features(x))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # from the deliberately corrupt file
def test_resnet_checkpoint_errors(tmp_path):
    model = resnet18(width=8, layers=(1, 1, 1, 1))

    def error(path) -> str:
        with pytest.raises(CheckpointError) as info:
            load_resnet_weights(model, path)
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg
        return msg

    assert "not found" in error(tmp_path / "absent.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x04 this is not a checkpoint" * 10)
    assert "not a readable" in error(corrupt)
    code = tmp_path / "code.pth"
    torch.save({"weights": torch.zeros(1), "obj": CheckpointError("x")}, code)  # needs unpickling code
    assert "not a readable" in error(code)
    not_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_dict)
    assert "state_dict" in error(not_dict)

    deeper = tmp_path / "deeper.pth"  # a different architecture: keys missing and unexpected
    torch.save(resnet18(width=8, layers=(2, 1, 1, 1)).state_dict(), deeper)
    msg = error(deeper)
    assert "unexpected (first: layer1.1.conv1.weight)" in msg
    wider = tmp_path / "wider.pth"
    torch.save(resnet18(width=16, layers=(1, 1, 1, 1)).state_dict(), wider)
    msg = error(wider)
    assert "with another shape (first: conv1.weight (16, 3, 7, 7) vs (8, 3, 7, 7))" in msg
    partial = tmp_path / "partial.pth"
    sd = model.state_dict()
    del sd["layer2.0.bn1.running_var"]
    torch.save(sd, partial)
    assert "1 missing (first: layer2.0.bn1.running_var)" in error(partial)


def test_resnet_safetensors(tmp_path):
    path = tmp_path / "w.safetensors"
    model = resnet18(width=8, layers=(1, 1, 1, 1)).eval()
    from safetensors.torch import save_file  # a dependency: the documented .safetensors path must work

    save_file(model.state_dict(), str(path))
    fresh = resnet18(width=8, layers=(1, 1, 1, 1)).eval()
    load_resnet_weights(fresh, path)
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(fresh(x), model(x))
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_resnet_weights(fresh, damaged)


# --- visual segmentation net --------------------------------------------------------------------------

def test_visual_paper_size_shapes():
    net = VisualSegmentationNet().eval()  # ResNet-50, 1024-d, 21 classes, top-2: ~1 s on one core
    with torch.no_grad():
        out = net(torch.randn(1, 3, 3, 224, 224))
    assert out.tokens.shape == (1, 3, 2, 1024)
    assert out.class_scores.shape == (1, 3, 21)
    assert out.top_classes.shape == (1, 3, 2) and out.top_classes.dtype == torch.long
    assert out.attention.shape == (1, 3, 21, 7, 7)
    assert out.features.shape == (1, 3, 1024, 7, 7)


@pytest.mark.parametrize("attention", ["paper", "code"])
def test_visual_gradients_reach_every_parameter(attention):
    torch.manual_seed(0)
    net = VisualSegmentationNet(**TINY_VISUAL, attention=attention).train()
    out = net(torch.randn(2, 3, 3, 64, 64))
    assert out.tokens.shape == (2, 3, 2, 16) and out.attention.shape == (2, 3, 5, 2, 2)
    labels = torch.zeros(2, 3, 5)
    labels[:, :, 1] = 1
    loss = out.tokens.pow(2).mean() + torch.nn.functional.binary_cross_entropy_with_logits(out.class_scores, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert_all_grads(net)


def test_visual_tokens_come_from_top_scoring_classes():
    torch.manual_seed(0)
    net = VisualSegmentationNet(**TINY_VISUAL).eval()
    frames = torch.randn(2, 3, 3, 64, 96)
    with torch.no_grad():
        out = net(frames)
    # The token classes are the two best scores of each frame, best first.
    assert torch.equal(out.top_classes, out.class_scores.argsort(dim=-1, descending=True)[..., :2])
    # Each token is the spatial average of its class's attention map times V_e.
    for b in range(2):
        for k in range(3):
            for j in range(2):
                c = out.top_classes[b, k, j]
                expected = (out.attention[b, k, c] * out.features[b, k]).mean(dim=(1, 2))
                assert torch.allclose(out.tokens[b, k, j], expected, atol=1e-5)
    # A class score is the attention-weighted average of the discriminative logits: a bias on that
    # class's logit shifts its score by exactly that much, and it becomes the top token of every frame.
    with torch.no_grad():
        net.discriminative.bias[3] += 50.0
        shifted = net(frames)
    assert torch.allclose(shifted.class_scores[..., 3], out.class_scores[..., 3] + 50.0, atol=1e-3)
    assert (shifted.top_classes[..., 0] == 3).all()


def test_visual_rejects_bad_arguments():
    with pytest.raises(ValueError):
        VisualSegmentationNet(**{**TINY_VISUAL, "num_objects": 6})
    with pytest.raises(ValueError):
        VisualSegmentationNet(**TINY_VISUAL, attention="other")


# --- pose: ST-GCN -------------------------------------------------------------------------------------

def test_spatial_partition_of_the_68_point_skeleton():
    A = spatial_partition()
    assert A.shape == (3, NUM_KEYPOINTS, NUM_KEYPOINTS)
    assert torch.allclose(A.sum(dim=(0, 1)), torch.ones(NUM_KEYPOINTS))  # a mean over each neighbourhood
    assert torch.equal(A[0], torch.diag(torch.diagonal(A[0])))  # root subset: the joint itself
    support = (A[1] + A[2]) > 0
    assert support.sum() == 2 * len(EDGES)  # every edge, both directions, in exactly one subset
    for i, j in EDGES:
        assert support[i, j] and support[j, i]
    assert (A[1, :, CENTER] == 0).all() and (A[2, :, CENTER] > 0).sum() == 4  # neck: nose, shoulders, hip
    elbow, shoulder, wrist = INDEX["left_elbow"], INDEX["left_shoulder"], INDEX["left_wrist"]
    assert A[1, shoulder, elbow] > 0 and A[2, shoulder, elbow] == 0  # shoulder is closer to the neck
    assert A[2, wrist, elbow] > 0 and A[1, wrist, elbow] == 0  # wrist is further away
    assert A[0, elbow, elbow] == pytest.approx(1 / 3)


def test_pose_paper_size_shapes():
    enc = PoseEncoder().eval()
    feats = []
    enc.stgcn.register_forward_hook(lambda module, args, out: feats.append(out.shape))
    with torch.no_grad():
        tokens = enc(torch.rand(1, 2, 256, 68, 3))
    assert feats == [(1, 2, 256, 64, 68)]  # the paper's 2 x 256 x 68 per time step (T 256 -> 64)
    assert tokens.shape == (1, 3, 2, 1024)


def random_pose(b: int, p: int, t: int, drop: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pose = torch.rand(b, p, t, 68, 3, generator=g)
    dropped = torch.rand(b, p, t, 68, generator=g) < drop
    pose[..., 2][dropped] = 0.0
    pose[..., 0][dropped] = float("nan")  # whatever a detector left there must not matter
    return pose


def test_pose_missing_people_and_points_stay_finite_with_gradients():
    torch.manual_seed(0)
    enc = PoseEncoder(**TINY_POSE).train()
    pose = random_pose(2, 2, 16)
    pose[0, 1, ..., 2] = 0.0  # video 0 has nobody in person slot 1
    pose[0, 1, ..., :2] = 123.0
    tokens = enc(pose)
    assert tokens.shape == (2, 3, 2, 16)
    assert torch.isfinite(tokens).all()
    tokens.pow(2).mean().backward()
    assert_all_grads(enc)
    assert torch.equal(pose_presence(pose), torch.tensor([[True, False], [True, True]]))


def test_pose_ignores_coordinates_of_undetected_points():
    torch.manual_seed(0)
    enc = PoseEncoder(**TINY_POSE).eval()
    pose = random_pose(2, 2, 16)
    pose[1, 0, ..., 2] = 0.0  # a whole missing person
    other = pose.clone()
    undetected = other[..., 2] == 0
    other[..., 0][undetected] = 7.0
    other[..., 1][undetected] = -3.0
    with torch.no_grad():
        a, b = enc(pose), enc(other)
        empty = enc(torch.zeros(2, 2, 16, 68, 3))
    assert torch.equal(a, b)
    assert torch.equal(a[1, :, 0], empty[1, :, 0])  # a missing person is the zero-input token
    detected = pose.clone()
    detected[0, 0, 3, 10, 0] = 0.9  # ...while a detected point's position does matter
    detected[0, 0, 3, 10, 2] = 1.0
    with torch.no_grad():
        assert not torch.equal(enc(detected), a)


def test_a_frozen_stgcn_is_a_fixed_extractor_while_the_token_layer_trains():
    torch.manual_seed(0)
    trainable = PoseEncoder(**TINY_POSE)
    frozen = PoseEncoder(**TINY_POSE, frozen=True)
    frozen.load_state_dict(trainable.state_dict())
    frozen.train()
    assert frozen.training and not frozen.stgcn.training and frozen.proj.training
    stats = {k: v.clone() for k, v in frozen.stgcn.state_dict().items()}
    pose = random_pose(2, 2, 16)
    tokens = frozen(pose)
    tokens.pow(2).mean().backward()
    assert all(p.grad is None for p in frozen.stgcn.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in frozen.proj.parameters())
    for k, v in frozen.stgcn.state_dict().items():  # BN running statistics untouched by a training forward
        assert torch.equal(v, stats[k]), k
    # In training it gives what the trainable encoder gives in eval mode (running statistics), and
    # not its training-mode output (batch statistics).
    with torch.no_grad():
        assert torch.allclose(tokens.detach(), trainable.eval()(pose), atol=1e-6)
        assert not torch.allclose(tokens.detach(), trainable.train()(pose), atol=1e-3)


@pytest.mark.parametrize("t", [1, 5, 16])
def test_stgcn_accepts_any_length(t):
    net = STGCN(channels=(8, 16, 16), num_persons=2).eval()
    with torch.no_grad():
        out = net(prepare_pose(random_pose(1, 2, t)))
    assert out.shape == (1, 2, 16, math.ceil(t / 2), 68)  # one stride-2 block (8 -> 16)
    assert torch.isfinite(out).all()


# --- audio: VGGish --------------------------------------------------------------------------------------

def test_audio_paper_size_shape():
    enc = VGGishEncoder().eval()
    convs = [m.out_channels for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [64, 128, 256, 256, 512, 512, 512]  # VGGish's blocks + one; the authors' seven convs
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in enc.modules()) == 5
    assert len([m for m in VGGishEncoder(channels=(4, 8, 16)).modules() if isinstance(m, torch.nn.Conv2d)]) == 4
    with torch.no_grad():
        assert enc(torch.randn(1, 1, 256, 256)).shape == (1, 512)


@pytest.mark.parametrize("f, t", [(16, 16), (64, 64), (16, 40)])
def test_audio_any_size_and_gradients(f, t):
    torch.manual_seed(0)
    enc = VGGishEncoder(**TINY_AUDIO).train()
    out = enc(torch.randn(2, 1, f, t))
    assert out.shape == (2, 12) and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    assert_all_grads(enc)


# --- no data-dependent Python control flow: tracing bakes in nothing input-specific ----------------------

@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.trace: still the simplest replay check
def test_encoders_trace_without_data_dependent_branches():
    torch.manual_seed(0)
    cases = [
        (VisualSegmentationNet(**TINY_VISUAL).eval(), (2, 3, 3, 64, 64)),
        (PoseEncoder(**TINY_POSE).eval(), (2, 2, 16, 68, 3)),
        (VGGishEncoder(**TINY_AUDIO).eval(), (2, 1, 32, 32)),
    ]
    for model, shape in cases:
        traced = torch.jit.trace(model, torch.rand(shape), strict=False, check_trace=False)
        x = torch.rand(shape) * 2 - 0.5  # a different input: new top classes, new missing points
        eager, replay = model(x), traced(x)
        if isinstance(eager, torch.Tensor):
            eager, replay = (eager,), (replay,)
        assert len(eager) == len(replay)
        for e, r in zip(eager, replay):
            assert torch.equal(e, r) if e.dtype == torch.long else torch.allclose(e, r, atol=1e-5)
