"""What does the U-Net read from TriBERT's condition? Test SDR with the class part of the condition
replaced.

For a checkpoint whose U-Net sees class posteriors (``model.condition_classes: posteriors`` or
``posteriors_only``), scores the fixed test mixtures three ways:

- ``predicted``: as trained (the class head's softmax posteriors);
- ``truth``: the true class one-hot in place of the posteriors for every source with a known class
  (an oracle: how much would a perfect class prediction give this U-Net?);
- ``argmax``: the one-hot of the predicted class (what sharpening the posteriors would give).

If ``truth`` scores no better than ``predicted``, the U-Net is not reading the class part.

    python benchmarks/condition_probe.py --checkpoint RUN/checkpoints/step000500.ckpt \\
        --test data/synth-test/test --mixtures 100 --out condition_probe.json
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--mixtures", type=int, default=0, help="0: all")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="condition_probe.json")
    args = p.parse_args()

    import torch
    import torch.nn.functional as F

    from tribert.engine.checkpoint import load_system
    from tribert.engine.evaluate import evaluate
    from tribert.engine.train import eval_loader

    torch.set_num_threads(args.threads)
    system = load_system(args.checkpoint)
    model = system.model
    if not getattr(model.config, "condition_classes", "none").startswith("posteriors"):
        raise SystemExit("this checkpoint's U-Net sees no class posteriors (model.condition_classes)")
    batches = list(eval_loader(system.config, args.test, limit=args.mixtures))
    num_classes = model.config.num_classes
    own_condition, own_forward = model.condition, system.forward
    state = {"mode": "predicted", "labels": None}

    def condition(encoding, objects, source_labels=None):
        cond, logits = own_condition(encoding, objects, source_labels)  # [V, P, D (+ C)]
        head, posteriors = cond[..., :-num_classes], cond[..., -num_classes:]
        if state["mode"] == "truth":
            labels = state["labels"]  # [V, P]
            truth = F.one_hot(labels.clamp_min(0), num_classes).to(cond.dtype)
            posteriors = torch.where((labels >= 0)[..., None], truth, posteriors)
        elif state["mode"] == "argmax":
            posteriors = F.one_hot(logits.argmax(-1), num_classes).to(cond.dtype)
        return torch.cat([head, posteriors], -1), logits

    def forward(batch):
        state["labels"] = batch.slots_by_video(batch.source_label)
        return own_forward(batch)

    model.condition, system.forward = condition, forward
    results = {}
    for mode in ("predicted", "truth", "argmax"):
        state["mode"] = mode
        res = evaluate({mode: system}, batches, oracles=False, mixture=False, progress=False)[mode]
        results[mode] = res
        print(f"{mode:10s} single {res['single']['sdr']:6.2f}  multi {res['multi']['sdr']:6.2f}  "
              f"same-class {res['same_class']['sdr']:6.2f} dB", flush=True)
    with open(args.out, "w") as f:
        json.dump({"checkpoint": args.checkpoint, "test": args.test, "mixtures": args.mixtures,
                   "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
