#!/usr/bin/env bash
# The attack-speed benchmark on a GPU, in one go: train a scratch:small victim on
# stdlib-attribution (offline, seconds on a GPU), then run bench/attack.py on CUDA with the
# designed, interleaved (cross-example batching), naive and padded modes side by side, after
# measuring the victim's peak batched throughput; for each mode it prints the forward passes per
# second of wall time the attack reached and their share of that peak (the target on a GPU:
# >= 80 %, which one example's candidates alone cannot reach). On a CPU a 256-token forward pass
# is compute-bound, so batching gains little there (figures in docs/attacks.md).
#
#   bash bench/attack_gpu.sh [OUT_DIR] [N_EXAMPLES] [INTERLEAVE]
#
# Needs the project installed (pip install -e .) and a CUDA device; prints the benchmark table
# and writes the victim to OUT_DIR/victim (default /tmp/attack-gpu), the table to
# OUT_DIR/bench-attack.txt. BATCH (default 256: merged calls need room), MODES override the
# defaults; CPU=1 runs the same on the CPU (to check the script without a GPU).
set -euo pipefail
out="${1:-/tmp/attack-gpu}"
n="${2:-20}"
interleave="${3:-8}"
python="${PYTHON:-python3}"
device=cuda
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
if [ "${CPU:-0}" = 1 ]; then
  device=cpu
else
  "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this benchmark is for a GPU (CPU=1 to run it on the CPU)')"
fi
mkdir -p "$out"
if [ ! -f "$out/victim/manifest.json" ]; then
  "$python" -m engine.cli train --dataset stdlib-attribution --base scratch:small --device "$device" \
    --no-progress --out "$out/victim" | tail -n 25
fi
"$python" bench/attack.py --model "$out/victim" --device "$device" --n "$n" --peak --interleave "$interleave" \
  --modes "${MODES:-designed,interleaved,naive,padded}" --batch-size "${BATCH:-256}" --threads 4 | tee "$out/bench-attack.txt"
