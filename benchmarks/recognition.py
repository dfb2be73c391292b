"""How fast does TriBERT learn to name the instrument? The condition's test top-1 against steps,
trained on the class losses alone.

TriBERT separates a source well only once its condition names the right class, so the speed of
recognition bounds the speed of separation. This trains TriBERT-small's encoders, transformer and
the class head on each source's condition with the classification losses only (vision, pose,
audio, the segmentation net's per-frame BCE and the condition's cross-entropy, with the recipe's
weights; the U-Net is not run), and every ``--every`` steps scores the condition's top-1 on fixed
test mixtures. Compare data sets (``--train``) and config changes (``--set``) at equal steps:

    python benchmarks/recognition.py --train data/synth/train --test data/synth-test/test --steps 500 \\
        --out recognition_480.json
    python benchmarks/recognition.py --train data/synth2k/train ... --set video.crop_margin=0.1 video.flip=true

One thread by default so that several of these can run side by side on a small machine.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="prepared training clips")
    p.add_argument("--test", required=True, help="prepared test clips")
    p.add_argument("--steps", type=int, default=500, help="training steps")
    p.add_argument("--every", type=int, default=100, help="score the condition's top-1 every N steps")
    p.add_argument("--mixtures", type=int, default=120, help="test mixtures to score")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--set", nargs="*", action="extend", default=[],
                   help="config overrides, key=value (several after one --set, or --set repeated)")
    p.add_argument("--out", default="recognition.json", help="JSON results")
    args = p.parse_args()

    import torch

    from tribert.config import Config
    from tribert.engine.evaluate import condition_accuracy
    from tribert.engine.system import SeparationSystem
    from tribert.engine.train import eval_loader, train_loader
    from tribert.io import atomic_write_json
    from tribert.models.heads import classification_losses
    from tribert.models.tribert import TriBERTOutput

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = Config.load("synth_small", [f"data.train_dir={args.train}", *args.set])
    system = SeparationSystem(config)
    model = system.model
    opt = system.configure_optimizers()["optimizer"]
    weights = system.class_loss_weights()
    test = list(eval_loader(config, args.test, limit=args.mixtures))
    curve, step, t0 = [], 0, time.time()
    while step < args.steps:
        for batch in train_loader(config):
            v = batch.video_inputs()
            enc = model.encode(v["frames"], v["pose"], v["mix_logmag"])
            _, logits = model.condition(enc, v["objects"], v["source_labels"])
            out = TriBERTOutput(mask_logits=None, condition_logits=logits, **vars(enc))
            losses = classification_losses(out, batch.video_labels(), batch.video_labels(),
                                           v["source_labels"], batch.mixture_labels())
            loss = sum(weights[k] * x for k, x in losses.items() if weights[k] > 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % args.every == 0:
                system.eval()  # scored through the whole model, U-Net included (its masks unused)
                with torch.no_grad():
                    top1 = condition_accuracy(system, test)
                system.train()
                curve.append({"step": step, "condition_loss": losses["condition"].item(), "test_top1": top1})
                print(f"step {step:5d}  condition loss {losses['condition'].item():.3f}  "
                      f"test top-1 {top1:.3f}  ({time.time() - t0:.0f} s)", flush=True)
            if step >= args.steps:
                break
    atomic_write_json(args.out, {"train": args.train, "test": args.test, "set": args.set, "mixtures": args.mixtures,
                                 "curve": curve})


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
