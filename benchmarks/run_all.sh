#!/usr/bin/env bash
# Every benchmark of the kit in one go, each under a time limit, each log kept:
#   benchmarks/run_all.sh [LOG_DIR]          (default: outputs/benchmarks)
# The defaults are sized for a GPU; on a CPU pass the smaller sizes each script's --help names.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-outputs/benchmarks}
PY=${PYTHON:-python3}
mkdir -p "$LOG"
export PYTHONUNBUFFERED=1
run() {  # name, seconds, script args...
  local name=$1 limit=$2; shift 2
  echo "=== $name ($*)"
  timeout "$limit" "$PY" "$@" 2>&1 | tee "$LOG/$name.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || echo "=== $name: exit $rc (124: over its ${limit}s limit)"
}
run train_throughput 130 benchmarks/train_throughput.py
run baselines_together 480 benchmarks/baselines_together.py
run hessian_topk 180 benchmarks/hessian_topk.py
run landscape 90 benchmarks/landscape.py
run landscape_51 60 benchmarks/landscape.py --width 16 --examples 5000 --resolution 51 --skip-single --radii 1
