"""MIDI triggers: a key press varies the selected clip or generates, a knob sets the noise level or a guide's weight.

The mapping comes from the config (default: note 36 = C1 varies, note 37 generates, CC 1 sets noise). Messages
become the same request values OSC makes, handed to the same ``handle(request, reply)``. No torch here.

Key presses are handled at once, on rtmidi's callback thread. Knobs are not: a turned knob sends 100-250 CCs a
second, and each setting applied drops the prefetch (and a guide's is checked), so a sweep handled message by
message would hold up the key press after it for seconds. A CC only records its knob's latest value (a value equal
to the last one is dropped: jittery pots, controllers that send their state again); a worker applies the latest
value of each knob once the knobs have been still for DEBOUNCE_SECONDS, and a key press applies what is pending
first, so it always acts with the knobs as they were when it was pressed.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable

import mido

from bridge import constants
from bridge.daemon import requests as rq
from bridge.errors import described, one_line

log = logging.getLogger(__name__)

# A controller's 0..127 spans its setting's range. Noise starts above 0: noise 0 gives back the source itself, and the
# default knob is CC 1, the mod wheel, whose rest is 0 (touched and let go, every press wrote a copy of the source).
MIN_KNOB_NOISE = 0.05
CC_RANGES = {"noise": (MIN_KNOB_NOISE, 1.0)}
GUIDE_KNOB = 2.0  # a knob on a guide (any other of constants.MIDI_CC_SETTINGS) spans weights -2..2; 64 is off
DEBOUNCE_SECONDS = 0.03  # a knob's latest value is applied once the knobs have been still this long
IDLE_SECONDS = 5.0  # the knob worker leaves after this long with nothing to do (started again by the next CC)


class MidiTriggers:
    """Turns MIDI messages into requests; ``on_message`` is mido's callback (rtmidi's thread)."""

    def __init__(self, handle: Callable, reply: Callable, notes: dict[int, str], cc: dict[int, str],
                 debounce: float = DEBOUNCE_SECONDS):
        self.handle = handle
        self.reply = reply
        self.notes = dict(notes)
        self.cc = dict(cc)
        self.debounce = debounce
        self.received = 0
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)
        self._pending: dict[int, mido.Message] = {}  # a knob's latest value not applied yet
        self._last: dict[int, int] = {}  # a knob's last value taken (applied or pending)
        self._moved_at = 0.0
        self._worker: threading.Thread | None = None
        self._applying = threading.Lock()  # knobs' values go out in the order they were taken, before a press's

    def request_for(self, message: mido.Message) -> rq.Request | None:
        if message.type == "note_on" and message.velocity > 0:
            action = self.notes.get(message.note)
            if action == "vary":
                return rq.Vary(velocity=message.velocity)
            if action == "generate":
                return rq.Generate()
            if action == "keep":
                return rq.Keep()
        elif message.type == "control_change":
            target = self.cc.get(message.control)
            if target in CC_RANGES:
                low, high = CC_RANGES[target]
                return rq.Set(key=target, value=round(low + (high - low) * message.value / 127, 4))
            if target is not None:
                weight = max(-GUIDE_KNOB, round(GUIDE_KNOB * (message.value - 64) / 63, 2))
                return rq.GuideWeight(name=target, weight=weight)
        return None

    def on_message(self, message: mido.Message) -> None:
        self.received += 1
        if message.type == "control_change" and message.control in self.cc:
            self._knob(message)
            return
        request = self.request_for(message)
        if request is None:
            return
        self.flush()  # the knobs turned before this press act on it
        self._handle(request, message)

    def flush(self) -> None:
        """Apply each knob's pending value now (in the caller's thread)."""
        with self._applying:
            with self._lock:
                pending, self._pending = list(self._pending.values()), {}
            for message in pending:
                self._handle(self.request_for(message), message)

    def _knob(self, message: mido.Message) -> None:
        with self._lock:
            if self._last.get(message.control) == message.value:
                return
            self._last[message.control] = message.value
            self._pending[message.control] = message
            self._moved_at = time.monotonic()
            if self._worker is None:
                self._worker = threading.Thread(target=self._apply_knobs, name="midi-knobs", daemon=True)
                self._worker.start()
            self._moved.notify()

    def _apply_knobs(self) -> None:
        """The worker: the knobs' latest values, once they have been still for ``debounce``."""
        while True:
            with self._lock:
                while True:
                    if not self._pending:
                        if not self._moved.wait(IDLE_SECONDS) and not self._pending:
                            self._worker = None
                            return
                        continue
                    still_for = self._moved_at + self.debounce - time.monotonic()
                    if still_for <= 0:
                        break
                    self._moved.wait(still_for)
            self.flush()

    def _handle(self, request: rq.Request | None, message: mido.Message) -> None:
        if request is None:
            return
        try:
            self.handle(request, self.reply)
        except Exception as error:  # never let a request kill rtmidi's callback thread
            log.exception("MIDI %s failed", message)
            try:  # the DAW hears of it, as of any failed request (the service answers its own errors itself)
                self.reply("/dd/error", request.address, f"internal error: {described(error)}")
            except Exception:
                log.exception("MIDI %s: the error could not be sent", message)


def _port_name(wanted: str, available: list[str]) -> str | None:
    """The exact name, else the first port whose name starts with it (rtmidi appends client:port numbers)."""
    if wanted in available:
        return wanted
    return next((name for name in available if name.startswith(wanted)), None)


def open_midi(triggers: MidiTriggers, name: str | None):
    """An open input port feeding ``triggers``, or None (said once) where there is no MIDI to be had."""
    if name is None:
        log.info("MIDI: off")
        return None
    try:
        available = mido.get_input_names()
        found = _port_name(name, available)
        if found is not None:
            port = mido.open_input(found, callback=triggers.on_message)
        elif name == constants.MIDI_PORT_NAME and sys.platform != "win32":
            # client_name: DAWs list it as "DD Bridge:DD Bridge", not "RtMidiIn Client:DD Bridge"
            port = mido.open_input(name, virtual=True, client_name=name, callback=triggers.on_message)
        else:
            hint = "; on Windows, install a loopback driver such as loopMIDI" if sys.platform == "win32" else ""
            log.warning("MIDI: no input port named %r (ports: %s)%s; running without MIDI",
                        name, ", ".join(available) or "none", hint)
            return None
    except Exception as error:  # no ALSA sequencer, no CoreMIDI, backend missing: all mean "no MIDI here"
        log.warning("MIDI: no MIDI ports on this machine (%s); running without MIDI",
                    one_line(error) or type(error).__name__)
        return None
    log.info("MIDI: listening on %r (%s)", port.name,
             ", ".join(f"note {n} {a}" for n, a in triggers.notes.items()) + "".join(
                 f", CC {c} {t}" for c, t in triggers.cc.items()))
    return port
