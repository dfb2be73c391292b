"""``tribert demo``: the whole story on SynthMUSIC in about 9 minutes on 2 CPU cores (8 of them training).

1. generate SynthMUSIC (train / val / test clip folders; no MP4 copies, which nothing here reads);
2. train TriBERT-small (configs/synth_small.yaml) for a fixed wall-clock budget;
3. evaluate on the test split beside the unprocessed mixture and the oracle masks;
4. separate one test pair (two solo clips mixed) into WAV/MP4 stems and a figure.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from tribert.data.clip import Clip, solo_clips
from tribert.errors import TribertError

log = logging.getLogger(__name__)


def mixture_references(clips, n: int) -> "np.ndarray":  # noqa: F821
    """[S, n]: each clip's audio as it sits in the mean of the clips (the separation's mixture)."""
    import numpy as np

    return np.stack([c.audio()[:n] / len(clips) for c in clips])


def stem_sdr(result, clips) -> tuple[list[float], list[float]]:
    """SDR of the separated stems, and of the unprocessed mixture, against the clips' own audio as
    it sits in the (1/N) mixture: (stems, mixture), one value per source.

    The references are the generator's WAVs; the stems come from the MP4s' (AAC) audio, so the
    scores include the codec's error, as for a real recording."""
    import numpy as np

    from tribert.metrics import bss_eval

    n = min(len(result.mixture), *(c.meta.num_samples for c in clips))
    refs = mixture_references(clips, n)
    ests = np.stack([s[:n] for s in result.stems])
    mixture = np.stack([np.asarray(result.mixture[:n])] * len(clips))
    return list(bss_eval(refs, ests)[0]), list(bss_eval(refs, mixture)[0])


# Settings the demo makes itself, and the option that changes each.
DEMO_SETS = {"data.train_dir": "--out", "data.val_dir": "--out", "data.test_dir": "--out",
             "train.max_minutes": "--minutes", "train.seed": "--seed"}


def run_demo(out: str | Path = "demo-output", clips: int = 1000, minutes: float = 8.0, seed: int = 0,
             workers: int = 0, eval_mixtures: int = 40, recipe: str = "synth_small",
             overrides: tuple[str, ...] = (), progress: bool = True) -> dict:
    from tribert.data.synth import generate
    from tribert.engine.checkpoint import load_system
    from tribert.config import Config
    from tribert.engine.evaluate import evaluate, format_table, write_results
    from tribert.engine.train import check_run_settings, eval_loader, train
    from tribert.errors import TribertError
    from tribert.io import check_out_dir
    from tribert.separate import Separator

    if not 0 < minutes < math.inf or clips < 20:  # the test split (a tenth) needs solos to mix and a pair
        raise TribertError(f"the demo needs a finite --minutes > 0 and --clips >= 20, got {minutes:g} and {clips}")
    out = Path(out)
    check_out_dir(out)
    t0 = time.time()
    synth_dir = out / "synth"
    # The recipe and its overrides are resolved first: a bad --set is one line before any data is made.
    for override in overrides:  # the demo's own settings would silently win over these
        key = override.split("=", 1)[0].strip()
        if key in DEMO_SETS:
            raise TribertError(f"--set {key}: the demo sets it itself; use {DEMO_SETS[key]}")
    Config.load(recipe, list(overrides))  # an error here names only what the user typed
    config = Config.load(recipe, [*overrides, f"data.train_dir={synth_dir / 'train'}",
                                  f"data.val_dir={synth_dir / 'val'}", f"data.test_dir={synth_dir / 'test'}",
                                  f"train.max_minutes={minutes}", f"train.seed={seed}"])
    check_run_settings(config)  # a missing train.init_from costs one line, not the data first
    log.info("[1/4] SynthMUSIC: %d clips -> %s", clips, synth_dir)
    # More clips beat more steps here: with 4x the training clips the condition's test top-1 after
    # 500 steps rose from 0.78 to 0.92 (docs/results/learning.md, "Recognition alone"). Skipping
    # the MP4 copies (a third of the generation time) pays for them.
    generate(synth_dir, clips=clips, seed=seed, workers=workers, mp4=False, progress=progress)

    log.info("[2/4] training TriBERT (%s) for %g minutes", recipe, minutes)
    run_dir = train(config, runs_dir=out / "runs", name="tribert", progress=progress)
    ckpt = run_dir / "checkpoints" / "last.ckpt"

    log.info("[3/4] evaluating on the test split")
    system = load_system(ckpt)
    loader = eval_loader(system.config, synth_dir / "test", limit=eval_mixtures)
    top1: dict = {}
    results = evaluate({"TriBERT": system}, loader, progress=progress, condition=top1)
    table = format_table(results)
    log.info("%s", table)
    accuracy = top1["TriBERT"]
    if accuracy is not None:
        log.info("the condition names the right instrument for %.1f%% of the test sources", 100 * accuracy)
    write_results(out / "results.json", results, {"checkpoint": str(ckpt), "data": str(synth_dir / "test")})

    log.info("[4/4] separating a test pair")
    solos = solo_clips(synth_dir / "test")
    if len(solos) < 2:
        raise TribertError("the test split has fewer than two solo clips; generate more clips", synth_dir)
    # The prepared clip folders carry pose (ground truth here; mediapipe for `tribert prepare`d
    # videos). The model leans on pose: separating the bare MP4s without pose, the same pair
    # scored -2.5 dB each on one demo checkpoint, against 5.8 / -4.4 dB with pose.
    sep = Separator(system)
    result = sep.separate(solos[:2])
    written = result.write(out / "separated")
    pair_sdr, pair_mix_sdr = stem_sdr(result, [Clip(p) for p in solos[:2]])
    log.info("separated %s against the generator's own sources",
             ", ".join(f"{n}: SDR {d:.2f} dB ({d - m:+.2f} dB over the mixture)"
                       for n, d, m in zip(result.names, pair_sdr, pair_mix_sdr)))

    gain = results["TriBERT"]["single"]["sdr"] - results["mixture"]["single"]["sdr"]
    summary = {"minutes": (time.time() - t0) / 60, "run": str(run_dir), "checkpoint": str(ckpt),
               "results": str(out / "results.json"), "separated": str(out / "separated"),
               "sdr_gain_over_mixture_db": gain, "separated_pair_sdr_db": [float(x) for x in pair_sdr],
               "separated_pair_mixture_sdr_db": [float(x) for x in pair_mix_sdr],
               "condition_accuracy": accuracy}
    log.info(f"\nDone in {summary['minutes']:.1f} min. TriBERT is {gain:+.2f} dB SDR over the mixture "
          f"(single-source).\n  data:      {synth_dir}\n  run:       {run_dir}\n  results:   {out / 'results.json'}"
          f"\n  separated: {out / 'separated'} ({len(written)} files: WAV and MP4 per source, mixture.wav, separation.png)")
    return summary
