"""What does the U-Net read from TriBERT's condition? Test SDR with the class part of the condition
replaced.

For a checkpoint whose U-Net sees class posteriors (``model.condition_classes: posteriors`` or
``posteriors_only``), scores the fixed test mixtures three ways:

- ``predicted``: as trained (the class head's softmax posteriors);
- ``truth``: the true class one-hot in place of the posteriors for every source with a known class
  (an oracle: how much would a perfect class prediction give this U-Net?);
- ``argmax``: the one-hot of the predicted class (what sharpening the posteriors would give).

If ``truth`` scores no better than ``predicted``, the U-Net is not reading the class part.

Beside each mode's table row, the single-source SDR per source split by whether the class head
named that source's class (its argmax) and, where some test videos have no pose (a missed
detection, ``data.pose_missing``), by whether the video has pose: how often the condition is
wrong, and what a wrong class costs.

    python benchmarks/condition_probe.py --checkpoint RUN/checkpoints/step000500.ckpt \\
        --test data/synth-test/test --mixtures 100 --out condition_probe.json
"""

from __future__ import annotations

import argparse
from collections import Counter


def single_source_split(system, batches) -> tuple[dict[str, dict], dict[str, list]]:
    """Single-source SDR per source, grouped by "class right / wrong" x "pose / no pose" (the class
    head's argmax against the source's class) -> ({group: {"sources": n, "sdr": mean dB}},
    {wrong group: [[true class, named class, count], ...] most common first})."""
    import torch

    from tribert.audio import AudioFrontEnd
    from tribert.engine.evaluate import masks_to_wavs
    from tribert.metrics import bss_eval, is_silent
    from tribert.models.pose import pose_presence

    frontend, n = AudioFrontEnd(system.config.audio), system.config.audio.eval_samples
    groups: dict[str, list[float]] = {}
    confusions: dict[str, Counter] = {}
    classes = system.config.data.classes
    with torch.no_grad():
        for batch in batches:
            out, mask_logits = system(batch)
            wavs = masks_to_wavs(frontend, mask_logits, batch.mix_wav, None)  # [B, S, L]
            named = out.condition_logits.argmax(-1).reshape(batch.batch_size, -1)  # [B, S] slots
            persons = pose_presence(batch.by_video(batch.pose))  # [V, P]
            has_pose = persons.any(-1).view(batch.batch_size, -1)  # [B, N] videos
            for i in range(batch.batch_size):
                ref = batch.real(i, batch.source_wavs)[:, :n]
                if bool((batch.real(i, batch.source_object) >= 0).any()) or is_silent(ref):
                    continue  # not a single-source mixture, or not scorable
                sdr = bss_eval(ref, batch.real(i, wavs)[:, :n])[0]
                right = batch.real(i, named) == batch.real(i, batch.source_label)
                pose = has_pose[i][batch.real(i, batch.source_video)]
                for j in range(len(sdr)):
                    key = ("class right" if right[j] else "class wrong") + (", pose" if pose[j] else ", no pose")
                    groups.setdefault(key, []).append(float(sdr[j]))
                    if not right[j]:
                        truth, guess = int(batch.real(i, batch.source_label)[j]), int(batch.real(i, named)[j])
                        confusions.setdefault(key, Counter())[(classes[truth], classes[guess])] += 1
    if not any("no pose" in k for k in groups):  # every video has pose: split by the class alone
        merged: dict[str, list[float]] = {}
        for k, v in groups.items():
            merged.setdefault(k.split(",")[0], []).extend(v)
        groups = merged
        confusions = {"class wrong": sum(confusions.values(), Counter())} if confusions else {}
    return ({k: {"sources": len(v), "sdr": sum(v) / len(v)} for k, v in sorted(groups.items())},
            {k: [[t, g, n] for (t, g), n in c.most_common()] for k, c in sorted(confusions.items())})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a TriBERT checkpoint whose U-Net reads class posteriors")
    p.add_argument("--test", required=True, help="prepared test clips (the fixed mixtures are drawn from them)")
    p.add_argument("--mixtures", type=int, default=0, help="0: all")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", default="condition_probe.json", help="JSON results")
    args = p.parse_args()

    import torch
    import torch.nn.functional as F

    from tribert.engine.checkpoint import load_system
    from tribert.engine.evaluate import evaluate
    from tribert.engine.train import eval_loader
    from tribert.io import atomic_write_json

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
        res["single_by_class"], confusions = single_source_split(system, batches)
        results[mode] = res
        print(f"{mode:10s} single {res['single']['sdr']:6.2f}  multi {res['multi']['sdr']:6.2f}  "
              f"same-class {res['same_class']['sdr']:6.2f} dB; single-source by the named class: "
              + ", ".join(f"{k} {v['sdr']:.2f} ({v['sources']})" for k, v in res["single_by_class"].items()),
              flush=True)
    # the class head's names do not depend on the mode: its commonest mistakes, once
    for group, pairs in confusions.items():
        print(f"{group}, commonest: " + ", ".join(f"{t} named {g} x{n}" for t, g, n in pairs[:6]), flush=True)
    atomic_write_json(args.out, {"checkpoint": args.checkpoint, "test": args.test, "mixtures": args.mixtures,
                                 "results": results, "single_source_confusions": confusions})


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
