"""Motion guide: each performer's movement over time, drawn as time-frequency maps for the U-Net.

TriBERT's condition is one vector per source, pooled over the whole clip. Two performers of the
same instrument then get nearly the same condition, and nothing in it says *when* each one plays
or *which notes*: the separator can only split a same-class duet by guessing. The movement says
both: a player's hands strike, bow or press keys at the note onsets, and the fretting hand, the
mallet or the keyboard hand sits where the pitch is (Music Gesture, Gan et al. CVPR 2020, builds
its separator on the same cue). The motion guide keeps time:

    pose [B, P, Tp, 68, 3] --per-person temporal conv net--> features [B, P, D, Tp]
    features of the requested source [N, D, Tp] --linear in time to T, 1x1 conv--> maps [N, M, F, T]

and the maps enter the U-Net as M more input channels beside the mixture's log-magnitude, so its
first convolution already sees, at every time-frequency point, what this performer's movement
predicts there. Nothing in the paper corresponds to it (``model.motion_guide = 0`` there).

The input of the temporal net is pose-normalised per person: positions relative to the person's
own centre over the clip and divided by their spread (where they stand in the frame and how large
they are drawn says nothing about what they play), the frame-to-frame velocity, and the confidence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tribert.models.pose import prepare_pose
from tribert.skeleton import NUM_KEYPOINTS

FEATURES_PER_JOINT = 5  # x, y relative to the person's centre; their velocity; confidence


def motion_input(pose: Tensor) -> Tensor:
    """pose [B, P, Tp, 68, 3] (x, y in [0, 1], confidence) -> [B, P, 5 * 68, Tp].

    Missing points (confidence 0) are zero in every feature, so an empty person slot is all zero.
    """
    p = prepare_pose(pose)  # [B, P, Tp, 68, 3], missing points zero
    xy, conf = p[..., :2], p[..., 2:]
    seen = (conf > 0).to(xy.dtype)  # [B, P, Tp, 68, 1]
    count = seen.sum(dim=(2, 3), keepdim=True).clamp_min(1)
    centre = (xy * seen).sum(dim=(2, 3), keepdim=True) / count  # [B, P, 1, 1, 2]
    rel = (xy - centre) * seen
    spread = (rel.square().sum(-1, keepdim=True) * seen).sum(dim=(2, 3), keepdim=True) / count
    rel = rel / spread.sqrt().clamp_min(1e-3)  # unit RMS distance from the centre
    vel = torch.diff(rel, dim=2, prepend=rel[:, :, :1]) * seen  # [B, P, Tp, 68, 2]; 0 at the first frame
    x = torch.cat([rel, vel, conf], dim=-1)  # [B, P, Tp, 68, 5]
    return x.flatten(3).transpose(2, 3)  # [B, P, 68 * 5, Tp]


class MotionGuide(nn.Module):
    """Per-person motion features, and the U-Net guide maps of a requested source.

    Args:
        dim: D, width of the per-person motion features.
        maps: M, guide maps (extra U-Net input channels).
        bins: F, rows of the spectrogram the maps are drawn on.
        layers: temporal convolutions (kernel 3, dilation 1, 2, 4, ...) after the per-frame projection.
        partners: draw the maps from the requested performer's features beside the mean features of
            the other performers in the same video (``maps(..., partners=)``), not from theirs alone.
        hidden: width of a hidden per-frame layer (1x1 conv + ReLU) before the drawing; 0 = one
            linear map from the features to the maps.
        condition_dim: C, width of a per-source condition (e.g. its class) the drawing reads at
            every frame beside the motion (``maps(..., condition=)``); 0 = none.

    Shapes:
        ``features``: pose [B, P, Tp, 68, 3] -> [B, P, D, Tp].
        ``maps``: features of the requested sources [N, D, Tp], frames T, with ``partners`` also the
        partners' mean features [N, D, Tp], with ``condition_dim`` also the condition [N, C]
        -> [N, M, F, T].
    """

    def __init__(self, dim: int, maps: int, bins: int, layers: int = 2, partners: bool = False,
                 hidden: int = 0, condition_dim: int = 0):
        super().__init__()
        self.maps_count, self.bins = maps, bins
        inputs = FEATURES_PER_JOINT * NUM_KEYPOINTS
        blocks: list[nn.Module] = [nn.Conv1d(inputs, dim, 1, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
        for i in range(layers):
            d = 2 ** i
            blocks += [nn.Conv1d(dim, dim, 3, padding=d, dilation=d, bias=False), nn.BatchNorm1d(dim),
                       nn.ReLU(inplace=True)]
        self.temporal = nn.Sequential(*blocks)
        self.partners = partners
        self.condition_dim = condition_dim
        width = dim * (2 if partners else 1) + condition_dim
        if hidden:
            self.draw = nn.Sequential(nn.Conv1d(width, hidden, 1), nn.ReLU(inplace=True),
                                      nn.Conv1d(hidden, maps * bins, 1))
        else:
            self.draw = nn.Conv1d(width, maps * bins, 1)

    def features(self, pose: Tensor) -> Tensor:
        b, p = pose.shape[:2]
        x = motion_input(pose).flatten(0, 1)  # [B*P, 340, Tp]
        return self.temporal(x).unflatten(0, (b, p))  # [B, P, D, Tp]

    def maps(self, features: Tensor, frames: int, partners: Tensor | None = None,
             condition: Tensor | None = None) -> Tensor:
        # Pose step i samples the centre of the i-th of Tp equal slices of the crop, and STFT
        # frame j sits near the centre of the j-th of T: interpolating between slice centres
        # aligns the two clocks (to within about half an STFT frame).
        if self.partners != (partners is not None):
            raise ValueError("MotionGuide(partners=True) draws from the partners' features, and only then")
        if (self.condition_dim > 0) != (condition is not None):
            raise ValueError("MotionGuide(condition_dim > 0) draws from a condition [N, C], and only then")
        if partners is not None:
            features = torch.cat([features, partners], dim=1)  # [N, 2D, Tp]
        x = F.interpolate(features, size=frames, mode="linear", align_corners=False)  # [N, D or 2D, T]
        if condition is not None:  # the same vector at every frame
            x = torch.cat([x, condition[..., None].to(x.dtype).expand(-1, -1, frames)], dim=1)  # [N, D + C, T]
        return self.draw(x).unflatten(1, (self.maps_count, self.bins))  # [N, M, F, T]


__all__ = ["MotionGuide", "motion_input", "FEATURES_PER_JOINT"]
