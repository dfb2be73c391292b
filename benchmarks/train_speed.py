"""Training throughput and memory: each GPU setting against a plain fp32 eager loop, in one run.

    python benchmarks/train_speed.py --sizes paper --batch 12 --device cuda \\
        --out benchmarks/results/train_speed_h100.json

Each row adds one setting to the row above it, on the same machine in the same process, so the
ratio against the first row is what the settings up to that row buy together (``--rows`` picks
which rows run, each still with every setting above it; ``--drop`` leaves settings out of all):

    plain fp32 eager   fp32, AdamW with torch's defaults, the loss read back every step (the
                       non-finite check of a plain loop: one host sync per step)
    + bf16 autocast    train.precision=bf16-mixed
    + channels_last    train.channels_last=true
    + fused AdamW      what SeparationSystem.configure_optimizers picks on a GPU
    + no host sync     the non-finite flag stays on the device and is read every log_every steps
                       (what the engine does on a GPU)
    + cudnn.benchmark  train.cudnn_benchmark=true: cuDNN times its algorithms for each new shape
    + CUDA graph       train.cuda_graph=true: forward, losses and backward captured once (after 3
                       eager steps, within the warm-up) and replayed (engine/cuda_graph.py); on a
                       CPU the same static-batch path runs without a graph
    + torch.compile    train.compile=true in place of the CUDA graph (its compilation time is
                       reported apart)

A step is the engine's own: ``SeparationSystem`` forward and losses (mask BCE + the class
losses) under autocast, backward, gradient clipping at ``train.grad_clip``, AdamW, the LR
schedule. The batch is random with the recipe's shapes, every video a solo (one source and one
padding slot, as in MUSIC21), already on the device: the loader is measured apart
(``input_pipeline.py``). Lightning's own per-step work is not in these numbers.

The paper trained 500k steps of batch 12 in 192 hours on 4 GTX 1080; ``--schedule-steps`` turns
the fastest row into hours for that schedule on this one device.

``--stored-pose`` (with ``model.pose_frozen=true``) times the step of a run on the frozen
ST-GCN's features stored ahead of training (``tribert pose-features``, ``data.stored_pose``), as
the paper did: the batch carries the features of its pose and the model skips the ST-GCN.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from tribert.config import Config
from tribert.config.run import recipe_path
from tribert.data.batch import MixBatch
from tribert.engine.cuda_graph import CapturedStep
from tribert.engine.system import SeparationSystem
from tribert.io import atomic_write_json

# (row name, settings added to the row above); the engine's GPU defaults are the last row.
ROWS = [
    ("plain fp32 eager", {}),
    ("+ bf16 autocast", {"bf16": True}),
    ("+ channels_last", {"channels_last": True}),
    ("+ fused AdamW", {"fused": True}),
    ("+ no host sync", {"no_sync": True}),
    ("+ cudnn.benchmark", {"cudnn_benchmark": True}),
    ("+ CUDA graph", {"cuda_graph": True}),
    ("+ torch.compile", {"compile": True, "cuda_graph": False}),  # in place of the graph (train.py: one or the other)
]


def row_settings(row: int, drop: str = "") -> dict:
    """The settings of ``ROWS[row]``: its own and every row's above, less those named in ``drop``."""
    if not 0 <= row < len(ROWS):
        raise SystemExit(f"row {row}: the rows are 0..{len(ROWS) - 1} ({', '.join(name for name, _ in ROWS)})")
    dropped = set(filter(None, drop.split(",")))
    unknown = dropped - {k for _, added in ROWS for k in added}
    if unknown:
        raise SystemExit(f"--drop: unknown setting {sorted(unknown)[0]!r}")
    return {k: v for _, added in ROWS[:row + 1] for k, v in added.items() if k not in dropped}


def random_batch(config: Config, batch_size: int, device: str, seed: int = 0) -> MixBatch:
    """B solos-of-N-videos mixtures with the recipe's shapes (random values, valid labels)."""
    g = torch.Generator().manual_seed(seed)
    a, v = config.audio, config.video
    b, n, p, c = batch_size, config.data.num_mix, v.max_persons, config.model.num_classes
    s, f, t, length = n * p, a.warp_bins, a.frames, a.crop_samples
    classes = torch.randint(c, (b, n), generator=g)
    source_label = torch.full((b, s), -1, dtype=torch.long)
    source_label[:, ::p] = classes  # slot n * P: the whole video n; the other slots are padding
    valid = source_label >= 0
    mix_mag = torch.rand(b, 1, f, t, generator=g)
    batch = MixBatch(
        mix_wav=torch.randn(b, length, generator=g), mix_mag=mix_mag, mix_logmag=torch.log(mix_mag + a.log_eps),
        weight=torch.log1p(mix_mag).clamp(1e-3, 10), source_wavs=torch.randn(b, s, length, generator=g),
        source_mags=torch.rand(b, s, 1, f, t, generator=g),
        masks=(torch.rand(b, s, 1, f, t, generator=g) > 0.5).float(),
        source_video=MixBatch.slot_videos(n, p).expand(b, s).contiguous(),
        source_object=torch.full((b, s), -1, dtype=torch.long), source_label=source_label, source_valid=valid,
        frames=torch.randn(b, n, v.num_frames, 3, v.frame_size, v.frame_size, generator=g),
        pose=torch.rand(b, n, p, v.pose_frames, 68, 3, generator=g),
        labels=torch.nn.functional.one_hot(classes, c).float())
    return batch.to(device)


STORED_POSE_NEEDS = ("--stored-pose needs a pose stream and --set model.pose_frozen=true "
                     "(only a fixed ST-GCN's features can be stored ahead of training)")


def with_stored_pose(system: SeparationSystem, batch: MixBatch) -> MixBatch:
    """``batch`` carrying the frozen ST-GCN's features of its pose, as ``data.stored_pose`` loads
    them (float32 [B, N, K, P, D]): the model then skips the ST-GCN, as in a run on stored features."""
    if not system.config.model.frozen_stgcn():
        raise SystemExit(STORED_POSE_NEEDS)
    with torch.no_grad():
        features = system.model.pose.features(batch.video_inputs()["pose"]).float()  # [V, K, P, D]
    return batch.replace(pose_features=features.unflatten(0, (batch.batch_size, batch.num_videos)))


def build(config: Config, settings: dict, device: str, batch: MixBatch):
    """The system, its optimiser, LR schedule and the batch it trains on for one row's settings
    (``stored_pose``: ``batch`` with the stored features added)."""
    config = Config.from_dict(config.to_dict())
    config.train.channels_last = bool(settings.get("channels_last"))
    config.train.compile = bool(settings.get("compile"))
    torch.backends.cudnn.benchmark = bool(settings.get("cudnn_benchmark"))
    torch.backends.cuda.matmul.allow_tf32 = bool(settings.get("tf32"))  # fp32 matmuls on TF32 tensor cores
    torch.manual_seed(0)
    system = SeparationSystem(config).to(device).train()
    if settings.get("stored_pose"):
        batch = with_stored_pose(system, batch)
    if settings.get("fused"):
        opt_cfg = system.configure_optimizers()  # the engine's: fused on a GPU
        opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]["scheduler"]
    else:
        opt = torch.optim.AdamW(system.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return system, opt, sched, batch


def make_step(system: SeparationSystem, opt, sched, batch: MixBatch, settings: dict, device: str):
    """One training step as the engine takes it (see the module docstring)."""
    cast = (lambda: torch.autocast(torch.device(device).type, dtype=torch.bfloat16)) if settings.get("bf16") \
        else contextlib.nullcontext
    clip = system.config.train.grad_clip
    # the engine's captured step: its zero_grad is its own
    captured = system.captured_step() if settings.get("cuda_graph") else None

    def step() -> None:
        with cast():
            if captured is not None:
                loss = captured(batch)["loss"]
            else:
                out, mask_logits = system(batch)
                loss = system.losses(batch, out, mask_logits)["loss"]
        if captured is None:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(system.parameters(), clip)
        opt.step()
        if captured is None:
            opt.zero_grad(set_to_none=True)
        sched.step()
        if settings.get("no_sync"):
            system._flag_nonfinite(loss.detach())  # read back every log_every steps, not here
        elif not torch.isfinite(loss):  # the plain loop's per-step check: a host sync
            raise RuntimeError(f"loss is {loss.item()}")

    return step


def measure(config: Config, settings: dict, batch: MixBatch, device: str, warmup: int, steps: int) -> dict:
    if settings.get("cuda_graph") and warmup <= CapturedStep.WARMUP:
        raise SystemExit(f"the CUDA graph row captures after {CapturedStep.WARMUP} eager steps: --warmup must be more")
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    system, opt, sched, batch = build(config, settings, device, batch)
    step = make_step(system, opt, sched, batch, settings, device)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    step()  # first step: compilation (compile row), cuDNN autotuning, allocator growth
    sync()
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if settings.get("no_sync"):
        system.check_finite()
    sync()
    seconds = (time.perf_counter() - t0) / steps
    row = {"first_step_s": round(first, 2), "ms_per_step": round(1000 * seconds, 2),
           "mixtures_per_s": round(batch.batch_size / seconds, 2)}
    if device.startswith("cuda"):
        row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    del system, opt, sched, step
    if settings.get("compile"):
        torch._dynamo.reset()
    return row


def run_row(args, size: str, settings: dict) -> dict:
    """One row in its own process: a crash in a kernel (torch 2.13's CPU backward segfaults with
    channels_last) becomes that row's error, and each row's peak memory is its own."""
    cmd = [sys.executable, __file__, "--worker", json.dumps(settings), "--sizes", size, "--recipe", args.recipe,
           "--batch", str(args.batch), "--device", args.device, "--warmup", str(args.warmup),
           "--steps", str(args.steps), "--threads", str(args.threads)] + ["--stored-pose"] * args.stored_pose
    for kv in args.set:
        cmd += ["--set", kv]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.row_timeout or None)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped at --row-timeout {args.row_timeout} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return {"error": f"exit {proc.returncode}: {err[-1][:200] if err else 'no message'}"}


def worker(args) -> None:
    settings = {**json.loads(args.worker), "stored_pose": args.stored_pose}
    config = Config.load(recipe_path(args.recipe), overrides=[f"model.size={args.sizes}", *args.set])
    batch = random_batch(config, args.batch, args.device)
    try:
        row = measure(config, settings, batch, args.device, args.warmup, args.steps)
    except Exception as err:  # a setting this machine cannot run is a row, not the end
        row = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    print(json.dumps(row))


def profile(args) -> None:
    """Where a step's time goes: GPU time of each model block's forward (CUDA events around
    each top-level block), then torch.profiler's operators by device time over 3 steps."""
    settings = {**row_settings(args.profile, args.drop), "stored_pose": args.stored_pose}
    config = Config.load(recipe_path(args.recipe), overrides=[f"model.size={args.sizes.split(',')[0]}", *args.set])
    batch = random_batch(config, args.batch, args.device)
    system, opt, sched, batch = build(config, settings, args.device, batch)
    step = make_step(system, opt, sched, batch, settings, args.device)
    for _ in range(args.warmup):
        step()
    times: dict[str, list] = {}

    def timer(name):
        def pre(module, inputs):
            start = torch.cuda.Event(enable_timing=True)
            start.record()
            times.setdefault(name, []).append([start, None])

        def post(module, inputs, output):
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            times[name][-1][1] = end
        return pre, post

    handles = []
    for name, block in system.model.named_children():
        pre, post = timer(name)
        handles += [block.register_forward_pre_hook(pre), block.register_forward_hook(post)]
    t0 = time.perf_counter()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    total = (time.perf_counter() - t0) / 3 * 1000
    for h in handles:
        h.remove()
    print(f"{ROWS[args.profile][0]}: {total:.1f} ms per step; forward GPU time per block (ms per step):")
    for name, pairs in times.items():
        print(f"  {name:18s} {sum(a.elapsed_time(b) for a, b in pairs if b is not None) / 3:8.1f}")
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=60))
    # the host's side: a step whose GPU time is below its wall time waits on these
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=60))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="paper", help="comma-separated model sizes")
    ap.add_argument("--recipe", default="music21_paper", help="the recipe whose audio/video shapes are used")
    ap.add_argument("--batch", type=int, default=12, help="mixtures per step (paper: 12)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="cuda or cpu (default: cuda where torch sees one)")
    ap.add_argument("--rows", default="", help="comma-separated row numbers (0 = plain); default all "
                                                "(all but torch.compile on a CPU)")
    ap.add_argument("--drop", default="", help="settings left out of every row, e.g. channels_last,cudnn_benchmark "
                                               "(a row then repeats the one above if it only adds those)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for every row, e.g. model.pose_frozen=true (repeatable)")
    ap.add_argument("--stored-pose", action="store_true",
                    help="time the step with the frozen ST-GCN's features stored ahead (needs model.pose_frozen=true)")
    ap.add_argument("--row-timeout", type=float, default=0, help="seconds a row may take (0 = no limit)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per row first")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per row")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--schedule-steps", type=int, default=500_000, help="steps of the schedule to cost (paper: 500k)")
    ap.add_argument("--out", default="", help="JSON results, rewritten after every row")
    ap.add_argument("--profile", type=int, default=-1, metavar="ROW",
                    help="instead: profile 3 steps of this row (first size) and print where the time goes")
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args)
    if args.stored_pose and not Config.load(recipe_path(args.recipe), overrides=args.set).model.pose_frozen:
        raise SystemExit(STORED_POSE_NEEDS)
    if args.profile >= 0:
        if not args.device.startswith("cuda"):
            raise SystemExit("--profile times the GPU with CUDA events: it needs --device cuda")
        return profile(args)
    if args.rows:
        if not all(i.strip().isdigit() for i in args.rows.split(",")):
            raise SystemExit(f"--rows: comma-separated row numbers, got {args.rows!r}")
        chosen = [int(i) for i in args.rows.split(",")]
        for i in chosen:
            row_settings(i)  # an unknown row stops here, before any row runs
    else:
        chosen = list(range(len(ROWS) if args.device.startswith("cuda") else len(ROWS) - 1))
    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"{machine}; torch {torch.__version__}; batch {args.batch}; {args.steps} timed steps after {args.warmup}")
    meta = {"machine": machine, "torch": torch.__version__, "batch": args.batch, "recipe": args.recipe, "set": args.set,
            "stored_pose": args.stored_pose,
            "warmup": args.warmup, "steps": args.steps, "schedule_steps": args.schedule_steps}
    results = []
    for size in args.sizes.split(","):
        base = None
        for i in chosen:
            name, settings = ROWS[i][0], row_settings(i, args.drop)
            row = run_row(args, size, settings)
            row = {"size": size, "row": name, **row}
            if "ms_per_step" in row:
                base = base or row["ms_per_step"]
                row["speedup"] = round(base / row["ms_per_step"], 2)
                row["schedule_hours"] = round(args.schedule_steps * row["ms_per_step"] / 3.6e6, 1)
            results.append(row)
            print(f"{size:6s} {name:18s} " + (row["error"] if "error" in row else
                  f"{row['ms_per_step']:8.1f} ms/step {row['mixtures_per_s']:7.1f} mix/s "
                  f"x{row['speedup']:<5} first step {row['first_step_s']:6.1f} s "
                  f"{row.get('peak_memory_gb', '-')} GB  {args.schedule_steps} steps: {row['schedule_hours']} h"),
                  flush=True)
            if args.out:  # after every row: a run stopped at its time limit keeps what it measured
                atomic_write_json(args.out, {"meta": meta, "rows": results})


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
