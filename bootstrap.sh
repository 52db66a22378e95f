#!/usr/bin/env bash
# Sets up DD Bridge from nothing (a .venv in this folder), then runs it.
#   ./bootstrap.sh serve [dd-bridge serve options]   start the service on the bundled model
#   ./bootstrap.sh test  [pytest options]            run every test suite (Python, Node, Lua)
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-serve}"
[ $# -gt 0 ] && shift

log() { printf 'bootstrap: %s\n' "$*" >&2; }

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
py=.venv/bin/python

# torch first and pinned: a plain "torch" requirement would pull a multi-GB build where 2.13.0 lies on disk.
if ! "$py" -c "import torch" 2>/dev/null; then
  log "installing torch 2.13.0"
  "$py" -m pip install -q "torch==2.13.0"
fi

if command -v nvidia-smi >/dev/null 2>&1; then extra=gpu; else extra=cpu; fi
[ "$mode" = test ] && extra="$extra,test"
log "installing dd-bridge [$extra]"
"$py" -m pip install -q -e ".[$extra]"

# Debian packages through apt-get (as root, or through sudo). Returns non-zero when they cannot be installed.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing $*"
  # noninteractive: jackd2 asks about realtime priority, and CI has no one to answer
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# Playback (audition, `dd-bridge play`): sounddevice needs PortAudio; pip's wheels bundle it on macOS and Windows only.
portaudio_missing() { [ "$(uname -s)" = Linux ] && ! ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2'; }

case "$mode" in
  serve)
    if portaudio_missing; then
      apt_install libportaudio2 || log "no PortAudio (libportaudio2): the service runs without playback"
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
