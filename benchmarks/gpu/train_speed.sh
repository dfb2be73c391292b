#!/usr/bin/env bash
# Training speed on a GPU machine that has PyTorch but not this package's other dependencies
# (wheels carried in .whl/, as learning_curves.sh), at paper size (the paper recipe's shapes,
# batch 12), each table's rows in one run against its own plain fp32 eager loop:
#   1. the model as the recipe trains it (the ST-GCN trained jointly): plain fp32, the engine's GPU
#      defaults (bf16, fused AdamW, no host sync), + torch.compile;
#   2. the same with the ST-GCN frozen (model.pose_frozen=true: the paper's setting, a fixed
#      feature extractor trained apart);
#   3. where the time of the defaults goes (--profile), if time is left.
#   bash benchmarks/gpu/train_speed.sh OUT_DIR
# Each compile row spends 1-4 minutes compiling at its first step (H200: 77 s with the ST-GCN
# trained, 212 s frozen); COMPILE_S bounds each row. Earlier versions also ran a paper-size
# `tribert train` and the `small` table (README).
set -uo pipefail
out=${1:-gpu-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/log.txt"
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/log.txt"
quiet() { grep -v "Warning\|warn\|W1[0-9][0-9][0-9]\|Tip:\|litlogger" | tee -a "$out/log.txt"; }
speed() {  # speed NAME ROWS [--set ...]: one table
    local name=$1 rows=$2; shift 2
    python3 benchmarks/train_speed.py --sizes paper --recipe music21_paper --batch 12 --rows "$rows" \
        --drop channels_last,cudnn_benchmark --warmup 5 --steps 20 --row-timeout "${COMPILE_S:-240}" \
        --out "$out/train_speed_paper_$name.json" "$@" 2>&1 | quiet
}
speed frozen 0,4,6 --set model.pose_frozen=true
speed joint 0,4,6
timeout ${PROFILE_S:-60} python3 benchmarks/train_speed.py --sizes paper --recipe music21_paper --batch 12 \
    --profile 4 --drop channels_last,cudnn_benchmark --warmup 4 --set model.pose_frozen=true 2>&1 | quiet
