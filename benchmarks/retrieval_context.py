"""How much of Table 3 comes from the clip's own other modalities? Retrieval with each stream
embedded alone.

The paper's protocol (``tribert retrieve``) runs each test clip's vision, pose and audio through
the transformer together. With co-attention a clip's audio embedding then already holds what its
own frames and pose told it, and the query's embedding carries part of the answer. Here the same
heads score the test clips twice: as ``tribert retrieve evaluate`` does ("own"), and with each
stream's transformer embedding taken from a pass where the other streams read a blank input
("alone", ``embed_clips(context="alone")``: mean-grey frames, no performer, silence), as a
query that is an audio track (or frames, or pose) with nothing else. The pre-transformer
embeddings do not depend on it. A model without co-attention scores the same both ways (a test
checks that its embeddings are equal).

The heads were trained on "own" embeddings, so "alone" is also a shift for them; with ``--train``
new heads (the same recipe, written under ``--work``) are trained on "alone" embeddings of the
training clips and scored on the "alone" test embeddings: what each stream carries of its clip
by itself.

    python benchmarks/retrieval_context.py --heads runs/retrieval/recipe3000 --data data/synth-test/test \\
        --pool 200 --train data/synth2k/train --out benchmarks/results/retrieval_context.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", nargs="+", required=True, help="folders written by `tribert retrieve train`")
    ap.add_argument("--data", required=True, help="test clips")
    ap.add_argument("--pool", type=int, default=200, help="candidates per query (the paper's protocol: 200)")
    ap.add_argument("--train", help="training clips: also train heads on 'alone' embeddings of them")
    ap.add_argument("--work", default="runs/retrieval_context", help="where those heads are written")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", help="JSON results")
    args = ap.parse_args()

    import torch

    from tribert.data.mixing import load_clips
    from tribert.engine.checkpoint import load_system
    from tribert.engine.retrieval import (RetrievalConfig, embed_clips, evaluate_retrieval, load_embeddings,
                                          train_retrieval)
    from tribert.io import atomic_write_json

    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}

    def embed_alone(system, data: str, fingerprint: str):
        emb = embed_clips(system, load_clips(data, system.config.data.classes), context="alone")
        emb.fingerprint = fingerprint
        return emb

    for heads in args.heads:
        info = json.loads((Path(heads) / "retrieval.json").read_text())
        own = load_embeddings(info["checkpoint"], args.data)  # what `tribert retrieve evaluate` reads
        system = load_system(info["checkpoint"])
        alone = embed_alone(system, args.data, own.fingerprint)
        results[heads] = {"checkpoint": info["checkpoint"],
                          "own": evaluate_retrieval(heads, own, pool=args.pool),
                          "alone": evaluate_retrieval(heads, alone, pool=args.pool)}
        if args.train:
            work = Path(args.work) / Path(heads).name
            recipe = {k: tuple(v) if isinstance(v, list) else v for k, v in info["recipe"].items()}
            train_retrieval(embed_alone(system, args.train, own.fingerprint), work, RetrievalConfig(**recipe),
                            log=lambda *a: None)
            results[heads]["alone_trained"] = evaluate_retrieval(work, alone, pool=args.pool)

    print(f"top-1 % (same-class top-1 %), pools of {args.pool}; T = transformer, pre-T = pre-transformer")
    trained = "| heads trained on streams alone: T " if args.train else ""
    print(f"| heads | variant | T, the clip's streams together | T, each stream alone {trained}| pre-T |")
    print("|---|---|---|---|---|" + ("---|" if args.train else ""))

    def cell(res: dict) -> str:
        return f"{res['top1']:.1f} ({res['same_class_top1']:.1f})"

    for heads, r in results.items():
        for name, row in r["own"]["variants"].items():
            alone_row = r["alone"]["variants"][name]
            retrained = f"{cell(r['alone_trained']['variants'][name]['transformer'])} | " if args.train else ""
            print(f"| {Path(heads).name} | {name} | {cell(row['transformer'])} | "
                  f"{cell(alone_row['transformer'])} | {retrained}{cell(row['pre_transformer'])} |")
    if args.out:
        atomic_write_json(args.out, {"pool": args.pool, "data": args.data, "results": results})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
