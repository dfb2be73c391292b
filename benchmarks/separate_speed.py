"""Real-time factor of separation: seconds of compute per second of audio, by stage.

In one run, for each model (TriBERT-small, Sound-of-Pixels-small, TriBERT-paper; weights are
random: they do not change the cost), on the same inputs:

- a 6-s pair from prepared clip folders, and the same pair from its MP4s (decoded and prepared
  as training videos are; pose "none", and MediaPipe pose with ``--mediapipe``);
- a long recording (``--long-video``, e.g. a 3-minute SynthMUSIC clip) with its own audio.

Stages: ``start`` (building the model / loading weights), ``decode`` (videos -> frames, audio,
pose), ``model`` (windows through the network, masks, iSTFT), ``write`` (WAVs, MP4s, figure).
RTF = seconds / audio seconds; ``model`` alone and ``total`` (start-up included) are reported.

    tribert synth --out /tmp/long --clips 1 --duration 180 --splits 0,0,1 --seed 5
    python benchmarks/separate_speed.py --clips data/synth-test/test/<a> data/synth-test/test/<b> \\
        --long-video /tmp/long/videos/<clip>.mp4 --out separate_speed.json
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

MODELS = {"TriBERT-small": ("synth_small", []), "Sound-of-Pixels-small": ("synth_small", ["model.kind=sound_of_pixels"]),
          "TriBERT-paper": ("music21_paper", ["train.accelerator=cpu", "train.precision=32-true"])}


def main() -> None:
    import torch

    from tribert.data.clip import Clip
    from tribert.config import Config
    from tribert.engine.system import SeparationSystem
    from tribert.io import atomic_write_json
    from tribert.separate import Separator, load_video

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", nargs=2, required=True, help="two prepared clip folders (a 6-s pair)")
    p.add_argument("--long-video", default=None, help="a long recording (video file with audio)")
    p.add_argument("--models", default=",".join(MODELS), help="models to time, comma-separated")
    p.add_argument("--long-models", default="TriBERT-small,Sound-of-Pixels-small",
                   help="models that also run the long recording (paper size on CPU would take many minutes)")
    p.add_argument("--mediapipe", action="store_true", help="also time MediaPipe pose on the MP4s")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default="separate_speed.json", help="JSON results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    videos_dir = Path(args.clips[0]).parents[1] / "videos"
    mp4s = [videos_dir / f"{Clip(c).meta.id}.mp4" for c in args.clips]

    rows = []
    for name in args.models.split(","):
        recipe, overrides = MODELS[name]
        t0 = time.perf_counter()
        torch.manual_seed(0)
        sep = Separator(SeparationSystem(Config.load(recipe, overrides)))
        start_s = time.perf_counter() - t0
        a, v = sep.config.audio, sep.config.video
        cases = [("6-s pair, prepared clips", args.clips, "none")]
        if all(m.is_file() for m in mp4s):
            cases.append(("6-s pair, MP4s, no pose", [str(m) for m in mp4s], "none"))
            if args.mediapipe:
                cases.append(("6-s pair, MP4s, MediaPipe pose", [str(m) for m in mp4s], "mediapipe"))
        if args.long_video and name in args.long_models.split(","):
            cases.append(("long recording, MP4 (duet), no pose", [args.long_video], "none"))
        for case, inputs, pose in cases:
            t0 = time.perf_counter()
            duet = len(inputs) == 1
            decoded = [load_video(x, a.sample_rate, v.fps, pose, persons=2 if duet else 1,
                                  max_persons=v.max_persons) for x in inputs]
            decode_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = sep.separate(decoded, pose=pose)
            model_s = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                result.write(tmp)
                write_s = time.perf_counter() - t0
            audio_s = len(result.mixture) / a.sample_rate
            total = start_s + decode_s + model_s + write_s
            rows.append({"model": name, "case": case, "audio_s": round(audio_s, 2), "start_s": start_s,
                         "decode_s": decode_s, "model_s": model_s, "write_s": write_s, "total_s": total,
                         "rtf_model": model_s / audio_s, "rtf_total": total / audio_s})
            r = rows[-1]
            print(f"{name:22s} {case:36s} {audio_s:6.1f} s audio  start {start_s:5.2f}  decode {decode_s:6.2f}  "
                  f"model {model_s:6.2f}  write {write_s:5.2f}  RTF model {r['rtf_model']:.3f}  total {r['rtf_total']:.3f}",
                  flush=True)
    base = {r["case"]: r for r in rows if r["model"] == "Sound-of-Pixels-small"}
    for r in rows:
        if r["case"] in base:
            r["model_time_vs_sound_of_pixels"] = r["model_s"] / base[r["case"]]["model_s"]
    atomic_write_json(args.out, {"rows": rows, "threads": args.threads, "cpus": os.cpu_count(),
                                 "load_average": os.getloadavg()[0], "torch": torch.__version__})


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
