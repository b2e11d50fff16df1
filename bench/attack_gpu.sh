#!/usr/bin/env bash
# The attack-speed benchmark on a GPU, in one go: train a scratch:small victim on
# stdlib-attribution (offline, seconds on a GPU), then run bench/attack.py on CUDA with the
# designed, naive and padded modes side by side. The ≥5× designed/naive target of the attack
# engine is about this setting: on a CPU a 256-token forward pass is compute-bound, so batching
# gains only 1.2–1.9× there (figures in docs/attacks.md).
#
#   bash bench/attack_gpu.sh [OUT_DIR] [N_EXAMPLES]
#
# Needs the project installed (pip install -e .) and a CUDA device; prints the benchmark table
# and writes the victim to OUT_DIR/victim (default /tmp/attack-gpu).
set -euo pipefail
out="${1:-/tmp/attack-gpu}"
n="${2:-20}"
python="${PYTHON:-python3}"
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
"$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this benchmark is for a GPU')"
mkdir -p "$out"
if [ ! -f "$out/victim/manifest.json" ]; then
  "$python" -m engine.cli train --dataset stdlib-attribution --base scratch:small --device cuda \
    --no-progress --out "$out/victim" | tail -n 25
fi
"$python" bench/attack.py --model "$out/victim" --device cuda --n "$n" --modes designed,naive,padded \
  --threads 4 | tee "$out/bench-attack.txt"
