"""MIDI triggers: a key press varies the selected clip or generates, a knob sets the noise level or a guide's weight.

The mapping comes from the config (default: note 36 = C1 varies, note 37 generates, CC 1 sets noise). Messages
become the same request values OSC makes, handed to the same ``handle(request, reply)``. No torch here.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable

import mido

from bridge import constants
from bridge.daemon import requests as rq
from bridge.errors import described, one_line

log = logging.getLogger(__name__)

CC_RANGES = {"noise": (0.0, 1.0)}  # a controller's 0..127 spans its setting's range
GUIDE_KNOB = 2.0  # a knob on a guide (any other of constants.MIDI_CC_SETTINGS) spans weights -2..2; 64 is off


class MidiTriggers:
    """Turns MIDI messages into requests; ``on_message`` is mido's callback (rtmidi's thread)."""

    def __init__(self, handle: Callable, reply: Callable, notes: dict[int, str], cc: dict[int, str]):
        self.handle = handle
        self.reply = reply
        self.notes = dict(notes)
        self.cc = dict(cc)
        self.received = 0

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
        request = self.request_for(message)
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
            port = mido.open_input(name, virtual=True, callback=triggers.on_message)
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
