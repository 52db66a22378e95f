"""MIDI triggers: a key press varies the selected clip or generates, a knob sets the noise level or a guide's weight.

The mapping comes from the config (default: note 36 = C1 varies, note 37 generates, CC 1 sets noise). Messages
become the same request values OSC makes, handed to the same ``handle(request, reply)``. No torch here.

Key presses are handed on at once, from rtmidi's callback thread (to the service's door, bridge.daemon.door, which
only queues them: the callback never waits, so closing the port never waits on it). Knobs are not: a turned knob sends 100-250 CCs a
second, and each setting applied drops the prefetch (and a guide's is checked), so a sweep handled message by
message would hold up the key press after it for seconds. A CC only records its knob's latest value (a value equal
to the last one is dropped: jittery pots, controllers that send their state again); a worker applies the latest
value of each knob once the knobs have been still for DEBOUNCE_SECONDS, and a key press applies what is pending
first, so it always acts with the knobs as they were when it was pressed. With ``midi.channel`` set, notes and CCs on
the other channels are ignored (a drum track on channel 10 sends GM kick 36, the default vary).

The port is MidiInput's, apart from the handling: it opens the port by name and, for a named (hardware) port,
watches for it to come and go (a controller plugged in after the service started, or unplugged and plugged back in).
The watcher lists the ports through a PortList: one backend client kept open, where mido's own listing would open
and close one every poll.
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
# How often the watcher lists the ports. Short enough that a replug (hand, cable, USB enumeration: over a second) is
# seen gone in between, which is what makes it reopen: a port back under the same name (JACK; ALSA when the card
# gets its old number) within one poll is not seen to have left, and the port stays on the gone endpoint. Long
# enough to cost nothing: a listing asks the PortList's client, kept open, for the names (no client is opened per look).
POLL_SECONDS = 1.0
# After listing the ports has failed (the JACK server restarted, the sequencer gone): try again this seldom. Each
# try prints the backend's own complaint on stderr (libjack, alsa-lib), which no Python code can silence. Also how
# often a JACK listing client is made anew while the watcher waits for its port (PortList: a dead server's is mute).
RETRY_SECONDS = 30.0
# Listings that fail in a row before the watcher slows to RETRY_SECONDS: one that fails alone (JACK refusing a client
# for a moment under load, seen in CI) must not leave an unplug unseen for RETRY_SECONDS.
FAILURES_BEFORE_RETRY = 5
STOP_WAIT_SECONDS = 1.0  # close() waits this long at most for a watcher inside a backend call (a daemon thread)
# The client that lists the ports, as a patchbay (JACK) or `aconnect -l` (ALSA) shows it for the service's life.
LISTING_CLIENT_NAME = "DD Bridge (ports)"
# The client that asks a JACK server, every RETRY_SECONDS while the controller's port is open, whether the service's
# own port is still there (PortList.inputs): opened and deleted at once, so a patchbay shows it only for that moment.
CHECK_CLIENT_NAME = "DD Bridge (check)"
RTMIDI_BACKEND = "mido.backends.rtmidi"  # mido's python-rtmidi backend, the one whose client PortList keeps


class MidiTriggers:
    """Turns MIDI messages into requests; ``on_message`` is mido's callback (rtmidi's thread)."""

    def __init__(self, handle: Callable, reply: Callable, notes: dict[int, str], cc: dict[int, str],
                 debounce: float = DEBOUNCE_SECONDS, channel: int | None = None):
        self.handle = handle
        self.reply = reply
        self.notes = dict(notes)
        self.cc = dict(cc)
        self.debounce = debounce
        self.channel = channel  # 1..16 as DAWs count them (mido's channel + 1); None: all
        self.received = 0
        self.other_channel = 0  # notes and CCs ignored for their channel: the count that says "wrong channel"
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)
        self._pending: dict[int, mido.Message] = {}  # a knob's latest value not applied yet
        self._last: dict[int, int] = {}  # a knob's last value taken (applied or pending)
        self._moved_at = 0.0
        self._worker: threading.Thread | None = None
        self._applying = threading.Lock()  # knobs' values go out in the order they were taken, before a press's

    def heard(self, message: mido.Message) -> bool:
        """Whether the message is on the channel listened to (messages without one, clock or sysex, are)."""
        channel = getattr(message, "channel", None)
        return self.channel is None or channel is None or channel + 1 == self.channel

    def request_for(self, message: mido.Message) -> rq.Request | None:
        if not self.heard(message):
            return None
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
        if not self.heard(message):
            if message.type in ("note_on", "control_change"):
                self.other_channel += 1
            return
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


class PortList:
    """The input ports' names, exactly as ``mido.get_input_names()`` gives them, from one backend client kept open.

    mido's listing opens a backend client per call (python-rtmidi's: an "RtMidiIn Client" and an "RtMidiOut Client"):
    polled every second for the service's whole life, a patchbay showed them come and go every second, and the MIDI
    server churned. Here, with mido's python-rtmidi backend, one rtmidi MidiIn named ``client_name`` is opened on the
    API mido's listing uses (MIDO_BACKEND, mido.set_backend: "mido.backends.rtmidi/UNIX_JACK" lists JACK's ports) and
    asked each time; with another backend (or a stand-in put in mido's place), mido's own listing is called as before.

    JACK and ALSA list what is there now from a kept client (JACK verified in the tests). CoreMIDI has one client per
    process in rtmidi anyway, kept or not: its list is as fresh as before (see MidiInput on what that is worth).

    A listing that raises drops the client; the next one makes a new one, which raises while the server is down (the
    caller's failure to count, as mido's listing raised). A JACK client whose server died raises nothing, though: it
    lists the ports that were there when it died, for good, even once the server is back, and rtmidi gives no sign of
    the death. Only a new client finds out. So while the caller waits for a port (``waiting``), a JACK client older
    than ``renew`` seconds is dropped before the listing and a new one made: a restarted server is seen within
    ``renew`` s, at the cost of one new client every ``renew`` s while waiting (not two every look). The old one is
    deleted before the new one opens: once a client opens after its server died, libjack frees the dead server's
    clients itself, and deleting one after that uses freed memory (seen to crash the process; a JACK client opened
    meanwhile elsewhere in the process, playback through PortAudio, would do the same, which nothing here can stop).
    With a port open the client is kept: its server gone, the port's own client is dead too, and nothing here can
    tell (see MidiInput).

    Not thread-safe: one thread at a time uses it, and deletes its client with ``close`` (see MidiInput.__init__).
    """

    def __init__(self, renew: float, client_name: str = LISTING_CLIENT_NAME):
        self.renew = renew
        self.client_name = client_name
        self._client = None  # the kept rtmidi.MidiIn, or None (none yet, dropped, or another backend)
        self._made = 0.0  # when it was made (time.monotonic())
        self._jack = False  # it is a JACK client (rtmidi chose JACK, or was told to)

    @property
    def kept(self) -> bool:
        """A client is open now."""
        return self._client is not None

    def names(self, waiting: bool = False) -> list[str]:
        """The input ports' names; raises what the backend raises (no server, no sequencer, an unknown API)."""
        if waiting and self._jack and time.monotonic() - self._made >= self.renew:
            self.close()
        if self._client is None:
            backend = _rtmidi_backend()
            if backend is None:
                return mido.get_input_names()
            import rtmidi  # mido's rtmidi backend has imported it: there is no other case here
            self._client = rtmidi.MidiIn(_rtmidi_api(rtmidi, backend.api), name=self.client_name)
            self._made = time.monotonic()
            self._jack = self._client.get_current_api() == rtmidi.API_UNIX_JACK
        try:
            # As mido's rtmidi backend gives them: it keys its devices by name, so a name comes once, in rtmidi's order.
            return list(dict.fromkeys(self._client.get_ports()))
        except Exception:
            self.close()
            raise

    def inputs(self) -> set[str] | None:
        """The JACK server's MIDI input ports now (what a MidiOut lists), from a client opened for this look and
        deleted at once; None where the kept client is not a JACK one. Raises while no server answers.

        A server restarted since the kept client opened has lost every client of the old one, the service's own
        input port among them, which MidiInput looks for. Opening this client frees the dead server's clients in
        libjack: the kept one must then be ``abandon``ed, never deleted (the probe itself is the live server's)."""
        if not self._jack:
            return None
        import rtmidi
        probe = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=CHECK_CLIENT_NAME)
        try:
            return set(probe.get_ports())
        finally:
            probe.delete()

    def abandon(self) -> None:
        """Drop the kept client without deleting it: its server died and another client has opened since, so libjack
        has freed it, and deleting it would use freed memory (seen to crash the process). python-rtmidi deletes a
        client on ``delete`` only, never when the object is collected: dropping it is safe."""
        self._client, self._jack = None, False

    def close(self) -> None:
        """Delete the client (python-rtmidi closes it on ``delete`` only, never when the object is collected)."""
        client, self._client, self._jack = self._client, None, False
        if client is not None:
            try:
                client.delete()
            except Exception as error:
                log.debug("MIDI: closing the listing client: %s", one_line(error))


def _rtmidi_backend() -> mido.Backend | None:
    """The Backend that mido.get_input_names lists with, where it is python-rtmidi's; else None.

    mido.set_backend binds mido's functions (get_input_names, open_input) to one Backend, with its API: that one, not
    mido.backend (which can be assigned on its own), lists the names that mido.open_input takes. A function put in
    get_input_names' place (the tests' stand-ins) is not bound to one: it is called instead."""
    backend = getattr(mido.get_input_names, "__self__", None)
    if isinstance(backend, mido.Backend) and backend.name == RTMIDI_BACKEND:
        return backend
    return None


def _rtmidi_api(rtmidi, name: str | None) -> int:
    """rtmidi's API for mido's name of it ("UNIX_JACK"), as mido's rtmidi backend takes it: None is rtmidi's choice.

    With no API named, rtmidi takes the first compiled in that has a port when the client is made (ALSA on Linux,
    where "Midi Through" is there) and the kept client stays on it, where mido's listing chose again at every call
    (a JACK one is made anew every ``renew`` s while waiting: PortList)."""
    if name is None:
        return rtmidi.API_UNSPECIFIED
    api = getattr(rtmidi, f"API_{name}", None)
    if api is None or api not in rtmidi.get_compiled_api():
        raise ValueError(f"MIDI API {name} is not compiled into python-rtmidi")
    return api


def _port_name(wanted: str, available: list[str]) -> str | None:
    """The exact name, else the first port whose name starts with it (rtmidi appends client:port numbers)."""
    if wanted in available:
        return wanted
    return next((name for name in available if name.startswith(wanted)), None)


class MidiInput:
    """The input port feeding ``triggers``, opened by name; a context manager (``with MidiInput(...) as midi``).

    ``start`` opens it at once: the port named (exact, else by prefix: `_port_name`), else the virtual port where
    the name is the default one (Linux, macOS). A named port, there or not, is then watched by a daemon thread,
    "midi-watch", the one that opens and closes it from then on: every ``poll`` seconds it lists the ports, opens a
    matching one that has appeared (a controller plugged in late, or back), and closes the open one whose name has
    left the list (unplugged: rtmidi would stay subscribed to the gone endpoint, deaf), to wait for it again. It
    lists them through one client kept open for its life, LISTING_CLIENT_NAME (`PortList`): a patchbay shows one
    entry that stays, not a client that comes and goes every second. The virtual port is the service's own and
    cannot go away: it needs no watcher, and no listing client is kept.

    Only as good as the backend's list: on macOS, CoreMIDI may not refresh its list in a process without a run
    loop (a known rtmidi/midir limitation; rtmidi's CoreMIDI client is one per process, kept whoever lists), so a
    late controller may still need a restart; on Windows (WinMM) a removed device may stay listed, so its loss may
    not be seen. ALSA and JACK list what is there, from the kept client too (JACK verified in the tests). A JACK
    server that dies or restarts gives no sign through rtmidi: the port's client and the listing client still list
    the ports of the server they had, and the port hears nothing. So on JACK the port's own name on the server is
    taken when it opens (the input port that came with it, ``_own``), and every ``retry`` s while it is open a
    client made for the look asks the server for it (PortList.inputs): gone, or no server answering, the port is
    abandoned with the listing client (never closed: libjack has freed them; `_abandon`), said once, and the controller waited
    for and opened again as after an unplug. One restarted while waiting for the controller is seen within
    ``retry`` s too (PortList).

    ``close`` (App.stop) stops the watcher at once (it waits on an Event, not a sleep) and closes the port; it never
    waits more than STOP_WAIT_SECONDS for a watcher inside a backend call. The watcher deletes the listing client on
    its way out (one still inside a backend call then, once that call returns). Open and close happen outside the
    lock; whoever takes the port out of ``_port`` under it closes it, so a port is closed once, and one opened while
    closing is closed by the watcher itself.
    """

    def __init__(self, triggers: MidiTriggers, name: str | None, poll: float | None = None,
                 retry: float | None = None):
        self.triggers = triggers
        self.wanted = name
        self.poll = POLL_SECONDS if poll is None else poll  # None: the module's, read now (the tests patch it)
        self.retry = RETRY_SECONDS if retry is None else retry
        self.virtual = False
        self._port = None  # the open port, or None
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._refused: str | None = None  # a port that is listed but would not open (said once)
        self._own: str | None = None  # on JACK: the open port's own name on the server, None where not known
        self._checked = 0.0  # when the server was last asked for it (time.monotonic())
        # The listing client. Owned by the thread that runs start() until it starts the watcher, then by the watcher
        # thread alone, which lists with it and deletes it (close() never touches it: the watcher may be listing).
        self._ports = PortList(renew=self.retry)

    def start(self) -> "MidiInput":
        name = self.wanted
        if name is None:
            log.info("MIDI: off")
            return self
        try:
            available = self._ports.names()  # the listing client made here, kept for the watcher if one starts
        except Exception as error:  # no ALSA sequencer, no CoreMIDI, no JACK server, backend missing
            # Not watched: that is the machine's setup, not a cable, and each try would print the backend's own
            # errors on stderr for the service's whole life. A restart once it is set up finds it.
            log.warning("MIDI: no MIDI on this machine (%s); running without MIDI",
                        one_line(error) or type(error).__name__)
            return self
        found = _port_name(name, available)
        if found is None and name == constants.MIDI_PORT_NAME and sys.platform != "win32":
            # Nothing to watch: no listing client kept. Closed first: the virtual port's client is the service's
            # name alone in a patchbay, never beside a listing client still open.
            self._ports.close()
            try:
                # client_name: DAWs list it as "DD Bridge:DD Bridge", not "RtMidiIn Client:DD Bridge"
                self._port = mido.open_input(name, virtual=True, client_name=name, callback=self.triggers.on_message)
            except Exception as error:
                log.warning("MIDI: the virtual port %r would not open (%s); running without MIDI", name,
                            one_line(error) or type(error).__name__)
                return self
            self.virtual = True
            self._listening(self._port)
            return self
        if found is None:
            hint = "; on Windows, install a loopback driver such as loopMIDI" if sys.platform == "win32" else ""
            log.warning("MIDI: no input port named %r yet (ports: %s)%s; waiting for it", name,
                        ", ".join(available) or "none", hint)
        else:
            self._open(found)
        # From here the listing client is the watcher's (see __init__).
        self._watcher = threading.Thread(target=self._watch, name="midi-watch", daemon=True)
        self._watcher.start()
        return self

    @property
    def connected(self) -> bool:
        """A port is open now (the virtual one, or the named one while it is plugged in)."""
        return self._port is not None

    @property
    def name(self) -> str | None:
        """The open port's full name, else the name asked for."""
        port = self._port
        return port.name if port is not None else self.wanted

    def status(self) -> dict:
        port = self._port  # once: a status asked for while it goes must not see it half gone
        return {"port": port.name if port is not None else self.wanted, "connected": port is not None}

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._closed = True
            port, self._port = self._port, None
        if port is not None:
            _close(port)
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(STOP_WAIT_SECONDS)
            self._watcher = None

    def __enter__(self) -> "MidiInput":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _watch(self) -> None:
        failures = 0  # listings failed in a row
        try:
            while not self._stop.wait(self.retry if failures >= FAILURES_BEFORE_RETRY else self.poll):
                try:
                    # A failed listing has dropped the client: this one makes a new one (the server may be back).
                    available = self._ports.names(waiting=self._port is None)
                except Exception as error:
                    failures += 1
                    if failures == FAILURES_BEFORE_RETRY:
                        log.warning("MIDI: the ports cannot be listed (%s); trying again every %g s",
                                    one_line(error) or type(error).__name__, self.retry)
                    continue
                failures = 0
                try:
                    if self._own is not None and time.monotonic() - self._checked >= self.retry \
                            and self._check_server():
                        continue  # what was listed came from the dead server's client: look again with a new one
                    self._follow(available)
                except Exception:  # never let a surprise end the watching: the controller would be deaf for good
                    log.exception("MIDI: watching %r failed; trying again", self.wanted)
        finally:
            self._ports.close()  # the watcher's client: deleted by the thread that uses it, never under a listing

    def _follow(self, available: list[str]) -> None:
        """One look at the ports: drop the open one if it went away, open a matching one if none is open."""
        port = self._port
        if port is not None:
            if port.name in available:
                return
            with self._lock:
                if self._port is not port:  # closed meanwhile
                    return
                self._port = None
            _close(port)
            log.warning("MIDI: %r went away; waiting for it", port.name)
        found = _port_name(self.wanted, available)
        if found is not None and not self._stop.is_set():
            self._open(found)

    def _check_server(self) -> bool:
        """On JACK, with the port open: abandon it if its server has lost it (restarted) or does not answer (see the
        class), and say whether it did. The next look then waits for the controller as after an unplug."""
        self._checked = time.monotonic()
        try:
            inputs = self._ports.inputs()
            why = "the JACK server restarted"
        except Exception as error:  # no server answering: it died (and may come back)
            inputs, why = set(), f"the JACK server is gone ({one_line(error) or type(error).__name__})"
        if inputs is None or self._own in inputs:
            return False
        with self._lock:
            port, self._port = self._port, None
        self._own = None
        self._ports.abandon()
        if port is not None:  # (None: closed meanwhile)
            _abandon(port)
            log.warning("MIDI: %r stopped hearing: %s; waiting for it", port.name, why)
        return True

    def _own_inputs(self) -> set[str] | None:
        """PortList.inputs, None where it cannot tell (not JACK, or no answer)."""
        try:
            return self._ports.inputs()
        except Exception as error:
            log.debug("MIDI: asking the JACK server for its inputs: %s", one_line(error))
            return None

    def _open(self, found: str) -> None:
        before = self._own_inputs()  # on JACK: the port's own name is the input that comes with it
        try:
            port = mido.open_input(found, callback=self.triggers.on_message)
        except Exception as error:  # gone again since it was listed; on Windows, another program holds it
            if self._refused != found:
                log.warning("MIDI: %r would not open (%s); trying again", found,
                            one_line(error) or type(error).__name__)
                self._refused = found
            return
        self._refused = None
        after = self._own_inputs() if before is not None else None
        came = after - before if after is not None else set()
        self._own = next(iter(came)) if len(came) == 1 else None  # two at once: another program's too, can't tell
        self._checked = time.monotonic()
        with self._lock:
            kept = not self._closed
            if kept:
                self._port = port
        if not kept:
            _close(port)
            return
        self._listening(port)

    def _listening(self, port) -> None:
        triggers = self.triggers
        channel = f"channel {triggers.channel}: " if triggers.channel is not None else ""
        log.info("MIDI: listening on %r (%s)", port.name,
                 channel + ", ".join(f"note {n} {a}" for n, a in triggers.notes.items()) + "".join(
                     f", CC {c} {t}" for c, t in triggers.cc.items()))


def _abandon(port) -> None:
    """Drop a port whose JACK server died without closing it (see PortList.abandon): marked closed, so neither a
    later close nor mido's __del__ deletes its client."""
    port.closed = True


def _close(port) -> None:
    try:
        port.close()
    except Exception as error:  # a port whose device went away may fail to close; it is dropped all the same
        log.debug("MIDI: closing %r: %s", port.name, one_line(error))
