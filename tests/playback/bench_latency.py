"""Printed benchmark: press to first sound out through Player, on a dummy JACK server.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m tests.playback.bench_latency [--presses 50] [--period 256]

What a press costs once its variation is written (prefetched, as the service has it): Player.play(path) reads the
file, mixes it to the device's channels, resamples it to the server's rate (real drum one-shots, mostly 44.1 kHz,
into a 48 kHz server) and hands it to the output process, which starts it in the next cycle. The press is the
time.monotonic() just before play(); the sound is out when the cycle carrying its first sample has left the
server, as a client connected to the player's ports sees it (tests/playback/jack.py, tap="players"), plus its
place in that cycle. A real interface adds its own output buffer after that (about one period more). Presses come
0.25 to 0.45 s apart, each after the last sound ended, so every first sample is the new sound's.

--service: the same through the service in audition mode, as a producer plays it: a running service (the tests'
micro model, prefetch 4) with a real one-shot selected, each press a MIDI note 36 handed to the MIDI callback
(MidiTriggers.on_message, as rtmidi calls it), answered from prefetch: the variation is staged and played; the
prefetch refills between presses.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import mido
import numpy as np
import soundfile

from bridge.engine.audio import read_audio
from bridge.playback.player import Player, velocity_gain
from tests.conftest import DRUMKITS
from tests.playback.jack import JackServer, Recorder
from tests.playback.signals import reference


def one_shots(count: int) -> list[Path]:
    """Real drum one-shots under 0.25 s, so each ends before the next press."""
    found = [path for path in sorted(DRUMKITS.rglob("*.wav")) if soundfile.info(str(path)).duration < 0.25]
    return random.Random(0).sample(found, min(count, len(found)))


def lead_in(clip, rate: int, gain: float = 1.0) -> float:
    """Seconds before the clip's first sample over the capture's threshold, as played at rate."""
    expected = reference(clip, rate, gain)
    return int(np.flatnonzero(np.abs(expected).max(axis=1) > 1e-4)[0]) / rate


def press_player(server: JackServer, args):
    files = one_shots(args.presses)
    pacing = random.Random(1)
    with Player(output="system") as player:
        recorder = Recorder(server, tap="players")
        try:
            recorder.start()
            presses = []
            for index in range(args.presses):
                time.sleep(pacing.uniform(0.25, 0.45))
                presses.append(time.monotonic())
                player.play(files[index % len(files)], velocity=100)
            capture = recorder.stop(tail=0.3)
        finally:
            recorder.close()
        device = player.device
    leads = [lead_in(read_audio(files[i % len(files)]), args.rate, velocity_gain(100)) for i in range(args.presses)]
    return presses, capture, device, leads, "Player.play(file), real one-shots read from disk"


def press_service(server: JackServer, args):
    from bridge.daemon.renderer import Renderer
    from bridge.transports.midi import MidiTriggers
    from tests.support.service import micro_model, one_thread, running_service, service_config

    pacing = random.Random(1)
    with tempfile.TemporaryDirectory() as scratch, one_thread():
        scratch = Path(scratch)
        source = scratch / "kick.wav"
        shutil.copy(one_shots(1)[0], source)  # under 0.25 s: each sound has ended when the next press comes
        config = service_config(scratch, audio_output="system", render={"audition": True, "prefetch": 4})
        with running_service(config, Renderer(micro_model(), "micro", device="cpu")) as svc:
            svc.wait_for(lambda s: s["audio"]["output"], what="the audio output")
            svc.ask("/dd/select", str(source))
            triggers = MidiTriggers(svc.service.handle, svc.server.reply_for(None), {36: "vary"}, {})
            recorder = Recorder(server, tap="players")
            presses = []
            try:
                recorder.start()
                for _ in range(args.presses):
                    svc.wait_for(lambda s: s["prefetched"].get(str(source), 0) >= 1, what="a prefetched variation")
                    time.sleep(pacing.uniform(0.25, 0.45))
                    presses.append(time.monotonic())
                    triggers.on_message(mido.Message("note_on", note=36, velocity=100))
                capture = recorder.stop(tail=0.5)
            finally:
                recorder.close()
            device = svc.service.audition.player.device
            leads = [0.0] * len(presses)  # a variation's lead-in is not known here: counted in, an upper bound
            hits = svc.status()["counters"]["prefetch_hits"]
    return presses, capture, device, leads, (f"MIDI note 36 to the service in audition, {hits} of "
                                             f"{len(presses)} answered from prefetch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=50)
    parser.add_argument("--period", type=int, default=256, help="the server's frames per cycle")
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--service", action="store_true", help="presses as MIDI notes to the service in audition")
    args = parser.parse_args()
    with JackServer(rate=args.rate, period=args.period) as server:
        presses, capture, device, leads, what = (press_service if args.service else press_player)(server, args)
    latencies = []
    for press, lead in zip(presses, leads):
        found = capture.first_sound(press)
        if found is not None:  # less the sound's own lead-in: the time before its first sample over the threshold
            latencies.append(1000 * (found[1] - lead - press))
    latencies = np.array(latencies)
    print(f"server: jackd dummy, {args.rate} Hz, {args.period}-frame cycles ({1000 * args.period / args.rate:.1f} ms);"
          f" output stream latency reported by PortAudio: {1000 * device.latency:.1f} ms")
    print(f"press to first sound out, {len(latencies)} of {len(presses)} presses heard, {what}: p50 {np.percentile(latencies, 50):.1f} ms, p95 {np.percentile(latencies, 95):.1f} ms, "
          f"max {latencies.max():.1f} ms")


if __name__ == "__main__":
    main()
