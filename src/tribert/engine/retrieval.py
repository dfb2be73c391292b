"""Cross-modal retrieval on a trained TriBERT: embeddings, their cache, training and Table 3.

    emb = load_embeddings("runs/x/checkpoints/last.ckpt", "data/synth/train")   # cached per checkpoint + data
    train_retrieval(emb, "runs/retrieval", RECIPES["fast"])                     # 5 variants x 2 embedding kinds
    results = evaluate_retrieval("runs/retrieval", load_embeddings(ckpt, "data/synth-test/test"), pool=200)
    print(format_table(results))

Embeddings come from one forward pass per clip: the clip's own centre crop (its audio is the
"mixture" the audio stream hears), every clip alone. Two kinds per modality, flattened over the
(1 + K) x O token positions (SOS + K frames, O objects):

- ``transformer``: the transformer's outputs (the paper's h_0..h_3 of each stream, concatenated);
- ``pre_transformer``: the transformer's inputs, i.e. each encoder's tokens after the stream's
  linear embedding (the paper's baseline: retrieval without the co-attention layers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tribert.data.clip import Clip, holds_clips, list_clips
from tribert.device import resolve_device
from tribert.errors import CheckpointError, ConfigError, TribertError, first_line
from tribert.io import atomic_path, atomic_write_json, cache_dir, check_out_dir, read_json
from tribert.io import write_results as write_any_results
from tribert.models.retrieval import (VARIANTS, RetrievalHead, Variant, chance_topk, get_variant, topk_accuracy,
                                      true_ranks)
from tribert.progress import track

logger = logging.getLogger(__name__)

KINDS = ("transformer", "pre_transformer")
EMBEDDING_FORMAT = 1  # bump when what an embedding file holds changes (old cache files are then ignored)


@dataclass
class RetrievalConfig:
    """How the retrieval heads are trained (one recipe for all variants)."""

    variants: tuple[str, ...] = tuple(VARIANTS)
    kinds: tuple[str, ...] = KINDS
    width: int = 512  # common width of the projected embeddings
    hidden: int = 512  # first hidden layer of the scoring MLP
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 40
    weight_decay: float = 0.0
    seed: int = 0
    # "random": distractors drawn uniformly from the other clips. "hard": as in the authors' code,
    # drawn among the query clip's nearest neighbours (cosine, in the vision embedding of the same
    # kind): every distractor for a one-modality query, one of the three for vision + audio.
    negatives: str = "random"
    neighbours: int = 25

    def check(self) -> "RetrievalConfig":
        for name in self.variants:
            get_variant(name)
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise ConfigError(f"unknown embedding kind {bad[0]!r}; choose from {', '.join(KINDS)}")
        if self.negatives not in ("random", "hard"):
            raise ConfigError(f"negatives must be 'random' or 'hard', got {self.negatives!r}")
        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.lr < math.inf:
            raise ConfigError(f"retrieval training needs epochs >= 1, batch_size >= 1 and a finite lr > 0, got "
                              f"{self.epochs}, {self.batch_size} and {self.lr}")
        return self


# paper: Adam 2e-5, batch 64, 750 epochs (section 4.2), hard distractors as in the authors' code.
# fast: the CPU recipe, a 50x larger step so that 40 epochs suffice (the transformer heads reach
# 92-96 % 3-way training accuracy on 480 SynthMUSIC clips), random distractors: on SynthMUSIC,
# hard distractors and 150 epochs both scored lower (docs/results/retrieval.md).
RECIPES = {
    "paper": RetrievalConfig(lr=2e-5, epochs=750, negatives="hard"),
    "fast": RetrievalConfig(lr=1e-3, epochs=40),
}


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------

@dataclass
class ClipEmbeddings:
    """Per-clip embeddings of one data folder under one checkpoint (N clips).

    vectors[kind][modality] is [N, D_m]; labels are the clips' class names joined by '+'.
    """

    clip_ids: list[str]
    clip_dirs: list[str]
    labels: list[str]
    vectors: dict[str, dict[str, Tensor]]
    checkpoint: str = ""
    fingerprint: str = ""  # of the checkpoint file: heads trained on one checkpoint refuse another

    def __len__(self) -> int:
        return len(self.clip_ids)

    def modalities(self) -> tuple[str, ...]:
        return tuple(next(iter(self.vectors.values())))

    def dims(self, kind: str) -> dict[str, int]:
        return {m: v.shape[1] for m, v in self.vectors[kind].items()}

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save({"format": EMBEDDING_FORMAT, **dataclasses.asdict(self)}, tmp)

    @classmethod
    def load(cls, path: Path) -> "ClipEmbeddings":
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored.pop("format", None) != EMBEDDING_FORMAT:
            raise ValueError("old embedding format")
        return cls(**stored)


def checkpoint_fingerprint(path: str | Path) -> str:
    """Identifies a checkpoint file's contents: its size and its first and last MiB (hashing a 3 GB
    paper-size checkpoint whole would cost seconds on every call). ``torch.save`` writes a zip whose
    central directory, at the end of the file, holds the CRC-32 of every tensor, so the last MiB
    changes with any weight. No modification time: a byte-identical copy is the same checkpoint."""
    path = Path(path)
    st = path.stat()
    h = hashlib.sha1(f"{st.st_size}".encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(st.st_size - (1 << 20), 0))
        h.update(f.read(1 << 20))
    return h.hexdigest()


def data_fingerprint(clips: list[Clip]) -> str:
    """Identifies a set of clips: each clip's id, folder and metadata, and the size and
    modification time of each of its files (``Clip.files_stamp``), so a clip prepared again, a
    pose file replaced by another detector's, a frame or stem written over, misses the cache
    (without reading the media)."""
    h = hashlib.sha1()
    for c in sorted(clips, key=lambda c: c.meta.id):
        h.update(f"{c.meta.id}|{c.dir.resolve()}|{json.dumps(dataclasses.asdict(c.meta), sort_keys=True)}|"
                 f"{c.files_stamp()}\n".encode())
    return h.hexdigest()


def embedding_loader(config, clips: list[Clip], batch_size: int):
    """Every clip alone (N = 1), centre crop, its own audio as the mixture."""
    from tribert.data.mixing import MixDataset, make_mixture_list, mix_loader

    data = dataclasses.replace(config.data, num_mix=1)
    specs = make_mixture_list(clips, 1, config.audio.crop_samples, seed=0)
    ds = MixDataset(clips, config.audio, config.video, data, mixtures=specs)
    return mix_loader(ds, batch_size=batch_size, shuffle=False, num_workers=config.data.num_workers)


# The input each stream reads (TriBERT.encode's arguments).
STREAM_INPUTS = {"vision": "frames", "pose": "pose", "audio": "mix_logmag"}
CONTEXTS = ("own", "alone")


@torch.no_grad()
def embed_clips(system, clips: list[Clip], batch_size: int = 16, device: str | torch.device = "cpu",
                progress: bool = False, context: str = "own") -> ClipEmbeddings:
    """One TriBERT forward per clip -> ``ClipEmbeddings`` (both kinds, every stream the model has).

    ``context``: "own" (the paper's protocol) runs each clip's vision, pose and audio through the
    transformer together, so with co-attention a clip's audio embedding already holds what its
    own frames and pose told it. "alone" takes each stream's transformer embedding from a pass in
    which the other streams read nothing (mean-grey frames, no performer, silence: the same blank
    for every clip), as when a query is an audio track with no video: whatever the embedding
    shares with the clip's other modalities, it did not get through co-attention. The
    pre-transformer embeddings do not depend on it.
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    model = system.model.to(device).eval()
    vectors: dict[str, dict[str, list[Tensor]]] = {k: {} for k in KINDS}
    batches = embedding_loader(system.config, clips, batch_size)
    batches = track(batches, f"embedding {len(clips)} clips", enabled=progress, transient=True)
    blank = {"frames": torch.zeros_like,  # normalised frames: 0 is the ImageNet mean colour
             "pose": torch.zeros_like,  # confidence 0: no performer
             "mix_logmag": lambda t: torch.full_like(t, math.log(system.config.audio.log_eps))}  # silence
    for batch in batches:
        x = batch.video_inputs()
        inputs = {k: x[k].to(device) if x[k] is not None else None for k in STREAM_INPUTS.values()}
        if context == "own":
            passes = dict.fromkeys(system.config.model.streams(), model.encode(**inputs))
        else:  # one pass per stream, the others blank; each stream's tokens are read from its own pass
            passes = {m: model.encode(**{k: v if k == STREAM_INPUTS[m] or v is None else blank[k](v)
                                         for k, v in inputs.items()})
                      for m in system.config.model.streams()}
        for m, enc in passes.items():
            for kind, tokens in (("transformer", enc.hidden), ("pre_transformer", enc.embeddings)):
                vectors[kind].setdefault(m, []).append(tokens[m].flatten(1).float().cpu())  # [B, (1+K)*O * D_m]
    return ClipEmbeddings(
        clip_ids=[c.meta.id for c in clips], clip_dirs=[str(c.dir) for c in clips],
        labels=["+".join(c.meta.labels) for c in clips],
        vectors={k: {m: torch.cat(v) for m, v in per.items()} for k, per in vectors.items()})


def load_embeddings(checkpoint: str | Path, data_dir: str | Path, device: str | torch.device = "cpu",
                    batch_size: int = 16, cache: bool = True, progress: bool = False) -> ClipEmbeddings:
    """The embeddings of every clip under ``data_dir`` from a TriBERT checkpoint, computed once and
    then read from ``$TRIBERT_CACHE/retrieval`` (keyed by the checkpoint's contents and the clips).
    A cache hit reads neither the checkpoint's weights nor the clips' media."""
    from tribert.data.mixing import load_clips
    from tribert.engine.checkpoint import load_system

    checkpoint = Path(checkpoint)
    device = resolve_device(device)
    if not checkpoint.is_file():
        raise CheckpointError("checkpoint not found", checkpoint)
    fingerprint = checkpoint_fingerprint(checkpoint)
    clips = [Clip(d) for d in list_clips(data_dir)]
    from tribert import __version__  # a release may embed otherwise (the model code, the crop)

    key = hashlib.sha1(f"{fingerprint}|{data_fingerprint(clips)}|{EMBEDDING_FORMAT}|{__version__}".encode()
                       ).hexdigest()[:20]
    path = cache_dir() / "retrieval" / f"{key}.pt"
    if cache and path.exists():
        try:
            emb = ClipEmbeddings.load(path)
            emb.checkpoint = str(checkpoint.resolve())  # the same contents, wherever the file is now
            return emb
        except Exception:  # an unreadable or outdated cache file is recomputed, never trusted
            pass
    system = load_system(checkpoint)
    if system.config.model.kind != "tribert":
        raise CheckpointError(f"retrieval needs a TriBERT checkpoint; this one holds a "
                              f"{system.config.model.kind} model (no transformer)", checkpoint)
    clips = load_clips(data_dir, system.config.data.classes)  # every label must be a known class
    emb = embed_clips(system, clips, batch_size=batch_size, device=device, progress=progress)
    emb.checkpoint, emb.fingerprint = str(checkpoint.resolve()), fingerprint  # evaluate may run from another folder
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            emb.save(path)
        except OSError as err:  # the cache only saves time: the embeddings are good, go on
            logger.warning("retrieval cache %s not written (%s): set TRIBERT_CACHE to a writable folder, "
                           "or pass --no-cache", path, err)
    return emb


def require(emb: ClipEmbeddings, variant: Variant) -> None:
    """A one-line error when the checkpoint lacks a stream the variant needs (a no-pose ablation)."""
    for m in (*variant.query, variant.result):
        if m not in emb.modalities():
            raise CheckpointError(f"retrieval {variant.name} needs a {m} stream, and this TriBERT has none "
                                  f"(trained without it)", emb.checkpoint or None)


def split(emb: ClipEmbeddings, variant: Variant, kind: str) -> tuple[dict[str, Tensor], Tensor]:
    """The query parts {modality: [N, D_m]} and the result [N, D_r] of every clip."""
    v = emb.vectors[kind]
    return {m: v[m] for m in variant.query}, v[variant.result]


# ---------------------------------------------------------------------------------------------
# Training: n-way multiple choice
# ---------------------------------------------------------------------------------------------

def nearest_neighbours(x: Tensor, k: int) -> Tensor:
    """[N, D] -> [N, min(k, N-1)]: each row's nearest other rows by cosine similarity."""
    x = F.normalize(x, dim=1)
    sim = x @ x.T  # [N, N]
    sim.fill_diagonal_(-2.0)  # never the clip itself
    return sim.topk(min(k, len(x) - 1), dim=1).indices


def distractors(query_index: Tensor, n_clips: int, count: int, generator: torch.Generator,
                neighbours: Tensor | None = None, hard: int = 0) -> Tensor:
    """For each query [B], ``count`` distinct other clips -> [B, count]: the first ``hard`` drawn
    among the query's rows of ``neighbours`` [N, k], the rest uniformly from the other clips."""
    rows = torch.arange(len(query_index))
    picked = []
    noise = torch.rand(len(query_index), n_clips, generator=generator)
    noise[rows, query_index] = 2.0  # never the query's own clip
    if hard > 0:
        near = neighbours[query_index]  # [B, k]
        choice = torch.rand(near.shape, generator=generator).topk(hard, dim=1, largest=False).indices
        picked.append(near.gather(1, choice))  # [B, hard]
        noise.scatter_(1, picked[0], 2.0)  # and not twice
    if count > hard:
        picked.append(noise.topk(count - hard, dim=1, largest=False).indices)
    return torch.cat(picked, dim=1)


def fit_head(head: RetrievalHead, query: dict[str, Tensor], result: Tensor, cfg: RetrievalConfig,
             progress: bool = False, neighbours: Tensor | None = None) -> dict:
    """Train ``head`` by n-way multiple choice on N aligned (query, result) rows; returns the history
    (loss and multiple-choice accuracy per epoch). ``neighbours`` [N, k] (with ``cfg.negatives``
    "hard"): where hard distractors are drawn from; default the nearest clips in ``result``."""
    n = len(result)
    choices = head.variant.choices
    hard = 0
    if cfg.negatives == "hard":
        hard = choices - 1 if len(head.variant.query) == 1 else 1  # the authors' data sets
        if neighbours is None:
            neighbours = nearest_neighbours(result, cfg.neighbours)
    if n < choices:
        raise TribertError(f"retrieval training needs at least {choices} clips, found {n}")
    g = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    epochs = range(cfg.epochs)
    epochs = track(epochs, head.variant.name, enabled=progress, transient=True)
    head.train()
    for _ in epochs:
        total, correct = 0.0, 0
        for idx in torch.randperm(n, generator=g).split(cfg.batch_size):
            others = distractors(idx, n, choices - 1, g, neighbours, hard)
            cand = torch.cat([idx[:, None], others], dim=1)  # [B, n]: positive first
            logits = head({m: q[idx] for m, q in query.items()}, result[cand])  # [B, n]
            loss = F.cross_entropy(logits, torch.zeros(len(idx), dtype=torch.long))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (true_ranks(logits.detach(), torch.zeros_like(idx)) == 0).sum().item()  # a tie is a miss
        history["loss"].append(total / n)
        history["accuracy"].append(correct / n)
    return history


def head_path(out_dir: Path, variant: str, kind: str) -> Path:
    return out_dir / f"{variant}.{kind}.pt"


def save_head(path: Path, head: RetrievalHead, kind: str, cfg: RetrievalConfig, fingerprint: str) -> None:
    """``fingerprint``: of the checkpoint whose embeddings trained the head (``load_head`` checks it)."""
    with atomic_path(path) as tmp:
        torch.save({"variant": head.variant.name, "kind": kind, "width": cfg.width, "hidden": cfg.hidden,
                    "dims": {m: lin.in_features for m, lin in head.project.items()},
                    "fingerprint": fingerprint, "state_dict": head.state_dict()}, tmp)


def load_head(path: str | Path, fingerprint: str = "") -> tuple[RetrievalHead, str]:
    """A trained head and its embedding kind, from a file ``train_retrieval`` wrote. With
    ``fingerprint`` (of the checkpoint the embeddings to score come from), a head trained on another
    checkpoint's embeddings is refused: a folder can hold heads of an earlier `retrieve train`."""
    path = Path(path)
    if not path.is_file():
        raise TribertError("retrieval head not found (run `tribert retrieve train` first)", path)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        head = RetrievalHead(get_variant(stored["variant"]), stored["dims"], stored["width"], stored["hidden"])
        head.load_state_dict(stored["state_dict"])
        kind = stored["kind"]
    except TribertError:
        raise
    except Exception as err:
        raise TribertError(f"not a readable retrieval head ({first_line(err)})", path) from None
    own = stored.get("fingerprint", "")
    if fingerprint and own and own != fingerprint:
        raise TribertError("this head was trained on embeddings of another checkpoint (an earlier "
                           "`tribert retrieve train` into this folder); train it again on this one", path)
    return head.eval(), kind


def check_heads_input(out_dir: str | Path, clips: int, cfg: RetrievalConfig, data: str | Path | None) -> None:
    """Before any work: ``out_dir`` can take the heads (a folder, not prepared clips: the heads'
    files would land among the clips training and evaluation read) and ``clips`` clips are enough
    for the n-way choice of every variant in ``cfg``. One line naming the folder."""
    check_out_dir(out_dir)
    out = Path(out_dir)
    if holds_clips(out):
        raise TribertError("holds prepared clips: give the retrieval heads a folder of their own", out)
    need = max(get_variant(v).choices for v in cfg.variants)
    if clips < need:
        raise TribertError(f"retrieval training needs at least {need} clips, found {clips}", data)


def train_retrieval(emb: ClipEmbeddings, out_dir: str | Path, cfg: RetrievalConfig, progress: bool = False,
                    log=None) -> dict:
    """Train one head per (variant, kind) on ``emb`` and write them to ``out_dir`` with
    ``retrieval.json`` (recipe, checkpoint, its fingerprint, git revision, training history).
    ``log``: where each head's one-line summary goes (default: this module's logger, INFO)."""
    from tribert.engine.run import git_revision

    log = log or logger.info
    cfg.check()
    variants = [get_variant(v) for v in cfg.variants]
    for variant in variants:  # every missing stream is reported before any training
        require(emb, variant)
    check_heads_input(out_dir, len(emb), cfg, Path(emb.clip_dirs[0]).parent if len(emb) else None)
    out_dir = Path(out_dir)
    if (out_dir / "retrieval.json").is_file():
        logger.warning("%s holds the heads of an earlier `tribert retrieve train`: they are replaced", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"recipe": dataclasses.asdict(cfg), "checkpoint": emb.checkpoint, "fingerprint": emb.fingerprint,
               "train_clips": len(emb), "git": git_revision(), "heads": {}}
    for variant in variants:
        for kind in cfg.kinds:
            torch.manual_seed(cfg.seed)
            query, result = split(emb, variant, kind)
            head = RetrievalHead(variant, emb.dims(kind), cfg.width, cfg.hidden)
            t0 = time.time()
            near = None
            if cfg.negatives == "hard":  # neighbours in vision, as the authors' data sets pick them
                near = nearest_neighbours(emb.vectors[kind].get("vision", result), cfg.neighbours)
            history = fit_head(head, query, result, cfg, progress=progress, neighbours=near)
            save_head(head_path(out_dir, variant.name, kind), head, kind, cfg, emb.fingerprint)
            summary["heads"][f"{variant.name}.{kind}"] = {
                "seconds": round(time.time() - t0, 2), "final_loss": history["loss"][-1],
                "final_train_accuracy": history["accuracy"][-1], "history": history}
            log(f"{variant.title:24s} {kind:15s} loss {history['loss'][-1]:.3f}  "
                f"{variant.choices}-way train accuracy {100 * history['accuracy'][-1]:.1f}%")
    atomic_write_json(out_dir / "retrieval.json", summary)
    return summary


def read_manifest(heads_dir: str | Path) -> dict:
    """The ``retrieval.json`` that ``train_retrieval`` wrote into ``heads_dir``: its checkpoint,
    fingerprint and recipe (variants, kinds). A missing, corrupt or foreign file is one line."""
    path = Path(heads_dir) / "retrieval.json"
    if not path.is_file():
        raise TribertError("no retrieval.json: not a folder written by `tribert retrieve train`", heads_dir)
    info = read_json(path, "retrieval manifest", expect_object=False)
    recipe = info.get("recipe") if isinstance(info, dict) else None
    if not (isinstance(recipe, dict) and "checkpoint" in info and isinstance(info["checkpoint"], (str, type(None)))
            and all(isinstance(recipe.get(k), list) and all(isinstance(v, str) for v in recipe[k])
                    for k in ("variants", "kinds"))):
        raise TribertError("not a retrieval manifest (it needs \"checkpoint\" and \"recipe\" with lists of "
                           "\"variants\" and \"kinds\"): train the heads again with `tribert retrieve train`", path)
    return info


# ---------------------------------------------------------------------------------------------
# Evaluation: rank a pool of test candidates
# ---------------------------------------------------------------------------------------------

def pools_of(n_clips: int, pool: int, seed: int) -> list[Tensor]:
    """Disjoint pools of ``pool`` clips (a seeded shuffle cut into pieces; a remainder is unused)."""
    if pool < 2:
        raise TribertError(f"the retrieval pool needs at least 2 candidates, got {pool}")
    if n_clips < pool:
        raise TribertError(f"the data folder has {n_clips} clips, fewer than the pool of {pool} "
                           f"(use --pool {n_clips} or fewer)")
    order = torch.randperm(n_clips, generator=torch.Generator().manual_seed(seed))
    return list(order[: n_clips // pool * pool].view(-1, pool))


@torch.no_grad()
def rank_in_pools(head: RetrievalHead, emb: ClipEmbeddings, kind: str, pool: int,
                  seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Every clip of every pool queries its pool -> (query clip [Q], true rank [Q], top-10 clips [Q, 10])."""
    query, result = split(emb, head.variant, kind)
    queries, ranks, tops = [], [], []
    for members in pools_of(len(emb), pool, seed):
        scores = head.pool_logits({m: q[members] for m, q in query.items()}, result[members])  # [P, P]
        ranks.append(true_ranks(scores, torch.arange(len(members))))
        tops.append(members[scores.topk(min(10, len(members)), dim=1).indices])
        queries.append(members)
    return torch.cat(queries), torch.cat(ranks), torch.cat(tops)


def shares_class(a: str, b: str) -> bool:
    """Whether two clips' labels ('+'-joined class names) have a class in common (a duet with the
    query's instrument counts). A clip with no label shares no class, not even with another such."""
    return bool({c for c in a.split("+") if c} & {c for c in b.split("+") if c})


def same_class_top1(emb: ClipEmbeddings, queries: list[int], top1: list[int]) -> float | None:
    """How often (%) the first result shares a class with the query, over the queries that have a
    class label (None: none has)."""
    hits = [shares_class(emb.labels[t], emb.labels[q]) for t, q in zip(top1, queries) if emb.labels[q]]
    return 100.0 * float(np.mean(hits)) if hits else None


def evaluate_retrieval(heads_dir: str | Path, emb: ClipEmbeddings, pool: int = 210, seed: int = 0,
                       variants: tuple[str, ...] | None = None) -> dict:
    """Top-1/5/10 of every trained head in ``heads_dir`` on ``emb``, and how often the top-1 result
    shares a class with the query (same-class top-1)."""
    heads_dir = Path(heads_dir)
    info = read_manifest(heads_dir)
    pools_of(len(emb), pool, seed)  # a pool the data cannot fill: one line before any head is read
    if emb.fingerprint and info.get("fingerprint") and emb.fingerprint != info["fingerprint"]:
        raise TribertError("these heads were trained on embeddings of another checkpoint "
                           f"({info.get('checkpoint')}); embed the test clips with that one", heads_dir)
    chosen = variants or tuple(info["recipe"]["variants"])
    unlabelled = sum(not label for label in emb.labels)
    if unlabelled:
        logger.warning("%d of %d clips have no class label: same-class top-1 counts only the labelled queries%s",
                       unlabelled, len(emb), "" if unlabelled < len(emb) else " (none here, so it is not given)")
    results: dict = {"pool": pool, "queries": len(emb) // pool * pool, "chance": chance_topk(pool),
                     "variants": {}}
    for name in chosen:
        variant = get_variant(name)
        require(emb, variant)
        row = {}
        for kind in info["recipe"]["kinds"]:
            head, _ = load_head(head_path(heads_dir, name, kind), emb.fingerprint)
            queries, ranks, tops = rank_in_pools(head, emb, kind, pool, seed)
            acc = topk_accuracy(ranks)
            same_class = same_class_top1(emb, queries.tolist(), tops[:, 0].tolist())
            row[kind] = {"top1": acc[1], "top5": acc[5], "top10": acc[10], "same_class_top1": same_class}
        results["variants"][name] = row
    return results


def format_table(results: dict) -> str:
    """Table 3's shape: top-1 / 5 / 10 accuracy (%) with transformer and pre-transformer embeddings."""
    kinds = [k for k in KINDS if any(k in r for r in results["variants"].values())]
    short = {"transformer": "T", "pre_transformer": "pre-T"}
    head = "| variant | " + " | ".join(f"top-{k} {short[kind]}" for k in (1, 5, 10) for kind in kinds) + \
        " | same-class top-1 " + " / ".join(short[k] for k in kinds) + " |"
    lines = [f"Retrieval on {results['queries']} queries, pools of {results['pool']} candidates (%)", head,
             "|" + "---|" * (2 + 3 * len(kinds))]
    for name, row in results["variants"].items():
        cells = [f"{row[kind][f'top{k}']:.2f}" if kind in row else "-" for k in (1, 5, 10) for kind in kinds]
        same = " / ".join("-" if row[kind]["same_class_top1"] is None else f"{row[kind]['same_class_top1']:.1f}"
                          for kind in kinds if kind in row)
        lines.append(f"| {VARIANTS[name].title} | " + " | ".join(cells) + f" | {same} |")
    chance = results["chance"]
    lines.append("| random | " + " | ".join(f"{chance[k]:.2f}" for k in (1, 5, 10) for _ in kinds) + " | |")
    return "\n".join(lines)


def write_results(path: str | Path, results: dict, meta: dict) -> None:
    """The results of ``evaluate_retrieval`` as JSON (``io.write_results``, kind "retrieval")."""
    write_any_results(path, results, meta, kind="retrieval")


__all__ = ["KINDS", "RECIPES", "RetrievalConfig", "ClipEmbeddings", "load_embeddings", "embed_clips",
           "fit_head", "train_retrieval", "read_manifest", "load_head", "rank_in_pools", "evaluate_retrieval", "format_table",
           "checkpoint_fingerprint"]
