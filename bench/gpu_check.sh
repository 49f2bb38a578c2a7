#!/usr/bin/env bash
# One-shot check for a GPU machine without network: the test suite on the CuPy backend, then the
# GPU against the gpu-sim stand-in (bench/device_agreement.py), then `gpuprop bench` on the GPU and
# the CPU, then a short summary. Under 6 minutes in total. Exits 1 when a stage failed, and when
# torch is missing on a GPU machine (its ~160 oracle tests would otherwise skip quietly).
#
#   bench/gpu_check.sh [OUTDIR]        OUTDIR defaults to $OUT, else ./bench/out
#
# Needs python3 with numpy, click, pytest, cupy, torch (the test oracle; jax an optional peer). The project is put on
# PYTHONPATH, not installed. Writes into OUTDIR (5 files, flat): tests.log, agreement.txt, bench.json,
# bench.txt, summary.txt. Every stage has its own timeout; a failed stage is recorded and the next still runs.
#
# Dry run without a GPU (checks the plumbing): GPU_CHECK_DEVICE=cpu bench/gpu_check.sh /tmp/check
# Knobs: GPU_CHECK_SECONDS (total, default 330), GPU_CHECK_TEST_SECONDS (default 200),
#        GPU_CHECK_TESTS (pytest paths, default tests), PYTHON (default python3).
set -u
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # JAX must share the GPU with CuPy and torch

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-${OUT:-$ROOT/bench/out}}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-gpu}
TOTAL=${GPU_CHECK_SECONDS:-330}
TEST_SECONDS=${GPU_CHECK_TEST_SECONDS:-200}
TESTS=${GPU_CHECK_TESTS:-tests}
SUMMARY_RESERVE=15
SECONDS=0

stage_line() { printf '%-9s %-28s %4ss\n' "$1" "$2" "$3"; }
STAGES=""
FAILED=0

# --- 0. the oracle must be there: without torch its tests skip and a GPU run proves much less ----
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if [ "$DEVICE" = gpu ]; then
    echo "FAILED: torch does not import with $PY: the torch oracle tests would skip on the GPU;" \
         "install torch (the CPU build is enough) and rerun" >&2
    STAGES+=$(stage_line oracle "FAILED (torch missing)" 0)$'\n'
    FAILED=1
  else
    echo "note: torch does not import with $PY; its oracle tests will skip (allowed on a dry run)"
  fi
fi

# --- 1. tests on the chosen backend ------------------------------------------------------------
echo "== tests (GPUPROP_TEST_BACKENDS=$DEVICE, timeout ${TEST_SECONDS}s) =="
t0=$SECONDS
# shellcheck disable=SC2086
GPUPROP_TEST_BACKENDS=$DEVICE timeout -k 5 "$TEST_SECONDS" "$PY" -m pytest -q --maxfail=25 -p no:cacheprovider $TESTS \
    >"$DIR/tests.log" 2>&1
rc=$?
case $rc in
  0) what="passed" ;; 124|137) what="TIMED OUT (rc $rc)" ;; *) what="FAILED (rc $rc)" ;;
esac
[ "$rc" = 0 ] || FAILED=1
STAGES+=$(stage_line tests "$what" $((SECONDS - t0)))$'\n'
tail -n 3 "$DIR/tests.log"

# --- 1b. the real GPU against the gpu-sim stand-in: same weights, same batches, float64 ---------------
echo "== agreement: $DEVICE against gpu-sim (float64, every zoo model and optimizer) =="
t0=$SECONDS
if command -v "${CXX:-g++}" >/dev/null 2>&1; then
  timeout -k 5 60 "$PY" bench/device_agreement.py --devices "$DEVICE,gpu-sim" >"$DIR/agreement.txt" 2>&1
  rc=$?
else
  echo "gpu-sim needs a C++ compiler for the CUDA kernels: install g++ (or set CXX)" >"$DIR/agreement.txt"
  rc=3
fi
case $rc in
  0) what="agree" ;; 3) what="FAILED (no g++ for gpu-sim)" ;; 124|137) what="TIMED OUT (rc $rc)" ;;
  *) what="FAILED (rc $rc)" ;;
esac
[ "$rc" = 0 ] || FAILED=1
STAGES+=$(stage_line agreement "$what" $((SECONDS - t0)))$'\n'
tail -n 1 "$DIR/agreement.txt"

# --- 2. benchmark: GPU in full, the CPU quick (its timing is not the point there) ----------------
if [ "$DEVICE" = gpu ]; then
  BENCH_ARGS=(--device all --quick-cpu)
else
  BENCH_ARGS=(--device cpu --quick)
fi
left=$((TOTAL - SECONDS - SUMMARY_RESERVE))
[ "$left" -lt 30 ] && left=30
budget=$((left * 3 / 4))
echo "== bench ${BENCH_ARGS[*]} (timeout ${left}s, peers skipped after ${budget}s) =="
t0=$SECONDS
rm -f "$DIR/bench.json"
timeout -k 5 "$left" "$PY" bench/run.py "${BENCH_ARGS[@]}" --peers torch,jax --no-memory \
    --time-budget "$budget" --json --out "$DIR/bench.json" >/dev/null 2>"$DIR/bench.txt"
rc=$?
case $rc in
  0) what="ok" ;; 124|137) what="TIMED OUT (rc $rc; partial bench.json)" ;; *) what="FAILED (rc $rc)" ;;
esac
[ "$rc" = 0 ] || FAILED=1
STAGES+=$(stage_line bench "$what" $((SECONDS - t0)))$'\n'

# --- 3. summary, last ------------------------------------------------------------------------------
{
  echo "== gpu_check summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), device $DEVICE, ${SECONDS}s) =="
  printf '%s' "$STAGES"
  timeout 10 "$PY" bench/summary.py "$DIR/bench.json" "$DIR/tests.log" 2>&1 \
    || echo "(no benchmark summary: see bench.txt)"
} >"$DIR/summary.txt"
cat "$DIR/summary.txt"
exit $FAILED
