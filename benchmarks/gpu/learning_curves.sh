#!/usr/bin/env bash
# The learning curves on a GPU machine that has PyTorch but not this package's other
# dependencies: wheels carried in .whl/ (docs/training.md, "A GPU machine without internet access"),
# SynthMUSIC generated there (the training set: CLIPS clips of seed SEED, split SPLITS; the CPU
# curves' 2000 training clips are CLIPS=2000 SEED=2 SPLITS=1,0,0).
#   bash benchmarks/gpu/learning_curves.sh OUT_DIR
# Optional: ONLY (the variants), STEPS, PARALLEL, MAX_MINUTES, SET (one more --set-override).
# On one H200 with 16 cores (2000 clips, 6 variants at once): synth ~30 s, TriBERT-small ~2000 steps
# and the control 3000 in 6 minutes; the first ~2 minutes of training go to start-up and the first
# pass over the clips (a 2.3-minute run reached only ~350 steps), so give MAX_MINUTES >= 5.
set -euo pipefail
out=${1:-gpu-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee "$out/log.txt"
t0=$(date +%s)
python3 -m tribert.cli synth --out data/synth --clips ${CLIPS:-600} --seed ${SEED:-0} --splits ${SPLITS:-0.8,0.1,0.1} \
    --workers 16 >/dev/null
python3 -m tribert.cli synth --out data/synth-test --clips 200 --seed 1 --splits 0,0,1 --workers 16 >/dev/null
echo "synth: $(( $(date +%s) - t0 )) s" | tee -a "$out/log.txt"
python3 benchmarks/learning_curves.py --train data/synth/train --test data/synth-test/test \
    --steps ${STEPS:-250,500,1000,2000,3000} --parallel ${PARALLEL:-7} --workers 2 --threads 1 --device cuda \
    --set-override train.max_minutes=${MAX_MINUTES:-4.5} ${SET:+--set-override "$SET"} ${ONLY:+--only "$ONLY"} --out "$out/learning_curves.json" --plot "$out/learning_curves.png" 2>&1 \
    | grep -v "Warning\|warn" | tee -a "$out/log.txt"
