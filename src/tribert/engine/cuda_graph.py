"""``CapturedStep``: a training step's forward, losses and backward captured once as a CUDA graph.

At paper size a GPU training step is bound by the host, not the GPU: the host launches ~4,900
kernels per step and the GPU waits on them (README "Training speed on a GPU"). A CUDA graph
launches all of them at once. ``train.cuda_graph`` captures the forward, the losses and the
backward; the gradient clipping and the fused AdamW step stay eager (a few launches), so the
learning-rate schedule, the weight average and Lightning's step counting work unchanged.

A graph replays fixed shapes and addresses, so:
- the batch is copied into static tensors before each replay;
- one pattern of real sources is captured (the first batch after the warm-up steps). MUSIC21's
  all-solo batches keep it; a batch with another shape or pattern runs eagerly (``eager_steps``
  counts them), as does a batch whose real sources are on the device only (reading them would
  be a host sync);
- the gradients are the graph's: ``zero_grad`` must not set them to None after the capture
  (``SeparationSystem.optimizer_zero_grad`` leaves them; an eager step zeroes them in place).

Warm-up steps run eagerly on a side stream before the capture, as CUDA graphs require (lazy
initialisation of cuBLAS / cuDNN workspaces and the optimiser's state must not be captured).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable

import torch
from torch import Tensor

from tribert.data.batch import MixBatch
from tribert.models.base import real_source_index

log = logging.getLogger(__name__)


class CapturedStep:
    """Forward + losses + backward of one batch shape, captured and replayed.

    Args:
        step: ``step(batch) -> {name: 0-d loss}``; runs the forward, the losses and
            ``loss.backward()`` with no host sync (the whole of it is captured).
        parameters: the trained parameters (their gradients are zeroed for an eager step).
        warmup: eager steps before the capture (at least 1; CUDA's documentation uses 3).
        capture: False runs every step on the static-batch path without a graph (the CPU, tests).
    """

    WARMUP = 3

    def __init__(self, step: Callable[[MixBatch], dict[str, Tensor]], parameters: list[torch.nn.Parameter],
                 warmup: int = WARMUP, capture: bool = True):
        self.step = step
        self.parameters = parameters
        self.warmup = max(1, warmup)
        self.capture = capture
        self.graph: torch.cuda.CUDAGraph | None = None
        self.key: tuple | None = None
        self.static: MixBatch | None = None
        self.outputs: dict[str, Tensor] | None = None
        self.index: Tensor | None = None  # the captured real-source index, held (see _capture)
        self.steps = 0
        self.eager_steps = 0  # steps after the capture that could not replay it (another shape)
        self.failed = False  # the capture failed: every step runs eagerly

    @staticmethod
    def batch_key(batch: MixBatch) -> tuple | None:
        """What the graph is fixed to: every tensor's shape and dtype and the real sources' pattern
        (None: the pattern is on the device only, so it cannot be read without a sync)."""
        host = batch._host_valid
        if host is None:
            return None
        shapes = tuple((name, tuple(t.shape), t.dtype) for name, t in batch.tensors().items())
        return shapes + (host.numpy().tobytes(),)

    def __call__(self, batch: MixBatch) -> dict[str, Tensor]:
        """Run the step on ``batch``; the returned losses are this step's (fresh tensors)."""
        self.steps += 1
        if self.failed:
            return self._eager(batch)
        key = self.batch_key(batch)
        if self.static is None and self.steps > self.warmup and key is not None:
            if not self._capture(batch, key):
                return self._eager(batch)
        elif self.static is not None and key == self.key:
            _copy_batch(self.static, batch)
            self._replay()
        else:
            return self._eager(batch)
        return {name: value.clone() for name, value in self.outputs.items()}

    def _replay(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:  # capture=False: the same static-batch path, run directly; like a replay, the
            # backward writes the gradients instead of adding to them
            for p in self.parameters:
                p.grad = None
            self.outputs = {name: value.detach() for name, value in self.step(self.static).items()}

    def _eager(self, batch: MixBatch) -> dict[str, Tensor]:
        if self.static is not None:
            self.eager_steps += 1
            if self.eager_steps == 1:
                log.warning("train.cuda_graph: a batch of another shape or real-source pattern than the captured "
                            "one runs eagerly (the run's end counts them)")
            grads = [p.grad for p in self.parameters if p.grad is not None]
            if grads:  # the graph's gradients stay where it writes them: zeroed, not set to None
                torch._foreach_zero_(grads)
        else:
            for p in self.parameters:
                p.grad = None
        with _side_stream(self.capture and batch.mix_mag.is_cuda):
            return {name: value.detach() for name, value in self.step(batch).items()}

    def _capture(self, batch: MixBatch, key: tuple) -> bool:
        """Capture the step on a static copy of ``batch`` and replay it for this step; False (the
        run goes on eagerly, warned) where this machine cannot capture it."""
        self.key = key
        self.static = batch.replace(**{name: t.clone() for name, t in batch.tensors().items()})
        self.static._host_valid = batch._host_valid.clone()
        # The real sources' index on the device, made now (a copy from the host cannot be
        # captured) and held here, so the cache never lets go of the memory the graph reads.
        self.index = real_source_index(batch._host_valid, batch.mix_mag.device)
        if not self.capture:
            self.outputs = {}
            self._replay()
            return True
        for p in self.parameters:  # the backward captured allocates the gradients it writes
            p.grad = None
        try:
            graph = torch.cuda.CUDAGraph()
            # thread_local: the loader's pin-memory thread may call CUDA (page-locked allocations,
            # event queries) while this thread captures; under "global" that would end the capture
            with torch.cuda.graph(graph, capture_error_mode="thread_local"), _uncached_autocast():
                self.outputs = {name: value.detach() for name, value in self.step(self.static).items()}
        except RuntimeError as err:  # e.g. an operation that cannot be captured: slower, not wrong
            log.warning("train.cuda_graph: the step could not be captured (%s); the run goes on without the "
                        "graph", str(err).splitlines()[0][:200])
            self.failed, self.static, self.outputs = True, None, None
            for p in self.parameters:  # a partial capture's gradients are not this step's
                p.grad = None
            return False
        self.graph = graph
        graph.replay()  # capturing runs nothing: this step's work
        log.info("train.cuda_graph: captured the step at step %d", self.steps)
        return True


def _copy_batch(static: MixBatch, batch: MixBatch) -> None:
    for name, t in batch.tensors().items():
        getattr(static, name).copy_(t, non_blocking=True)


@contextlib.contextmanager
def _side_stream(on_gpu: bool):
    """CUDA graphs need the steps before a capture on a side stream (PyTorch's CUDA semantics notes)."""
    if not on_gpu:
        yield
        return
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        yield
    torch.cuda.current_stream().wait_stream(stream)


def _uncached_autocast():
    """The enclosing autocast (Lightning's bf16-mixed) without its weight-cast cache: the cache
    would hold casts made in the graph's memory and free them when the context closes."""
    if not torch.is_autocast_enabled("cuda"):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), cache_enabled=False)


__all__ = ["CapturedStep"]
