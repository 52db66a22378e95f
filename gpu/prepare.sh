#!/usr/bin/env bash
# Runs HERE (the CPU machine), before the one `run` call on a lent GPU machine: puts what that bare, offline
# machine lacks into gpu/carry/ (git-ignored) and prints the exact call to make. See gpu/README.md.
#   wheels/  the light dependencies its python3 (3.12) lacks, for manylinux x86-64
#   data/    the permissively licensed training audio (the model card's kits, the GM set of make-drums, Sonic
#            Pi's CC0 drums as FLAC),
#            mirrored under its absolute paths (data.txt lists them),
#            so the run's card, its held-out split and `dd-bridge eval` name the same files on both machines
#   run/     the run state unpacked from an earlier GPU session (gpu/state, see gpu/handover.py), if there is one
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${DD_PYTHON:-$PWD/.venv/bin/python}
CARRY=gpu/carry
LIMIT=$((64 * 1024 * 1024))
TIMEOUT_S=${DD_GPU_TIMEOUT_S:-540}   # one call; leaves 6 of the 15 device minutes for the start, and a rerun after an early failure
# The model card's training kits (CC0, CC-BY-3.0) and any extra permissive folders (DD_GPU_EXTRA_DATA, space-separated)
DATA_CARD=$("$PY" -c "import yaml; print(' '.join(yaml.safe_load(open('models/dd-drums-small.yaml'))['training']['data']))")
# The card names its data where it lay when trained: its make-drums sets (GM, Sonic Pi) lay in a session's scratch
# folder then (/work/s34/gm-drums) and are made again below at their fixed paths; a kit of the card that is missing
# here is said before anything is built (a carry half built would train on less, and eval on its training audio).
DATA=
for dir in $DATA_CARD; do
  if [ -d "$dir" ]; then
    DATA="$DATA $dir"
  else
    case "$(basename "$dir")" in
      gm-drums|sonic-pi) echo "prepare: the card's $dir (a make-drums set, made again below) is not here: left out" >&2 ;;
      *) echo "prepare: the card's training kit $dir is not here (apt-get install hydrogen-drumkits?)" >&2; exit 1 ;;
    esac
  fi
done
if [ -n "${DD_GPU_PRINT_CARD_DATA:-}" ]; then echo $DATA; exit 0; fi  # the tests' look at the line above
# Training sets made as WAV in DIR-wav travel as FLAC copies in DIR (lossless, the same samples; about 40 % of the
# size: what travels is near its 64 MiB limit). Made at fixed paths, so a later session carries the same files.
flac_copies() {
  "$PY" - "$1-wav" "$1" <<'FLAC'
import sys
from pathlib import Path
import soundfile
wav, flac = map(Path, sys.argv[1:])
for stale in flac.rglob("*.wav"):  # the folder is this script's: WAVs an older prepare left there would travel too
    stale.unlink()
for path in sorted(wav.rglob("*.wav")):
    target = (flac / path.relative_to(wav)).with_suffix(".flac")
    if not target.exists():  # a copy already there is kept (the same file each time)
        target.parent.mkdir(parents=True, exist_ok=True)
        samples, rate = soundfile.read(path, dtype="int16")
        soundfile.write(target.with_suffix(".part"), samples, rate, format="FLAC", subtype="PCM_16")
        target.with_suffix(".part").rename(target)
(flac / "LICENCE.md").write_text((wav / "LICENCE.md").read_text().rstrip() + "\n\nThe files here are FLAC copies "
                                 "of those WAVs, made by gpu/prepare.sh: lossless, the same samples.\n")
FLAC
}
# The MIT FluidR3_GM drum kits rendered by `dd-bridge make-drums` (docs/training-data.md; 158 one-shots, 14 MiB as
# WAV): DD_GPU_GM_DRUMS= (empty) leaves them out.
GM=${DD_GPU_GM_DRUMS-/var/tmp/dd-bridge/gm-drums}
FONT=/usr/share/sounds/sf2/FluidR3_GM.sf2
if [ -n "$GM" ]; then
  if [ -f "$FONT" ] && command -v fluidsynth >/dev/null; then
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 "$PY" -m bridge --quiet make-drums "$FONT" --out "$GM-wav" >/dev/null
    flac_copies "$GM"
    DATA="$DATA $GM"
  else
    echo "prepare: no $FONT or fluidsynth (apt-get install fluid-soundfont-gm fluidsynth): without the GM set" >&2
  fi
fi
# Sonic Pi's real drums (CC0; `dd-bridge make-drums sonic-pi`, docs/training-data.md; 73 one-shots, 3.7 MiB as WAV):
# DD_GPU_SONIC_PI= (empty) leaves them out.
SP=${DD_GPU_SONIC_PI-/var/tmp/dd-bridge/sonic-pi}
if [ -n "$SP" ]; then
  if [ -d /usr/share/sonic-pi/samples ]; then
    PYTHONPATH=$PWD OMP_NUM_THREADS=1 "$PY" -m bridge --quiet make-drums sonic-pi --out "$SP-wav" >/dev/null
    flac_copies "$SP"
    DATA="$DATA $SP"
  else
    echo "prepare: no /usr/share/sonic-pi/samples (apt-get install sonic-pi-samples): without Sonic Pi's drums" >&2
  fi
fi
DATA="$DATA ${DD_GPU_EXTRA_DATA:-}"
# Held-out kits no model here trains on (GPL: measured on, never trained on), so eval.txt is a quality figure and
# not one on the training kits; the three smallest of docs/sound.md's six (66 one-shots, 2.5 MiB) fit what travels.
H=/usr/share/hydrogen/data/drumkits
EVAL_DATA=${DD_GPU_HELD_OUT-"$H/Millo-Drums_v.1 $H/HardElectro1 $H/ElectricEmpireKit"}

mkdir -p "$CARRY/wheels"
# Versions as in this project's venv, so both machines run the same libraries; one version of each (two stop pip).
WHEELS="soundfile soxr python-osc mido platformdirs cffi pycparser diffusers importlib_metadata lazy-importer"
for name in $WHEELS; do
  version=$("$PY" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
  if ls "$CARRY/wheels" | grep -qi "^$(echo "$name" | tr '-' '_')-${version}-"; then continue; fi
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$CARRY/wheels" "$name==$version"
done

# The project itself as a wheel too: session.sh runs the code from the working tree (first on the path), but its
# entry points (the guides' registry, bridge.engine.guides.registry) live only in an installed distribution's metadata.
rm -f "$CARRY"/wheels/dd_bridge-*.whl
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$CARRY/wheels" . >/dev/null

# mirror LIST WHAT DIR...: each folder under its absolute path in $CARRY/data, listed in $CARRY/LIST
mirror() {
  local list=$CARRY/$1 what=$2 dir; shift 2
  : > "$list"
  for dir in "$@"; do
    [ -d "$dir" ] || { echo "prepare: no $what at $dir" >&2; exit 1; }
    dir=$(realpath "$dir")
    mkdir -p "$CARRY/data$(dirname "$dir")"
    cp -r "$dir" "$CARRY/data$dir"
    echo "$dir" >> "$list"
  done
}
rm -rf "$CARRY/data" "$CARRY/data.txt" "$CARRY/eval-data.txt" && mkdir -p "$CARRY/data"
# Listed last, after everything is copied: a carry that stopped half built has no lists, and session.sh then
# trains nothing (it says so) rather than on part of the data
mirror data.txt.part "training data" $DATA
# the held-out kits travel the same way but are listed apart: eval's reference, never trained on
mirror eval-data.txt.part "held-out kit" $EVAL_DATA
mv "$CARRY/data.txt.part" "$CARRY/data.txt" && mv "$CARRY/eval-data.txt.part" "$CARRY/eval-data.txt"

# What travels: tracked files, untracked files git does not ignore, and the carried folder.
travels() {
  (git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null; \
   find "$CARRY" -type f -printf '%s\n') | awk '{s += $1} END {print s}'
}
rm -rf "$CARRY/run"
if [ -f gpu/state/run.yaml ]; then
  # A returned run (the model and its training weights, about 56 MB at 6.9 M parameters) fits beside the
  # training audio only when the audio is small: otherwise it stays here and the GPU continues the bundled model.
  state=$(du -sb gpu/state | cut -f1)
  if [ $(( $(travels) + state )) -lt "$LIMIT" ]; then
    cp -r gpu/state "$CARRY/run"; echo "prepare: carrying the run state in gpu/state"
  else
    echo "prepare: the run state in gpu/state ($((state / 1048576)) MiB) does not fit beside the training audio:" \
         "not carried (the GPU starts from the bundled model)" >&2
  fi
fi
tree=$(travels)
printf 'prepare: %.1f MiB would travel (limit 64 MiB): carry %s\n' "$(echo "$tree / 1048576" | bc -l)" \
  "$(du -sh "$CARRY" | cut -f1)"
[ "$tree" -lt "$LIMIT" ] || { echo "prepare: over 64 MiB: carry less (DD_GPU_EXTRA_DATA)" >&2; exit 1; }
cat <<CALL
prepare: now, if status says can_start_another, make this one call (then read the files, then give_back):
  run(command="DD_GPU_BUDGET_S=$((TIMEOUT_S - 25)) bash gpu/session.sh", carry=["gpu/carry"], timeout_s=$TIMEOUT_S)
CALL
