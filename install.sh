#!/usr/bin/env bash
# Install tribert and everything it needs into the active Python 3.11 environment.
#
#   python3 -m venv .venv && . .venv/bin/activate && ./install.sh
#
# Two packages are installed with --no-deps on purpose:
#   tinysoundfont declares pyaudio, which it does not need for offline rendering;
#   mediapipe 0.10.21 declares jax, opencv-contrib, sounddevice, sentencepiece, none of which the
#   holistic pose model needs (its real needs come with the `pose` extra).
# torch is installed first and exactly: an unpinned torch would pull the newest CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[pose,test]"
python -m pip install -q --no-deps "tinysoundfont==0.3.7" "mediapipe==0.10.21"
python -c "import tribert, torch, av, tinysoundfont, mediapipe; print(f'tribert {tribert.__version__} installed (torch {torch.__version__})')"
