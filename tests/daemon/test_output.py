"""Output's answers when a stop gives up on a write held by a share that stopped answering (review s41 diff #2, #3):
every press answered, and answered once. The folders are stand-ins whose writes block as a hung share's do (no
mount can be made without root here); Output, its writer thread, its locks and Awaiting are the real ones."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from bridge.daemon import output as output_module
from bridge.daemon.output import Awaiting, Output


@dataclass
class Made:
    staged: object = None
    staged_format: object = None
    seed: int = 1
    seconds: float = 0.1
    made: object = field(default_factory=lambda: SimpleNamespace(metadata=lambda *a, **k: {}))
    clip: object = None


def parts(stage=None):
    lock = threading.Condition(threading.RLock())
    stats = SimpleNamespace(note_render=lambda *a, **k: None, note_error=lambda *a, **k: None)
    folders = SimpleNamespace(staging=Path("/share/.dd-bridge-staging"), stage=stage or (lambda *a, **k: None))
    got: list = []
    waiter = SimpleNamespace(count=1, request=SimpleNamespace(address="/dd/vary"),
                             reply=lambda *a: got.append(a), error=lambda m: got.append(("error", m)))
    return lock, stats, folders, got, waiter


def test_an_audition_press_whose_staging_write_hangs_is_told_the_service_is_stopping(monkeypatch):
    """Its waiter had left the job (so Service.stop could not reach it) and its staging write was outside what
    close() tells: it was answered neither "heard" nor "stopping"."""
    hung = threading.Event()
    lock, stats, folders, got, waiter = parts(stage=lambda *a, **k: hung.wait(30))
    output = Output(folders, lock, stats, audition=SimpleNamespace(hear=lambda *a, **k: None))
    monkeypatch.setattr(output_module, "vary_recipe", lambda *a, **k: {})
    job = SimpleNamespace(unsent=[], waiters=[waiter], taken=[], audition=True, kind="vary", format="wav",
                          source=SimpleNamespace(path=Path("/x.wav"), region=None), key=None)
    try:
        threading.Thread(target=output.answer, args=(job, [Made()]), daemon=True).start()
        deadline = time.monotonic() + 10
        while output.status()["writing"] is None:
            assert time.monotonic() < deadline, "the staging write never started"
            time.sleep(0.01)
        assert output.close(grace=0.3) is False
        assert got == [("error", "the service is stopping")]
    finally:
        hung.set()


def test_a_write_that_finishes_as_the_stop_gives_up_on_it_is_answered_once():
    """The write finished just after close() had taken it off the list and before it told it: the press got
    /dd/done, then /dd/error "the service is stopping" (a plain flag, read without a lock)."""
    lock, stats, folders, got, waiter = parts()
    output = Output(folders, lock, stats, audition=None)
    go = threading.Event()

    def slow_write(job, variation):  # a share answering late
        with output._writing(Path("/share/kick")):
            go.wait(10)
        return Path("/share/kick/kick var 001.wav")

    output.variation = slow_write

    def told_first(message):  # an earlier waiter, told first: meanwhile the write finishes and answers
        go.set()
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)

    output._awaiting.append(Awaiting(told_first))
    job = SimpleNamespace(unsent=[], waiters=[waiter], taken=[], audition=False, kind="vary")
    answering = threading.Thread(target=output.answer, args=(job, [Made()]))
    answering.start()
    time.sleep(0.1)
    assert output.close(grace=0.3) is False
    answering.join(5)
    assert got == [("/dd/done", "vary", "/share/kick/kick var 001.wav")]
