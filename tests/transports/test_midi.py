"""MIDI drives the same actions as OSC: mido messages fed to the handler (this machine may have no MIDI ports); a
named controller's port, watched as it comes and goes, on JACK MIDI (the jack_midi fixture)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import mido
import pytest

from bridge.cli.serve import describe_status
from bridge.daemon import requests as rq
from bridge.daemon.app import App
from bridge.engine.audio import read_metadata
from bridge.transports import midi
from bridge.transports.midi import MIN_KNOB_NOISE, MidiInput, MidiTriggers
from tests.support.service import Listener, running_service, service_config

ROOT = Path(__file__).resolve().parents[2]
NOTES, CC = {36: "vary", 37: "generate"}, {1: "noise"}
FAST = 0.02  # the watcher's poll in these tests (the service's: midi.POLL_SECONDS)


def test_messages_map_to_requests_through_the_config():
    triggers = MidiTriggers(None, None, {40: "generate"}, {7: "noise"})
    assert isinstance(triggers.request_for(mido.Message("note_on", note=40, velocity=90)), rq.Generate)
    assert triggers.request_for(mido.Message("note_on", note=36, velocity=90)) is None  # not mapped here
    assert triggers.request_for(mido.Message("note_on", note=40, velocity=0)) is None  # a note-off in disguise
    assert triggers.request_for(mido.Message("note_off", note=40)) is None
    assert triggers.request_for(mido.Message("control_change", control=7, value=127)) == rq.Set(key="noise", value=1.0)
    # The mod wheel's rest (CC 1 = 0) is the least noise that still varies: noise 0 gives back the source (s39-3 #7a).
    assert triggers.request_for(mido.Message("control_change", control=7, value=0)).value == MIN_KNOB_NOISE > 0
    assert triggers.request_for(mido.Message("control_change", control=1, value=64)) is None
    assert triggers.request_for(mido.Message("clock")) is None


def test_a_request_that_fails_unexpectedly_is_still_answered():
    """Only the log heard of a bug behind a key press; the DAW waited on (review s39)."""
    def broken(request, reply):
        raise RuntimeError("boom")

    replies = []
    triggers = MidiTriggers(broken, lambda *reply: replies.append(reply), {36: "vary"}, {})
    triggers.on_message(mido.Message("note_on", note=36, velocity=100))
    assert replies == [("/dd/error", "/dd/vary", "internal error: RuntimeError: boom")]


def test_key_presses_vary_and_generate_and_replies_reach_the_osc_clients(tmp_path, renderer, drum):
    listener = Listener()
    try:
        with running_service(service_config(tmp_path), renderer) as svc:
            svc.ask("/dd/hello", listener.port)  # the Max device's reply port hears MIDI-made files too
            triggers = MidiTriggers(svc.service.handle, svc.server.reply_for(None), NOTES, CC)
            svc.ask("/dd/select", str(drum))
            svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="prefetch")

            triggers.on_message(mido.Message("note_on", note=36, velocity=100))
            [(_, args)] = listener.wait_for(lambda m: m[0] == "/dd/done" and m[1][0] == "vary")
            assert args[1] == str(tmp_path / "samples" / "kick" / "kick var 001.wav")
            assert svc.status()["counters"]["prefetch_hits"] == 1

            triggers.on_message(mido.Message("note_on", note=37, velocity=100))
            listener.wait_for(lambda m: m[0] == "/dd/done" and m[1][0] == "generate")

            triggers.on_message(mido.Message("control_change", control=1, value=32))
            listener.wait_for(lambda m: m[0] == "/dd/ack" and m[1][:2] == ["set", "noise"])
            assert svc.status()["settings"]["noise"] == round(MIN_KNOB_NOISE + (1 - MIN_KNOB_NOISE) * 32 / 127, 4)

            # A press with nothing to vary is an error the clients hear; MIDI's thread survives it.
            svc.ask("/dd/cancel")
            svc.service.selected = None
            triggers.on_message(mido.Message("note_on", note=36, velocity=100))
            listener.wait_for(lambda m: m[0] == "/dd/error" and "no clip selected" in m[1][1])
    finally:
        listener.close()


def test_no_midi_is_said_once_and_the_service_runs_on(caplog, monkeypatch):
    """No backend (no ALSA sequencer, no JACK server): said once, and nothing watches (no thread, no retries that
    would print the backend's complaints on stderr for the service's whole life)."""
    triggers = MidiTriggers(lambda *a: None, lambda *a: None, NOTES, CC)
    with MidiInput(triggers, None) as off:
        assert off.status() == {"port": None, "connected": False} and off._watcher is None
    calls = []

    def no_backend():
        calls.append(1)
        raise RuntimeError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(mido, "get_input_names", no_backend)
    with caplog.at_level(logging.INFO, logger="bridge.transports.midi"):
        with MidiInput(triggers, "Launchkey", poll=FAST) as none:
            time.sleep(10 * FAST)
            assert none.status() == {"port": "Launchkey", "connected": False} and none._watcher is None
    assert len(calls) == 1
    [record] = [r for r in caplog.records if r.name == "bridge.transports.midi"]
    assert "running without MIDI" in record.getMessage() and "ALSA sequencer" in record.getMessage()


def test_no_jack_server_is_no_midi_said_once(caplog, monkeypatch):
    """mido's JACK backend with no server: the listing client itself cannot be made. No MIDI, as with mido's own
    listing: said once, nothing watched, no client kept."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "dd-bridge-test-none")  # a server that is not running
    backend = mido.backend
    mido.set_backend("mido.backends.rtmidi/UNIX_JACK")
    try:
        with caplog.at_level(logging.INFO, logger="bridge.transports.midi"), \
                MidiInput(MidiTriggers(None, None, NOTES, CC), "Launchkey", poll=FAST) as none:
            assert none._watcher is None and not none._ports.kept and not none.connected
    finally:
        mido.set_backend(backend)
    [record] = [r for r in caplog.records if r.name == "bridge.transports.midi"]
    assert record.getMessage() == ("MIDI: no MIDI on this machine (MidiInJack::initialize: JACK server not running?); "
                                   "running without MIDI")


def test_a_named_port_missing_at_start_is_waited_for(caplog, monkeypatch):
    """Review s39-3 #3: a controller plugged in after the service started was "running without MIDI" for good."""
    listed = [["Midi Through:Midi Through Port-0 14:0"]]
    monkeypatch.setattr(mido, "get_input_names", lambda: list(listed[0]))
    opened = []

    class Port:
        def __init__(self, name, callback):
            self.name, self.callback, self.closed = name, callback, False
            opened.append(self)

        def close(self):
            self.closed = True

    monkeypatch.setattr(mido, "open_input", lambda name, callback: Port(name, callback))
    triggers = MidiTriggers(lambda *a: None, lambda *a: None, NOTES, CC)
    with caplog.at_level(logging.INFO, logger="bridge.transports.midi"):
        with MidiInput(triggers, "Launchkey", poll=FAST) as watched:
            said = [r.getMessage() for r in caplog.records if r.name == "bridge.transports.midi"]
            assert said == ["MIDI: no input port named 'Launchkey' yet (ports: Midi Through:Midi Through Port-0 "
                            "14:0); waiting for it"]
            assert watched.status() == {"port": "Launchkey", "connected": False}
            listed[0] = listed[0] + ["Launchkey Mini:Launchkey Mini MIDI 1 20:0"]  # plugged in: opened by its start
            _until(lambda: watched.connected)
            assert watched.status() == {"port": "Launchkey Mini:Launchkey Mini MIDI 1 20:0", "connected": True}
            assert opened[0].callback == triggers.on_message
            listed[0] = listed[0][:1]  # unplugged: closed, and waited for again
            _until(lambda: not watched.connected)
            assert opened[0].closed
            listed[0] = listed[0] + ["Launchkey Mini:Launchkey Mini MIDI 1 24:0"]  # back, under a new ALSA number
            _until(lambda: watched.connected)
            assert watched.name == "Launchkey Mini:Launchkey Mini MIDI 1 24:0" and len(opened) == 2
        assert opened[1].closed and watched._watcher is None
    said = [r.getMessage() for r in caplog.records if r.name == "bridge.transports.midi"]
    assert [line.split(" (")[0] for line in said[1:]] == [
        "MIDI: listening on 'Launchkey Mini:Launchkey Mini MIDI 1 20:0'",
        "MIDI: 'Launchkey Mini:Launchkey Mini MIDI 1 20:0' went away; waiting for it",
        "MIDI: listening on 'Launchkey Mini:Launchkey Mini MIDI 1 24:0'"]  # each said once, however many polls


def test_ports_that_cannot_be_listed_any_more_are_said_once_and_tried_seldom(caplog, monkeypatch):
    """The JACK server restarted under a running service: one warning, then a try every ``retry`` s, not a spin."""
    calls, failing = [], [False]

    def names():
        calls.append(time.monotonic())
        if failing[0]:
            raise RuntimeError("MidiInJack::initialize: JACK server not running?")
        return []

    monkeypatch.setattr(mido, "get_input_names", names)
    triggers = MidiTriggers(lambda *a: None, lambda *a: None, NOTES, CC)
    with caplog.at_level(logging.INFO, logger="bridge.transports.midi"):
        with MidiInput(triggers, "Launchkey", poll=FAST, retry=5.0) as watched:
            _until(lambda: len(calls) >= 3)
            failing[0] = True
            _until(lambda: len(calls) >= 3 + midi.FAILURES_BEFORE_RETRY)  # a few quick tries (one may fail alone)
            tried = len(calls)
            time.sleep(0.3)
            assert len(calls) - tried <= 1  # every 5 s now, not every 0.02 s
            watcher, began = watched._watcher, time.monotonic()
        assert time.monotonic() - began < 0.9 and not watcher.is_alive()  # closing does not wait out the retry
    said = [r.getMessage() for r in caplog.records if "cannot be listed" in r.getMessage()]
    assert said == ["MIDI: the ports cannot be listed (MidiInJack::initialize: JACK server not running?); trying "
                    "again every 5 s"]


def test_a_listing_that_fails_alone_does_not_slow_the_watcher(caplog, monkeypatch):
    """JACK refused a client for a moment under load (CI): the watcher waited RETRY_SECONDS (30 s) before it looked
    again, so the unplug right after went unseen; one failure alone is retried at the usual pace, unsaid."""
    calls, fail_next = [], [0]

    def names():
        calls.append(time.monotonic())
        if fail_next[0]:
            fail_next[0] -= 1
            raise RuntimeError("Cannot open RtMidiOut Client client")
        return []

    monkeypatch.setattr(mido, "get_input_names", names)
    triggers = MidiTriggers(lambda *a: None, lambda *a: None, NOTES, CC)
    with caplog.at_level(logging.INFO, logger="bridge.transports.midi"):
        with MidiInput(triggers, "Launchkey", poll=FAST, retry=30.0):
            _until(lambda: len(calls) >= 2)
            fail_next[0] = 1
            tried = len(calls)
            _until(lambda: len(calls) >= tried + 3, timeout=2)  # looked again at once, not in 30 s
    assert not [r for r in caplog.records if "cannot be listed" in r.getMessage()]


def test_a_channel_is_listened_to_alone_when_one_is_set():
    """Review s39-3 #7d: a drum track on channel 10 (GM note 36, the kick) fired vary on every press."""
    def on(channel, **message):  # a channel as DAWs count them; mido's are 0..15
        return dict(message, channel=channel - 1)

    omni = MidiTriggers(None, None, NOTES, {1: "noise"})
    assert isinstance(omni.request_for(mido.Message("note_on", note=36, velocity=90, **on(10))), rq.Vary)
    triggers = MidiTriggers(None, None, NOTES, {1: "noise"}, channel=1)
    assert isinstance(triggers.request_for(mido.Message("note_on", note=36, velocity=90, **on(1))), rq.Vary)
    assert triggers.request_for(mido.Message("note_on", note=36, velocity=90, **on(10))) is None
    assert triggers.request_for(mido.Message("control_change", control=1, value=127, **on(2))) is None
    assert triggers.request_for(mido.Message("control_change", control=1, value=127, **on(1))).value == 1.0
    assert triggers.request_for(mido.Message("clock")) is None  # no channel: nothing to filter, nothing mapped
    assert MidiTriggers(None, None, NOTES, {}, channel=16).request_for(
        mido.Message("note_on", note=37, velocity=1, channel=15)) == rq.Generate()


def test_notes_and_knobs_on_other_channels_do_nothing_and_are_counted():
    handled = []
    triggers = MidiTriggers(lambda request, reply: handled.append(request), None, NOTES, {1: "noise"},
                            debounce=0.01, channel=1)
    triggers.on_message(mido.Message("control_change", control=1, value=100, channel=9))  # a knob on channel 10
    triggers.on_message(mido.Message("note_on", note=36, velocity=100, channel=9))  # the drum track's kick
    time.sleep(0.1)
    assert handled == [] and triggers._worker is None and triggers._pending == {}
    assert (triggers.received, triggers.other_channel) == (2, 2)
    triggers.on_message(mido.Message("note_on", note=36, velocity=100, channel=0))
    assert handled == [rq.Vary(velocity=100)]


def test_a_knob_on_a_guide_sets_its_weight_among_the_settings_guides(tmp_path, renderer, drum):
    """`midi.cc: {74: brightness}`: the knob's centre is off, its ends -2 and 2; the guide's place and the others'
    are kept; the files made after it carry it."""
    triggers = MidiTriggers(None, None, NOTES, {74: "brightness", 75: "decay"})
    knob = lambda control, value: triggers.request_for(mido.Message("control_change", control=control, value=value))
    assert knob(74, 127) == rq.GuideWeight(name="brightness", weight=2.0)
    assert knob(74, 0).weight == -2.0 and knob(74, 64).weight == 0.0 and knob(75, 96).weight == round(64 / 63, 2)
    listener = Listener()
    try:
        config = service_config(tmp_path, render={"prefetch": 0, "guide": ("punch=1", "brightness=1", "width=-1")})
        with running_service(config, renderer) as svc:
            svc.ask("/dd/hello", listener.port)
            triggers = MidiTriggers(svc.service.handle, svc.server.reply_for(None), NOTES, {74: "brightness",
                                                                                         75: "decay"})
            triggers.on_message(mido.Message("control_change", control=74, value=0))
            heard = ["set", "guide", "punch=1;brightness=-2;width=-1"]
            listener.wait_for(lambda m: m[0] == "/dd/ack" and m[1] == heard)
            triggers.on_message(mido.Message("control_change", control=75, value=127))
            triggers.on_message(mido.Message("control_change", control=74, value=64))
            listener.wait_for(lambda m: m[0] == "/dd/ack" and m[1] == ["set", "guide", "punch=1;width=-1;decay=2"])
            assert svc.status()["guides"] == ["decay=2", "punch=1", "width=-1"]  # in the order they act
            path = svc.ask("/dd/vary", str(drum), 1).args[1]
        assert read_metadata(path)["guide"] == ["decay=2", "punch=1", "width=-1"]
    finally:
        listener.close()


def test_a_knob_sweep_does_not_hold_up_the_key_press_after_it(tmp_path, renderer, drum):
    """Review s39-3 #2: each guide-knob CC was a full /dd/set guide on rtmidi's one thread (the guides' entry points
    read again, the prefetch dropped, every OSC client told): a sweep of 128 held the next press up for ~6 s. Now a
    CC only records the knob's value; its latest is applied once (or by the press, first, so the press acts with
    it), a value equal to the last one is dropped, and the press is handled at once."""
    listener = Listener()
    try:
        with running_service(service_config(tmp_path), renderer) as svc:
            svc.ask("/dd/hello", listener.port)
            handled = []

            def handle(request, reply):
                handled.append((time.perf_counter(), request))
                svc.service.handle(request, reply)

            triggers = MidiTriggers(handle, svc.server.reply_for(None), NOTES, {74: "brightness"})
            svc.ask("/dd/select", str(drum))
            svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="prefetch")
            began = time.perf_counter()
            for value in [*range(128), 127, 127]:  # a sweep as rtmidi hands it over, then the same value again
                triggers.on_message(mido.Message("control_change", control=74, value=value))
            swept = time.perf_counter() - began
            triggers.on_message(mido.Message("note_on", note=36, velocity=100))
            pressed = next(at for at, request in handled if isinstance(request, rq.Vary))
            assert swept < 0.05 and pressed - began < 0.5
            assert svc.status()["guides"] == ["brightness=2"]  # the press acted with the knob where it ended
            listener.wait_for(lambda m: m[0] == "/dd/done" and m[1][0] == "vary")
            time.sleep(0.2)
            guide_acks = [m for m in listener.messages if m[0] == "/dd/ack" and m[1][:2] == ["set", "guide"]]
            assert 1 <= len(guide_acks) <= 5 and guide_acks[-1][1][2] == "brightness=2"
            triggers.on_message(mido.Message("control_change", control=74, value=127))  # unchanged: nothing
            time.sleep(0.2)
            assert len([m for m in listener.messages if m[0] == "/dd/ack" and m[1][:2] == ["set", "guide"]]) == \
                len(guide_acks)
    finally:
        listener.close()


def test_a_knob_turned_alone_is_applied_once_it_is_still():
    applied = []
    triggers = MidiTriggers(lambda request, reply: applied.append(request), None, {}, {1: "noise"}, debounce=0.05)
    for value in (10, 20, 30):
        triggers.on_message(mido.Message("control_change", control=1, value=value))
    deadline = time.monotonic() + 5
    while not applied and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert applied == [rq.Set(key="noise", value=triggers.request_for(
        mido.Message("control_change", control=1, value=30)).value)]


def test_the_virtual_port_is_listed_as_dd_bridge(jack_midi):
    """Review s39-3 #7c: DAWs listed it as "RtMidiIn Client:DD Bridge". It is the service's own: not watched."""
    with MidiInput(MidiTriggers(None, None, NOTES, CC), "DD Bridge") as port:
        assert "DD Bridge:DD Bridge" in mido.get_output_names()
        assert port.virtual and port._watcher is None and port.status() == {"port": "DD Bridge", "connected": True}
        assert not port._ports.kept  # nothing to watch: no listing client either


def test_a_controller_unplugged_and_plugged_back_in_is_heard_again(jack_midi, caplog):
    """Review s39-3 #3: the replugged controller was never reopened, the service silently deaf. A controller here is
    a JACK client's output port, "Test Keys:Test Keys"; closing it is the unplug, opening it again the replug."""
    handled = []
    triggers = MidiTriggers(lambda request, reply: handled.append(request), None, NOTES, CC)
    keys = _controller()
    try:
        with caplog.at_level(logging.INFO, logger="bridge.transports.midi"), \
                MidiInput(triggers, "Test Keys", poll=FAST) as watched:
            assert watched.status() == {"port": "Test Keys:Test Keys", "connected": True}
            keys.send(mido.Message("note_on", note=36, velocity=90))
            _until(lambda: handled == [rq.Vary(velocity=90)])

            keys.close()  # unplugged
            _until(lambda: not watched.connected)
            assert watched.status() == {"port": "Test Keys", "connected": False}
            keys = _controller()  # plugged back in
            _until(lambda: watched.connected)
            keys.send(mido.Message("note_on", note=36, velocity=91))
            _until(lambda: handled == [rq.Vary(velocity=90), rq.Vary(velocity=91)])
        said = [r.getMessage() for r in caplog.records if r.name == "bridge.transports.midi"]
        assert "MIDI: 'Test Keys:Test Keys' went away; waiting for it" in said
        assert len([line for line in said if line.startswith("MIDI: listening on 'Test Keys:Test Keys'")]) == 2
    finally:
        keys.close()


def test_a_controller_plugged_in_after_start_is_opened(jack_midi, caplog):
    handled = []
    triggers = MidiTriggers(lambda request, reply: handled.append(request), None, NOTES, CC)
    with caplog.at_level(logging.INFO, logger="bridge.transports.midi"), \
            MidiInput(triggers, "Test Keys", poll=FAST) as watched:
        assert not watched.connected
        assert any("waiting for it" in r.getMessage() for r in caplog.records)
        assert not any("running without MIDI" in r.getMessage() for r in caplog.records)
        keys = _controller()
        try:
            _until(lambda: watched.connected)
            keys.send(mido.Message("note_on", note=37, velocity=64))
            _until(lambda: handled == [rq.Generate()])
        finally:
            keys.close()


def test_the_status_shows_the_controller_as_it_is_now(jack_midi, tmp_path, renderer, monkeypatch):
    """`/dd/status` showed the name the port had at start, connected or not."""
    monkeypatch.setattr(midi, "POLL_SECONDS", FAST)
    with running_service(service_config(tmp_path, midi_port="Test Keys", midi_channel=10), renderer) as svc:
        assert svc.status()["midi"] == {"port": "Test Keys", "connected": False, "channel": 10, "received": 0,
                                        "other_channel": 0}
        assert "midi       Test Keys (not connected: waiting for it); channel 10, 0 messages" in \
            describe_status(svc.status())  # `dd-bridge status`
        keys = _controller()
        try:
            svc.wait_for(lambda s: s["midi"]["connected"], what="the controller")
            keys.send(mido.Message("note_on", note=38, velocity=64, channel=0))  # channel 1: not listened to
            status = svc.wait_for(lambda s: s["midi"]["received"] == 1, what="the note")
            assert status["midi"] == {"port": "Test Keys:Test Keys", "connected": True, "channel": 10,
                                      "received": 1, "other_channel": 1}
            assert "midi       Test Keys:Test Keys; channel 10, 1 messages, 1 on other channels" in \
                describe_status(status)
        finally:
            keys.close()
        svc.wait_for(lambda s: not s["midi"]["connected"], what="the unplug")


def test_a_controllers_keys_reach_the_service_through_the_apps_door(jack_midi, tmp_path, renderer, drum,
                                                                      monkeypatch):
    """The whole way a producer uses it: a controller plugged in (real JACK MIDI), the App as `dd-bridge serve` wires
    it (its MidiTriggers hand to the door, bridge.daemon.door, not to the service itself as the tests above do), the
    mod wheel, then a key: the press is answered with a file made at the wheel's noise, and every reply reaches the
    OSC clients."""
    monkeypatch.setattr(midi, "POLL_SECONDS", FAST)
    monkeypatch.setattr(midi, "IDLE_SECONDS", 0.5)
    listener = Listener()
    keys = None
    try:
        with running_service(service_config(tmp_path, midi_port="Test Keys", render={"prefetch": 0}),
                             renderer) as svc:
            svc.ask("/dd/hello", listener.port)
            svc.ask("/dd/select", str(drum))
            keys = _controller()
            svc.wait_for(lambda s: s["midi"]["connected"], what="the controller")
            keys.send(mido.Message("control_change", control=1, value=127, channel=9))
            listener.wait_for(lambda m: m[0] == "/dd/ack" and m[1][:2] == ["set", "noise"])
            keys.send(mido.Message("note_on", note=36, velocity=100, channel=9))
            [(_, args)] = listener.wait_for(lambda m: m[0] == "/dd/done" and m[1][0] == "vary")
            made = read_metadata(args[1])
            assert args[1] == str(tmp_path / "samples" / "kick" / "kick var 001.wav")
            assert made["noise"] == 1.0 and "--noise 1" in made["command"], made  # the wheel at its top
            assert svc.status()["midi"]["received"] == 2
    finally:
        if keys is not None:
            keys.close()
        listener.close()


def test_stopping_the_service_stops_the_watcher_at_once(jack_midi, tmp_path, renderer, monkeypatch):
    """App.stop with the watcher between two looks (a long poll here) and the controller's port open."""
    monkeypatch.setattr(midi, "POLL_SECONDS", 30.0)
    keys = _controller()
    try:
        app = App(service_config(tmp_path, midi_port="Test Keys"), renderer).start()
        port, watcher = app.midi._port, app.midi._watcher
        assert port is not None and watcher.is_alive()
        began = time.monotonic()
        app.stop(timeout=30)
        assert time.monotonic() - began < 2.0
        assert port.closed and not watcher.is_alive()
        assert not [thread for thread in threading.enumerate() if thread.name == "midi-watch"]
    finally:
        keys.close()


def test_the_ports_are_listed_by_one_client_kept_open(jack_midi, monkeypatch):
    """mido.get_input_names() opens a client per call: a patchbay showed an "RtMidiIn Client" and an "RtMidiOut
    Client" come and go at every look, every second for the service's whole life. Seen from the JACK server itself:
    one listing client, "DD Bridge (ports)", for the watcher's life, that sees a controller plugged in late; and
    "DD Bridge (check)" for a moment, before and after the port opens (the port's own name on the server)."""
    import jack
    clients = []  # (name, registered) as the server tells every client
    observer = jack.Client("dd-test-observer", no_start_server=True)
    observer.set_client_registration_callback(lambda name, registered: clients.append((name, registered)))
    observer.activate()
    follow, looks = MidiInput._follow, []

    def look(self, available):
        looks.append(available)
        follow(self, available)

    monkeypatch.setattr(MidiInput, "_follow", look)
    keys = None
    try:
        with MidiInput(MidiTriggers(None, None, NOTES, CC), "Test Keys", poll=FAST) as watched:
            _until(lambda: len(looks) >= 10)  # looks with nothing to find
            keys = _controller()
            _until(lambda: watched.connected)
            seen = len(looks)
            _until(lambda: len(looks) >= seen + 10)  # and with the port open
        keys.close()
        _until(lambda: ("Test Keys", False) in clients)
        # The listing's, the controller, its port, and the two looks that take the port's own name as it opens
        # (no more: the server is asked for it again every RETRY_SECONDS, 30 s)
        assert Counter(name for name, registered in clients if registered) == {
            "DD Bridge (ports)": 1, "Test Keys": 1, "RtMidiIn Client": 1, midi.CHECK_CLIENT_NAME: 2}
        _until(lambda: ("DD Bridge (ports)", False) in clients)  # and closed with the watcher
    finally:
        if keys is not None:
            keys.close()
        observer.deactivate()
        observer.close()


def test_a_jack_server_restarted_while_waiting_is_followed(caplog):
    """A kept JACK client whose server died raises nothing: it lists what was there at its death, for good, even once
    the server is back. Waiting for the controller, the watcher makes its listing client anew every ``retry`` s,
    the old one deleted first (libjack frees a dead server's clients once another opens: deleting one after that
    crashed the process); a new one, once the server is back, finds the controller plugged in there."""
    from tests.playback.jack import JackServer
    backend = mido.backend
    server = JackServer().start()
    mido.set_backend("mido.backends.rtmidi/UNIX_JACK")
    keys = None
    try:
        with caplog.at_level(logging.INFO, logger="bridge.transports.midi"), \
                MidiInput(MidiTriggers(None, None, NOTES, CC), "Test Keys", poll=FAST, retry=0.2) as watched:
            assert watched._ports.kept and not watched.connected
            server.process.terminate()  # the server gone
            server.process.wait()
            _until(lambda: not watched._ports.kept)  # the listing client dropped; new ones fail while it is down
            server.start()  # the same server back
            keys = _controller()
            _until(lambda: watched.connected)
            assert watched.name == "Test Keys:Test Keys" and watched._ports.kept
        said = [r.getMessage() for r in caplog.records if r.name == "bridge.transports.midi"]
        assert said[0].startswith("MIDI: no input port named 'Test Keys' yet")
        assert said[-1].startswith("MIDI: listening on 'Test Keys:Test Keys'")
    finally:
        if keys is not None:
            keys.close()
        server.stop()
        mido.set_backend(backend)


# The JACK server restarted by another program, with the controller's port on it: a process of its own, as
# QjackCtl's restart and a hardware port are. (In this process, the test opening JACK clients while the watcher
# opens its own right after a restart races in libjack, which frees the dead server's clients at the first open.)
RESTARTED_SERVER = """
import sys, mido
sys.path.insert(0, sys.argv[1])
from tests.playback.jack import JackServer
server = JackServer()
server.name = sys.argv[2]  # the name of the server that died
server.start()
mido.set_backend("mido.backends.rtmidi/UNIX_JACK")
keys = mido.open_output("Test Keys", client_name="Test Keys")
print("ready", flush=True)
for line in sys.stdin:
    keys.send(mido.Message("note_on", note=36, velocity=int(line)))
keys.close()
server.stop()
"""


@pytest.mark.parametrize("away", [0.0, 1.0], ids=["restarted at once", "down a while"])
def test_a_jack_server_restarted_under_an_open_controller_is_followed(caplog, away):
    """Review s40/s41: a JACK server restarted while the controller's port was open left the port deaf for good and
    the status saying "connected": rtmidi gives no sign, and the kept clients list the dead server's ports. The
    port's own name on the server is taken when it opens, and asked for every ``retry`` s: gone, the port is
    abandoned (never closed: libjack has freed it), and the controller on the new server opened and heard."""
    from tests.playback.jack import JackServer
    backend = mido.backend
    server = JackServer().start()
    mido.set_backend("mido.backends.rtmidi/UNIX_JACK")
    handled = []
    triggers = MidiTriggers(lambda request, reply: handled.append(request), None, NOTES, CC)
    keys, again = _controller(), None
    try:
        with caplog.at_level(logging.INFO, logger="bridge.transports.midi"), \
                MidiInput(triggers, "Test Keys", poll=FAST, retry=0.2) as watched:
            assert watched.connected and watched._own is not None
            keys.send(mido.Message("note_on", note=36, velocity=90))
            _until(lambda: handled == [rq.Vary(velocity=90)])
            server.process.terminate()  # the server gone, and (after `away` s) back, the controller with it
            server.process.wait()
            keys.closed, keys = True, None  # the test's controller is the dead server's too: dropped, never closed
            time.sleep(away)
            again = subprocess.Popen([sys.executable, "-c", RESTARTED_SERVER, str(ROOT), server.name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert again.stdout.readline() == "ready\n"
            _until(lambda: watched.connected and watched._own is not None, timeout=20)
            again.stdin.write("91\n")
            again.stdin.flush()
            _until(lambda: handled == [rq.Vary(velocity=90), rq.Vary(velocity=91)])
            assert watched.status() == {"port": "Test Keys:Test Keys", "connected": True}
        said = [r.getMessage() for r in caplog.records if r.name == "bridge.transports.midi"]
        stopped = [line for line in said if "stopped hearing" in line]
        assert len(stopped) == 1 and stopped[0].startswith("MIDI: 'Test Keys:Test Keys' stopped hearing: the JACK "
                                                           "server "), said
        assert len([line for line in said if line.startswith("MIDI: listening on 'Test Keys:Test Keys'")]) == 2
        assert not [line for line in said if "would not open" in line], said  # never opened from a dead listing
    finally:
        if again is not None:
            again.stdin.close()
            again.wait(timeout=30)
        server.stop()
        mido.set_backend(backend)


def _controller():
    """A controller's output port as the service lists it: "Test Keys:Test Keys" (its client and port name)."""
    return mido.open_output("Test Keys", client_name="Test Keys")


def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def jack_midi():
    """rtmidi's JACK MIDI on a dummy JACK server (this machine may have no ALSA sequencer)."""
    from tests.playback.jack import JackServer
    backend = mido.backend
    with JackServer():
        mido.set_backend("mido.backends.rtmidi/UNIX_JACK")
        try:
            yield
        finally:
            mido.set_backend(backend)  # mido's functions too (get_input_names, open_input), not mido.backend alone
