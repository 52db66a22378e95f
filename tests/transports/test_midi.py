"""MIDI drives the same actions as OSC: mido messages fed to the handler (this machine may have no MIDI ports)."""

from __future__ import annotations

import logging

import mido

from bridge.daemon import requests as rq
from bridge.transports.midi import MidiTriggers, open_midi
from tests.support.service import Listener, running_service, service_config

NOTES, CC = {36: "vary", 37: "generate"}, {1: "noise"}


def test_messages_map_to_requests_through_the_config():
    triggers = MidiTriggers(None, None, {40: "generate"}, {7: "noise"})
    assert isinstance(triggers.request_for(mido.Message("note_on", note=40, velocity=90)), rq.Generate)
    assert triggers.request_for(mido.Message("note_on", note=36, velocity=90)) is None  # not mapped here
    assert triggers.request_for(mido.Message("note_on", note=40, velocity=0)) is None  # a note-off in disguise
    assert triggers.request_for(mido.Message("note_off", note=40)) is None
    assert triggers.request_for(mido.Message("control_change", control=7, value=127)) == rq.Set(key="noise", value=1.0)
    assert triggers.request_for(mido.Message("control_change", control=7, value=0)).value == 0.0
    assert triggers.request_for(mido.Message("control_change", control=1, value=64)) is None
    assert triggers.request_for(mido.Message("clock")) is None


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
            assert svc.status()["settings"]["noise"] == round(32 / 127, 4)

            # A press with nothing to vary is an error the clients hear; MIDI's thread survives it.
            svc.ask("/dd/cancel")
            svc.service.selected = None
            triggers.on_message(mido.Message("note_on", note=36, velocity=100))
            listener.wait_for(lambda m: m[0] == "/dd/error" and "no clip selected" in m[1][1])
    finally:
        listener.close()


def test_no_midi_is_said_once_and_the_service_runs_on(caplog):
    triggers = MidiTriggers(lambda *a: None, lambda *a: None, NOTES, CC)
    assert open_midi(triggers, None) is None
    with caplog.at_level(logging.INFO, logger="bridge.transports.midi"):
        port = open_midi(triggers, "No Such Port Anywhere 1234")
    assert port is None
    [record] = [r for r in caplog.records if r.name == "bridge.transports.midi"]
    assert "running without MIDI" in record.getMessage()
