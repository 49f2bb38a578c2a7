#!/usr/bin/env bash
# One-shot check for a GPU machine without network: the test suite on the CuPy backend, then
# `gpuprop bench` on the GPU and the CPU, then a short summary. Under 6 minutes in total.
#
#   bench/gpu_check.sh [OUTDIR]        OUTDIR defaults to $OUT, else ./bench/out
#
# Needs python3 with numpy, click, pytest, cupy (torch and jax optional peers). The project is put on
# PYTHONPATH, not installed. Writes into OUTDIR (4 files, flat): tests.log, bench.json, bench.txt,
# summary.txt. Every stage has its own timeout; a failed stage is recorded and the next still runs.
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

stage_line() { printf '%-8s %-28s %4ss\n' "$1" "$2" "$3"; }
STAGES=""

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
STAGES+=$(stage_line tests "$what" $((SECONDS - t0)))$'\n'
tail -n 3 "$DIR/tests.log"

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
STAGES+=$(stage_line bench "$what" $((SECONDS - t0)))$'\n'

# --- 3. summary, last ------------------------------------------------------------------------------
{
  echo "== gpu_check summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), device $DEVICE, ${SECONDS}s) =="
  printf '%s' "$STAGES"
  timeout 10 "$PY" bench/summary.py "$DIR/bench.json" "$DIR/tests.log" 2>&1 \
    || echo "(no benchmark summary: see bench.txt)"
} >"$DIR/summary.txt"
cat "$DIR/summary.txt"
