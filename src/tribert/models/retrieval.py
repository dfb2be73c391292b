"""Cross-modal retrieval heads on TriBERT embeddings (paper section 4.2, Table 3).

A *query* embedding (audio, vision, pose, or vision + audio) is scored against *candidate*
embeddings of another modality: every modality is projected to a common width, the query and a
candidate are fused by an element-wise product, and an MLP turns the product into one alignment
logit. Training is n-way multiple choice (one positive, n - 1 distractors, softmax over the n
logits, cross-entropy); evaluation ranks a pool of candidates by the same logit.

Shapes: Q queries, N candidates, D_m the flattened embedding width of modality m, W the common width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tribert.errors import ConfigError

MODALITIES = ("vision", "pose", "audio")


@dataclass(frozen=True)
class Variant:
    """One retrieval task: the modalities of the query, the one retrieved, the multiple-choice size."""

    name: str
    query: tuple[str, ...]
    result: str
    choices: int  # n of the n-way multiple choice in training (one positive, n - 1 distractors)

    @property
    def title(self) -> str:
        return f"{' + '.join(m.capitalize() for m in self.query)} -> {self.result.capitalize()}"


# The paper's five variants, in Table 3's order (n = 4 for the two-modality query, 3 otherwise).
VARIANTS = {v.name: v for v in (
    Variant("audio2vision", ("audio",), "vision", 3),
    Variant("vision2audio", ("vision",), "audio", 3),
    Variant("audio2pose", ("audio",), "pose", 3),
    Variant("pose2audio", ("pose",), "audio", 3),
    Variant("vision+audio2pose", ("vision", "audio"), "pose", 4),
)}


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ConfigError(f"unknown retrieval variant {name!r}; choose from {', '.join(VARIANTS)}")
    return VARIANTS[name]


def mlp(sizes: list[int], activation=nn.Tanh) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class RetrievalHead(nn.Module):
    """Alignment score of (query, candidate) embedding pairs for one ``Variant``.

    Args:
        variant: which modalities form the query and which one is retrieved.
        dims: flattened embedding width per modality (at least the variant's modalities).
        width: W, the common width every modality is projected to (the authors' code projects
            only the audio, to the vision width, 8192; here every modality gets a linear layer,
            since the pre-transformer embeddings differ in width too).
        hidden: width of the scoring MLP's first hidden layer (halved at each of its layers).

    A two-modality query (vision + audio) is fused as in the authors' code before the product:
    ``f = softmax(a * v) * v + a``, then ``f + MLP(f)``.

    Input: query {modality: [Q, D_m]}, candidates [Q, n, D_r] -> logits [Q, n].
    """

    def __init__(self, variant: Variant, dims: dict[str, int], width: int = 512, hidden: int = 512):
        super().__init__()
        self.variant = variant
        missing = [m for m in (*variant.query, variant.result) if m not in dims]
        if missing:
            raise ConfigError(f"retrieval {variant.name} needs {missing[0]} embeddings, which are not there")
        self.project = nn.ModuleDict({m: nn.Linear(dims[m], width) for m in (*variant.query, variant.result)})
        self.fuse = mlp([width, width, width]) if len(variant.query) > 1 else None
        self.score = mlp([width, hidden, hidden // 2, hidden // 4, 1])

    def embed_query(self, query: dict[str, Tensor]) -> Tensor:
        """{modality: [Q, D_m]} -> [Q, W]."""
        parts = [self.project[m](query[m]) for m in self.variant.query]
        if self.fuse is None:
            return parts[0]
        first, second = parts  # vision, audio in the paper's variant
        fused = torch.softmax(first * second, dim=-1) * first + second
        return fused + self.fuse(fused)

    def embed_result(self, candidates: Tensor) -> Tensor:
        """[..., D_r] -> [..., W]."""
        return self.project[self.variant.result](candidates)

    def pair_logits(self, query: Tensor, candidates: Tensor) -> Tensor:
        """Projected query [Q, W] and projected candidates [Q, n, W] or [N, W] (one pool for every
        query) -> logits [Q, n] or [Q, N]."""
        if candidates.dim() == 2:
            candidates = candidates[None]
        return self.score(query[:, None, :] * candidates).squeeze(-1)

    def forward(self, query: dict[str, Tensor], candidates: Tensor) -> Tensor:
        """query {modality: [Q, D_m]}, candidates [Q, n, D_r] -> logits [Q, n]."""
        return self.pair_logits(self.embed_query(query), self.embed_result(candidates))

    @torch.no_grad()
    def pool_logits(self, query: dict[str, Tensor], pool: Tensor, chunk: int = 64) -> Tensor:
        """Every query against one shared pool: query {m: [Q, D_m]}, pool [N, D_r] -> [Q, N]."""
        q, c = self.embed_query(query), self.embed_result(pool)
        return torch.cat([self.pair_logits(q[i:i + chunk], c) for i in range(0, len(q), chunk)])


def true_ranks(scores: Tensor, truth: Tensor) -> Tensor:
    """0-based rank of each query's true candidate: scores [Q, N], truth [Q] (column index) -> [Q].

    Candidates that tie with the true one count as ranked above it, so a scorer that gives every
    candidate the same score is never credited with a hit.
    """
    true_score = scores.gather(1, truth[:, None])  # [Q, 1]
    return (scores >= true_score).sum(1) - 1


def topk_accuracy(ranks: Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[int, float]:
    """Fraction of queries whose true candidate is within the top k, for each k, in percent."""
    return {k: 100.0 * (ranks < k).float().mean().item() for k in ks}


def chance_topk(pool: int, ks: tuple[int, ...] = (1, 5, 10)) -> dict[int, float]:
    """Top-k accuracy of a random ranking of ``pool`` candidates, in percent."""
    return {k: 100.0 * min(k, pool) / pool for k in ks}


__all__ = ["MODALITIES", "Variant", "VARIANTS", "get_variant", "RetrievalHead", "true_ranks",
           "topk_accuracy", "chance_topk"]
