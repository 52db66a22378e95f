"""Paths that change under the service after they were checked, and files longer than the service should ever
decode, end to end over real UDP (the hostile-input review, /work/s39: findings 3, 4, 5 and 7): a folder swapped
for a link after /dd/set folder, a FIFO put in a source's place after its check, a sample folder's subfolder that
leads elsewhere at start-up, a two-hour 8-bit file clicked in REAPER."""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import threading
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from bridge import files as files_module
from bridge.daemon.app import App
from bridge.errors import BridgeError
from bridge.transports.osc.client import OscClient
from tests.support.service import running_service, service_config

TWO_HOURS_AGO = time.time() - 7200


def contents(folder):
    return sorted(p for p in folder.rglob("*"))


def confined(tmp_path, **render):
    """A service allowed to write into tmp/allowed (and its sample folder, tmp/samples), with tmp/outside, not
    allowed, beside them."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    return service_config(tmp_path, allowed_folders=(allowed,), render={"prefetch": 0, **render}), allowed, outside


# -- finding 3: the folder is checked at every write, on what is opened ---------------------------------------------
@pytest.mark.parametrize("case", ["swapped for a link", "a missing part made a link", "the sample folder itself"])
def test_a_folder_that_leads_outside_after_it_was_set_is_refused_at_write_time(tmp_path, renderer, drum, case):
    config, allowed, outside = confined(tmp_path)
    with running_service(config, renderer) as svc:
        if case == "the sample folder itself":
            folder = tmp_path / "samples"
            svc.ask("/dd/vary", str(drum))  # the sample folder exists and was written to
            folder.rename(tmp_path / "samples-moved")
            folder.symlink_to(outside, target_is_directory=True)
        else:
            folder = allowed / "proj" if case == "swapped for a link" else allowed / "new" / "proj"
            if case == "swapped for a link":
                folder.mkdir()
            assert svc.ask("/dd/set", "folder", str(folder)).address == "/dd/ack"
            if case == "swapped for a link":
                shutil.rmtree(folder)
                folder.symlink_to(outside, target_is_directory=True)
            else:  # the folder did not exist when set: its parent is made as a link before the first write
                (allowed / "new").symlink_to(outside, target_is_directory=True)
        reply = svc.ask("/dd/vary", str(drum))
        assert reply.address == "/dd/error", reply
        assert "is outside the allowed folders" in reply.args[1] and "\n" not in reply.args[1]
        reply = svc.ask("/dd/vary", str(drum), f"folder={folder}")  # as asked for by a press: the same
        assert reply.address == "/dd/error" and "is outside the allowed folders" in reply.args[1]
        assert svc.ask("/dd/ping").address == "/dd/pong"
    assert contents(outside) == []


def test_a_folder_swapped_for_a_link_inside_the_allowed_folders_is_still_written(tmp_path, renderer, drum):
    """Refusing is for what leads outside: a project folder moved and linked back within them keeps working."""
    config, allowed, _ = confined(tmp_path)
    folder = allowed / "proj"
    folder.mkdir()
    with running_service(config, renderer) as svc:
        assert svc.ask("/dd/set", "folder", str(folder)).address == "/dd/ack"
        folder.rename(allowed / "moved")
        folder.symlink_to(allowed / "moved", target_is_directory=True)
        made = svc.ask("/dd/vary", str(drum)).args[1]
    assert os.path.realpath(made) == str(allowed / "moved" / "kick" / "kick var 001.wav")


def test_staging_never_writes_nor_clears_outside_when_the_sample_folder_is_swapped(tmp_path, renderer, drum):
    """The sample folder was checked when the service started; then it became a link to a folder that has a
    ".dd-bridge-staging" of its own (another service's, say): not emptied at the start or the stop, not written."""
    config, _, outside = confined(tmp_path, prefetch=1)
    samples = tmp_path / "samples"
    samples.mkdir()
    theirs = outside / ".dd-bridge-staging" / "0123456789abcdef.wav"
    theirs.parent.mkdir()
    theirs.write_bytes(b"RIFF")
    original = App.__init__

    def swap_once_checked(self, *args, **kwargs):
        original(self, *args, **kwargs)
        samples.rename(tmp_path / "samples-moved")
        samples.symlink_to(outside, target_is_directory=True)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(App, "__init__", swap_once_checked)
        with running_service(config, renderer) as svc:
            svc.ask("/dd/select", str(drum))
            svc.wait_for(lambda s: s["running"] is None and s["counters"].get("rendered", 0) >= 1, what="the prefetch")
            reply = svc.ask("/dd/vary")  # held in memory, not staged: its file is written when asked for: refused
            assert reply.address == "/dd/error" and "is outside the allowed folders" in reply.args[1], reply
    assert contents(outside) == [theirs.parent, theirs]


# -- finding 7: start-up cleanup stays inside the sample folder ----------------------------------------------------
def test_start_up_cleanup_never_follows_a_linked_subfolder(tmp_path, renderer):
    config, _, outside = confined(tmp_path)
    samples = tmp_path / "samples"
    (samples / "kick").mkdir(parents=True)
    (samples / "kick2").symlink_to(outside, target_is_directory=True)
    theirs = outside / ".dd-bridge-0123456789ab.partial.wav"  # e.g. a `dd-bridge vary` cut off in that folder
    ours = samples / "kick" / ".dd-bridge-ba9876543210.partial.wav"  # what a killed service left
    for stale in (theirs, ours):
        stale.write_bytes(b"RIFF")
        os.utime(stale, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    with running_service(config, renderer):
        pass
    assert theirs.exists() and not ours.exists()


# -- finding 4: a FIFO put in a source's place after its check never blocks the network thread --------------------
@pytest.mark.parametrize("request_", [("/dd/select",), ("/dd/vary", "start=0", "end=0.1"),
                                      ("/dd/repaint", "start=0.05", "end=0.1")])
def test_a_fifo_swapped_in_after_the_check_is_refused_not_waited_on(tmp_path, renderer, drum, monkeypatch,
                                                                    request_):
    """The race the review won in 400 selects, made certain: the source is a regular file when check_input
    looks, a FIFO when it is opened."""
    clip, fifo = tmp_path / "in" / "x.wav", tmp_path / "in" / "f.wav"
    clip.symlink_to(drum)
    os.mkfifo(fifo)
    real_check, looks = files_module.check_input, []

    def check_then_swap(path, refuse, what="an audio file"):
        info = real_check(path, refuse, what)
        if str(path) == str(clip):
            looks.append(path)
            if len(looks) == 1:
                (tmp_path / "in" / "next").symlink_to(fifo)
                os.replace(tmp_path / "in" / "next", clip)
        return info

    monkeypatch.setattr(files_module, "check_input", check_then_swap)
    config, _, _ = confined(tmp_path)
    with running_service(config, renderer) as svc:
        try:
            address, *options = request_
            reply = svc.client.request(address, [str(clip), *options], timeout=5)
            assert reply is not None, "no reply: the network thread waits on the FIFO"
            assert reply.address == "/dd/error" and "cannot read" in reply.args[1], reply
            assert svc.ask("/dd/ping", timeout=5).address == "/dd/pong"
        finally:  # before the fix: a writer lets the stuck open return, so the service can stop
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


# -- a file or folder on a network share that stopped answering (left open by session 39, done in 40) -------------
def test_a_share_that_stops_answering_costs_one_bounded_wait_not_the_service(tmp_path, renderer, drum, monkeypatch):
    """An NFS hard mount or an SMB share whose server went away leaves stat and open blocked in the kernel, for
    minutes or for good, and no one can interrupt them. The network thread looked at every named file itself, so one
    /dd/select of a file there left the service deaf (pings too) until the share came back. Here the share's
    syscalls are made to block until it "comes back" (no mount can be made without root on this machine)."""
    share, other_share = tmp_path / "share", tmp_path / "share2"
    for folder in (share, other_share):
        (folder / "Snares").mkdir(parents=True)
        shutil.copy(drum, folder / "kick.wav")
        shutil.copy(drum, folder / "Snares" / "snare.wav")
    # Two network shares mounted here (as the mount table would list them; no mount can be made without root)
    real_mounts = files_module._mount_points
    monkeypatch.setattr(files_module, "_mount_points", lambda: [*real_mounts(), str(share), str(other_share)])
    back = threading.Event()
    real_check = files_module.check_input

    def stat_on_the_share(path, refuse, what="an audio file"):
        if str(path).startswith((str(share), str(other_share))):
            back.wait(60)  # the blocked syscall
        return real_check(path, refuse, what)

    monkeypatch.setattr(files_module, "check_input", stat_on_the_share)
    monkeypatch.setattr(files_module, "DISK_ANSWER_SECONDS", 0.5)
    config = service_config(tmp_path, allowed_folders=(tmp_path,), render={"prefetch": 0})
    try:
        with running_service(config, renderer) as svc, OscClient("127.0.0.1", svc.port) as keep_alive:
            answers = []
            asked = threading.Thread(target=lambda: answers.append(
                svc.client.request("/dd/select", [str(share / "kick.wav")], timeout=5)))
            started = time.monotonic()
            asked.start()
            time.sleep(0.1)  # the select waits on the share now: the keep-alives are answered all the same
            for _ in range(3):
                began = time.monotonic()
                assert keep_alive.request("/dd/ping", timeout=2).address == "/dd/pong"
                assert time.monotonic() - began < 0.3
            door = json.loads(keep_alive.request("/dd/status", timeout=2).args[0])["door"]
            assert door["in_hand"] == "/dd/select" and door["waiting"] == 0  # what holds the door shows
            asked.join()
            [reply] = answers
            assert reply is not None, "no reply: the service waits on the share"
            assert reply.address == "/dd/error" and "has not answered in 0.5 s" in reply.args[1], reply
            assert "\n" not in reply.args[1] and time.monotonic() - started < 3
            assert svc.ask("/dd/select", str(drum), timeout=5).address == "/dd/ack"  # local files work meanwhile
            for request in (("/dd/vary", str(share / "kick.wav")), ("/dd/select", str(share / "Snares" / "snare.wav")),
                            ("/dd/set", "folder", str(share / "out"))):
                began = time.monotonic()  # the same share again, any folder: refused at once, no second wait
                reply = svc.ask(*request, timeout=5)
                assert reply.address == "/dd/error" and "is still waiting for an answer" in reply.args[1], reply
                assert time.monotonic() - began < 0.3
            reply = svc.ask("/dd/vary", str(other_share / "kick.wav"), timeout=5)  # another hung folder: its own wait
            assert "has not answered in 0.5 s" in reply.args[1], reply
            back.set()  # the shares are back: their files are heard again, the waiting looks gone
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(t.name == "disk-look" for t in threading.enumerate()):
                time.sleep(0.01)
            assert svc.ask("/dd/select", str(share / "kick.wav"), timeout=5).address == "/dd/ack"
    finally:
        back.set()


def test_a_write_to_a_share_that_stops_answering_shows_in_status_and_the_stop_still_ends(tmp_path, renderer, drum,
                                                                                         monkeypatch, caplog):
    """The sample folder on a share that stops answering mid-write: the write blocks in the kernel on the render
    thread. Status says what it waits on (`dd-bridge status` prints it), and a stop (Ctrl-C, the DAW quitting) ends
    within its bounds: it waited for that write for good (the write lock), and the writer's executor thread would
    have been joined at the interpreter's exit, so the service could only be killed. Nothing is written after the
    stop; the write in hand finishes when the share comes back."""
    from bridge.cli.serve import describe_status
    from bridge.daemon import output as output_module
    from bridge.daemon import writer as writer_module

    share = tmp_path / "share"
    back, blocked, hung = threading.Event(), threading.Event(), threading.Event()
    real_write, real_clear = writer_module.write_numbered, writer_module.SampleFolder.clear_staging

    def write_on_the_share(target, *args, **kwargs):
        if str(target.path).startswith(str(share)):
            blocked.set()
            back.wait(60)  # the blocked syscall
        return real_write(target, *args, **kwargs)

    def clear_on_the_share(self):
        if str(self.default).startswith(str(share)) and hung.is_set():
            back.wait(60)
        return real_clear(self)

    monkeypatch.setattr(writer_module, "write_numbered", write_on_the_share)
    monkeypatch.setattr(writer_module.SampleFolder, "clear_staging", clear_on_the_share)
    monkeypatch.setattr(output_module, "WRITE_GRACE_S", 0.5)
    monkeypatch.setattr(files_module, "DISK_ANSWER_SECONDS", 0.5)
    config = replace(service_config(tmp_path, render={"prefetch": 0}), folder=share)
    app = App(config, renderer).start()  # the share answers at the start
    hung.set()
    stopped = False
    try:
        with OscClient("127.0.0.1", app.server.port) as client:
            answers = []
            asked = threading.Thread(target=lambda: answers.append(
                client.request("/dd/vary", [str(drum)], timeout=30)))
            asked.start()
            assert blocked.wait(30), "the variation was never written"
            time.sleep(DOOR_HELD + 0.1)
            status = json.loads(client.request("/dd/status", timeout=10).args[0])
            assert status["writing"].startswith(str(share)) and status["writing_seconds"] >= DOOR_HELD, status
            assert f"writing    to {status['writing']} for" in describe_status(status)
            began = time.monotonic()
            with caplog.at_level(logging.WARNING):
                app.stop(timeout=0.5)
            stopped = True
            took = time.monotonic() - began
            assert took < 6.0, f"the stop took {took:.1f} s"  # three 0.5 s bounds, not "never"
            asked.join(5)
            [reply] = answers
            assert reply is not None and reply.address == "/dd/error" and "stopping" in reply.args[1], reply
            said = caplog.text
            assert "has not finished in" in said and "its disk is not answering" in said
            assert "has not answered in 0.5 s; its files are left for the next start" in said
        back.set()  # the share comes back: the write in hand finishes, nothing after it is started
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(share.rglob("*var*.wav")):
            time.sleep(0.02)
        assert [p.name for p in share.rglob("*var*.wav")] == [f"{drum.stem} var 001.wav"]
        with pytest.raises(BridgeError, match="stopping"):
            with app.service.output._writing(share):  # no file is started after the stop
                pass
    finally:
        back.set()
        if not stopped:
            app.stop(timeout=5)


def test_the_recipes_folder_on_a_share_that_stops_answering_costs_one_bounded_wait(tmp_path, renderer, monkeypatch):
    """The recipes folder sits beside config.yaml, in the home folder, which is a network share on NFS homes and
    macOS network accounts. /dd/recipes listed it and /dd/save_recipe wrote it on the door unbounded: a hung home
    held every request after them (the Live device's recipe menu asks on every open) until the share came back."""
    from bridge.engine.guides import recipes as recipes_module

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    back = threading.Event()
    real_names, real_save = recipes_module.recipe_names, recipes_module.save_recipe

    def names_on_the_share(folder):
        back.wait(60)  # the blocked syscall
        return real_names(folder)

    def save_on_the_share(*args, **kwargs):
        back.wait(60)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(recipes_module, "recipe_names", names_on_the_share)
    monkeypatch.setattr(recipes_module, "save_recipe", save_on_the_share)
    monkeypatch.setattr(files_module, "DISK_ANSWER_SECONDS", 0.5)
    try:
        with running_service(service_config(tmp_path, render={"prefetch": 0}), renderer) as svc:
            for request in (("/dd/recipes",), ("/dd/save_recipe", "mine")):
                if request[0] == "/dd/save_recipe":
                    assert svc.ask("/dd/set", "guide", "decay=-1").address == "/dd/ack"
                began = time.monotonic()
                reply = svc.ask(*request, timeout=5)
                assert reply.address == "/dd/error" and reply.args[0] == request[0], reply
                assert "not answered in 0.5 s" in reply.args[1] or "still waiting for an answer" in reply.args[1]
                assert time.monotonic() - began < 3
                assert svc.ask("/dd/ping", timeout=2).address == "/dd/pong"
                back.set()  # the share is back: the next list is answered
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and any(t.name == "disk-look" for t in threading.enumerate()):
                    time.sleep(0.01)
                back.clear()
            back.set()
            assert "mine" in svc.ask("/dd/recipes", timeout=5).args  # the save left behind finished on its own
    finally:
        back.set()


DOOR_HELD = 2.0  # bridge.cli.serve.DOOR_HELD_S: `dd-bridge status` prints a write held this long


# -- finding 5: a long file is judged by its header, never decoded to be refused ----------------------------------
FRAMES = 50_000_000  # 8-bit mono at 8 kHz: 1 h 44 min, 50 MB on disk (sparse here), 200 MB decoded
RATE = 8000


@pytest.fixture
def long_file(tmp_path):
    """A valid, very long 8-bit WAV: what a producer's field recording or an exported session can be."""
    path = tmp_path / "in" / "long.wav"
    path.parent.mkdir(exist_ok=True)
    header = (b"RIFF" + struct.pack("<I", 36 + FRAMES) + b"WAVE" + b"fmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE, 1, 8) + b"data" + struct.pack("<I", FRAMES))
    with open(path, "wb") as file:
        file.write(header)
        file.truncate(len(header) + FRAMES)  # 8-bit PCM's silence is 0x80, but any byte is a valid sample
    return path


class Peak:
    """The most memory Python and numpy held at once (tracemalloc sees numpy's arrays) while it was open."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


DECODED = FRAMES * 4


def test_selecting_a_long_file_skips_its_prefetch_without_decoding_it(tmp_path, renderer, long_file, caplog):
    caplog.set_level(logging.INFO, logger="bridge.daemon.worker")
    config, _, _ = confined(tmp_path, prefetch=2)
    with running_service(config, renderer) as svc:
        with Peak() as peak:
            assert svc.ask("/dd/select", str(long_file)).address == "/dd/ack"
            deadline = time.monotonic() + 60
            while not any("not prefetched" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the prefetch never decided"
                time.sleep(0.02)
        assert svc.status()["prefetched"].get(str(long_file), 0) == 0
    assert any(f"{long_file} is longer than 30 s: not prefetched" in r.getMessage() for r in caplog.records)
    assert peak.bytes < DECODED / 4, f"{peak.bytes / 2**20:.0f} MB held to decide"


@pytest.mark.parametrize("operation", ["vary", "repaint", "interpolate"])
def test_a_render_of_a_file_too_long_for_the_memory_is_refused_by_its_header(tmp_path, renderer, drum, long_file,
                                                                              operation):
    """1 h 44 min is 300 million samples at the model's rate: hundreds of GB to render. The engine's own
    one-line refusal comes before the file is decoded, not after 200 MB of it."""
    args = {"vary": ("/dd/vary", str(long_file)), "repaint": ("/dd/repaint", str(long_file), "start=1", "end=2"),
            "interpolate": ("/dd/interpolate", str(drum), str(long_file), 3)}[operation]
    config, _, _ = confined(tmp_path)
    with running_service(config, renderer) as svc:
        with Peak() as peak:
            reply = svc.ask(*args, timeout=120)
        assert reply.address == "/dd/error", reply
        assert "is longer than micro can render" in reply.args[-1] and "\n" not in reply.args[-1]
        assert svc.ask("/dd/ping").address == "/dd/pong"
    assert peak.bytes < DECODED / 4, f"{peak.bytes / 2**20:.0f} MB held to refuse it"


# -- review 3, finding 1: a staged variation is published by its name in the staging folder, never through a link ---
def test_a_link_planted_for_a_staged_variation_never_publishes_what_it_leads_to(tmp_path):
    """A variation waits in the staging folder for its key press, minutes maybe. Whoever can write in the sample
    folder could swap the staging folder and leave a link under the staged name: the user's own file (a key, a
    private recording) must not appear in the sample folder as "kick var 001.wav"."""
    import numpy as np

    from bridge.daemon.writer import STAGING, SampleFolder
    from bridge.engine.audio import Clip

    samples, secret = tmp_path / "samples", tmp_path / "secret"
    secret.write_bytes(b"PRIVATE KEY")
    folders = SampleFolder(samples, (tmp_path,))
    clip = Clip(np.zeros((4800, 2), np.float32), 48000)
    staged = folders.stage(clip, "pcm24", {})
    (samples / STAGING).rename(samples / ".moved")
    (samples / STAGING).mkdir()
    (samples / STAGING / staged.name).symlink_to(secret)
    with pytest.raises(OSError):
        folders.publish(staged, samples, operation="vary", sources=("kick.wav",))
    published = [path for path in samples.rglob("*.wav") if STAGING not in path.parts and ".moved" not in path.parts]
    assert published == [] and all(path.lstat().st_ino != secret.stat().st_ino for path in samples.rglob("*"))
    # An honest staged file is still published by a hard link, and leaves the staging folder.
    (samples / STAGING / staged.name).unlink()
    staged = folders.stage(clip, "pcm24", {})
    path = folders.publish(staged, samples, operation="vary", sources=("kick.wav",))
    assert path.name == "kick var 001.wav" and path.stat().st_nlink == 1 and not staged.exists()


def test_stale_variations_are_deleted_off_the_door_so_a_hung_sample_folder_holds_no_request(tmp_path, renderer,
                                                                                            drum, monkeypatch):
    """A setting that makes the prefetch stale deletes its staged files in the sample folder. Done by the door (and,
    for a ping, by the network thread) an unlink on a share that stopped answering held every later request, for
    good; the writer thread does it now, after what it is writing."""
    back = threading.Event()
    real_unlink = Path.unlink

    def unlink_on_the_share(self, *args, **kwargs):
        if ".dd-bridge-staging" in str(self):
            back.wait(60)  # the blocked syscall
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink_on_the_share)
    with running_service(service_config(tmp_path), renderer) as svc:
        try:
            svc.ask("/dd/select", str(drum))
            svc.wait_for(lambda s: s["prefetched"].get(str(drum)) == 2, what="prefetch")
            assert svc.ask("/dd/set", "noise", 0.3, timeout=5).address == "/dd/ack"  # the two are stale now
            began = time.monotonic()
            assert svc.ask("/dd/set", "steps", 2, timeout=5).address == "/dd/ack"  # the next request: not held
            assert svc.ask("/dd/select", str(drum), timeout=5).address == "/dd/ack"
            assert time.monotonic() - began < 3
        finally:
            back.set()
