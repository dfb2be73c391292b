"""ResNet-18/50 trunks whose state_dict matches torchvision's, so a user's ImageNet checkpoint loads.

torchvision does not import next to the pinned torch, and nothing may be downloaded at run time,
so the architecture is written out here (He et al. 2016, the "v1.5" variant torchvision uses:
the stride of a bottleneck sits on its 3x3 conv). With ``width=64`` and the standard depths the
parameter names, shapes, buffers and their order equal ``torchvision.models.resnet50()`` /
``resnet18()`` (320 / 122 state_dict entries, 25,557,032 / 11,689,512 parameters).
``width`` and ``layers`` shrink the net for the tiny/small configurations; such nets no longer
match a torchvision checkpoint, which ``load_resnet_weights`` reports as a one-line error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from tribert.errors import CheckpointError


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual: [B, in_ch, H, W] -> [B, planes, H/stride, W/stride]."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_ch, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 with a residual: [B, in_ch, H, W] -> [B, 4*planes, H/s, W/s]."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1):
        super().__init__()
        self.conv1 = conv1x1(in_ch, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A torchvision-compatible ResNet.

    Args:
        block: ``BasicBlock`` (ResNet-18/34) or ``Bottleneck`` (ResNet-50/101/152).
        layers: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        width: channels of the stem; stage i has ``width * 2**i`` planes (torchvision: 64).
        replace_stride_with_dilation: per stage 2..4, keep the resolution and dilate instead
            (as torchvision; works for both block types here).
        num_classes: size of the ``fc`` classifier; 0 builds no ``fc`` (a pure feature trunk).

    Shapes:
        features(x): [B, 3, H, W] -> [B, out_channels, H/32, W/32] (H/16, H/8 with dilation)
        forward(x):  [B, 3, H, W] -> [B, num_classes] logits (needs num_classes > 0)
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int], width: int = 64,
                 replace_stride_with_dilation: Sequence[bool] = (False, False, False), num_classes: int = 1000):
        super().__init__()
        if len(layers) != 4 or len(replace_stride_with_dilation) != 3:
            raise ValueError("ResNet needs 4 stage depths and 3 dilation flags")
        self.in_ch = width
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2, replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2, replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2, replace_stride_with_dilation[2])
        self.out_channels = width * 8 * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.out_channels, num_classes) if num_classes > 0 else None

        # torchvision's initialisation (zero_init_residual=False).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.in_ch != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.in_ch, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        stage = [block(self.in_ch, planes, stride, downsample, previous_dilation)]
        self.in_ch = planes * block.expansion
        stage += [block(self.in_ch, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The stage-4 feature map before pooling: [B, 3, H, W] -> [B, out_channels, H/32, W/32]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [B, width, H/4, W/4]
        x = self.layer1(x)  # [B, width*e, H/4, W/4]
        x = self.layer2(x)  # [B, 2*width*e, H/8, W/8]
        x = self.layer3(x)  # [B, 4*width*e, H/16, W/16]
        return self.layer4(x)  # [B, 8*width*e, H/32, W/32]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc is None:
            raise ValueError("this ResNet was built with num_classes=0; call features() instead")
        x = self.avgpool(self.features(x)).flatten(1)  # [B, out_channels]
        return self.fc(x)  # [B, num_classes]


_DEPTHS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet50": (Bottleneck, (3, 4, 6, 3))}


def build_resnet(arch: str, width: int = 64, layers: Sequence[int] | None = None, **kwargs) -> ResNet:
    """``arch`` in {"resnet18", "resnet50"}; ``layers=None`` keeps the standard depths."""
    if arch not in _DEPTHS:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {sorted(_DEPTHS)}")
    block, default_layers = _DEPTHS[arch]
    return ResNet(block, default_layers if layers is None else tuple(layers), width=width, **kwargs)


def resnet18(**kwargs) -> ResNet:
    """torchvision-compatible ResNet-18 (random init); kwargs as ``ResNet``."""
    return build_resnet("resnet18", **kwargs)


def resnet50(**kwargs) -> ResNet:
    """torchvision-compatible ResNet-50 (random init); kwargs as ``ResNet``."""
    return build_resnet("resnet50", **kwargs)


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    """Read a checkpoint file into a flat name -> tensor mapping, or raise CheckpointError."""
    if not path.is_file():
        raise CheckpointError("checkpoint file not found", path)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise CheckpointError("reading .safetensors needs the 'safetensors' package "
                                  "(pip install safetensors), or save the weights with torch.save", path) from None
        try:
            state = load_file(str(path), device="cpu")
        except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
            raise CheckpointError(f"not a readable safetensors file ({type(e).__name__})", path) from None
    else:
        try:
            # weights_only: a checkpoint is data, never code to run.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
            raise CheckpointError(f"not a readable PyTorch weights file ({type(e).__name__})", path) from None
    # Accept the usual wrappers: {"state_dict": ...} / {"model": ...}, and DDP's "module." prefix.
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("does not hold a state_dict (a mapping of names to tensors)", path)
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_resnet_weights(model: ResNet, path: str | Path) -> list[str]:
    """Load a torchvision-style ResNet checkpoint (.pth/.pt via torch.load, or .safetensors) into ``model``.

    The classifier is the one part allowed to differ: ``fc.*`` entries are skipped when the model
    has no ``fc`` or a different number of classes, and a model ``fc`` the checkpoint does not
    fill keeps its own values. Every other
    parameter and buffer must be present with the same shape, and no extra keys may remain.

    Returns:
        the checkpoint keys that were skipped (only ``fc.*``).
    Raises:
        CheckpointError: missing/corrupt file, or mismatching keys/shapes (how many, and the first).
    """
    path = Path(path)
    state = dict(_read_state_dict(path))
    own = model.state_dict()
    skipped = [k for k in state if k.startswith("fc.") and (k not in own or own[k].shape != state[k].shape)]
    for k in skipped:
        del state[k]
    for k in own:  # an fc the checkpoint cannot fill (skipped or headless checkpoint) keeps its values
        if k.startswith("fc.") and k not in state:
            state[k] = own[k]

    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        if wrong:
            k = wrong[0]
            problems.append(f"{len(wrong)} with another shape (first: {k} "
                            f"{tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        raise CheckpointError("does not match this ResNet: " + "; ".join(problems), path)
    model.load_state_dict(state, strict=True)
    return skipped
