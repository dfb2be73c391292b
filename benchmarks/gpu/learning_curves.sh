#!/usr/bin/env bash
# The learning curves on a GPU machine that has PyTorch but not this package's other
# dependencies: wheels carried in .whl/ (docs/training.md, "A GPU machine without internet access"),
# SynthMUSIC generated there.
#   bash benchmarks/gpu/learning_curves.sh OUT_DIR
set -euo pipefail
out=${1:-gpu-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee "$out/log.txt"
t0=$(date +%s)
python3 -m tribert.cli synth --out data/synth --clips 600 --seed 0 --workers 16 >/dev/null
python3 -m tribert.cli synth --out data/synth-test --clips 200 --seed 1 --splits 0,0,1 --workers 16 >/dev/null
echo "synth: $(( $(date +%s) - t0 )) s" | tee -a "$out/log.txt"
python3 benchmarks/learning_curves.py --train data/synth/train --test data/synth-test/test \
    --steps ${STEPS:-250,500,1000,2000,3000} --parallel 7 --workers 2 --threads 1 --device cuda \
    --set-override train.max_minutes=${MAX_MINUTES:-4.5} ${ONLY:+--only "$ONLY"} --out "$out/learning_curves.json" --plot "$out/learning_curves.png" 2>&1 \
    | grep -v "Warning\|warn" | tee -a "$out/log.txt"
