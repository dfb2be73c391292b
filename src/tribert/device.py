"""Where a command runs: ``resolve_device`` turns "cpu", "cuda[:N]" or "auto" into a torch device,
or a one-line error before any work (torch itself would stop deep inside with "Torch not compiled
with CUDA enabled")."""

from __future__ import annotations

import torch

from tribert.errors import TribertError


def resolve_device(device: str | torch.device) -> torch.device:
    """"auto": a GPU when torch sees one, else the CPU. A CUDA device this torch cannot reach
    (a CPU build, no GPU, an index past the last one) is a ``TribertError``."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not (device == "cuda" or device.startswith("cuda:") and device[5:].isdigit()):
        raise TribertError(f"device must be cpu, cuda, cuda:N or auto, got {device!r}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TribertError(f"device {device}: this torch ({torch.__version__}) sees no CUDA GPU")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise TribertError(f"device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(device)
