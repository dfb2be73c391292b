#!/usr/bin/env bash
# Training speed on a GPU machine that has PyTorch and Lightning but not this package's other
# dependencies (wheels carried in .whl/, as learning_curves.sh), at paper size (the paper recipe's
# shapes, batch 12), each table against its own rows in one run, tables in the order given:
#   bash benchmarks/gpu/train_speed.sh OUT_DIR [TABLE ...]
# (a run stopped at its time limit keeps the tables it finished, one JSON each). Tables:
#   joint         the recipe (ST-GCN trained with the rest): plain fp32 eager, the engine's bf16
#                 defaults (bf16, fused AdamW, no host sync), + train.cuda_graph
#   frozen        the ST-GCN frozen (model.pose_frozen=true) and run at every step: bf16 + graph
#   stored        the ST-GCN frozen, its features stored ahead (--stored-pose, as the paper): idem
#   *_fp32        the same tables' fused-AdamW rows in fp32 (train.precision=32-true): eager, graph
#   frozen_eager  the frozen table's bf16 eager row (the graph's reference in the same lease)
#   engine        `tribert train` itself at paper size (music21_paper on SynthMUSIC, whose
#                 duets are one source each there, so every batch has one shape): STEPS steps
#                 (default 100, logged every 10) with and without train.cuda_graph, the rate it logs and its losses
#   engine_frozen the same with the ST-GCN frozen (model.pose_frozen=true), the graph only
#   engine_stored the same on its stored features (`tribert pose-features`, data.stored_pose=true)
#   loader        the loader alone at paper size on the same clips, 12 workers, from disk and cached
#   loader_stored the same, the items carrying the stored features
#   compile       stored + train.compile in place of the graph (COMPILE_S bounds its compilation)
#   profile       where the time of the stored bf16 eager step goes (PROFILE_S bounds it)
# Default (what the 2026-11-28 lease left open, first): engine engine_frozen engine_stored loader
# loader_stored. That lease ran: joint frozen stored engine joint_fp32 frozen_fp32 stored_fp32
# frozen_eager (532 s).
set -uo pipefail
out=${1:-gpu-out}
shift || true
tables=${*:-engine engine_frozen engine_stored loader loader_stored}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/log.txt"
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/log.txt"
quiet() { grep -v "Warning\|warn\|W1[0-9][0-9][0-9]\|Tip:\|litlogger\|TPU\|LOCAL_RANK" | tee -a "$out/log.txt"; }
speed() {  # speed NAME ROWS DROP [--set ... | --stored-pose]: one table
    local name=$1 rows=$2 drop=$3; shift 3
    python3 benchmarks/train_speed.py --sizes paper --recipe music21_paper --batch 12 --rows "$rows" \
        --drop "$drop" --warmup 6 --steps 20 --row-timeout "${ROW_S:-120}" \
        --out "$out/train_speed_paper_$name.json" "$@" 2>&1 | quiet
}
synth() { [ -d /tmp/gsynth/train ] || python3 -m tribert.cli synth --out /tmp/gsynth --clips 96 --seed 3 --splits 1,0,0 \
    --workers 16 >/dev/null; }
engine() {  # engine TAG "true false" [--set ...]: tribert train at paper size, with and without the CUDA graph
    local tag=$1 modes=$2; shift 2
    synth
    for graph in $modes; do
        echo "tribert train music21_paper, train.cuda_graph=$graph $*" | tee -a "$out/log.txt"
        timeout "${ENGINE_S:-150}" python3 -m tribert.cli train --config music21_paper \
            --set data.train_dir=/tmp/gsynth/train --set "data.val_dir=''" --set train.val_mixtures=0 \
            --set train.max_steps="${STEPS:-100}" --set train.epoch_size=100000 --set data.num_workers=12 \
            --set train.save_every_steps=0 --set train.cuda_graph=$graph --runs-dir /tmp/gruns \
            --name "${tag}_graph_$graph" "$@" 2>&1 | grep -v "━" | quiet
        cp "$(ls -d /tmp/gruns/*${tag}_graph_$graph | tail -1)/metrics.csv" "$out/engine_${tag}_graph_$graph.csv" 2>/dev/null
    done
}
store() {  # the frozen (random) ST-GCN's features of the clips, as engine_stored's run will check them
    synth
    python3 -m tribert.cli pose-features --config music21_paper $frozen --set data.train_dir=/tmp/gsynth/train \
        --device cuda 2>&1 | quiet
}
loader() {  # loader TAG [--set ...]: the loader alone, 12 workers, from disk and cached
    local tag=$1; shift
    synth
    python3 benchmarks/input_pipeline.py --config music21_paper --train /tmp/gsynth/train --loader-only \
        --workers 12 --batches 40 --out "$out/input_pipeline_paper_$tag.json" "$@" 2>&1 | quiet
}
layout=channels_last,cudnn_benchmark
frozen="--set model.pose_frozen=true"
for table in $tables; do
    case $table in
        joint) speed joint 0,4,6 $layout ;;
        frozen) speed frozen 6 $layout $frozen ;;
        stored) speed stored 6 $layout $frozen --stored-pose ;;
        joint_fp32) speed joint_fp32 4,6 bf16,$layout ;;
        frozen_fp32) speed frozen_fp32 4,6 bf16,$layout $frozen ;;
        stored_fp32) speed stored_fp32 4,6 bf16,$layout $frozen --stored-pose ;;
        frozen_eager) speed frozen_eager 4 $layout $frozen ;;
        engine) engine joint "true false" ;;
        engine_frozen) engine frozen true $frozen ;;
        engine_stored) store; engine stored true $frozen --set data.stored_pose=true ;;
        loader) loader pose ;;
        loader_stored) store; loader stored $frozen --set data.stored_pose=true ;;
        compile) ROW_S=${COMPILE_S:-200} speed stored_compile 7 $layout $frozen --stored-pose ;;
        profile) timeout "${PROFILE_S:-50}" python3 benchmarks/train_speed.py --sizes paper --recipe music21_paper \
                     --batch 12 --profile 4 --drop $layout --warmup 4 $frozen --stored-pose 2>&1 | quiet ;;
        *) echo "unknown table $table" | tee -a "$out/log.txt" ;;
    esac
done
