"""Where does the class go? A nearest-class-centroid probe of each TriBERT stream before and after
the transformer, and of the pooled condition, for one or more checkpoints.

TriBERT can only condition a source on its class if some stream carries it to the pooled SOS. This
probe asks each stage in turn: for the solo videos of ``--train`` (the centroids) and of ``--test``
(the queries), it takes the mean over the frame tokens of each stream's embedding (the encoder's
tokens projected to the stream's width: what enters the transformer) and of its hidden state
(what leaves it), and the pooled condition of the performer, standardises each feature with the
training statistics, and counts how often a test solo's nearest class centroid is its own class.
Chance is 1 / classes; a stream that knows the class before the transformer and not after it is
losing it inside. Beside the probe, the model's own classifiers on the same test solos (top-1 of
their argmax, no centroids): the vision, pose and audio heads (per video) and the condition's
class head on the whole video, which is what the U-Net is conditioned on. ``--test-without-pose``
gives the model no pose on the test solos (the centroids keep theirs): with co-attention, what the
other streams lose when the detector finds nobody. No training: a few forward passes per checkpoint.

    python benchmarks/stream_probe.py --train data/synth2k/train --test data/synth-test/test \\
        --checkpoints runs/a/checkpoints/step003000.ckpt runs/b/checkpoints/step003000.ckpt \\
        --out benchmarks/results/stream_probe.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def solo_features(system, data_dir: str, mixtures: int,
                  drop_pose: bool = False) -> tuple[dict, dict, "torch.Tensor", "torch.Tensor"]:  # noqa: F821
    """{stage: [N, D]} features, {classifier: [N, C]} class scores, [N] classes and [N] bool
    "has any pose keypoint" of the solo videos in ``mixtures`` fixed mixtures; ``drop_pose`` gives
    the model no pose at all (every keypoint at confidence 0, as where a detector finds nobody)."""
    import torch

    from tribert.engine.train import eval_loader
    from tribert.models.pose import pose_presence

    feats: dict[str, list] = {}
    scores: dict[str, list] = {}
    classes, has_pose = [], []
    model = system.model
    for batch in eval_loader(system.config, data_dir, limit=mixtures, seed=0):
        inputs = batch.video_inputs()
        if drop_pose:
            inputs["pose"] = torch.zeros_like(inputs["pose"])
        with torch.no_grad():
            enc = model.encode(inputs["frames"], inputs["pose"], inputs["mix_logmag"])
            whole = torch.full((enc.mix_logmag.shape[0], 1), -1, dtype=torch.long)  # [V, 1] the whole video
            _, condition_logits = model.condition(enc, whole)
        labels = batch.video_labels()  # [V, C]
        solo = labels.sum(-1) == 1
        heads = {"vision head": enc.vision_scores, "pose head": enc.pose_scores, "audio head": enc.audio_logits,
                 "condition head": None if condition_logits is None else condition_logits[:, 0]}
        for name, score in heads.items():
            if score is not None:
                scores.setdefault(name, []).append(score[solo])
        objects = model.config.num_objects
        for s in enc.embeddings:
            feats.setdefault(f"{s} before", []).append(enc.embeddings[s][:, objects:].mean(1)[solo])
            feats.setdefault(f"{s} after", []).append(enc.hidden[s][:, objects:].mean(1)[solo])
        # the performer's condition: a solo is person / object 0 of the present ones
        feats.setdefault("pooled condition", []).append(enc.pooled_sos[:, 0][solo])
        classes.append(labels[solo].argmax(-1))
        has_pose.append(pose_presence(inputs["pose"]).any(1)[solo])  # [V, P] persons -> [V] -> solos
    return ({k: torch.cat(v) for k, v in feats.items()}, {k: torch.cat(v) for k, v in scores.items()},
            torch.cat(classes), torch.cat(has_pose))


def centroid_top1(train: "torch.Tensor", train_y, test, test_y, num_classes: int) -> float:  # noqa: F821
    import torch

    mu, sd = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mu) / sd, (test - mu) / sd
    far = torch.full_like(train[0], float("inf"))
    centroids = torch.stack([train[train_y == c].mean(0) if (train_y == c).any() else far
                             for c in range(num_classes)])
    return float((torch.cdist(test, centroids).argmin(-1) == test_y).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="prepared clips for the class centroids")
    p.add_argument("--test", required=True, help="prepared clips to probe")
    p.add_argument("--checkpoints", nargs="+", required=True, help="TriBERT checkpoints to probe")
    p.add_argument("--mixtures", type=int, default=96, help="fixed mixtures per folder")
    p.add_argument("--test-without-pose", action="store_true",
                   help="give the model no pose on the test solos (the centroids keep theirs): what a "
                        "stream that reads pose through co-attention loses when the detector finds nobody")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", default="stream_probe.json", help="JSON results")
    args = p.parse_args()

    import torch

    from tribert.engine.checkpoint import load_system
    from tribert.errors import TribertError
    from tribert.io import atomic_write_text

    torch.set_num_threads(args.threads)
    results = {}
    for ckpt in args.checkpoints:
        try:  # a missing or wrong checkpoint or data folder: one line
            system = load_system(ckpt, expect_model="tribert")
            train, _, train_y, _ = solo_features(system, args.train, args.mixtures)
            test, test_scores, test_y, test_pose = solo_features(system, args.test, args.mixtures,
                                                                 drop_pose=args.test_without_pose)
        except TribertError as err:
            raise SystemExit(f"stream_probe: {err}") from None
        num_classes = len(system.config.data.classes)

        def top1(keep: "torch.Tensor") -> dict[str, float]:  # noqa: F821  the test solos in keep
            row = {stage: centroid_top1(train[stage], train_y, test[stage][keep], test_y[keep], num_classes)
                   for stage in train}
            row.update({name: float((score[keep].argmax(-1) == test_y[keep]).float().mean())
                        for name, score in test_scores.items()})
            return row

        row = top1(torch.ones_like(test_pose))
        results[ckpt] = {"top1": row, "train_solos": len(train_y), "test_solos": len(test_y),
                         "chance": 1 / num_classes}
        if test_pose.any() and not test_pose.all():  # some solos without pose (data.pose_missing, a missed detection)
            results[ckpt]["top1_with_pose"] = top1(test_pose)
            results[ckpt]["top1_without_pose"] = top1(~test_pose)
            results[ckpt]["test_solos_without_pose"] = int((~test_pose).sum())
        print(f"{ckpt}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items())
              + f" ({len(test_y)} test solos, chance {1 / num_classes:.2f})", flush=True)
    stages = list(dict.fromkeys(s for r in results.values() for s in r["top1"]))  # first-seen order
    print("| checkpoint | " + " | ".join(stages) + " |")
    print("|---" * (len(stages) + 1) + "|")
    for ckpt, r in results.items():
        for subset in ("top1", "top1_with_pose", "top1_without_pose"):
            if subset in r:
                label = "" if subset == "top1" else subset.replace("top1_", ", solos ").replace("_", " ")
                print(f"| {Path(ckpt).parent.parent.name}/{Path(ckpt).name}{label} | "
                      + " | ".join(f"{r[subset][s]:.2f}" if s in r[subset] else "-" for s in stages) + " |")
    atomic_write_text(Path(args.out), json.dumps({"args": vars(args), "results": results}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
