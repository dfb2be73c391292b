"""A figure like the paper's Figure 4: retrieval queries and their top-5 results.

Each row is one query (what the model was given) followed by the five best-scoring candidates of
its pool, each drawn as the modality it is: a video frame (vision), the log-frequency spectrogram
the model hears (audio) or the pose skeleton (pose), titled with the clip's class. A green frame
marks the query's own clip (a hit), orange another clip that shares a class with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tribert.data.clip import Clip
from tribert.engine.retrieval import ClipEmbeddings, head_path, load_head, rank_in_pools, read_manifest, shares_class
from tribert.io import atomic_path
from tribert.models.retrieval import get_variant
from tribert.skeleton import EDGES

HIT, SAME_CLASS, OTHER = "#2ca02c", "#ff7f0e", "#999999"


def _frame(clip: Clip) -> np.ndarray:
    return clip.frames([clip.meta.num_frames // 2])[0]


def _spectrogram(clip: Clip, frontend, crop_samples: int) -> np.ndarray:
    audio = clip.audio()
    start = max(len(audio) - crop_samples, 0) // 2
    wav = torch.from_numpy(audio[start:start + crop_samples].copy())[None]
    with torch.no_grad():
        mag, _ = frontend.magnitude(wav)  # [1, 1, F, T]
    return frontend.log(mag)[0, 0].numpy()


def _draw_pose(ax, clip: Clip) -> None:
    pose = clip.pose()[len(clip.pose()) // 2]  # [P, 68, 3] at the middle frame, pixels
    w, h = clip.frame_size()
    for person in pose:
        for a, b in EDGES:
            if person[a, 2] > 0 and person[b, 2] > 0:
                ax.plot([person[a, 0], person[b, 0]], [person[a, 1], person[b, 1]], color="k", lw=0.8)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")


def _panel(ax, clip: Clip, modality: str, frontend, crop_samples: int, title: str, colour: str | None) -> None:
    if modality == "vision":
        ax.imshow(_frame(clip))
    elif modality == "audio":
        ax.imshow(_spectrogram(clip, frontend, crop_samples), origin="lower", aspect="auto", cmap="magma")
    else:
        _draw_pose(ax, clip)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)
    if colour:
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(3)


def retrieval_figure(heads_dir: str | Path, emb: ClipEmbeddings, out: str | Path,
                     variants: tuple[str, ...] = ("audio2vision", "pose2audio"), queries: int = 2,
                     kind: str = "transformer", pool: int = 210, seed: int = 0) -> Path:
    """Draw ``queries`` queries per variant with their top-5 results to the PNG ``out``."""
    from matplotlib.figure import Figure  # no pyplot: no process-wide backend or figure registry

    from tribert.audio import AudioFrontEnd
    from tribert.config import Config
    from tribert.engine.checkpoint import read_checkpoint

    heads_dir = Path(heads_dir)
    trained = read_manifest(heads_dir)["recipe"]["variants"]
    variants = tuple(v for v in variants if v in trained) or tuple(trained[:2])
    # read_checkpoint: the one reader of training checkpoints and exports (an export has no
    # top-level hyper_parameters; it presents one)
    config = Config.from_dict(read_checkpoint(emb.checkpoint)["hyper_parameters"]["config"]) \
        if emb.checkpoint else Config()
    frontend = AudioFrontEnd(config.audio)
    clips = [Clip(d) for d in emb.clip_dirs]
    rows = len(variants) * queries
    fig = Figure(figsize=(12, 2.1 * rows))
    axes = fig.subplots(rows, 6, squeeze=False)
    r = 0
    for name in variants:
        variant = get_variant(name)
        head, _ = load_head(head_path(heads_dir, name, kind), emb.fingerprint)
        query_clips, _, tops = rank_in_pools(head, emb, kind, pool, seed)
        for q, top in zip(query_clips[:queries].tolist(), tops[:queries].tolist()):
            query = clips[q]
            # the query panel shows its first modality (vision for vision + audio)
            _panel(axes[r, 0], query, variant.query[0], frontend, config.audio.crop_samples,
                   f"{variant.title}\nquery: {emb.labels[q]}", None)
            for j, c in enumerate(top[:5]):
                colour = HIT if c == q else SAME_CLASS if shares_class(emb.labels[c], emb.labels[q]) else OTHER
                _panel(axes[r, j + 1], clips[c], variant.result, frontend, config.audio.crop_samples,
                       f"{j + 1}. {emb.labels[c]}", colour)
            r += 1
    fig.suptitle(f"Top-5 retrieval ({kind.replace('_', '-')} embeddings; green: the query's clip, "
                 f"orange: shares a class)", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    return out
