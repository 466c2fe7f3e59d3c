#!/usr/bin/env bash
# The prepared GPU check: everything about lit_cert that only a GPU can show, in <= 10 minutes on
# one GPU, every result in one folder.
#
#   bash scripts/gpu_check.sh [--out DIR] [--dry-run]
#
# Steps (each with its own time limit; a failing step is recorded and the next one runs):
#   env       nvidia-smi, torch/CUDA versions, the precision flags
#   tests     the test suite's cuda cases (tests/test_devices.py, tests/test_numerics.py, ...)
#   bounds    every bound method CPU vs CUDA on the same weights, TF32 on and off side by side
#   steps     one training step of every method on CUDA (loss, time, peak memory)
#   cascade   the certify cascade incl. branch and bound on CUDA vs CPU, on a briefly trained net
#   ddp       a --trainer.devices=1 --trainer.strategy=ddp fit of a few batches on the GPU
#   bench     benchmarks/bench_train_step.py on CUDA: std / IBP / CROWN-IBP / SABR / TAPS ratios,
#             absolute ms and peak GPU memory
# DIR/summary.txt lists each step's exit status and seconds. --dry-run prints the commands and
# checks that every script, config and test file exists and that the Python checks build (no GPU
# needed; CI runs it). Runs from the repository root without installing lit_cert (PYTHONPATH=.);
# the GPU machine needs torch, lightning, torchmetrics, jsonargparse, omegaconf and scipy.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="gpu_check_results"
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    --out=*) OUT="${1#--out=}" ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 WANDB_MODE=disabled
PY="${PYTHON:-python3}"

# name | limit (s) | files it needs | command
STEPS=(
  "env|30|scripts/gpu_check.py|nvidia-smi; $PY -c 'import torch, lit_cert.numerics as n; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0)); print(n.precision_state())'"
  "tests|120|tests/test_devices.py tests/test_numerics.py tests/test_multi_gpu_docs.py|$PY -m pytest -q -p no:cacheprovider -x tests/test_devices.py tests/test_numerics.py tests/test_multi_gpu_docs.py"
  "bounds|60|scripts/gpu_check.py|$PY scripts/gpu_check.py bounds --out OUTDIR"
  "steps|45|scripts/gpu_check.py|$PY scripts/gpu_check.py steps --out OUTDIR"
  "cascade|120|scripts/gpu_check.py|$PY scripts/gpu_check.py cascade --out OUTDIR"
  "ddp|75|configs/smoke/synthetic_ibp.yaml|$PY -m lit_cert fit --config configs/smoke/synthetic_ibp.yaml --trainer.accelerator=gpu --trainer.devices=1 --trainer.strategy=ddp --trainer.max_epochs=1 --trainer.limit_train_batches=4 --trainer.limit_val_batches=2 --trainer.logger=false --trainer.default_root_dir=OUTDIR/ddp --test_after_fit=true"
  "bench|120|benchmarks/bench_train_step.py|$PY benchmarks/bench_train_step.py --device cuda --blocks cnn7 --only ibp,crown_ibp,crown_ibp_fused,sabr,taps --repeats 5"
)

if [ "$DRY" = 1 ]; then
  status=0
  for step in "${STEPS[@]}"; do
    IFS='|' read -r name limit files cmd <<<"$step"
    for f in $files; do
      if [ ! -f "$f" ]; then echo "gpu_check: step $name needs $f, which does not exist" >&2; status=1; fi
    done
    echo "[$name] (limit ${limit}s) ${cmd//OUTDIR/$OUT}"
  done
  total=0
  for step in "${STEPS[@]}"; do IFS='|' read -r _ limit _ _ <<<"$step"; total=$((total + limit)); done
  if [ "$total" -gt 600 ]; then echo "gpu_check: the step limits add up to ${total}s > 600s" >&2; status=1; fi
  "$PY" scripts/gpu_check.py all --dry-run --out "$(mktemp -d)" >/dev/null || status=1
  "$PY" benchmarks/bench_train_step.py --help >/dev/null || status=1
  [ "$status" = 0 ] && echo "gpu_check: dry run ok (${#STEPS[@]} steps, at most ${total}s)"
  exit "$status"
fi

mkdir -p "$OUT"
: >"$OUT/summary.txt"
failed=0
for step in "${STEPS[@]}"; do
  IFS='|' read -r name limit files cmd <<<"$step"
  cmd="${cmd//OUTDIR/$OUT}"
  start=$(date +%s)
  timeout "$limit" bash -c "$cmd" >"$OUT/$name.log" 2>&1
  code=$?
  seconds=$(( $(date +%s) - start ))
  [ "$code" = 0 ] || failed=$((failed + 1))
  printf '%-8s exit %-3s %4ss  %s\n' "$name" "$code" "$seconds" "$cmd" | tee -a "$OUT/summary.txt"
done
echo "gpu_check: $failed step(s) failed; results in $OUT" | tee -a "$OUT/summary.txt"
[ "$failed" = 0 ]
