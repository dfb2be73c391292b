#!/usr/bin/env bash
# Training speed on a GPU machine that has PyTorch but not this package's other dependencies
# (wheels carried in .whl/, as learning_curves.sh), at paper size (the paper recipe's shapes,
# batch 12), each table against its own plain fp32 eager loop, most important first (a run stopped
# at its time limit keeps the tables it finished, one JSON each):
#   joint      the recipe (ST-GCN trained with the rest): plain fp32 eager and the engine's GPU
#              defaults (bf16, fused AdamW, no host sync); joint_fp32: the defaults without bf16
#              (train.precision=32-true on a GPU: the faster one when the step is host-bound);
#   stored     the ST-GCN frozen (model.pose_frozen=true) and its features stored ahead of training
#              (--stored-pose, as the paper did), the same rows;
#   frozen     the ST-GCN frozen and run at every step, the same rows;
#   compile    stored + train.compile (1-4 minutes of compilation; COMPILE_S bounds it: on the
#              2026-11-27 H200 still compiling at 170 s);
#   profile    where the time of the stored step with the defaults goes (PROFILE_S bounds it).
#   bash benchmarks/gpu/train_speed.sh OUT_DIR
# The 2026-11-27 lease ran this script with channels_last tables in place of the fp32 ones
# (README "Training speed on a GPU"): channels_last moved the step by -3% to +5%, so it is dropped.
set -uo pipefail
out=${1:-gpu-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/log.txt"
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/log.txt"
quiet() { grep -v "Warning\|warn\|W1[0-9][0-9][0-9]\|Tip:\|litlogger" | tee -a "$out/log.txt"; }
speed() {  # speed NAME ROWS DROP [--set ... | --stored-pose]: one table
    local name=$1 rows=$2 drop=$3; shift 3
    python3 benchmarks/train_speed.py --sizes paper --recipe music21_paper --batch 12 --rows "$rows" \
        --drop "$drop" --warmup 5 --steps 20 --row-timeout "${COMPILE_S:-200}" \
        --out "$out/train_speed_paper_$name.json" "$@" 2>&1 | quiet
}
frozen="--set model.pose_frozen=true"
layout=channels_last,cudnn_benchmark
speed joint 0,4 $layout
speed joint_fp32 4 bf16,$layout
speed stored 0,4 $layout $frozen --stored-pose
speed stored_fp32 4 bf16,$layout $frozen --stored-pose
speed frozen 0,4 $layout $frozen
speed frozen_fp32 4 bf16,$layout $frozen
speed stored_compile 6 $layout $frozen --stored-pose
timeout "${PROFILE_S:-50}" python3 benchmarks/train_speed.py --sizes paper --recipe music21_paper --batch 12 \
    --profile 4 --drop $layout --warmup 4 $frozen --stored-pose 2>&1 | quiet
