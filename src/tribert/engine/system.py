"""``SeparationSystem``: the LightningModule that owns a separator, its losses and its optimiser.

Every separator (TriBERT and the baselines) goes through the same ``MixBatch.video_inputs`` -> model ->
``losses`` path (the interface is in :mod:`tribert.models.base`). The separation loss is the
authors' per-pixel BCE on the mask, weighted by ``clamp(log1p(mix_mag), 1e-3, 10)``, averaged over
real (non-padding) sources; TriBERT adds the weakly supervised vision/pose class losses and the
audio class loss.
"""

from __future__ import annotations

import copy
import logging

import lightning as L
from lightning.pytorch.callbacks import Timer
import torch
import torch.nn.functional as F
from torch import Tensor

from tribert.audio import AudioFrontEnd, share_masks
from tribert.data.batch import MixBatch
from tribert.engine.cuda_graph import CapturedStep
from tribert.config import Config
from tribert.errors import TribertError
from tribert.models import build_separator
from tribert.models.base import SEPARATOR_MODULES
from tribert.models.heads import classification_losses
from tribert.models.tribert import COATTENTION_PARAMETERS

log = logging.getLogger(__name__)


class SeparationSystem(L.LightningModule):
    """Model + loss + optimiser for mix-and-separate training.

    Args:
        config: the full resolved run configuration (stored in every checkpoint).
    """

    def __init__(self, config: Config | dict):
        super().__init__()
        if isinstance(config, dict):
            config = Config.from_dict(config)
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        self.model = build_separator(config.model)
        self._clip_groups: list[list] | None = None  # train.clip_*_apart: the groups clipped apart
        if config.train.channels_last:  # NHWC convolutions: the fast layout for bf16 on GPUs
            self.model.to(memory_format=torch.channels_last)
            pose = getattr(self.model, "pose", None)
            if pose is not None:  # but not the ST-GCN: its graph mixing (an einsum over the joints)
                # reorders the tensor, so NHWC there costs a layout transpose at every block
                pose.stgcn.to(memory_format=torch.contiguous_format)
        # train.ema_decay: the weight average, a copy of the model updated after every step (made
        # before compile, so it is a plain copy; it is never run in training).
        self.ema = WeightAverage(self.model, config.train.ema_decay) if config.train.ema_decay > 0 else None
        if config.train.compile:
            # Each block compiled in place (parameter names and checkpoints stay as without); the
            # glue between them stays eager: picking the real sources is data-dependent.
            for block in self.model.children():
                block.compile()
        self.frontend = AudioFrontEnd(config.audio)
        self.captured: CapturedStep | None = None  # train.cuda_graph: made at the first step
        # The first step with a non-finite loss and that loss, kept on the device (_flag_nonfinite).
        self._nonfinite_step: Tensor | None = None
        self._nonfinite_loss: Tensor | None = None

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        # Lightning moves an object with .to() blocking; from the loader's page-locked batches a
        # non-blocking copy lets the host go on launching while the device copies.
        if isinstance(batch, MixBatch):
            return batch.to(device, non_blocking=device.type == "cuda")
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    # --- forward and losses -------------------------------------------------------------------
    def forward(self, batch: MixBatch, model: torch.nn.Module | None = None):
        out = (self.model if model is None else model)(**batch.video_inputs())
        mask_logits = batch.slots_by_mixture(out.mask_logits)  # [B, S, 1, F, T]
        if self.config.model.mask_sharing != "none":
            # The shared masks go back to logits, so the loss and evaluation read them as any other.
            shared = share_masks(torch.sigmoid(mask_logits.float()), self.config.model.mask_sharing,
                                 batch.source_valid).clamp(1e-6, 1 - 1e-6)
            mask_logits = torch.log(shared) - torch.log1p(-shared)
        return out, mask_logits

    def mask_loss(self, batch: MixBatch, mask_logits: Tensor) -> Tensor:
        """The separation loss of mask logits [B, S, 1, F, T], averaged over the real sources."""
        if self.config.train.mask_loss == "bce":
            per_pixel = F.binary_cross_entropy_with_logits(
                mask_logits.float(), batch.masks, reduction="none") * batch.weight[:, None]
        else:  # "l1": L1 between the masked mixture magnitude and the source magnitude
            est = torch.sigmoid(mask_logits.float()) * batch.mix_mag[:, None]
            per_pixel = (est - batch.source_mags).abs()
        valid = batch.source_valid.to(per_pixel.dtype)  # [B, S]
        per_source = per_pixel.flatten(2).mean(-1)  # [B, S]
        return (per_source * valid).sum() / valid.sum().clamp_min(1)

    def losses(self, batch: MixBatch, out, mask_logits: Tensor) -> dict[str, Tensor]:
        tc = self.config.train
        sep = self.mask_loss(batch, mask_logits)
        losses = {"sep": sep}
        total = tc.sep_weight * sep
        maps = getattr(out, "motion_maps", None)  # [V, P, M, F, T]
        if maps is not None and tc.motion_guide_weight > 0:
            losses["guide"] = self.mask_loss(batch, batch.slots_by_mixture(maps[:, :, :1]))
            total = total + tc.motion_guide_weight * losses["guide"]
        labels = batch.video_labels()  # [V, C]
        audio_labels = batch.mixture_labels() if tc.audio_labels == "mixture" else labels
        weights = self.class_loss_weights()
        source_labels = batch.slots_by_video(batch.source_label)  # [V, P]
        for name, loss in classification_losses(out, labels, audio_labels, source_labels,
                                                     batch.mixture_labels()).items():
            if weights[name] > 0:
                losses[name] = loss
                total = total + weights[name] * loss
        losses["loss"] = total
        return losses

    def class_loss_weights(self) -> dict[str, float]:
        """Weight of each classification loss (the names ``classification_losses`` returns)."""
        tc = self.config.train
        return {"vision": tc.vision_weight, "segmentation": tc.vision_weight, "pose": tc.pose_weight,
                "audio": tc.audio_weight, "condition": tc.condition_weight,
                "audio_encoder": tc.audio_encoder_weight}

    def training_step(self, batch: MixBatch, batch_idx: int) -> Tensor:
        # Seed dropout and token masking from the step, so a resumed run repeats the exact steps
        # (a CUDA graph's replay reads the generator's seed and offset anew each time).
        torch.manual_seed(self.config.train.seed * 1_000_003 + self.global_step)
        if self.config.train.cuda_graph:  # forward, losses and backward in one replay
            if self.captured is None:
                if self._trainer is not None and self.trainer.world_size > 1:
                    raise TribertError("train.cuda_graph runs on one GPU: set train.devices=1 (the gradient "
                                       "all-reduce of several processes is not captured)")
                self.captured = self.captured_step()
            losses = self.captured(batch)
        else:
            out, mask_logits = self(batch)
            losses = self.losses(batch, out, mask_logits)
        loss = losses["loss"]
        # A non-finite loss stops training, naming its step. Reading the flag back is a host sync
        # that stalls a GPU's queue, so there it is read every log_every steps and before every
        # checkpoint is written (no bad weights are saved); on the CPU it costs nothing: every step.
        self._flag_nonfinite(loss.detach())
        if self.device.type == "cpu" or self.global_step % max(1, self.config.train.log_every) == 0:
            self.check_finite()
        # sync_dist: under DDP the logged losses are the mean over processes (one scalar
        # all-reduce per step), i.e. the loss of the combined batch, not rank 0's share of it.
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, prog_bar=False,
                      batch_size=batch.batch_size, sync_dist=True)
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=batch.batch_size)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"],  # the schedule, in metrics.csv
                 batch_size=batch.batch_size)
        return loss

    def captured_step(self) -> CapturedStep:
        """This system's forward, losses and backward as ``train.cuda_graph`` captures them (a
        graph on a GPU; the same static-batch path without one elsewhere)."""
        trained = [p for p in self.parameters() if p.requires_grad]
        return CapturedStep(self._forward_backward, trained, capture=self.device.type == "cuda")

    def _forward_backward(self, batch: MixBatch) -> dict[str, Tensor]:
        """The part of a step ``train.cuda_graph`` captures."""
        out, mask_logits = self(batch)
        losses = self.losses(batch, out, mask_logits)
        losses["loss"].backward()
        return losses

    def backward(self, loss: Tensor, *args, **kwargs) -> None:
        if self.captured is None:
            super().backward(loss, *args, **kwargs)
        # else the captured step has run the backward already

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer) -> None:
        if self.captured is None:
            super().optimizer_zero_grad(epoch, batch_idx, optimizer)
        # else the graph writes the gradients where it captured them (CapturedStep zeroes them
        # for an eager step): setting them to None would cut the optimiser off from them

    def on_train_start(self) -> None:
        # A resumed run restores the rate its optimiser last held, which the schedule computed for
        # this step under the run's old config. Trained on for longer (train.max_steps raised, with
        # a linear decay or warm-up), that is the old schedule's rate (0 at its old end) for one
        # step: set it from the schedule the run trains with now. Unchanged config: the same value.
        if self.global_step == 0:
            return
        for config in self.trainer.lr_scheduler_configs:
            sched = config.scheduler
            for group, base, factor in zip(sched.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas):
                group["lr"] = base * factor(self.global_step)

    def on_train_end(self) -> None:
        if self.captured is not None and self.captured.eager_steps:
            log.warning("train.cuda_graph: %d of %d steps ran eagerly (another batch shape or real-source "
                        "pattern than the captured one)", self.captured.eager_steps, self.captured.steps)

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        # Here, not in on_train_batch_end: the checkpoint callbacks run before that hook, and would
        # save a step's weights beside the average of the step before.
        if self.ema is not None:
            self.ema.update(self.model, self.global_step)  # the step just taken, counted from 0

    def use_averaged_weights(self) -> None:
        """Put the weight average (``train.ema_decay``) into the model: what evaluation reads."""
        if self.ema is not None:
            self.model.load_state_dict(self.ema.module.state_dict())

    def _flag_nonfinite(self, loss: Tensor) -> None:
        """Remember, on the device, the first step whose loss was not finite (and that loss)."""
        first, value = self._nonfinite_step, self._nonfinite_loss
        if first is None:
            first, value = loss.new_full((), -1, dtype=torch.long), loss.new_zeros(())
        new = ~torch.isfinite(loss) & (first < 0)
        self._nonfinite_step = torch.where(new, torch.full_like(first, self.global_step), first)
        self._nonfinite_loss = torch.where(new, loss, value)

    def check_finite(self) -> None:
        """Raise if any training step so far had a non-finite loss (one host sync)."""
        first = self._nonfinite_step
        if first is not None and int(first) >= 0:
            raise TribertError(f"training stopped: loss is {float(self._nonfinite_loss)} at step {int(first)} "
                               f"(epoch {self.current_epoch}): the run diverged (a lower train.lr, or train.grad_clip, may "
                               f"help); checkpoints saved before that step are kept")

    def validation_step(self, batch: MixBatch, batch_idx: int) -> None:
        # The weight average where the run keeps one: what evaluation will read, so best.ckpt is chosen on it.
        out, mask_logits = self(batch, None if self.ema is None else self.ema.module)
        losses = self.losses(batch, out, mask_logits)
        from tribert.engine.evaluate import batch_sdr

        sdr = batch_sdr(self.frontend, batch, mask_logits, self.config)
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, batch_size=batch.batch_size,
                      sync_dist=True)
        self.log("val/sdr", sdr, batch_size=batch.batch_size, sync_dist=True, prog_bar=True)

    # --- optimiser ------------------------------------------------------------------------------
    def configure_optimizers(self):
        tc = self.config.train
        # Biases and normalisation weights (1-d tensors) are not decayed (the authors' BertAdam groups).
        decay = [p for p in self.parameters() if p.requires_grad and p.dim() > 1]
        no_decay = [p for p in self.parameters() if p.requires_grad and p.dim() <= 1]
        # fused: one kernel for the whole update on a GPU (the default foreach path launches
        # several per parameter group). The CPU keeps the default, and so does fp16, whose gradient
        # scaler must unscale before clipping.
        fused = self.device.type == "cuda" and not str(tc.precision).startswith("16")
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr, fused=fused or None)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, tc, self._budget_spent()))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _budget_spent(self) -> float | None:
        """The fraction of ``train.max_minutes`` spent (Lightning's Timer, which a resumed run
        restores), for a linear schedule bounded by time alone; None for every other run."""
        tc = self.config.train
        if tc.schedule != "linear" or tc.max_steps > 0 or tc.max_minutes <= 0 or self._trainer is None:
            return None
        if self.trainer.world_size > 1:  # each process's clock differs: their weights would drift apart
            raise TribertError("train.schedule 'linear' over train.max_minutes runs on one process only: "
                               "set train.max_steps for a multi-process run")
        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)
        return 0.0 if timer is None else min(1.0, timer.time_elapsed() / (60.0 * tc.max_minutes))

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        # Lightning's mixed-precision plugin refuses to clip for a fused optimiser, assuming an fp16
        # gradient scaler unscales inside the step; bf16 and fp32 gradients are unscaled already.
        if not gradient_clip_val:
            return
        tc = self.config.train
        if not (tc.clip_separator_apart or tc.clip_coattention_apart):
            torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)
            return
        if self._clip_groups is None:  # split once: the parameters stay the same objects
            groups: dict[str, list] = {"separator": [], "coattention": [], "rest": []}
            for name, p in self.model.named_parameters():
                if tc.clip_separator_apart and name.split(".", 1)[0] in SEPARATOR_MODULES:
                    groups["separator"].append(p)
                elif tc.clip_coattention_apart and name.startswith(COATTENTION_PARAMETERS):
                    groups["coattention"].append(p)
                else:
                    groups["rest"].append(p)
            self._clip_groups = [g for g in groups.values() if g]
        for group in self._clip_groups:
            torch.nn.utils.clip_grad_norm_(group, gradient_clip_val)


class WeightAverage(torch.nn.Module):
    """An exponential moving average of a model's weights and floating-point buffers.

    ``update(model, step)`` after each optimiser step: ``avg += (1 - d) * (w - avg)`` with
    ``d = min(decay, (1 + step) / (10 + step))``, so that the random initialisation and the first,
    fastest-moving steps are soon forgotten; integer buffers (BatchNorm's step counts) are copied.

    Args:
        model: the model to average (copied; the copy is ``.module``, never trained).
        decay: the long-run decay, in (0, 1).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.module = copy.deepcopy(model).requires_grad_(False)
        self._pairs: tuple | None = None  # (key, averages, weights) of the float and the integer tensors

    def reset(self, model: torch.nn.Module) -> None:
        """Start the average again from ``model``'s weights (e.g. after loading ``init_from``)."""
        self.module.load_state_dict(model.state_dict())

    def _tensors(self, model: torch.nn.Module) -> tuple:
        # Walking the modules for their tensors costs ~4 ms of host time per step at paper size (a
        # GPU step is ~115 ms, host-bound), so the pairing is kept until the tensors are replaced
        # (a device move gives new storage: the first weight's address tells).
        key = (next(model.parameters()).data_ptr(), next(self.module.parameters()).data_ptr())
        if self._pairs is None or self._pairs[0] != key:
            avg = [*self.module.parameters(), *self.module.buffers()]
            new = [*model.parameters(), *model.buffers()]  # the same order: the copy is a deepcopy
            floats = [i for i, t in enumerate(avg) if t.is_floating_point()]
            ints = [i for i, t in enumerate(avg) if not t.is_floating_point()]
            self._pairs = (key, [avg[i] for i in floats], [new[i] for i in floats],
                           [avg[i] for i in ints], [new[i] for i in ints])
        return self._pairs[1:]

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        avg_f, new_f, avg_i, new_i = self._tensors(model)
        decay = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(avg_f, new_f, 1.0 - decay)
        for a, w in zip(avg_i, new_i):
            a.copy_(w)


def lr_factor(step: int, tc, budget_spent: float | None = None) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up over ``warmup_frac * max_steps``, then
    constant or (``schedule: linear``) a linear decay to zero at ``max_steps``.

    A linear schedule in a run bounded by time alone (``max_minutes``, no ``max_steps``) follows
    the fraction of that budget spent (``budget_spent``, 0..1) instead of the step: warm-up over
    the first ``warmup_frac`` of the minutes, then down to zero when they run out. Decaying to zero
    at the budget's end is what budgeted training does best with (Li et al., ICLR 2020); a constant
    rate ends on whatever the last noisy step left.
    """
    total = tc.max_steps if tc.max_steps > 0 else 0
    if total == 0 and tc.schedule == "linear" and budget_spent is not None:
        if tc.warmup_frac > 0 and budget_spent < tc.warmup_frac:
            return max(budget_spent, 1e-3) / tc.warmup_frac
        return max(0.0, 1.0 - budget_spent) / max(1.0 - tc.warmup_frac, 1e-9)  # warmup_frac 1: 0 at the end
    warmup = int(tc.warmup_frac * total)
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if tc.schedule == "linear" and total > 0:
        return max(0.0, (total - step) / max(1, total - warmup))
    return 1.0


__all__ = ["SeparationSystem", "WeightAverage", "lr_factor"]
