"""Regions through the real service: a clip playing 0.2 s of a 3 s file gives variations of exactly that 0.2 s.

Real UDP on loopback, a real file of three drum hits (the `drum_loop` fixture: 3 s, 44.1 kHz stereo), the micro
model; the CLI's `send` as a user types it.
"""

from __future__ import annotations

import os
import shlex

import numpy as np
import soundfile

from bridge.cli import main as cli_main
from bridge.cli.serve import describe_status
from bridge.engine.audio import read_audio, read_metadata
from bridge.engine.checkpoints import save_model
from bridge.engine.regions import Region
from bridge.daemon.renderer import Renderer
from tests.support.service import micro_model, running_service, service_config


def frames(path) -> tuple[int, int, int]:
    info = soundfile.info(path)
    return info.frames, info.samplerate, info.channels


def relative_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2)))


def test_a_key_press_varies_exactly_the_selected_region(tmp_path, drum_loop):
    (tmp_path / "models").mkdir()
    weights, _card = save_model(micro_model(seed=3), tmp_path / "models" / "micro")
    served = Renderer.load(str(weights), device="cpu")
    loop = str(drum_loop)
    with running_service(service_config(tmp_path), served) as svc:
        assert svc.ask("/dd/select", loop, "start=1.0", "end=1.2").args == ("select", loop)
        status = svc.wait_for(lambda s: s["prefetched"].get(loop) == 2, what="2 prefetched of the region")
        assert status["selected_region"] == {"start": 1.0, "end": 1.2, "tail": 0.0}
        assert f"selected   {loop} (1.000-1.200 s)" in describe_status(status)  # `dd-bridge status`

        [path] = svc.ask("/dd/vary").args[1:]  # a key press: the selected clip AND its region
        assert path == str(tmp_path / "samples" / "loop" / "loop 1.000-1.200s var 001.wav")
        assert svc.status()["recent"][0]["prefetched"] is True
        assert frames(path) == (8820, 44100, 2)  # 0.2 s at the source's rate and channel count
        meta = read_metadata(path)
        assert meta["region"] == [1.0, 1.2] and "tail" not in meta
        command = shlex.split(meta["command"])
        assert command[command.index("--start") + 1] == "1.0" and command[command.index("--end") + 1] == "1.2"

        # noise 0 gives the clip itself back: the region, not another part of the file.
        [same] = svc.ask("/dd/vary", "", 1, 0.0).args[1:]
        source = read_audio(drum_loop).samples
        heard = read_audio(same).samples
        assert relative_distance(heard, source[44100:52920]) < 0.05
        assert relative_distance(heard, source[0:8820]) > 0.5 and relative_distance(heard, source[88200:97020]) > 0.5

    # The recreate command in the file, run as it is, makes the same audio.
    again = tmp_path / "again"
    again.mkdir()
    assert cli_main(command[1:] + ["--out", str(again)]) == 0
    [made] = list(again.iterdir())
    assert made.name == "loop 1.000-1.200s var 001.wav"
    assert np.array_equal(soundfile.read(made)[0], soundfile.read(path)[0])


def test_prefetch_is_keyed_by_file_and_region(tmp_path, renderer, drum_loop):
    loop = str(drum_loop)
    staging = tmp_path / "samples" / ".dd-bridge-staging"
    with running_service(service_config(tmp_path), renderer) as svc:
        svc.ask("/dd/select", loop, "start=0.0", "end=0.5")
        svc.wait_for(lambda s: s["prefetched"].get(loop) == 2, what="the first region's prefetch")
        first_staged = set(staging.iterdir())
        assert len(first_staged) == 2

        svc.ask("/dd/select", loop, "start=2.0", "end=2.25")  # another clip on the same file
        svc.wait_for(lambda s: s["prefetched"].get(loop) == 2 and s["selected_region"]["start"] == 2.0,
                     what="the second region's prefetch")
        assert not first_staged & set(staging.iterdir())  # the old region's variations are gone, files included
        paths = svc.ask("/dd/vary", "", 2).args[1:]
        assert [os.path.basename(p) for p in paths] == ["loop 2.000-2.250s var 001.wav",
                                                         "loop 2.000-2.250s var 002.wav"]
        assert {frames(p) for p in paths} == {(11025, 44100, 2)}
        assert svc.status()["counters"]["prefetch_hits"] == 2

        # A region of the whole file is the file: plain names, as for a clip with no region.
        svc.ask("/dd/select", loop, "start=0", "end=3.0")
        assert svc.status()["selected_region"] is None
        [whole] = svc.ask("/dd/vary").args[1:]
        assert os.path.basename(whole) == "loop var 001.wav" and frames(whole) == (132300, 44100, 2)

        # A key press with its own region varies that part of the selected file.
        [own] = svc.ask("/dd/vary", "start=1.5", "end=1.6").args[1:]
        assert os.path.basename(own) == "loop 1.500-1.600s var 001.wav" and frames(own)[0] == 4410


def test_a_tail_lets_a_one_shot_ring_past_the_end(tmp_path, renderer, drum_loop):
    loop = str(drum_loop)
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        [rung] = svc.ask("/dd/vary", loop, "start=0.9", "end=1.0", "tail=0.5").args[1:]
        assert os.path.basename(rung) == "loop 0.900-1.000s var 001.wav"
        assert frames(rung)[0] == round(0.6 * 44100)
        meta = read_metadata(rung)
        assert meta["region"] == [0.9, 1.0] and meta["tail"] == 0.5 and "--tail 0.5" in meta["command"]
        # Only what the file has: 0.1 s before its end, however long the tail.
        svc.ask("/dd/select", loop, "start=2.9", "tail=1.0")
        [last] = svc.ask("/dd/vary").args[1:]
        assert os.path.basename(last) == "loop 2.900-3.000s var 001.wav" and frames(last)[0] == 4410


def test_interpolate_between_regions(tmp_path, renderer, drum_loop):
    loop = str(drum_loop)
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        reply = svc.ask("/dd/interpolate", loop, loop, 3, "start=1.0", "end=1.2", "b_start=2.0", "b_end=2.5")
        paths = reply.args[1:]
        assert [os.path.basename(p) for p in paths] == [f"loop 1.000-1.200s to loop 2.000-2.500s 00{i}.wav"
                                                        for i in (1, 2, 3)]
        assert {frames(p) for p in paths} == {(8820, 44100, 2)}  # the first clip's length
        meta = read_metadata(paths[0])
        assert meta["region"] == [1.0, 1.2] and meta["b_region"] == [2.0, 2.5]
        assert "--b-start 2.0 --b-end 2.5" in meta["command"]


def test_bad_regions_are_one_line_errors_and_nothing_is_written(tmp_path, renderer, drum_loop):
    loop = str(drum_loop)
    with running_service(service_config(tmp_path), renderer) as svc:
        cases = [
            (("/dd/select", loop, "start=3.5"), "start 3.5 s is past the end of loop.wav (3.000 s)"),
            (("/dd/select", loop, "start=1.2", "end=1.0"), "start (1.2 s) must be before end (1 s)"),
            (("/dd/select", loop, "start=-0.1"), "start must be in 0..86400, not -0.1"),
            (("/dd/vary", loop, "start=3"), "past the end of loop.wav"),
            (("/dd/interpolate", loop, loop, "b_start=4"), "start 4 s is past the end of loop.wav"),
            (("/dd/generate", "start=1"), "unknown option 'start'"),
        ]
        for (address, *args), expected in cases:
            reply = svc.ask(address, *args)
            assert reply.address == "/dd/error" and reply.args[0] == address, (args, reply)
            assert expected in reply.args[1] and "\n" not in reply.args[1], (args, reply.args)
        assert svc.status()["selected"] is None
        assert svc.ask("/dd/ping").address == "/dd/pong"
    assert not [p for p in (tmp_path / "samples").rglob("*.wav")]


def test_send_carries_a_region_as_typed(tmp_path, renderer, drum_loop, capsys, monkeypatch):
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        monkeypatch.chdir(drum_loop.parent)
        code = cli_main(["send", "--port", str(svc.port), "--timeout", "30", "/dd/vary", "loop.wav", "2", "0.3",
                         "start=1.0", "end=1.2"])
        out = capsys.readouterr().out
        assert code == 0 and [os.path.basename(p) for p in out.splitlines()] == [
            "loop 1.000-1.200s var 001.wav", "loop 1.000-1.200s var 002.wav"]
        assert {frames(p) for p in out.splitlines()} == {(8820, 44100, 2)}
        assert Region(*read_metadata(out.splitlines()[0])["region"]) == Region(1.0, 1.2)
