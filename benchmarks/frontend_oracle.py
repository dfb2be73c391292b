"""What the log-frequency warp costs: ideal masks through our front-end vs on the linear STFT.

On two-instrument SynthMUSIC mixtures (fixed list, centred crops, gains 1/2), scores with
mir_eval (or fast_bss_eval) the unprocessed mixture, the ideal binary mask computed on the
256-row warped grid and taken back through the inverse warp (what a network's mask goes through),
and the same masks on the linear 512-bin STFT. Prints a table and writes JSON.

    python benchmarks/frontend_oracle.py --data data/synth-test/test --mixtures 40 --out frontend_oracle.json
"""

from __future__ import annotations

import argparse
import time

import torch

from tribert.audio import AudioFrontEnd
from tribert.config import AudioConfig, DataConfig, VideoConfig
from tribert.data.mixing import MixDataset, load_clips, make_mixture_list
from tribert.engine.evaluate import oracle_wavs
from tribert.io import atomic_write_json
from tribert.metrics import SeparationScores, score_mixture

METHODS = ("mixture", "IBM warped (front-end)", "IBM linear", "IRM warped (front-end)", "IRM linear")


def oracle_table(data_dir: str, mixtures: int, backend: str = "mir_eval", seed: int = 0,
                 audio: AudioConfig | None = None) -> dict:
    """Mean SDR/SIR/SAR per method over two-solo mixtures (one source per clip)."""
    audio = audio or AudioConfig()
    data = DataConfig(use_stems=False)
    clips = [c for c in load_clips(data_dir, data.classes) if len(c.meta.labels) == 1]
    specs = make_mixture_list(clips, 2, audio.crop_samples, seed)[:mixtures]
    ds = MixDataset(clips, audio, VideoConfig(frame_size=32, pose_frames=8), data, mixtures=specs)
    fe = AudioFrontEnd(audio)
    scores = {m: SeparationScores() for m in METHODS}
    n = audio.eval_samples
    for i in range(len(ds)):
        item = ds[i]
        ref = item.real(0, item.source_wavs)[None]  # [1, 2, L]
        mix = item.mix_wav
        est = {"mixture": mix[:, None].expand(-1, 2, -1)}
        for kind in ("ibm", "irm"):
            est[f"{kind.upper()} warped (front-end)"] = oracle_wavs(fe, ref, mix, kind, warped=True)
            est[f"{kind.upper()} linear"] = oracle_wavs(fe, ref, mix, kind, warped=False)
        for m in METHODS:
            score_mixture(scores[m], ref[0, :, :n], est[m][0, :, :n], backend)
    return {m: s.mean() for m, s in scores.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of SynthMUSIC (or prepared) clips")
    p.add_argument("--mixtures", type=int, default=40, help="two-instrument test mixtures to score")
    p.add_argument("--backend", default="mir_eval", choices=["mir_eval", "fast"],
                   help="BSS Eval implementation (fast: ours in torch)")
    p.add_argument("--out", default="frontend_oracle.json", help="JSON results")
    args = p.parse_args()
    t0 = time.time()
    res = oracle_table(args.data, args.mixtures, args.backend)
    print(f"{'method':<26} {'SDR':>7} {'SIR':>7} {'SAR':>7}   (dB, {res['mixture']['mixtures']} mixtures, {args.backend})")
    for m, r in res.items():
        print(f"{m:<26} {r['sdr']:>7.2f} {r['sir']:>7.2f} {r['sar']:>7.2f}")
    cost = res["IBM linear"]["sdr"] - res["IBM warped (front-end)"]["sdr"]
    print(f"warp cost (IBM linear - IBM through the front-end): {cost:.2f} dB SDR")
    atomic_write_json(args.out, {"results": res, "warp_cost_db": cost, "data": args.data, "mixtures": args.mixtures,
                                 "backend": args.backend, "seconds": time.time() - t0, "torch": torch.__version__})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
