"""The TriBERT transformer: three BERT streams joined by tri-modal co-attention (paper 3.2).

Two layouts of a layer (``layout``):

    "features" (the authors' code; paper size)       "tokens" (the ViLBERT encoder loop)
    if co-attention: H <- TriModalCoAttention(H)     for each stream s: H_s <- SelfAttention_s(H_s)
    for each stream s: H_s <- SelfAttention_s(H_s)   if co-attention: H <- TriModalCoAttention(H)

A co-attention block lets every stream make its own queries and attend over the keys/values of
the *other* streams. In the "features" layout each other stream's keys/values are projected to
``width / (streams - 1)`` (half, with three streams) and concatenated along the per-head feature
axis, so query token i meets the other streams' token j side by side (the streams' tokens are
position-aligned: the same (1+K)*O layout in every stream). In the "tokens" layout they are
projected to full width and concatenated along the token axis. The rest (output projection,
residual, LayerNorm, feed-forward) is a standard post-LN BERT block. Every stream computes its keys and
values once per block and shares them with both other streams (paper: "each stream computes
individual Q, K, V matrices"). With ``coattention=False`` there are no co-attention blocks at all,
so the streams never see each other.

Streams are kept in a ``dict`` keyed "vision", "pose", "audio"; any subset of two or three works
(the "without vision" / "without pose" ablations are two-stream co-attention, i.e. ViLBERT).

``receivers`` (not in the paper, which updates every stream): only these streams make queries and
take the block's update; the others only lend keys and values and pass through unchanged (with
``receivers=("audio",)`` the audio stream reads the performers and the vision and pose streams
compute what they would without co-attention).

``gated=True`` (not in the paper; Flamingo's gated cross-attention, Alayrac et al. 2022): each
stream takes a co-attention block's update through a learnt gate, ``h + tanh(alpha) (block(h) - h)``
with ``alpha = 0`` at initialisation, so the model starts as the "without co-attention" ablation
and lets the other streams in only as far as the training loss gains from them.

``detach_senders=True`` (not in the paper): keys and values are computed from the other streams'
hidden states with the gradient stopped, so co-attention *reads* the other streams without
*training* them: a receiver's losses train its own stream and the co-attention projections, while
each stream's encoder and self-attention learn only from the losses that read that stream itself.

``dropout`` of the encoder (not in the paper; ``model.coattention_dropout``, ModDrop): in training,
each sample skips every co-attention block with this probability, so that sample is computed as
by the encoder without co-attention and each stream must also name the class on its own.

``key_mask`` (a forward argument; not in the paper, ``model.coattention_skip_absent``): which token
positions may be read as keys and values, the same for every stream (their layouts are aligned). A
solo's second object slot holds no performer: an empty pose person and the visual net's
second-best class, an instrument that is not there; with the mask, co-attention reads only the
slots of the performers present.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tribert.models.base import drawn_from_seed


class AttentionCore(nn.Module):
    """softmax(Q K^T / sqrt(d)) V per head. No parameters: a module so that
    :mod:`tribert.models.info` can count its multiply-adds with a forward hook."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.dropout = dropout

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """q [B, H, Lq, d], k and v [B, H, Lk, d], mask (optional) bool broadcastable to
        [B, H, Lq, Lk], True = may attend -> [B, H, Lq, d]."""
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                              dropout_p=self.dropout if self.training else 0.0)


def split_heads(x: Tensor, heads: int) -> Tensor:
    """[B, L, H*d] -> [B, H, L, d]."""
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """[B, H, L, d] -> [B, L, H*d]."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class FeedForward(nn.Module):
    """Post-LN BERT feed-forward sub-block: LN(x + Dropout(W2 GELU(W1 x)))."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.drop(self.fc2(F.gelu(self.fc1(x)))))


class SelfAttentionBlock(nn.Module):
    """A standard post-LN BERT layer on one stream.

    Args:
        dim: stream width. heads: attention heads. ffn_dim: feed-forward width.
        dropout: hidden dropout. attention_dropout: dropout on attention probabilities.
    """

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attend = AttentionCore(attention_dropout)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.ffn = FeedForward(dim, ffn_dim, dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, L, D] -> [B, L, D]."""
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))  # [B, H, L, d]
        a = merge_heads(self.attend(q, k, v))  # [B, L, D]
        x = self.norm(x + self.drop(self.out(a)))
        return self.ffn(x)


class TriModalCoAttention(nn.Module):
    """Tri-modal co-attention block (paper 3.2, "Tri-modal Co-attention").

    Every stream s projects its tokens to queries, keys and values of width ``width``
    (code: bi_hidden_size 512). Stream s's multi-head attention uses its own queries over the
    keys/values of all *other* streams concatenated along the token axis, then projects back to
    its own width, with residual + LayerNorm and a feed-forward sub-block.

    Args:
        dims: ordered ``{stream: width}`` of the streams taking part (two or three).
        width: co-attention Q/K/V width. heads: attention heads. ffn_dim: feed-forward width.
        gated: each stream takes the block's update through a tanh gate that starts closed.
        receivers: the streams that query the others and take the update (None or empty: all).
        detach_senders: keys and values see the other streams' hidden states without gradient.
    """

    def __init__(self, dims: dict[str, int], width: int, heads: int, ffn_dim: int,
                 dropout: float, attention_dropout: float, layout: str = "tokens", gated: bool = False,
                 receivers: tuple[str, ...] | None = None, detach_senders: bool = False):
        super().__init__()
        if len(dims) < 2:
            raise ValueError("co-attention needs at least two streams")
        if layout not in ("features", "tokens"):
            raise ValueError(f"unknown co-attention layout {layout!r}")
        self.streams = tuple(dims)
        self.receivers = tuple(receivers or dims)
        if not set(self.receivers) <= set(dims):
            raise ValueError(f"co-attention receivers {self.receivers} are not all among the streams {self.streams}")
        # streams whose keys/values some receiver reads (a stream never reads itself)
        self.senders = tuple(s for s in dims if any(r != s for r in self.receivers))
        self.heads = heads
        self.layout = layout
        self.detach_senders = detach_senders
        kv_width = width // (len(dims) - 1) if layout == "features" else width
        self.q = nn.ModuleDict({s: nn.Linear(dims[s], width) for s in self.receivers})
        self.k = nn.ModuleDict({s: nn.Linear(dims[s], kv_width) for s in self.senders})
        self.v = nn.ModuleDict({s: nn.Linear(dims[s], kv_width) for s in self.senders})
        self.attend = AttentionCore(attention_dropout)
        self.out = nn.ModuleDict({s: nn.Linear(width, dims[s]) for s in self.receivers})
        self.norm = nn.ModuleDict({s: nn.LayerNorm(dims[s], eps=1e-12) for s in self.receivers})
        self.ffn = nn.ModuleDict({s: FeedForward(dims[s], ffn_dim, dropout) for s in self.receivers})
        self.drop = nn.Dropout(dropout)
        # One gate per stream, closed at initialisation (see the module docstring); None = ungated.
        self.gate = nn.ParameterDict({s: nn.Parameter(torch.zeros(1)) for s in self.receivers}) if gated else None

    def forward(self, h: dict[str, Tensor], key_mask: Tensor | None = None) -> dict[str, Tensor]:
        """h: ``{stream: [B, L, D_s]}`` -> ``{receiver: [B, L, D_s]}``, each conditioned on the
        other streams (every stream with the default receivers). key_mask: optional bool [B, L],
        the token positions that may be read (every row needs one True)."""
        lent = {s: h[s].detach() if self.detach_senders else h[s] for s in self.senders}
        keys = {s: split_heads(self.k[s](lent[s]), self.heads) for s in self.senders}  # [B, H, L_s, d_kv]
        values = {s: split_heads(self.v[s](lent[s]), self.heads) for s in self.senders}
        axis = 3 if self.layout == "features" else 2  # per-head features [B, H, L, d] or tokens [B, H, sum L_o, d]
        mask = None
        if key_mask is not None:  # the same positions in every other stream's keys: [B, 1, 1, Lk]
            mask = (key_mask.repeat(1, len(self.streams) - 1) if axis == 2 else key_mask)[:, None, None, :]
        out = {}
        for s in self.receivers:
            others = [o for o in self.streams if o != s]
            k = torch.cat([keys[o] for o in others], dim=axis)
            v = torch.cat([values[o] for o in others], dim=axis)
            q = split_heads(self.q[s](h[s]), self.heads)  # [B, H, L_s, d]
            a = merge_heads(self.attend(q, k, v, mask))  # [B, L_s, width]
            x = self.ffn[s](self.norm[s](h[s] + self.drop(self.out[s](a))))
            out[s] = x if self.gate is None else h[s] + torch.tanh(self.gate[s]) * (x - h[s])
        return out


class TriModalEncoder(nn.Module):
    """The stack of TriBERT layers over two or three streams.

    Args:
        dims: ordered ``{stream: width}``. num_layers: layers per stream. heads: attention heads.
        ffn_dim: feed-forward width. coattention_dim: co-attention Q/K/V width.
        coattention_layers: layer indices followed by a co-attention block (empty = none, the
            "without co-attention" ablation: streams fully independent).
        gated: co-attention updates through gates closed at initialisation (see the module docstring).
        coattention_streams: the streams taking part in co-attention (default all); the others
            only self-attend.
        coattention_receivers: the co-attending streams that take the blocks' updates (None or
            empty: all); the others only lend keys and values.
        coattention_detach_senders: co-attention reads the other streams without gradient into them.
        coattention_seed: draw the co-attention blocks from ``torch.manual_seed(coattention_seed)``
            and leave the global generator as if they did not exist (None: from the global one).
        coattention_dropout: in training, the probability that a sample skips every co-attention block.
    """

    def __init__(self, dims: dict[str, int], num_layers: int, heads: int, ffn_dim: int,
                 coattention_dim: int, coattention_layers: tuple[int, ...],
                 dropout: float = 0.1, attention_dropout: float = 0.1, layout: str = "tokens",
                 gated: bool = False, coattention_streams: tuple[str, ...] | None = None,
                 coattention_receivers: tuple[str, ...] | None = None, coattention_seed: int | None = None,
                 coattention_detach_senders: bool = False, coattention_dropout: float = 0.0):
        super().__init__()
        self.streams = tuple(dims)
        self.coattention_dropout = coattention_dropout
        self.co_streams = tuple(coattention_streams or dims)
        co_dims = {s: dims[s] for s in self.co_streams}
        self.coattention_first = layout == "features"
        self.self_blocks = nn.ModuleList(
            nn.ModuleDict({s: SelfAttentionBlock(d, heads, ffn_dim, dropout, attention_dropout)
                           for s, d in dims.items()})
            for _ in range(num_layers))
        with drawn_from_seed(coattention_seed):
            self.co_blocks = nn.ModuleDict(
                {str(i): TriModalCoAttention(co_dims, coattention_dim, heads, ffn_dim, dropout, attention_dropout,
                                             layout, gated, coattention_receivers, coattention_detach_senders)
                 for i in coattention_layers})

    def forward(self, h: dict[str, Tensor], key_mask: Tensor | None = None) -> dict[str, Tensor]:
        """h: ``{stream: [B, L, D_s]}`` -> hidden states of the last layer, same shapes.
        key_mask: optional bool [B, L], the positions co-attention may read (self-attention reads all)."""
        h = dict(h)
        skip = None  # [B, 1, 1] True: this sample skips co-attention (one draw for every block)
        if self.training and self.coattention_dropout > 0 and len(self.co_blocks):
            first = h[self.streams[0]]
            skip = (torch.rand(first.shape[0], device=first.device) < self.coattention_dropout)[:, None, None]
        for i, blocks in enumerate(self.self_blocks):
            co = self.co_blocks[str(i)] if str(i) in self.co_blocks else None
            if co is not None and self.coattention_first:
                h = self._coattend(co, h, key_mask, skip)
            h = {s: blocks[s](h[s]) for s in self.streams}
            if co is not None and not self.coattention_first:
                h = self._coattend(co, h, key_mask, skip)
        return h

    def _coattend(self, co: TriModalCoAttention, h: dict[str, Tensor], key_mask: Tensor | None,
                  skip: Tensor | None) -> dict[str, Tensor]:
        out = co({s: h[s] for s in self.co_streams}, key_mask)
        if skip is not None:  # the skipping samples keep their input (and give co-attention no gradient)
            out = {s: torch.where(skip, h[s], x) for s, x in out.items()}
        return {**h, **out}


__all__ = ["AttentionCore", "FeedForward", "SelfAttentionBlock", "TriModalCoAttention",
           "TriModalEncoder", "split_heads", "merge_heads"]
