#!/usr/bin/env bash
# Sets up DD Bridge from nothing (a .venv in this folder), then runs it.
#   ./bootstrap.sh serve [dd-bridge serve options]   start the service on the bundled model
#   ./bootstrap.sh test  [pytest options]            run every test suite (Python, Node, Lua)
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-serve}"
[ $# -gt 0 ] && shift

log() { printf 'bootstrap: %s\n' "$*" >&2; }

# The Python that makes .venv: $PYTHON, else python3. 3.10 or newer (macOS's own /usr/bin/python3 is 3.9); the tests'
# pinned Ray (pyproject's test extra) has no wheels for 3.13 yet.
base="${PYTHON:-python3}"
# Once .venv is made, its own python is the one that counts (PYTHON= given once need not be given again).
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && .venv/bin/python -m pip --version >/dev/null 2>&1; then
  base=.venv/bin/python
fi
if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  log "$base is $("$base" -V 2>&1 || echo "not a Python that runs"); DD Bridge needs Python 3.10 or newer: install one (python.org,"
  log "Homebrew, your package manager) and run again, with PYTHON=python3.12 if it is not python3"
  exit 1
fi
if [ "$mode" = test ] && ! "$base" -c 'import sys; sys.exit(sys.version_info >= (3, 13))'; then
  log "the tests need Python 3.10 to 3.12 (their pinned Ray has no wheels for $("$base" -V 2>&1)): run again with"
  log "PYTHON=python3.12 (or 3.11, 3.10), after removing .venv if it was made with this one"
  exit 1
fi
# A .venv whose python has no pip is what a first try leaves where python3-venv was missing (Debian, Ubuntu): made
# again, not reused, or every later run fails with "No module named pip".
if [ -x .venv/bin/python ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  log "the .venv here has no pip (an earlier setup stopped part way): making it again"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  if ! "$base" -m venv .venv; then
    rm -rf .venv
    log "$base -m venv failed; on Debian or Ubuntu install python3-venv (sudo apt install python3-venv), then run again"
    exit 1
  fi
fi
py=.venv/bin/python

# torch first and pinned: a plain "torch" requirement would pull a multi-GB build where 2.13.0 lies on disk.
if ! "$py" -c "import torch" 2>/dev/null; then
  log "installing torch 2.13.0"
  "$py" -m pip install -q "torch==2.13.0"
fi

if command -v nvidia-smi >/dev/null 2>&1; then extra=gpu; else extra=cpu; fi
[ "$mode" = test ] && extra="$extra,test"
# Installed once per pyproject.toml, with every set of extras asked for so far: a second start needs no network (pip
# would fetch its build tools again, and fail offline, before the service could start), and `serve` after `test`
# (whose extras include serve's) installs nothing. The stamp is "HASH EXTRA,EXTRA"; a changed pyproject.toml installs
# again with what was installed before and what is asked now.
hash="$("$py" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest()[:16])')"
read -r stamped_hash stamped_extras 2>/dev/null < .venv/.dd-bridge-installed || true
missing=""
for one in ${extra//,/ }; do
  case ",${stamped_extras:-}," in *",$one,"*) ;; *) missing="$missing,$one" ;; esac
done
# (Installed, not importable: python -c finds the package in this folder whether it is installed or not.)
if [ "${stamped_hash:-}" != "$hash" ] || [ -n "$missing" ] || [ ! -x .venv/bin/dd-bridge ]; then
  # cpu and gpu exclude each other (onnxruntime beside onnxruntime-gpu breaks the CUDA provider): only this run's
  extra="$(printf '%s' "${stamped_extras:-},$extra" | tr ',' '\n' | sed '/^$/d' | { grep -v -x -e cpu -e gpu || true; } |
    { cat; [ "${extra%%,*}" ] && printf '%s\n' "${extra%%,*}"; } | sort -u | paste -sd, -)"
  log "installing dd-bridge [$extra]"
  "$py" -m pip install -q -e ".[$extra]"
  printf '%s %s\n' "$hash" "$extra" > .venv/.dd-bridge-installed
fi

# Debian packages through apt-get (as root, or through sudo). Returns non-zero when they cannot be installed.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing $*"
  # noninteractive: jackd2 asks about realtime priority, and CI has no one to answer
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# Playback (audition, `dd-bridge play`): sounddevice needs PortAudio; pip's wheels bundle it on macOS and Windows only.
# Asked of sounddevice itself: ldconfig is in /sbin, off a Debian user's PATH, so it found no PortAudio there.
portaudio_missing() { [ "$(uname -s)" = Linux ] && ! "$py" -c "import sounddevice" >/dev/null 2>&1; }

case "$mode" in
  serve)
    # Tried once: where it cannot be installed (no apt, or sudo asks a password nobody types) every later start
    # would ask again before the service could start.
    tried=.venv/.dd-bridge-no-portaudio
    if portaudio_missing; then
      if [ -e "$tried" ]; then
        log "no PortAudio (libportaudio2): the service runs without playback (apt is tried again once $tried is removed)"
      elif ! apt_install libportaudio2; then
        : > "$tried"
        log "no PortAudio (libportaudio2): the service runs without playback"
      fi
    fi
    exec .venv/bin/dd-bridge serve "$@"
    ;;
  test)
    # Real drum one-shots (Hydrogen kits, Sonic Pi's samples), a soundfont and fluidsynth, Lua and Node, PortAudio
    # and JACK for the test suites: Debian packages.
    need=()
    [ -d /usr/share/hydrogen/data/drumkits ] || need+=(hydrogen-drumkits)
    [ -d /usr/share/sonic-pi/samples ] || need+=(sonic-pi-samples)  # 21 MB of CC0 drums: make-drums sonic-pi
    command -v lua5.4 >/dev/null 2>&1 || need+=(lua5.4)
    command -v node >/dev/null 2>&1 || need+=(nodejs)
    command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
    [ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ] || need+=(csound-soundfont)  # 4 MB public-domain GM soundfont
    # Playback: PortAudio, and a JACK server whose dummy driver is a sound card without hardware for its tests.
    portaudio_missing && need+=(libportaudio2)
    command -v jackd >/dev/null 2>&1 || need+=(jackd2)
    if [ ${#need[@]} -gt 0 ]; then
      apt_install "${need[@]}" || { log "missing ${need[*]}: install them with your package manager"; exit 1; }
    fi
    exec "$py" -m pytest "$@"
    ;;
  *)
    log "unknown mode '$mode' (serve or test)"; exit 2
    ;;
esac
