"""Printed benchmark: press to first sound out through Player, on a dummy JACK server.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m tests.playback.bench_latency [--presses 50] [--period 256]

What a press costs once its variation is written (prefetched, as the service has it): Player.play(path) reads the
file, mixes it to the device's channels, resamples it to the server's rate (real drum one-shots, mostly 44.1 kHz,
into a 48 kHz server) and hands it to the output process, which starts it in the next cycle. The press is the
time.monotonic() just before play(); the sound is out when the cycle carrying its first sample has left the
server, as a client connected to the player's ports sees it (tests/playback/jack.py, tap="players"), plus its
place in that cycle. A real interface adds its own output buffer after that (about one period more). Presses come
0.25 to 0.45 s apart, each after the last sound ended, so every first sample is the new sound's.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=50)
    parser.add_argument("--period", type=int, default=256, help="the server's frames per cycle")
    parser.add_argument("--rate", type=int, default=48000)
    args = parser.parse_args()
    files = one_shots(args.presses)
    pacing = random.Random(1)
    with JackServer(rate=args.rate, period=args.period) as server, Player(output="system") as player:
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
    latencies = []
    for index, press in enumerate(presses):
        found = capture.first_sound(press)
        if found is not None:  # less the file's own lead-in: the time before its first sample over the threshold
            expected = reference(read_audio(files[index % len(files)]), args.rate, velocity_gain(100))
            lead = int(np.flatnonzero(np.abs(expected).max(axis=1) > 1e-4)[0]) / args.rate
            latencies.append(1000 * (found[1] - lead - press))
    latencies = np.array(latencies)
    print(f"server: jackd dummy, {args.rate} Hz, {args.period}-frame cycles ({1000 * args.period / args.rate:.1f} ms);"
          f" output stream latency reported by PortAudio: {1000 * device.latency:.1f} ms")
    print(f"press to first sound out, {len(latencies)} of {len(presses)} presses heard, real one-shots read from "
          f"disk: p50 {np.percentile(latencies, 50):.1f} ms, p95 {np.percentile(latencies, 95):.1f} ms, "
          f"max {latencies.max():.1f} ms")


if __name__ == "__main__":
    main()
