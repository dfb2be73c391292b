"""Learning curves: test SDR against optimisation steps for TriBERT-small and its controls.

Every variant trains with configs/synth_small.yaml (same data, seed, batch 12 and step budget);
checkpoints kept at the given steps are scored on one fixed list of test mixtures from a
SynthMUSIC set generated with a seed training never saw (single-source, multi-source and
same-class duet SDR), beside the unprocessed mixture and the oracle masks. For TriBERT it also
measures how often the condition names the right class (the class head's top-1 on each source
with a known class).

    tribert synth --out data/synth2k --clips 2000 --seed 2 --splits 1,0,0
    tribert synth --out data/synth-test --clips 200 --seed 1 --splits 0,0,1
    python benchmarks/learning_curves.py --train data/synth2k/train --test data/synth-test/test \\
        --steps 250,500,1000,2000,3000 --out learning_curves.json --plot learning_curves.png

    # the ablation of the recipe's learning fixes (each row adds one change to the row above)
    python benchmarks/learning_curves.py --set ablation --steps 500 ... --out ablation.json

``--parallel N`` trains N variants at once in separate processes (a GPU machine with many
cores); ``--device cuda`` trains and scores there. The JSON holds every number of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# The controls of the learning curves: name -> overrides of configs/synth_small.yaml.
TANH_CURVE = ["model.coattention_layout=features", "model.heads_include_sos=true", "model.sos_pool_activation=tanh"]
CURVES = {
    "TriBERT-small": [],
    "TriBERT w/o pose": ["model.use_pose=false"],
    "TriBERT w/o co-attention": ["model.coattention=false"],  # = the recipe since synth_small dropped it
    "TriBERT-small + co-attention": ["model.coattention=true"],  # the recipe before it dropped co-attention
    # co-attention that starts closed (the recipe at initialisation) and opens as far as the loss gains
    "TriBERT-small + gated co-attention": ["model.coattention=true", "model.coattention_gate=true"],
    # co-attention between the performer's streams only (vision, pose): the audio stream, one
    # mixture-level vector repeated, keeps to itself
    "TriBERT-small + co-attention without audio": ["model.coattention=true", "model.coattention_audio=false"],
    # gated co-attention into the audio stream only: it reads this video's performers, while the
    # vision and pose streams compute what they would without co-attention
    "TriBERT-small + gated co-attention into audio": ["model.coattention=true", "model.coattention_gate=true",
                                                      "model.coattention_receivers=[audio]"],
    # gated co-attention that reads the other streams without training them (their hidden states
    # enter its keys and values with the gradient stopped)
    "TriBERT-small + gated co-attention, detached senders": ["model.coattention=true", "model.coattention_gate=true",
                                                             "model.coattention_detach_senders=true"],
    # ... reading only the slots that hold a performer (a solo's empty second slot left out)
    "TriBERT-small + gated co-attention, detached senders, performers only": [
        "model.coattention=true", "model.coattention_gate=true", "model.coattention_detach_senders=true",
        "model.coattention_skip_absent=true"],
    # ... and without the gate: the paper's co-attention with the senders' gradient stopped
    "TriBERT-small + co-attention, detached senders": ["model.coattention=true", "model.coattention_detach_senders=true"],
    # is it co-attention with the audio stream that keeps the vision-only model from recognising?
    "TriBERT w/o pose and co-attention": ["model.use_pose=false", "model.coattention=false"],
    "TriBERT w/o pose + gated co-attention": ["model.use_pose=false", "model.coattention=true",
                                              "model.coattention_gate=true"],
    # the recipe + the per-performer motion guide (tribert.models.motion), and without co-attention
    "TriBERT-small + motion guide": ["model.motion_guide=64"],
    "TriBERT + motion guide w/o co-attention": ["model.motion_guide=64", "model.coattention=false"],
    "TriBERT + motion guide + gated co-attention": ["model.motion_guide=64", "model.coattention=true",
                                                    "model.coattention_gate=true"],
    "TriBERT + motion guide + decoder FiLM": ["model.motion_guide=64", "model.motion_guide_film=true"],
    # ... the maps drawn beside the duet partner's motion; and with one pose step per video frame
    # (SynthMUSIC's pose is at 8 fps: 24 steps over a 3-s crop, where 32 repeat every third frame)
    "TriBERT + motion guide with partners": ["model.motion_guide=64", "model.motion_guide_partners=true"],
    "TriBERT + motion guide, 24 pose steps": ["model.motion_guide=64", "video.pose_frames=24"],
    # ... and the guide's own loss: its first map trained as the source's mask (train.motion_guide_weight)
    "TriBERT + motion guide + guide loss": ["model.motion_guide=64", "train.motion_guide_weight=1.0"],
    # ... drawn through a hidden per-frame layer; and that layer also reading the source's class
    "TriBERT + motion guide, hidden draw": ["model.motion_guide=64", "model.motion_guide_hidden=128"],
    "TriBERT + motion guide, class-conditioned draw": ["model.motion_guide=64", "model.motion_guide_hidden=128",
                                                       "model.motion_guide_condition=true"],
    # the multi-source margin: the U-Net trained to separate from the motion guide alone
    # (model.class_dropout), and mixtures of two players of one instrument (data.same_class_mix)
    "TriBERT-small, class dropout 0.3": ["model.class_dropout=0.3"],
    "TriBERT-small, class dropout 0.5": ["model.class_dropout=0.5"],
    "TriBERT-small, same-class mixtures 0.3": ["data.same_class_mix=0.3"],
    "Audio-only U-Net (true class), same-class mixtures 0.3": ["model.kind=audio_only", "data.same_class_mix=0.3"],
    "Sound-of-Pixels": ["model.kind=sound_of_pixels"],
    "Audio-only U-Net (true class)": ["model.kind=audio_only"],
    # the recipe with the authors' co-attention layout (what the H200 curves measured as TriBERT-small)
    "TriBERT-small, authors' layout + tanh pooler": TANH_CURVE,
}

# The learning fixes of the recipe, in the order the ablation adds them: (row name, the fields
# that row takes from the recipe, or "field=value" to set a value). Every field not yet taken keeps
# its earlier value (BEFORE); a value once set holds until a later row sets that field again.
BEFORE = {"train.audio_labels": "mixture", "model.whole_video_condition": "mean", "model.condition_norm": "none",
          "model.condition_classes": "none", "model.class_teacher_forcing": "0.0", "model.dropout": "0.1",
          "model.attention_dropout": "0.1", "model.token_mask_prob": "0.15", "model.visual_dropout": "0.2",
          "model.coattention_layout": "tokens", "model.heads_include_sos": "false",
          "model.sos_pool_activation": "relu"}
FIXES = [
    ("before (earlier recipe)", []),
    ("+ audio head on the video's own labels", ["train.audio_labels"]),
    ("+ solo condition from the present performer", ["model.whole_video_condition"]),
    ("+ layer-normalised condition", ["model.condition_norm"]),
    ("+ class loss on the condition", ["model.condition_classes=loss"]),
    ("+ class posteriors to the U-Net", ["model.condition_classes=posteriors"]),
    ("+ no dropout / token masking (= previous recipe)", ["model.dropout", "model.attention_dropout",
                                                          "model.token_mask_prob", "model.visual_dropout"]),
    ("+ posteriors only, true class in training (= recipe)", ["model.condition_classes",
                                                             "model.class_teacher_forcing"]),
]


def cumulative_fixes() -> dict[str, list[str]]:
    """Row name -> overrides: BEFORE, with the fields of this row and every row above taken from the
    recipe (plain field names) or set (``field=value``)."""
    rows, chosen = {}, {}  # field -> value set by a row (None: the recipe's own)
    for name, fields in FIXES:
        for entry in fields:
            key, _, value = entry.partition("=")
            chosen[key] = value or None
        rows[name] = ([f"{k}={v}" for k, v in BEFORE.items() if k not in chosen]
                      + [f"{k}={v}" for k, v in chosen.items() if v is not None])
    return rows


# Variants of the recipe as it stood before teacher forcing (PREVIOUS: embedding + posteriors to
# the U-Net): the authors' co-attention layout (and SOS in the heads), a tanh pooler on top of it,
# and three more changes on top of those two; then the ways of showing the U-Net the class.
PREVIOUS = ["model.condition_classes=posteriors", "model.class_teacher_forcing=0.0"]
AUTHORS = PREVIOUS + ["model.coattention_layout=features", "model.heads_include_sos=true"]
TANH = AUTHORS + ["model.sos_pool_activation=tanh"]
ABLATION = {
    **cumulative_fixes(),
    "recipe + authors' co-attention layout, SOS in heads": AUTHORS,
    "recipe + authors' layout + tanh SOS pooler": TANH,
    "recipe + authors' layout + tanh, sigmoid condition": TANH + ["model.condition_norm=sigmoid"],
    "recipe + authors' layout + tanh, warm-up 5% + linear decay": TANH + ["train.schedule=linear",
                                                                          "train.warmup_frac=0.05"],
    "recipe + authors' layout + tanh, class teacher forcing 0.5": TANH + ["model.class_teacher_forcing=0.5"],
    # faster class learning: a heavier class loss, and the U-Net seeing only the class posteriors
    "recipe, class loss weight 4": PREVIOUS + ["train.condition_weight=4"],
    "recipe, posteriors only": ["model.class_teacher_forcing=0.0"],
    "recipe, class head on the audio encoder": PREVIOUS + ["model.audio_encoder_classes=true"],
    "recipe, posteriors only + teacher forcing 0.5": ["model.class_teacher_forcing=0.5"],
    "recipe, posteriors only + teacher forcing 1.0": [],  # = the recipe now
    "recipe + teacher forcing 1.0": ["model.condition_classes=posteriors"],  # embedding + posteriors
}

SETS = {"curves": CURVES, "ablation": ABLATION}


def parse_only(text: str, known: dict | None = None) -> list[str]:
    """``--only`` names: separated by ';' when one holds a comma, else by ','; a single name holding
    a comma (no ';') is taken whole when it is a known variant."""
    if ";" in text:
        names = text.split(";")
    elif known is not None and text in known:
        names = [text]
    else:
        names = text.split(",")
    return [n for n in names if n]


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")[:60]


def config_for(name: str, variants: dict, args) -> "Config":  # noqa: F821
    from tribert.config import Config

    steps = [int(s) for s in args.steps.split(",")]
    return Config.load("synth_small", [
        f"data.train_dir={args.train}", f"train.max_steps={max(steps)}", "train.max_minutes=0",
        f"train.checkpoint_steps=[{','.join(map(str, steps))}]", f"data.num_workers={args.workers}",
        f"train.threads={args.threads}", f"train.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        *variants[name], *args.set_override])


def train_one(name: str, variants: dict, args) -> None:
    from tribert.engine.train import train

    t0 = time.time()
    run = train(config_for(name, variants, args), runs_dir=args.runs, name=slug(name), progress=False)
    (run / "minutes.txt").write_text(f"{(time.time() - t0) / 60:.3f}\n")
    print(f"trained {name} -> {run} in {(time.time() - t0) / 60:.1f} min", flush=True)


def latest_run(runs: Path, name: str) -> Path:
    """The newest run folder of variant ``name`` (``<date>-<time>-<slug>[-i]``, the slug exactly)."""
    pattern = re.compile(r"\d{8}-\d{6}-" + re.escape(slug(name)) + r"(-\d+)?")
    found = sorted((p for p in runs.iterdir() if pattern.fullmatch(p.name)), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no run folder for {name!r} under {runs}")
    return found[-1]


def score(names: list[str], args) -> dict:
    import torch

    from tribert.engine.checkpoint import load_system
    from tribert.engine.evaluate import evaluate
    from tribert.engine.train import eval_loader

    steps = [int(s) for s in args.steps.split(",")]
    runs = Path(args.runs)
    first = load_system(latest_run(runs, names[0]) / "checkpoints" / "last.ckpt")
    batches = list(eval_loader(first.config, args.test, limit=args.mixtures))  # read the test set once
    t0 = time.time()
    out = {"references": evaluate({}, batches, progress=False, device=args.device, config=first.config), "models": {}}
    print(f"references scored in {time.time() - t0:.1f} s", flush=True)
    for name in names:
        run = latest_run(runs, name)
        minutes = float((run / "minutes.txt").read_text()) if (run / "minutes.txt").exists() else None
        curve = {}
        for step in steps:
            ckpt = run / "checkpoints" / f"step{step:06d}.ckpt"
            if not ckpt.exists():
                print(f"  {name}: no checkpoint at step {step}", flush=True)
                continue
            system = load_system(ckpt, weights=args.weights)
            t0 = time.time()
            top1: dict = {}
            res = evaluate({name: system}, batches, oracles=False, mixture=False, progress=False,
                           device=args.device, condition=top1)[name]
            acc = top1[name]
            res["condition_accuracy"] = acc  # None: a model without a condition (the control, SoP)
            curve[str(step)] = res
            print(f"  {name} @ {step}: single {res['single']['sdr']:.2f}, multi {res['multi']['sdr']:.2f}, "
                  f"same-class {res['same_class']['sdr']:.2f} dB, condition top-1 "
                  f"{cell(acc)} ({time.time() - t0:.1f} s)", flush=True)
        out["models"][name] = {"run": str(run), "minutes": minutes,
                               "overrides": [*SETS[args.set][name], *args.set_override], "curve": curve}
    return out


def cell(value: float | None) -> str:
    """A mean SDR or the condition's top-1 as a table cell; "-" where there is none: no mixture of
    that kind among those scored, a model without a condition (null in the JSON; NaN in result
    files written before they were strict JSON)."""
    return "-" if value is None or value != value else f"{value:.2f}"


def table(results: dict) -> str:
    ref = results["references"]
    groups = ("single", "multi", "same_class")
    steps = sorted({int(s) for m in results["models"].values() for s in m["curve"]})
    lines = ["| method | " + " | ".join(f"{s} steps: single / multi / same-class" for s in steps)
             + " | condition top-1 (last) |", "|---" * (len(steps) + 2) + "|"]
    for name in ("mixture", "IBM", "IRM"):
        if name in ref:
            cells = " / ".join(cell(ref[name][g]["sdr"]) for g in groups)
            lines.append(f"| {name} | " + " | ".join(cells for _ in steps) + " | |")
    for name, m in results["models"].items():
        cells = []
        for s in steps:
            r = m["curve"].get(str(s))
            cells.append(" / ".join(cell(r[g]["sdr"]) for g in groups) if r else "-")
        last = m["curve"][str(max(int(s) for s in m["curve"]))] if m["curve"] else {}
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {cell(last.get('condition_accuracy'))} |")
    return "\n".join(lines)


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharex=True)
    titles = {"single": "single-source SDR", "multi": "multi-source SDR", "same_class": "same-class duets SDR"}
    for ax, g in zip(axes, titles):
        for name, m in results["models"].items():
            xs = sorted(int(s) for s in m["curve"])
            ax.plot(xs, [m["curve"][str(x)][g]["sdr"] for x in xs], marker="o", label=name)
        ax.axhline(results["references"]["mixture"][g]["sdr"], color="grey", ls="--", label="mixture")
        ax.set_title(titles[g])
        ax.set_xlabel("training steps (batch 12)")
        ax.set_ylabel("dB")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def same_mixtures(a: dict, b: dict) -> bool:
    """Whether two mixture rows come from the same test mixtures: the same counts and SDR (to 1e-6 dB;
    the mixture's SAR is near-infinite and differs in the last digits between runs)."""
    return all(a[g][k] == b[g][k] for g in a for k in ("sources", "mixtures", "skipped")) and \
        all(abs(a[g]["sdr"] - b[g]["sdr"]) < 1e-6 for g in a)


def merge(paths: list[str], renames: list[str], only: list[str]) -> dict:
    """One result from several JSON files of this script, scored on the same test mixtures (their
    reference rows must agree), models in the order given. ``renames`` ("i:OLD=NEW") rename the
    models of file i first; ``only`` (names after renaming) keeps a subset."""
    merged: dict = {"models": {}, "merged_from": paths, "renamed": renames}
    for i, path in enumerate(paths):
        results = json.loads(Path(path).read_text())
        for entry in renames:
            index, _, pair = entry.partition(":")
            old, _, new = pair.partition("=")
            if int(index) == i and old in results["models"]:
                results["models"] = {new if k == old else k: v for k, v in results["models"].items()}
        results["models"] = {k: v for k, v in results["models"].items() if not only or k in only}
        if "references" not in merged:
            merged["references"] = results["references"]
        elif not same_mixtures(results["references"]["mixture"], merged["references"]["mixture"]):
            raise SystemExit(f"{path}: scored on other test mixtures than {paths[0]} (the mixture rows differ)")
        merged["models"].update(results["models"])
    return merged


def write_results(results: dict, args) -> None:
    """Print the table, write the JSON (--out) and the plot (--plot)."""
    from tribert.io import atomic_write_json

    print(table(results))
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


def main() -> None:
    from tribert.engine.checkpoint import WEIGHTS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", default="", help="training clips (every stage but merge)")
    p.add_argument("--test", default="", help="test clips (every stage but merge)")
    p.add_argument("--set", choices=tuple(SETS), default="curves",
                   help="which variants: the learning curves, or the ablation rows")
    p.add_argument("--only", default="", help="subset of the variants by name, separated by ',' (or ';')")
    p.add_argument("--steps", default="250,500,1000,2000,3000", help="checkpoints to score; the last is the budget")
    p.add_argument("--mixtures", type=int, default=0, help="test mixtures to score (0: all)")
    p.add_argument("--runs", default="runs/curves", help="folder of the runs (one per variant)")
    p.add_argument("--stage", choices=("all", "train", "score", "merge"), default="all",
                   help="merge: join the --merge JSON files into --out (and --plot); nothing is trained")
    p.add_argument("--merge", nargs="+", default=[], help="result JSON files for --stage merge")
    p.add_argument("--rename", action="append", default=[],
                   help="FILE_INDEX:OLD=NEW, a model's name in the merged table (--stage merge)")
    p.add_argument("--parallel", type=int, default=1, help="variants trained at once (processes)")
    p.add_argument("--workers", type=int, default=0, help="data-loader workers per training process")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads per training process")
    p.add_argument("--device", default="cpu", help="cpu or cuda (training and scoring)")
    p.add_argument("--weights", choices=WEIGHTS, default="averaged",
                   help="score a run's weight average (train.ema_decay; where it kept one) or its raw weights")
    p.add_argument("--set-override", action="append", default=[], help="extra section.key=value for every run")
    p.add_argument("--train-one", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", default="learning_curves.json", help="JSON results (with --stage merge: the merged file)")
    p.add_argument("--plot", default="", help="also write the curves as a PNG here")
    args = p.parse_args()

    variants = SETS[args.set]
    if args.stage == "merge":  # before the name check below: merged names need not be variants
        if not args.merge:
            raise SystemExit("--stage merge needs --merge FILE [FILE ...]")
        write_results(merge(args.merge, args.rename, parse_only(args.only)), args)
        return
    if not args.train or not args.test:
        raise SystemExit("--train and --test are required (but for --stage merge)")
    if args.train_one:
        train_one(args.train_one, variants, args)
        return
    only = parse_only(args.only, variants)
    unknown = [n for n in only if args.only and n not in variants]
    if unknown:
        raise SystemExit(f"--only: no variant named {unknown[0]!r} in --set {args.set} "
                         "(names holding commas are separated by ';')")
    names = [n for n in variants if not args.only or n in only]
    if args.stage in ("all", "train"):
        t0 = time.time()
        if args.parallel <= 1:
            for name in names:
                train_one(name, variants, args)
        else:
            pending, running = list(names), []
            while pending or running:
                while pending and len(running) < args.parallel:
                    name = pending.pop(0)
                    cmd = [sys.executable, __file__, *sys.argv[1:], "--train-one", name]
                    running.append((name, subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})))
                time.sleep(2)
                for name, proc in list(running):
                    if proc.poll() is not None:
                        running.remove((name, proc))
                        if proc.returncode:
                            print(f"training {name} failed (exit {proc.returncode})", flush=True)
        print(f"training stage: {(time.time() - t0) / 60:.1f} min", flush=True)
    if args.stage in ("all", "score"):
        results = score(names, args)
        results["meta"] = {"steps": args.steps, "train": args.train, "test": args.test, "set": args.set,
                           "device": args.device, "weights": args.weights, "command": " ".join(sys.argv)}
        write_results(results, args)


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
