"""Classification heads of the three TriBERT streams (paper 3.2.1, "Training Objective").

Vision and pose have only per-video labels, not per-token ones, so they use a WSDDN-style weak
head (Bilen & Vedaldi 2016): a recognition branch (softmax over classes, eq. 3) and a detection
branch (softmax over tokens, eq. 4), multiplied and summed over tokens -> per-class scores in
[0, 1], trained with BCE against the video's multi-hot labels. The audio stream has one global
feature, so its head is a plain linear classifier on the mean hidden state (BCE with logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WeakClassificationHead(nn.Module):
    """WSDDN head: ``scores[b, c] = sum_r softmax_c(W_cls h)[b, r, c] * softmax_r(W_det h)[b, r, c]``.

    Args:
        dim: token width. num_classes: C.
    """

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.recognition = nn.Linear(dim, num_classes)
        self.detection = nn.Linear(dim, num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens [B, R, D] (R regions/tokens) -> class scores [B, C], each in [0, 1]."""
        cls = F.softmax(self.recognition(tokens).float(), dim=-1)  # [B, R, C] over classes
        det = F.softmax(self.detection(tokens).float(), dim=1)  # [B, R, C] over tokens
        return (cls * det).sum(dim=1)  # [B, C]


class AudioClassificationHead(nn.Module):
    """Mean of the audio stream's hidden states -> linear -> class logits."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens [B, L, D] -> logits [B, C]."""
        return self.fc(tokens.mean(dim=1))


def weak_bce_loss(scores: Tensor, labels: Tensor, eps: float = 1e-6) -> Tensor:
    """BCE between WSDDN scores in [0, 1] and multi-hot labels [B, C] (mean over all entries).

    Computed in float32 outside autocast (BCE on probabilities is not autocast-safe); scores are
    clamped away from 0 and 1 so the log stays finite. Written out rather than
    ``F.binary_cross_entropy``, which raises on a NaN score: a diverging run then gets a NaN loss,
    which stops it in one line naming the step, instead of a traceback from inside torch.
    """
    with torch.autocast(device_type=scores.device.type, enabled=False):
        p, y = scores.float().clamp(eps, 1.0 - eps), labels.float()
        return -(y * p.log() + (1 - y) * (1 - p).log()).mean()


def logits_bce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """BCE-with-logits between class logits [B, C] and multi-hot labels [B, C]."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def classification_losses(out, labels: Tensor, audio_labels: Tensor | None = None,
                          source_labels: Tensor | None = None,
                          mixture_labels: Tensor | None = None) -> dict[str, Tensor]:
    """TriBERT's classification losses from a ``TriBERTOutput`` (streams an ablation removed are skipped).

    Args:
        out: has ``vision_scores`` / ``pose_scores`` [V, C] (WSDDN, in [0, 1]),
            ``visual_class_scores`` [V, K, C] (segmentation-net logits per frame), ``audio_logits`` [V, C].
        labels: [V, C] multi-hot labels of each video.
        audio_labels: [V, C] what the audio head should name; default ``labels``.
        source_labels: [V, P] class of every requested source (-1: unknown or padding), for the
            class head on each source's condition (``out.condition_logits`` [V, P, C] holds the
            same slots); sources without a class are left out (none with a class: a loss of 0).
        mixture_labels: [V, C] every class heard in each video's mixture, for the class head on the
            audio encoder (``out.audio_encoder_logits``, which hears the mixture).
    Returns:
        {"vision", "segmentation", "pose", "audio", "condition", "audio_encoder"}: scalar losses,
        for the heads present.
    """
    losses = {}
    if getattr(out, "vision_scores", None) is not None:
        losses["vision"] = weak_bce_loss(out.vision_scores, labels)
    seg = getattr(out, "visual_class_scores", None)
    if seg is not None:
        # Trains the detectors of every class (the WSDDN head only reaches the top-2 classes' features).
        losses["segmentation"] = logits_bce_loss(seg.flatten(0, 1), labels.repeat_interleave(seg.shape[1], 0))
    if getattr(out, "pose_scores", None) is not None:
        losses["pose"] = weak_bce_loss(out.pose_scores, labels)
    if getattr(out, "audio_logits", None) is not None:
        losses["audio"] = logits_bce_loss(out.audio_logits, labels if audio_labels is None else audio_labels)
    enc = getattr(out, "audio_encoder_logits", None)
    if enc is not None and mixture_labels is not None:
        losses["audio_encoder"] = logits_bce_loss(enc, mixture_labels)
    cond = getattr(out, "condition_logits", None)
    if cond is not None and source_labels is not None:
        target = source_labels.reshape(-1)  # [V*P]
        known = (target >= 0).float()
        # The mean over the known sources as a masked sum: indexing by ``known`` (or asking whether
        # any is known) would read it back to the host, a sync that stalls a GPU's queue every step.
        per_source = F.cross_entropy(cond.reshape(-1, cond.shape[-1]).float(), target.clamp_min(0), reduction="none")
        losses["condition"] = (per_source * known).sum() / known.sum().clamp_min(1)
    return losses


__all__ = ["WeakClassificationHead", "AudioClassificationHead", "weak_bce_loss", "logits_bce_loss",
           "classification_losses"]
