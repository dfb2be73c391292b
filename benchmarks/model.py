"""Time and memory of TriBERT forward and forward+backward at the named sizes.

    python benchmarks/model.py --sizes tiny,small,paper --batch 12 --out bench.json

A batch is ``batch`` mixtures x ``videos_per_mix`` videos (the paper: 12 x 2 = 24 video items),
each asking the separator for ``sources`` masks. "forward" is inference (eval mode, no grad);
"forward+backward" is a training step without the optimiser (train mode: dropout and token
masking on; loss = mask BCE + the three class losses).

CPU memory method: every (size, mode) runs in its own child process, so peaks do not mix; the
child reports its peak resident set size (``resource.getrusage(...).ru_maxrss``) and the RSS just
before the first measured call (``/proc/self/statm``); ``peak_increase_mb`` is the difference, i.e.
activations, gradients and workspace of that call. The child's address space is capped
(``--max-memory-gb``, ``RLIMIT_AS``) so a size that does not fit fails with an out-of-memory error
instead of pushing a shared machine into swap or the OOM killer; that is reported as "does not
fit". The first call includes one-off costs (allocator growth, oneDNN kernel selection): with
``repeats > 1`` a warm-up call runs first and the median of the timed calls is reported; with
``repeats = 1`` (the default for paper) the single call is reported as measured.

CPU timings are only meaningful on an otherwise idle machine: the 1-minute load average before
and after each measurement is recorded. On a busy machine, OpenMP threads that spin-wait for each
other can make multi-threaded calls 10-30x slower; ``--threads 1`` or ``OMP_WAIT_POLICY=PASSIVE``
(inherited by the child processes) avoids that.

GPU (when CUDA is available and ``--device`` is ``auto`` or ``cuda``): fp32 and bf16 autocast,
timed with ``torch.cuda.synchronize``; memory is ``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats`` (tensors only, not the caching allocator's reserve).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from tribert.models import build_model
from tribert.models.heads import classification_losses
from tribert.models.info import example_inputs


def training_loss(out, labels: torch.Tensor) -> torch.Tensor:
    """A training-like loss touching every output: mask BCE + the class losses."""
    target = torch.zeros_like(out.mask_logits)
    loss = F.binary_cross_entropy_with_logits(out.mask_logits.float(), target.float())
    return loss + sum(classification_losses(out, labels).values())


def make_step(model, inputs: dict, labels: torch.Tensor, mode: str, autocast_dtype=None):
    """A zero-argument callable running one forward ("fwd") or forward+backward ("fwdbwd")."""
    device_type = labels.device.type

    def step() -> None:
        cast = torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
        with cast:
            if mode == "fwd":
                with torch.no_grad():
                    model(**inputs)
                return
            loss = training_loss(model(**inputs), labels)
        loss.backward()
        model.zero_grad(set_to_none=True)

    model.train(mode == "fwdbwd")
    return step


def timed(step, repeats: int, sync=lambda: None) -> list[float]:
    """Seconds per call; one untimed warm-up call first when repeats > 1."""
    if repeats > 1:
        step()
        sync()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return times


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_worker(args) -> dict:
    """Runs inside the child process: one size, one mode, on the CPU."""
    limit = int(args.max_memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.size)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    items = args.batch * args.videos_per_mix
    inputs = example_inputs(model.config, items, args.sources)
    labels = torch.zeros(items, model.config.num_classes)
    labels[:, 0] = 1
    step = make_step(model, inputs, labels, args.mode)
    before = rss_mb()
    result = {"size": args.size, "device": "cpu", "dtype": "fp32", "mode": args.mode, "items": items,
              "sources": args.sources, "threads": torch.get_num_threads(), "repeats": args.repeats,
              "params": sum(p.numel() for p in model.parameters())}
    try:
        times = timed(step, args.repeats)
    except (RuntimeError, MemoryError) as err:
        if "memory" not in str(err).lower() and not isinstance(err, MemoryError):
            raise
        return {**result, "error": f"does not fit in {args.max_memory_gb:g} GB ({str(err).splitlines()[0][:120]})"}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {**result, "seconds": statistics.median(times), "all_seconds": times,
            "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
            "peak_increase_mb": round(peak - before, 1)}


def run_cpu(size: str, mode: str, repeats: int, args) -> dict:
    """One child process per (size, mode) so peak RSS belongs to that measurement alone."""
    cmd = [sys.executable, __file__, "--worker", "--sizes", size, "--mode", mode, "--repeats", str(repeats),
           "--batch", str(args.batch), "--videos-per-mix", str(args.videos_per_mix),
           "--sources", str(args.sources), "--threads", str(args.threads),
           "--max-memory-gb", str(args.max_memory_gb)]
    if args.channels_last:
        cmd.append("--channels-last")
    load_before = os.getloadavg()[0]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"size": size, "device": "cpu", "dtype": "fp32", "mode": mode,
                "error": f"did not finish within {args.timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"size": size, "device": "cpu", "dtype": "fp32", "mode": mode,
                "error": f"child failed (rc {proc.returncode}): {tail[:200]}"}
    # Other processes on the machine distort CPU timings: keep the 1-minute load average beside them.
    return {**json.loads(lines[-1]), "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def run_gpu(size: str, repeats: int, args) -> list[dict]:
    """fp32 and bf16-autocast forward and forward+backward on the GPU."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model(size).to(device)
    items = args.batch * args.videos_per_mix
    inputs = example_inputs(model.config, items, args.sources, device=device)
    labels = torch.zeros(items, model.config.num_classes, device=device)
    labels[:, 0] = 1
    rows = []
    for dtype_name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        for mode in ("fwd", "fwdbwd"):
            row = {"size": size, "device": torch.cuda.get_device_name(), "dtype": dtype_name, "mode": mode,
                   "items": items, "sources": args.sources, "repeats": repeats}
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            try:
                times = timed(make_step(model, inputs, labels, mode, dtype), repeats, torch.cuda.synchronize)
            except torch.cuda.OutOfMemoryError as err:
                rows.append({**row, "error": f"out of GPU memory ({str(err).splitlines()[0][:120]})"})
                model.zero_grad(set_to_none=True)
                continue
            rows.append({**row, "seconds": statistics.median(times), "all_seconds": times,
                         "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)})
    return rows


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="TriBERT benchmark (seconds per call: median of the timed calls)")
    for col in ("size", "device", "dtype", "mode", "items", "threads", "repeats", "seconds", "peak memory (MB)",
                "increase (MB)", "load"):
        table.add_column(col, justify="right" if col not in ("size", "device", "dtype", "mode") else "left")
    for r in rows:
        mode = {"fwd": "forward", "fwdbwd": "fwd+bwd"}[r["mode"]]
        if "error" in r:
            table.add_row(r["size"], r["device"], r["dtype"], mode, str(r.get("items", "")), "", "",
                          f"[red]{r['error']}[/red]", "", "", "")
            continue
        peak = r.get("peak_rss_mb", r.get("peak_gpu_mb"))
        table.add_row(r["size"], r["device"], r["dtype"], mode, str(r["items"]), str(r.get("threads", "")),
                      str(r["repeats"]), f"{r['seconds']:.3f}", f"{peak:,.0f}",
                      f"{r['peak_increase_mb']:,.0f}" if "peak_increase_mb" in r else "",
                      f"{r['load_before']:.1f}" if "load_before" in r else "")
    Console(width=max(120, Console().width)).print(table)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="tiny,small,paper", help="comma-separated: tiny, small, paper")
    p.add_argument("--batch", type=int, default=12, help="mixtures per batch (paper: 12)")
    p.add_argument("--videos-per-mix", type=int, default=2, help="videos per mixture (paper: 2)")
    p.add_argument("--sources", type=int, default=1, help="separator runs per video")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (tiny, small)")
    p.add_argument("--paper-repeats", type=int, default=1, help="timed calls for the paper size")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CPU always, and the GPU too when CUDA is available")
    p.add_argument("--channels-last", action="store_true", help="CPU: channels-last memory format")
    p.add_argument("--max-memory-gb", type=float, default=12.0, help="address-space cap of each CPU child")
    p.add_argument("--timeout", type=int, default=1800, help="seconds allowed per CPU measurement")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("fwd", "fwdbwd"), default="fwd", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        args.size = args.sizes
        print(json.dumps(cpu_worker(args)), flush=True)
        return

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    rows: list[dict] = []
    for size in sizes:
        repeats = args.paper_repeats if size == "paper" else args.repeats
        if args.device in ("auto", "cpu"):
            for mode in ("fwd", "fwdbwd"):
                rows.append(run_cpu(size, mode, repeats, args))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        if args.device in ("auto", "cuda") and torch.cuda.is_available():
            rows += run_gpu(size, max(repeats, 3), args)
        elif args.device == "cuda":
            sys.exit("--device cuda: CUDA is not available here")
    print_table(rows)
    if args.out:
        from tribert.io import atomic_write_json

        atomic_write_json(args.out, {"batch": args.batch, "videos_per_mix": args.videos_per_mix,
                                     "sources": args.sources, "torch": torch.__version__, "rows": rows})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    from tribert.errors import run_main

    run_main(main)
