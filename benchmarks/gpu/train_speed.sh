#!/usr/bin/env bash
# Training speed on a GPU machine that has PyTorch but not this package's other dependencies
# (wheels carried in .whl/, as learning_curves.sh):
#   1. benchmarks/train_speed.py at paper size (the paper recipe's shapes, batch 12): GPU settings
#      against a plain fp32 eager loop, in one run; then --profile (where the time goes);
#   2. a paper-size `tribert train` of the engine itself on SynthMUSIC (Lightning and the loader,
#      the engine's GPU defaults, no compile: its pause would fill the short budget), for its steps/s;
#   3. the same speed table for `small` (synth_small's shapes).
#   bash benchmarks/gpu/train_speed.sh OUT_DIR
set -uo pipefail
out=${1:-gpu-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/log.txt"
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/log.txt"
quiet() { grep -v "Warning\|warn\|W1[0-9][0-9][0-9]\|Tip:\|litlogger" | tee -a "$out/log.txt"; }
# ROWS (benchmarks/train_speed.py): 0 plain, 1 bf16, 2 channels_last, 3 fused, 4 no sync, 5 cudnn, 6 compile.
# Default: the engine's GPU defaults (channels_last and cudnn.benchmark, measured slower / costly
# in use, left out) against plain fp32, then torch.compile on top; ROWS=0,1,2,3,4,5 DROP= for the
# full table measured first.
timeout ${PAPER_S:-420} python3 benchmarks/train_speed.py --sizes paper --recipe music21_paper --batch 12 \
    --rows ${ROWS:-0,4,6} --drop "${DROP-channels_last,cudnn_benchmark}" \
    --warmup 5 --steps 20 --out "$out/train_speed_paper.json" 2>&1 | quiet
timeout ${PROFILE_S:-120} python3 benchmarks/train_speed.py --sizes paper --recipe music21_paper --batch 12 \
    --profile 4 --drop channels_last --warmup 4 2>&1 | quiet
t0=$(date +%s)
python3 -m tribert.cli synth --out data/synth --clips 300 --seed 0 --workers 16 >/dev/null
echo "synth: $(( $(date +%s) - t0 )) s" | tee -a "$out/log.txt"
sets=""; for kv in data.train_dir=data/synth/train data.num_workers=14 train.val_mixtures=0 \
    train.epoch_size=100000 train.max_steps=100000 train.max_minutes=${TRAIN_MIN:-1.5} train.log_every=10 \
    train.save_every_steps=0; do sets="$sets --set $kv"; done
timeout ${TRAIN_S:-150} python3 -m tribert.cli train --config music21_paper --runs-dir runs/gpu --name paper-smoke \
    $sets > "$out/paper_smoke.log" 2>&1
tr '\r' '\n' < "$out/paper_smoke.log" | grep -v "Warning\|warn\|W1[0-9][0-9][0-9]" | grep -v "^ *$" | tail -n 8 | tee -a "$out/log.txt"
cp runs/gpu/*/metrics.csv "$out/paper_smoke_metrics.csv" 2>/dev/null
python3 - "$out" <<'PY' | tee -a "$out/log.txt"
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1] + "/paper_smoke_metrics.csv")) if r.get("train/loss")]
steps = [int(r["step"]) for r in rows]
print(f"paper-size tribert train: {len(rows)} logged rows, last step {max(steps) if steps else 0}")
PY
timeout ${SMALL_S:-90} python3 benchmarks/train_speed.py --sizes small --recipe synth_small --batch 12 \
    --warmup 5 --steps 30 --out "$out/train_speed_small.json" 2>&1 | quiet
