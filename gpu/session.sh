#!/usr/bin/env bash
# The one command on a lent GPU machine (run there in the repo root, after gpu/prepare.sh here; gpu/README.md):
#   0. install the carried wheels, restore the carried training audio under its absolute paths
#   1. `dd-bridge bench --no-compile` (forward, sound, batch: eager, seconds a table) -> $OUT/bench.json; the CUDA
#      tests; the compiled forward table only when DD_GPU_BENCH_COMPILE_S asks (-> $OUT/bench-compiled.json)
#   2. `dd-bridge train` (torchrun, a process a GPU, on several) continuing the bundled model (or DD_GPU_SIZE from
#      scratch, or the carried run) for the rest of the budget, then `dd-bridge eval` of the candidate beside the
#      bundled model -> $OUT/eval.txt
#   3. the run as $OUT/results.tar.NN (gpu/handover.py), within the tool's 8 files / 16 MiB each / 64 MiB
# Each stage has a time cap and its own exit status; a failing one is reported and the next still runs.
# Why this order and these caps (2026-12-04, the first lent H200, torch 2.11+cu130): torch.compile of the fast
# path took minutes a row there (the sound table, compiled, ran past 240 s; test_cuda.py's four tests took 74 s,
# past 120 s cold with the other engine tests), leaving 29 s to train. So the tables run eagerly first, the
# compiled ones only on request, and eval renders eagerly too.
# Settings (environment): DD_GPU_BUDGET_S (whole script, default 515), DD_GPU_SIZE (tiny|small|medium|full: from
# scratch), DD_GPU_BATCH (16), DD_GPU_LR (2e-4), DD_GPU_TRAIN_BENCH_S (0: none; gpu/bench_train.py at full size),
# DD_GPU_BENCH_S (100: the eager tables), DD_GPU_TEST_S (150), DD_GPU_BENCH_COMPILE_S (0: none; the compiled
# forward table), DD_GPU_EVAL_S (60), DD_GPU_EVAL_COUNT (16), DD_GPU_EVAL_BASE (dd-drums-small), DD_GPU_PACK_S
# (30), DD_GPU_MARGIN_S (20), DD_GPU_DATA (folders; default: gpu/carry/data.txt), DD_GPU_EVAL_DATA
# (gpu/carry/eval-data.txt: held-out kits never trained on, the reference of both models' MMD^2; the training
# data itself when empty), DD_GPU_TESTS (test files), DD_GPU_RECIPE (the training recipe's flags, default below; a
# carried run keeps the recipe it started with), DD_GPU_TRAIN_ARGS (more train flags), DD_GPU_RUN (the run
# folder), DD_GPU_CARRIED_RUN (gpu/carry/run; empty: none), DD_PYTHON (python3), OUT (the tool sets it).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
START=$(date +%s)
BUDGET=${DD_GPU_BUDGET_S:-515}
DEADLINE=$((START + BUDGET))
OUT=${OUT:-/tmp/dd-gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
PY=${DD_PYTHON:-python3}
RUN=${DD_GPU_RUN:-/tmp/dd-gpu-run/dd-drums-small-gpu}
STATUS=()

left() { echo $((DEADLINE - $(date +%s))); }
# stage NAME CAP_SECONDS COMMAND...: run COMMAND for at most CAP seconds (SIGTERM, then SIGKILL 15 s later)
stage() {
  local name=$1 cap=$2; shift 2
  if [ "$cap" -le 0 ]; then STATUS+=("$name: skipped, no time left"); echo "== $name: no time left"; return 1; fi
  echo "== $name (at most ${cap} s, $(left) s left): $*"
  local t0=$(date +%s) rc
  timeout -k 15 "$cap" "$@"; rc=$?
  STATUS+=("$name: exit $rc in $(( $(date +%s) - t0 )) s")
  echo "== $name: exit $rc"
  return $rc
}
min() { [ "$1" -lt "$2" ] && echo "$1" || echo "$2"; }

# 0. Setup: wheels (only what this python3 lacks), the project by path, the training audio.
if ! "$PY" -c "import soundfile, soxr, pythonosc, mido, platformdirs, diffusers; from importlib.metadata import distribution; distribution('dd-bridge')" 2>/dev/null; then
  stage wheels 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/dd-site gpu/carry/wheels/*.whl
  export PYTHONPATH=/tmp/dd-site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -n "${DD_GPU_DATA:-}" ]; then DATA=$DD_GPU_DATA; else DATA=$(cat gpu/carry/data.txt 2>/dev/null | tr '\n' ' '); fi
EVAL_DATA=${DD_GPU_EVAL_DATA:-$(cat gpu/carry/eval-data.txt 2>/dev/null | tr '\n' ' ')}
EVAL_DATA=${EVAL_DATA:-$DATA}
for dir in $DATA $EVAL_DATA; do  # restored under the same absolute path it had on the machine that prepared it
  [ -d "$dir" ] || { mkdir -p "$(dirname "$dir")" && cp -r "gpu/carry/data$dir" "$dir"; } || echo "data: cannot restore $dir"
done
echo "== machine"; nvidia-smi || echo "no nvidia-smi"
CUDA=$("$PY" -c "import torch; print('yes' if torch.cuda.is_available() else 'no')" 2>/dev/null || echo no)
"$PY" -c "import torch, bridge; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'bridge', bridge.__version__)"
if [ "$CUDA" = yes ]; then
  REQUIRE=1; BENCH=(--no-onnx)  # no onnxruntime-gpu there: onnxruntime's CPU rows would only cost the budget
else
  echo "CUDA absent: the CUDA tests are skipped, bench runs --quick, training runs on the CPU (a dry run of this script)"
  REQUIRE=0; BENCH=(--quick --no-onnx)
fi

# 1. The benchmark, eagerly (one table per invocation, so a table that runs past the cap costs only itself;
#    merged into $OUT/bench.json), then the CUDA tests, then the compiled forward table if asked for.
BENCH_END=$(( $(date +%s) + $(min "${DD_GPU_BENCH_S:-100}" "$(left)") ))
WORK=$(mktemp -d)
TABLES="forward sound"; [ "$CUDA" = yes ] && TABLES="forward sound batch"
for table in $TABLES; do
  stage "bench $table" $(( BENCH_END - $(date +%s) )) bash -c \
    "$PY -m bridge bench --json --only $table --no-compile ${BENCH[*]} > $WORK/bench-$table.json"
done
merge() {  # merge DIR FILE: the tables of DIR/bench-*.json as one file
  "$PY" - "$1" "$2" <<'MERGE'
import json, sys
from pathlib import Path
parts = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("bench-*.json")) if p.stat().st_size]
if parts:
    Path(sys.argv[2]).write_text(json.dumps({"machine": parts[0]["machine"],
                                             "tables": [t for part in parts for t in part["tables"]]}, indent=2))
    print(Path(sys.argv[2]).name + ":", ", ".join(t.get("title", "?")[:60] for part in parts for t in part["tables"]))
MERGE
}
merge "$WORK" "$OUT/bench.json"
TESTS=${DD_GPU_TESTS:-tests/engine/test_cuda.py}
DD_REQUIRE_CUDA=$REQUIRE stage cuda-tests "$(min "${DD_GPU_TEST_S:-150}" "$(left)")" "$PY" -m pytest -v -rs \
  -p no:cacheprovider $TESTS
if [ "${DD_GPU_BENCH_COMPILE_S:-0}" -gt 0 ]; then
  COMPILED=$(mktemp -d)
  stage "bench forward, compiled" "$(min "$DD_GPU_BENCH_COMPILE_S" "$(left)")" bash -c \
    "$PY -m bridge bench --json --only forward ${BENCH[*]} > $COMPILED/bench-forward.json"
  merge "$COMPILED" "$OUT/bench-compiled.json"
fi

# 1b. Training speed at full size, per GPU (gpu/bench_train.py; into log.txt), when DD_GPU_TRAIN_BENCH_S asks.
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [ "${DD_GPU_TRAIN_BENCH_S:-0}" -gt 0 ]; then
  PROCESSES=1; [ "$GPUS" -gt 1 ] && PROCESSES=1,$GPUS
  stage "bench train" "$(min "$DD_GPU_TRAIN_BENCH_S" "$(left)")" "$PY" gpu/bench_train.py $DATA --size full \
    --batch-size 8 --steps 12 --rounds 1 --processes "$PROCESSES"
fi

# 2. Training for the rest, leaving time for eval and packing; the CLI stops itself (--time-limit), timeout
#    (SIGTERM: saved like Ctrl-C) is the fallback.
EVAL_S=${DD_GPU_EVAL_S:-60}; PACK_S=${DD_GPU_PACK_S:-30}
TRAIN_S=$(( $(left) - EVAL_S - PACK_S - ${DD_GPU_MARGIN_S:-20} ))
CARRIED=${DD_GPU_CARRIED_RUN-gpu/carry/run}
if [ -n "$CARRIED" ] && [ -f "$CARRIED/run.yaml" ] && [ ! -e "$RUN" ]; then
  mkdir -p "$(dirname "$RUN")" && cp -r "$CARRIED" "$RUN" && echo "continuing the carried run in $RUN"
fi
# A run that is there (carried) continues from its run.yaml: its architecture and base come from there, and the
# base is not named again (named, it is compared by its weights, and the bundled model may have been replaced since
# the run started); its batch size, lr and recipe are its own too (train says so for each flag below that differs).
if [ -f "$RUN/run.yaml" ]; then START_FROM=()
elif [ -n "${DD_GPU_SIZE:-}" ]; then START_FROM=(--size "$DD_GPU_SIZE"); else START_FROM=(--from dd-drums-small); fi
# The recipe chosen by held-out measurement on the CPU (docs/benchmarks.md, "Training recipe").
KIT_RECIPE="--loss-weight flat --t-sampling uniform"
RECIPE=${DD_GPU_RECIPE-$KIT_RECIPE}
# More than one GPU: one process per GPU under torchrun (DD_GPU_BATCH stays the global batch, so it must divide
# among them); timeout's SIGTERM reaches every process through torchrun.
if [ "$GPUS" -gt 1 ]; then
  TRAIN_CMD=("$PY" -m torch.distributed.run --standalone --nproc-per-node "$GPUS" -m bridge)
else
  TRAIN_CMD=("$PY" -m bridge)
fi
if [ -z "$(echo $DATA)" ]; then  # no gpu/carry/data.txt (prepare.sh not run, or stopped): tests and bench only
  STATUS+=("train: skipped, no training data (gpu/carry/data.txt: run gpu/prepare.sh)")
elif [ "$TRAIN_S" -gt 10 ]; then
  stage train $((TRAIN_S + 20)) "${TRAIN_CMD[@]}" train $DATA --out "$RUN" ${START_FROM[@]+"${START_FROM[@]}"} --steps 10000000 \
    --time-limit "$TRAIN_S" --batch-size "${DD_GPU_BATCH:-16}" --lr "${DD_GPU_LR:-2e-4}" --save-every 250 \
    --demo-every 0 $RECIPE ${DD_GPU_TRAIN_ARGS:-}
else
  STATUS+=("train: skipped, ${TRAIN_S} s left")
fi
CANDIDATE=$(ls -t "$RUN"/*-step*.safetensors 2>/dev/null | head -1)
if [ -n "$CANDIDATE" ]; then
  EVAL=(--data $EVAL_DATA --count "${DD_GPU_EVAL_COUNT:-16}")
  # Held-out kits as the reference: the training audio is then the floor's real files (eval's --train-data).
  [ "$(echo $EVAL_DATA)" = "$(echo $DATA)" ] || EVAL+=(--train-data $DATA)
  BASE=${DD_GPU_EVAL_BASE-dd-drums-small}  # the model the candidate must beat; empty: none
  # Eagerly (TORCH_COMPILE_DISABLE): compiling the candidate and the base model would take the stage's minute.
  # One call: the base model renders the same seeds and the candidate's row carries the paired change from it.
  [ -z "$BASE" ] || EVAL+=(--against "$BASE")
  TORCH_COMPILE_DISABLE=1 stage eval "$(min "$EVAL_S" $(( $(left) - PACK_S )))" bash -c "set -o pipefail; {
    echo '# candidate $CANDIDATE'; $PY -m bridge eval --model $CANDIDATE ${EVAL[*]}; } | tee $OUT/eval.txt"
fi

# 3. The run state and candidate, within what the tool returns: 8 files (log.txt, bench.json, eval.txt, and
#    bench-compiled.json when asked for, and 4 parts).
if [ -f "$RUN/run.yaml" ]; then
  USED=$(find "$OUT" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  # The margin's 5 s more at most: with the stage's 15 s kill grace it still ends before the call's limit
  # (budget + 25 s): a pack cut by the tool would bring back broken parts.
  stage pack "$(min "$PACK_S" $(( $(left) + 5 )))" "$PY" gpu/handover.py pack "$RUN" "$OUT" \
    --budget $(( 62 * 1024 * 1024 - USED )) --parts 4
fi

echo "== summary ($(( $(date +%s) - START )) s of ${BUDGET} s)"
printf '  %s\n' "${STATUS[@]}"
ls -l "$OUT"
