"""Parameter and multiply-add (MAC) counts of a TriBERT model, per component.

MACs are counted with forward hooks during one real forward pass (eval mode, no grad) on
example inputs:

- ``nn.Conv1d/2d/3d``: output elements x (in_channels / groups) x kernel size;
- ``nn.ConvTranspose*``: input elements x (out_channels / groups) x kernel size;
- ``nn.Linear``: output elements x in_features;
- attention (``AttentionCore``): Q K^T and (softmax) V, 2 x B x heads x Lq x Lk x head_dim;
- the ST-GCN's graph aggregation (a dense einsum with the [K, V, V] adjacency, hooked on any
  module named ``GraphConv``): output elements x K x V.

Element-wise work (norms, activations, softmax, pooling) and the visual net's small token-pooling
einsum are not counted. Components are the model's top-level children: visual, pose, audio,
transformer (embeddings, layers, SOS poolers), heads, separator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tribert.models.coattention import AttentionCore
from tribert.config import ModelConfig

COMPONENTS = ("visual", "pose", "audio", "transformer", "heads", "condition_layers", "separator")


@dataclass
class ComponentInfo:
    """Size of one component: parameters and multiply-adds of one forward pass."""

    name: str
    params: int
    macs: int


def example_inputs(config: ModelConfig, batch_size: int = 1, num_sources: int = 1,
                   device: str | torch.device = "cpu", seed: int = 0) -> dict[str, Tensor]:
    """Random inputs of the right shapes for ``TriBERT.forward(**inputs)``.

    ``objects[:, s]`` cycles through -1 (whole video), 0, 1, ... so several sources ask for
    different objects.
    """
    g = torch.Generator().manual_seed(seed)
    b, k, o = batch_size, config.num_frames, config.num_objects
    frames = torch.randn(b, k, 3, config.frame_size, config.frame_size, generator=g)
    pose = torch.rand(b, o, config.pose_frames, 68, 3, generator=g)
    mix = torch.randn(b, 1, config.spec_bins, config.spec_frames, generator=g)
    objects = (torch.arange(num_sources) % (o + 1) - 1).expand(b, num_sources).contiguous()
    inputs = {"frames": frames if config.use_vision else None, "pose": pose if config.use_pose else None,
              "mix_logmag": mix, "objects": objects}
    return {name: (x.to(device) if x is not None else None) for name, x in inputs.items()}


def module_macs(module: nn.Module, inputs: tuple, output) -> int:
    """Multiply-adds of one call of a counted leaf module (0 for anything else)."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return inputs[0].numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, AttentionCore):
        q, k = inputs[0], inputs[1]  # [B, H, Lq, d], [B, H, Lk, d]
        return 2 * q.shape[:-2].numel() * q.shape[-2] * k.shape[-2] * q.shape[-1]
    if type(module).__name__ == "GraphConv" and len(inputs) > 1:
        adjacency = inputs[1]  # [K, V, V]
        return output.numel() * adjacency.shape[0] * adjacency.shape[1]
    return 0


@torch.no_grad()
def count_macs(model: nn.Module, inputs: dict[str, Tensor]) -> dict[str, int]:
    """MACs of ``model(**inputs)`` per top-level child (eval mode; the mode is restored after)."""
    counts: dict[str, int] = {name: 0 for name, _ in model.named_children()}
    handles = []
    for name, child in model.named_children():
        def hook(module, args, output, name=name):
            counts[name] += module_macs(module, args, output)
        handles += [m.register_forward_hook(hook) for m in child.modules()]
    was_training = model.training
    model.eval()
    try:
        model(**inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return counts


def model_info(model: nn.Module, batch_size: int = 1, num_sources: int = 1) -> list[ComponentInfo]:
    """Parameters and MACs per component of a ``TriBERT`` (one forward pass at ``batch_size``
    videos, ``num_sources`` separator runs per video)."""
    device = next(model.parameters()).device
    macs = count_macs(model, example_inputs(model.config, batch_size, num_sources, device))
    infos = []
    for name, child in model.named_children():
        params = sum(p.numel() for p in child.parameters())
        if params or macs.get(name, 0):  # a component a configuration leaves empty is not listed
            infos.append(ComponentInfo(name, params, macs.get(name, 0)))
    order = {n: i for i, n in enumerate(COMPONENTS)}
    return sorted(infos, key=lambda i: order.get(i.name, len(order)))


def info_table(infos: list[ComponentInfo], title: str = ""):
    """A ``rich`` table of ``model_info`` rows with a total row."""
    from rich.table import Table

    table = Table(title=title or None)
    table.add_column("component")
    table.add_column("parameters", justify="right")
    table.add_column("params (M)", justify="right")
    table.add_column("multiply-adds", justify="right")
    for i in infos:
        table.add_row(i.name, f"{i.params:,}", f"{i.params / 1e6:.3f}", format_macs(i.macs))
    total_p, total_m = sum(i.params for i in infos), sum(i.macs for i in infos)
    table.add_row("[bold]total[/bold]", f"[bold]{total_p:,}[/bold]", f"[bold]{total_p / 1e6:.3f}[/bold]",
                  f"[bold]{format_macs(total_m)}[/bold]")
    return table


def format_macs(macs: int) -> str:
    """Multiply-adds with a unit: 1.234 G, 56.7 M, 890 k."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if macs >= scale:
            return f"{macs / scale:.3f} {unit}" if unit == "G" else f"{macs / scale:.1f} {unit}"
    return str(macs)


__all__ = ["ComponentInfo", "COMPONENTS", "example_inputs", "module_macs", "count_macs", "model_info",
           "info_table", "format_macs"]
