"""The service's hardening (issue 11), end to end over real UDP: what a planted link, a replaced source, a long
multichannel clip, a rewrite on the OSC thread or another client's /dd/cancel must not do."""

from __future__ import annotations

import os
import shlex
import time

import numpy as np
import pytest
import soundfile

from bridge.cli import main as cli_main
from bridge.daemon.renderer import Renderer
from bridge.engine.audio import read_metadata
from bridge.engine.checkpoints import save_model
from tests.support.service import Listener, micro_model, running_service, service_config

STAGING = ".dd-bridge-staging"


def files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


def multichannel(path, drum, seconds: float, channels: int = 8, rate: int = 96000):
    """A real drum hit laid out as a long multichannel file: what a producer's stems or ambisonic takes look like."""
    data, _ = soundfile.read(drum, dtype="float32", always_2d=True)
    frames = round(seconds * rate)
    mono = np.resize(data[:, 0], frames)
    soundfile.write(path, np.stack([mono * (0.9 ** c) for c in range(channels)], axis=1), rate, subtype="PCM_24")
    return path


@pytest.mark.parametrize("when", ["before start", "while running"])
def test_a_planted_staging_link_is_removed_not_followed(tmp_path, renderer, drum, when):
    outside = tmp_path / "outside"
    outside.mkdir()
    samples = tmp_path / "samples"
    samples.mkdir()
    if when == "before start":  # what a crash leaves for an attacker to swap
        (samples / STAGING).symlink_to(outside, target_is_directory=True)
    with running_service(service_config(tmp_path), renderer) as svc:
        if when == "while running":
            (samples / STAGING).symlink_to(outside, target_is_directory=True)
        svc.ask("/dd/select", str(drum))
        svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="2 prefetched")
        assert not (samples / STAGING).is_symlink() and (samples / STAGING).is_dir()
        assert files(outside) == []
        made = svc.ask("/dd/vary").args[1]
        assert made == str(samples / "kick" / "kick var 001.wav")
    assert files(outside) == [] and not (samples / STAGING).exists()


def test_requests_cannot_write_into_the_staging_folder(tmp_path, renderer, drum):
    staging = tmp_path / "samples" / STAGING
    with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
        for folder in (staging, staging / "mine", tmp_path / "samples" / "x" / ".." / STAGING):
            reply = svc.ask("/dd/vary", str(drum), f"folder={folder}")
            assert reply.address == "/dd/error" and "staging folder" in reply.args[1], folder
            reply = svc.ask("/dd/set", "folder", str(folder))
            assert reply.address == "/dd/error" and "staging folder" in reply.args[1], folder
        assert svc.status()["folder"] == str(tmp_path / "samples")
        made = svc.ask("/dd/vary", str(drum)).args[1]
    assert os.path.exists(made)  # a result is never where the stop deletes it
    assert [p for p in files(tmp_path / "samples")] == [tmp_path / "samples" / "kick" / "kick var 001.wav"]


def test_a_press_after_the_selected_clip_was_replaced_varies_the_new_audio(tmp_path, drum):
    """The clip is swapped for another of the same size and time (only the inode differs), then deleted: a key
    press, prefetched or with seed=, must give what its recreate command gives, or say the clip is gone."""
    (tmp_path / "models").mkdir()
    weights, _card = save_model(micro_model(seed=3), tmp_path / "models" / "micro")
    served = Renderer.load(str(weights), device="cpu")
    data, rate = soundfile.read(drum, dtype="float32")
    clip, replacement = tmp_path / "in" / "hit.wav", tmp_path / "in" / "other.wav"
    soundfile.write(clip, data, rate, subtype="PCM_16")
    soundfile.write(replacement, -data[::-1], rate, subtype="PCM_16")  # another sound, the same byte count
    with running_service(service_config(tmp_path, render={"sampler": "v-ddim"}), served) as svc:
        svc.ask("/dd/select", str(clip))
        svc.wait_for(lambda s: s["prefetched"].get(str(clip)) == 2, what="prefetch of the old audio")
        before = clip.stat()
        os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(replacement, clip)
        assert (clip.stat().st_size, clip.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)

        made = [svc.ask("/dd/vary").args[1], svc.ask("/dd/vary", "seed=11").args[1]]
        for index, path in enumerate(made):
            command = shlex.split(read_metadata(path)["command"])
            again = tmp_path / f"again{index}"
            again.mkdir()
            assert cli_main(["--quiet", *command[1:], "--out", str(again)]) == 0
            [remade] = files(again)
            assert np.array_equal(soundfile.read(remade)[0], soundfile.read(path)[0]), path

        clip.unlink()
        gone = svc.ask("/dd/vary")
        assert gone.address == "/dd/error" and "no such file" in gone.args[1] and str(clip) in gone.args[1]
        assert svc.ask("/dd/ping").address == "/dd/pong"


def test_prefetch_memory_is_bounded_in_bytes(tmp_path, renderer, drum):
    """prefetch 16 of a 1 s 8-channel 96 kHz clip (2.9 MiB decoded each) within 16 MiB: the source and 4 ready."""
    a = multichannel(tmp_path / "in" / "stems a.wav", drum, 1.0)
    b = multichannel(tmp_path / "in" / "stems b.wav", drum, 1.0)
    each = 96000 * 8 * 4
    budget = 16 * 2**20
    config = service_config(tmp_path, render={"prefetch": 16}, prefetch_memory_mb=16)
    with running_service(config, renderer) as svc:
        def settled(name):
            status = svc.wait_for(lambda s: s["prefetched"].get(str(name), 0) >= 4 and s["running"] is None,
                                  what=f"prefetch of {name.name}")
            time.sleep(1.0)  # had it room for more, the render thread would be at it now
            return svc.status()

        svc.ask("/dd/select", str(a))
        status = settled(a)
        assert status["running"] is None and status["prefetched"][str(a)] == (budget - each) // each == 4
        assert status["prefetched_bytes"] == 5 * each <= budget
        assert len(svc.ask("/dd/vary").args) == 2  # a press takes one; the prefetch refills to the bound
        svc.ask("/dd/select", str(b))  # the older clip's entry gives way to the selected one
        status = settled(b)
        assert status["prefetched"].get(str(a), 0) == 0 and status["prefetched"][str(b)] == 4
        assert status["prefetched_bytes"] <= budget


def test_a_press_that_must_rewrite_its_files_leaves_the_osc_thread_free(tmp_path, renderer, drum):
    """A prefetched variation asked for in another format is written out again: a ping sent right after the press
    is answered before that write is done, not after."""
    stems = multichannel(tmp_path / "in" / "stems.wav", drum, 2.0)
    listener = Listener()
    try:
        with running_service(service_config(tmp_path, render={"prefetch": 1}), renderer) as svc:
            svc.ask("/dd/select", str(stems))
            svc.wait_for(lambda s: s["prefetched"].get(str(stems)) == 1, what="prefetch")
            listener.send(svc.port, "/dd/vary", "#press", "format=float")
            listener.send(svc.port, "/dd/ping", "#ping")
            listener.wait_for(lambda m: m[0] == "/dd/done")
            order = [m[1][0] for m in listener.wait_for(lambda m: m[0] in ("/dd/done", "/dd/pong"))]
            assert order == ["#ping", "#press"]
            [(_, done)] = [m for m in listener.messages if m[0] == "/dd/done"]
            info = soundfile.info(done[2])
            assert (info.subtype, info.channels, info.frames) == ("FLOAT", 8, 192000)
            assert svc.status()["counters"]["prefetch_hits"] == 1
    finally:
        listener.close()


def test_cancel_drops_only_the_senders_work(tmp_path, renderer, drum):
    """Two clients: B's /dd/cancel fails B's requests (one merged into A's), and A's running and queued ones are
    answered with their files. A's own plain /dd/cancel still stops what A asked for, as the Max device expects."""
    a, b = Listener(), Listener()

    def finals(listener, token):
        return [m for m in listener.messages if m[0] in ("/dd/done", "/dd/error") and m[1][0] == token]

    try:
        with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
            a.send(svc.port, "/dd/vary", "#a1", str(drum), 1, "steps=300")
            svc.wait_for(lambda s: s["running"] and s["running"]["kind"] == "vary", what="a1 rendering")
            a.send(svc.port, "/dd/vary", "#a2", str(drum), 1, "seed=5")
            b.send(svc.port, "/dd/vary", "#b1", str(drum), 1, "seed=9")
            a.send(svc.port, "/dd/vary", "#a3", str(drum))
            b.send(svc.port, "/dd/vary", "#b3", str(drum))  # identical to a3: merged into one job
            b.wait_for(lambda m: m[0] == "/dd/progress" and m[1][0] == "#b3")
            status = svc.status()
            assert status["queue"] == 3 and status["counters"]["coalesced"] == 1 and status["running"]["progress"] < 1

            b.send(svc.port, "/dd/cancel", "#bc")
            b.wait_for(lambda m: m[0] == "/dd/ack" and m[1][0] == "#bc")
            for token in ("#b1", "#b3"):
                [(address, args)] = b.wait_for(lambda m, t=token: m[0] == "/dd/error" and m[1][0] == t)
                assert "cancelled by /dd/cancel" in args[2]
            for token in ("#a1", "#a2", "#a3"):
                a.wait_for(lambda m, t=token: bool(finals(a, t)), timeout=120)
                [(address, args)] = finals(a, token)
                assert address == "/dd/done" and len(args) == 3, (token, args)  # exactly its one file
            assert not [m for m in b.messages if m[0] == "/dd/done"]

            a.send(svc.port, "/dd/vary", "#a4", str(drum), 1, "steps=1000")
            svc.wait_for(lambda s: s["running"] and s["running"]["kind"] == "vary", what="a4 rendering")
            a.send(svc.port, "/dd/cancel", "#ac")
            [(_, args)] = a.wait_for(lambda m: m[0] == "/dd/error" and m[1][0] == "#a4", timeout=10)
            assert "cancelled" in args[2]
            svc.wait_for(lambda s: s["running"] is None, what="idle after A's cancel")
        made = [p for p in files(tmp_path / "samples")]
        assert len(made) == 3  # a1, a2 and a3's files; nothing for B, nothing left of a4
    finally:
        a.close()
        b.close()
