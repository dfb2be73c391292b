"""Pose tokens: an ST-GCN over the 68-keypoint whole-body skeleton, then a linear layer per token.

Paper section 3.2 "Keypoint (pose) Representations": a Spatial-Temporal Graph Convolutional Network
(Yan et al., AAAI 2018; the authors retrained github.com/yysijie/st-gcn) gives per person features
of 256 channels x 68 joints, and "a linear layer" turns them into 3 x 2 x 1024 tokens (3 visual
frames x 2 persons). This module follows the st-gcn reference code:

* graph: skeleton.EDGES, self-loops, and the *spatial* partition strategy: the neighbours of a
  joint split into the joint itself (root), the neighbours closer to skeleton.CENTER (the neck;
  centripetal) and the others (centrifugal), each normalised by the joint's degree;
* "data BN" over (persons, joints, channels), then ST-GCN blocks: graph conv (1x1 conv to
  3 x C_out, summed over the three adjacency subsets) -> BN -> ReLU -> temporal conv (kernel 9)
  -> BN -> dropout, plus a residual (none in the first block, 1x1 conv + BN where the shape
  changes), then ReLU; every block has a learnable edge-importance mask over the adjacency.

Two deliberate differences from the st-gcn code: distances to the centre are true graph
distances (st-gcn computes them with max_hop=1, so every joint further than one hop from the
centre counts as "equally far" and its neighbours all fall in one subset), and the graph is not
saved in checkpoints (it is rebuilt from skeleton.py).

Tokens: the ST-GCN output [C, T', 68] of each person is average-pooled over time into
``num_frames`` consecutive segments, and each (segment, person) feature [C x 68] goes through one
shared linear layer to ``token_dim``. This matches the authors' code, which cut the ST-GCN
features per visual frame (one [256, 68] array per frame and person) and applied
``Linear(256 * 68, 1024)`` to each; a single linear layer to 3 x 1024 per person would need 3x the
parameters (53 M) for the same information.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tribert.errors import TribertError
from tribert.skeleton import CENTER, EDGES, NUM_KEYPOINTS

PAPER_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
# Raise when ``prepare_pose`` or ``PoseEncoder.features`` compute something else from the same
# weights: it is part of the fingerprint, so features stored by the old code are computed again.
FEATURES_VERSION = 1


def spatial_partition(num_nodes: int = NUM_KEYPOINTS, edges: Sequence[tuple[int, int]] = EDGES,
                      center: int = CENTER) -> torch.Tensor:
    """The ST-GCN spatial-partition adjacency.

    Returns:
        A [3, V, V]: ``A[k, v, w]`` is the weight with which joint v feeds joint w in subset k
        (0 root, 1 centripetal = v closer to the centre than w, 2 centrifugal = the others).
        Each joint's column sums to 1 over (k, v): a mean over its neighbourhood incl. itself.
    """
    neighbours: list[list[int]] = [[] for _ in range(num_nodes)]
    for i, j in edges:
        neighbours[i].append(j)
        neighbours[j].append(i)
    # Breadth-first hop distance of every joint to the centre (unreachable joints: infinite).
    dist = [float("inf")] * num_nodes
    dist[center] = 0
    queue = deque([center])
    while queue:
        i = queue.popleft()
        for j in neighbours[i]:
            if dist[j] == float("inf"):
                dist[j] = dist[i] + 1
                queue.append(j)

    A = torch.zeros(3, num_nodes, num_nodes)
    for w in range(num_nodes):
        weight = 1.0 / (len(neighbours[w]) + 1)  # degree including the self-loop
        A[0, w, w] = weight
        for v in neighbours[w]:
            A[1 if dist[v] < dist[w] else 2, v, w] = weight
    return A


class GraphConv(nn.Module):
    """Spatial graph convolution: [N, C_in, T, V] x A [K, V, V] -> [N, C_out, T, V]."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int):
        super().__init__()
        self.num_subsets = num_subsets
        self.conv = nn.Conv2d(in_channels, out_channels * num_subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).unflatten(1, (self.num_subsets, -1))  # [N, K, C_out, T, V]
        return torch.einsum("nkctv,kvw->nctw", x, A)  # [N, C_out, T, V]: sum over subsets and neighbours


class STGCNBlock(nn.Module):
    """Graph conv -> BN-ReLU -> temporal conv -> BN -> dropout, + residual, ReLU.

    Shapes: [N, C_in, T, V] -> [N, C_out, ceil(T / stride), V].
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int = 3, temporal_kernel: int = 9,
                 stride: int = 1, dropout: float = 0.0, residual: bool = True):
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        self.gcn = GraphConv(in_channels, out_channels, num_subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=(stride, 1)),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        out = self.tcn(self.gcn(x, A))  # [N, C_out, T', V]
        if self.residual is not None:
            out = out + self.residual(x)
        return self.relu(out)


class STGCN(nn.Module):
    """ST-GCN feature extractor over the 68-keypoint skeleton (no classifier).

    Args:
        in_channels: channels per joint (x, y, confidence: 3).
        channels: output channels of each ST-GCN block (paper / st-gcn: 64 x4, 128 x3, 256 x3).
        temporal_kernel: temporal conv kernel (9).
        temporal_strides: stride of each block; None = 2 wherever the width grows (st-gcn).
        dropout: dropout in every block but the first (st-gcn convention).
        num_persons: P, the person slots (the data BN normalises each slot separately).
        edge_importance: learn a per-block mask over the adjacency (st-gcn's default).

    Shapes:
        [B, P, T, 68, in_channels] (any T >= 1) -> [B, P, channels[-1], T', 68],
        T' = T / prod(strides) rounded up (paper: T=256 -> 64).
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = PAPER_CHANNELS, temporal_kernel: int = 9,
                 temporal_strides: Sequence[int] | None = None, dropout: float = 0.0, num_persons: int = 2,
                 edge_importance: bool = True):
        super().__init__()
        channels = tuple(channels)
        if temporal_strides is None:
            temporal_strides = tuple(2 if i > 0 and c > channels[i - 1] else 1 for i, c in enumerate(channels))
        if len(temporal_strides) != len(channels):
            raise ValueError("temporal_strides needs one stride per block")
        # Rebuilt from skeleton.py on load, so not stored in checkpoints.
        self.register_buffer("A", spatial_partition(), persistent=False)  # [3, 68, 68]
        self.data_bn = nn.BatchNorm1d(num_persons * NUM_KEYPOINTS * in_channels)
        widths = (in_channels, *channels)
        self.blocks = nn.ModuleList(
            STGCNBlock(widths[i], widths[i + 1], self.A.shape[0], temporal_kernel, temporal_strides[i],
                       dropout=0.0 if i == 0 else dropout, residual=i > 0)
            for i in range(len(channels)))
        self.edge_importance = (nn.ParameterList(nn.Parameter(torch.ones_like(self.A)) for _ in self.blocks)
                                if edge_importance else None)
        self.out_channels = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, P, T, V, C = x.shape
        x = x.permute(0, 1, 3, 4, 2).reshape(B, P * V * C, T)  # [B, P*V*C, T]
        x = self.data_bn(x)  # per (person slot, joint, channel) statistics
        x = x.view(B, P, V, C, T).permute(0, 1, 3, 4, 2).reshape(B * P, C, T, V)  # [B*P, C, T, V]
        for i, block in enumerate(self.blocks):
            A = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = block(x, A)  # [B*P, C_i, T_i, V]
        return x.unflatten(0, (B, P))  # [B, P, C_out, T', V]


def prepare_pose(pose: torch.Tensor) -> torch.Tensor:
    """Pose as the ST-GCN reads it (st-gcn's Kinetics feeder): centred, undetected points zeroed.

    ``pose`` [..., 68, 3] holds x, y in [0, 1] and a confidence in [0, 1]. A point with
    confidence 0 (or a non-finite value) becomes (0, 0, 0) whatever its x, y were, so missing
    keypoints and missing persons give finite, well-defined inputs; x, y of the others are
    shifted to [-0.5, 0.5].
    """
    xy, conf = pose[..., :2], pose[..., 2:]
    valid = (conf > 0) & torch.isfinite(conf) & torch.isfinite(xy).all(dim=-1, keepdim=True)  # [..., 68, 1]
    xy = torch.where(valid, xy - 0.5, torch.zeros_like(xy))
    conf = torch.where(valid, conf, torch.zeros_like(conf))
    return torch.cat([xy, conf], dim=-1)


def pose_presence(pose: torch.Tensor) -> torch.Tensor:
    """Which person slots hold anyone: [B, P, T, 68, 3] -> bool [B, P] (any point with confidence > 0)."""
    return (prepare_pose(pose)[..., 2] > 0).flatten(2).any(dim=2)


class PoseEncoder(nn.Module):
    """Pose keypoints -> per-frame, per-person tokens.

    Args:
        num_frames: K, token positions in time (the visual frames; paper: 3).
        token_dim: size of each token (paper: 1024).
        num_persons: P, person slots (paper: 2).
        channels, temporal_kernel, temporal_strides, dropout: the ST-GCN (see ``STGCN``).
        pose_frames: nominal T of the input (paper: 256); informational only, any T >= 1 works
            because time is pooled into ``num_frames`` segments.
        frozen: the ST-GCN is a fixed feature extractor (the paper's setting: the authors trained
            st-gcn apart and stored its features): no gradient reaches it and it stays in eval
            mode (BN on running statistics) while the module trains; ``proj`` still trains. Its
            forward then keeps no activations for a backward pass, most of its training cost.

    Shapes:
        pose [B, P, T, 68, 3] (x, y in [0, 1], confidence) -> tokens [B, num_frames, P, token_dim].
        An all-zero-confidence person gives the token of an all-zero input (finite, independent
        of its x, y); ``pose_presence`` tells which slots are real.
    """

    def __init__(self, num_frames: int = 3, token_dim: int = 1024, num_persons: int = 2,
                 channels: Sequence[int] = PAPER_CHANNELS, temporal_kernel: int = 9,
                 temporal_strides: Sequence[int] | None = None, dropout: float = 0.0, pose_frames: int = 256,
                 frozen: bool = False):
        super().__init__()
        self.num_frames = num_frames
        self.pose_frames = pose_frames
        self.frozen = frozen
        self.stgcn = STGCN(3, channels, temporal_kernel, temporal_strides, dropout, num_persons)
        self.stgcn.requires_grad_(not frozen)
        self.proj = nn.Linear(self.stgcn.out_channels * NUM_KEYPOINTS, token_dim)

    def train(self, mode: bool = True) -> PoseEncoder:
        super().train(mode)
        if self.frozen:
            self.stgcn.eval()  # a fixed extractor: its BN must not learn the batch's statistics
        return self

    @property
    def feature_dim(self) -> int:
        """Size of one (segment, person) ST-GCN feature, what ``proj`` reads: C_out x 68."""
        return self.proj.in_features

    def features(self, pose: torch.Tensor) -> torch.Tensor:
        """The ST-GCN's output pooled into K time segments, before ``proj``:
        pose [B, P, T, 68, 3] -> [B, K, P, C*68]. With ``frozen`` this is a fixed function of the
        pose, which ``tribert pose-features`` stores ahead of training (``forward(features=...)``)."""
        B, P = pose.shape[:2]
        if self.frozen and self.stgcn.training:
            # Also here, not only in train(): Lightning restores each submodule's training flag
            # by assignment, and a freshly built module is in training mode.
            self.stgcn.eval()
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            x = self.stgcn(prepare_pose(pose))  # [B, P, C, T', V]
        V = x.shape[-1]
        x = F.adaptive_avg_pool2d(x.flatten(0, 1), (self.num_frames, V))  # [B*P, C, K, V]: K time segments
        return x.unflatten(0, (B, P)).permute(0, 3, 1, 2, 4).flatten(3)  # [B, K, P, C*V]

    def forward(self, pose: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens [B, K, P, token_dim] of ``pose``, or of ``features`` [B, K, P, C*68] stored from
        ``features()`` (only for a frozen ST-GCN: a trained one must see the pose)."""
        if features is None:
            return self.proj(self.features(pose))
        if not self.frozen:
            raise TribertError("stored pose features need a frozen ST-GCN (model.pose_frozen: true)")
        return self.proj(features.to(self.proj.weight.dtype))  # [B, K, P, token_dim]

    def fingerprint(self) -> str:
        """What identifies the ST-GCN's function: a hash of its layout (layers, kernels, strides),
        of every weight and statistic of it and of the skeleton graph, so features stored by one
        ST-GCN are never read by a model with another. Strides change no weight's shape, so the
        weights alone would not tell ``model.pose_strides`` [2, 2] from [4, 4]."""
        digest = hashlib.sha256(f"{FEATURES_VERSION}|{self.stgcn!r}|{self.num_frames}".encode())
        for name, tensor in sorted({**self.stgcn.state_dict(), "A": self.stgcn.A}.items()):
            if name.endswith("num_batches_tracked"):  # a counter; the function does not read it
                continue
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]
