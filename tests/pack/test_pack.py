"""`dd-bridge pack` on one machine: the plan, a real pack of real one-shots with a tiny model, resuming after a rerun,
a corrupted file, a killed process; the manifest checked file by file."""

from __future__ import annotations

import json
import shlex
import signal
import time
from pathlib import Path

import pytest
import soundfile

from bridge import constants
from bridge.constants import MAX_SEED
from bridge.engine.regions import Region
from bridge.engine.seeds import series
from bridge.pack import manifest
from bridge.pack.plan import make_plan
from tests.pack.packs import REFERENCE, contents, pack_args, run_pack, sources, start, temporaries

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = {"model": "m", "steps": 3, "sampler": "v-iplms"}


def test_the_plan_is_decided_by_the_arguments_alone():
    kick, other_kick = Path("/a/kick.wav"), Path("/b/Kick.wav")
    plan = make_plan([(kick, None), (other_kick, Region(0.1, 0.3))], per_source=3, noises=[0.2, 0.6], seed=100,
                     settings=SETTINGS)
    again = make_plan([(kick, None), (other_kick, Region(0.1, 0.3))], per_source=3, noises=[0.2, 0.6], seed=100,
                      settings=SETTINGS)
    assert plan == again and plan.identity() == again.identity()
    assert len(plan.tasks) == 2 * 2 * 3 and len({task.file for task in plan.tasks}) == 12
    # source k's variation i: seed + k*N + i at every noise level
    assert [task.seed for task in plan.tasks] == [100, 101, 102] * 2 + [103, 104, 105] * 2
    assert [source.folder for source in plan.sources] == ["kick", "Kick 0.100-0.300s"]
    assert plan.tasks[0].file == "kick/kick noise 0.2 var 001.wav"
    assert plan.tasks[-1].file == "Kick 0.100-0.300s/Kick 0.100-0.300s noise 0.6 var 003.wav"
    same_name = make_plan([(kick, None), (Path("/b/kick.wav"), None)], per_source=1, noises=[0.5], seed=0,
                          settings=SETTINGS)
    assert [source.folder for source in same_name.sources] == ["kick", "kick (2)"]
    assert series(MAX_SEED - 1, 3) == [MAX_SEED - 1, MAX_SEED, 0]  # wraps within the seeds a render takes
    other = make_plan([(kick, None)], per_source=3, noises=[0.2], seed=101, settings=SETTINGS)
    assert other.identity() != make_plan([(kick, None)], per_source=3, noises=[0.2], seed=100,
                                         settings=SETTINGS).identity()


def test_a_pack_holds_every_variation_a_manifest_a_sheet_per_source_and_the_licence(reference, drumkits):
    found = contents(reference, timings=True)
    audio = sorted(name for name in found if name.endswith(".wav"))
    assert audio == [f"{source}/{source} noise {noise} var {i:03d}.wav"
                     for source in ("BD_01", "HH_01") for noise in ("0.3", "0.7") for i in (1, 2)]
    assert {"BD_01/contact sheet.png", "HH_01/contact sheet.png", "LICENCE.txt", "ATTRIBUTION.txt",
            "manifest.json", "manifest.csv"} <= set(found)
    assert manifest.validate(reference) == []
    data = json.loads(found["manifest.json"])
    entry = data["files"][0]
    assert entry["source"] == str(sources(drumkits)[0]) and entry["noise"] == 0.3 and entry["seed"] == 21
    assert entry["settings"]["steps"] == 3 and len(entry["model_hash"]) == 64 and entry["seconds"] > 0
    assert "random weights made by the tests" in found["ATTRIBUTION.txt"].decode()
    for name in audio:
        info = soundfile.info(reference / name)
        source = soundfile.info(sources(drumkits)[name.startswith("HH")])
        assert (info.frames, info.samplerate, info.channels) == (source.frames, source.samplerate, source.channels)


def test_each_file_is_what_its_recreating_command_makes(reference, tmp_path):
    """The pack renders through `dd-bridge vary` itself: the command in a file's comment makes the same bytes."""
    from bridge.engine.audio import read_metadata

    name = "HH_01/HH_01 noise 0.7 var 002.wav"
    command = shlex.split(read_metadata(reference / name)["command"])
    assert command[:2] == ["dd-bridge", "vary"] and "--seed" in command
    assert run_pack(*command[1:], "--out", tmp_path) == 0
    (made,) = tmp_path.glob("*.wav")
    assert made.read_bytes() == (reference / name).read_bytes()


def test_a_rerun_keeps_what_is_done_and_redoes_a_corrupted_file(reference, tmp_path, tiny_model_path, drumkits,
                                                                 capsys):
    import shutil

    out = tmp_path / "pack"
    shutil.copytree(reference, out)
    times = {path: path.stat().st_mtime_ns for path in out.rglob("*.wav")}
    assert run_pack(*pack_args(tiny_model_path, out, drumkits, *REFERENCE)) == 0
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*.wav")} == times  # nothing rewritten

    spoilt = out / "BD_01/BD_01 noise 0.7 var 001.wav"
    spoilt.write_bytes(spoilt.read_bytes()[:100] + bytes(len(spoilt.read_bytes()) - 100))  # same size, damaged
    assert manifest.validate(out) == ["BD_01/BD_01 noise 0.7 var 001.wav: missing or not the bytes the manifest "
                                      "lists"]
    capsys.readouterr()
    assert run_pack("check-pack", out) == 1
    assert capsys.readouterr().out.splitlines() == [
        "BD_01/BD_01 noise 0.7 var 001.wav: missing or not the bytes the manifest lists"]
    assert run_pack(*pack_args(tiny_model_path, out, drumkits, *REFERENCE)) == 0
    assert manifest.validate(out) == [] and run_pack("check-pack", out) == 0
    assert contents(out) == contents(reference)
    assert all(path.stat().st_mtime_ns == time_ for path, time_ in times.items() if path != spoilt)


def test_a_killed_run_leaves_no_partial_file_and_the_rerun_completes_it(tmp_path, tiny_model_path, drumkits):
    arguments = ["--per-source", 4, "--noise", "0.5"]
    whole = tmp_path / "whole"
    assert run_pack(*pack_args(tiny_model_path, whole, drumkits, *arguments)) == 0

    for how in (signal.SIGKILL, signal.SIGTERM):
        out = tmp_path / how.name
        process = start(*pack_args(tiny_model_path, out, drumkits, *arguments))
        deadline = time.monotonic() + 120
        while not _listed(out) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(how)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode in (-signal.SIGKILL, 130), stderr
        listed = _listed(out)
        assert 0 < len(listed) < 8, "killed after the first file and before the last"
        for path in out.rglob("*.wav"):  # whatever has a name is complete
            if not path.name.startswith("."):
                soundfile.read(path)
        if how == signal.SIGTERM:
            assert temporaries(out) == [] and "interrupted" in stderr
        assert run_pack(*pack_args(tiny_model_path, out, drumkits, *arguments)) == 0
        assert temporaries(out) == [] and manifest.validate(out) == []
        assert contents(out) == contents(whole)


def _listed(out: Path) -> list:
    try:
        return json.loads((out / manifest.JSON_NAME).read_text())["files"]
    except (OSError, ValueError):
        return []


def test_bad_input_is_one_line_and_another_pack_is_never_written_over(reference, tmp_path, tiny_model_path,
                                                                      drumkits, capsys):
    assert run_pack("pack", tmp_path / "nothing.wav", "--out", tmp_path / "p", "--per-source", 1,
                    "--model", tiny_model_path) == 1
    assert "nothing.wav: no such file or folder" in capsys.readouterr().err
    import shutil

    out = tmp_path / "pack"
    shutil.copytree(reference, out)
    before = contents(out, timings=True)
    assert run_pack(*pack_args(tiny_model_path, out, drumkits, "--per-source", 3, "--noise", "0.3,0.7")) == 1
    error = capsys.readouterr().err
    assert "holds another pack" in error and error.count("\n") == 1
    assert contents(out, timings=True) == before


def test_without_matplotlib_the_pack_is_made_and_the_sheets_are_said_to_be_skipped(tmp_path, tiny_model_path,
                                                                                   drumkits):
    out = tmp_path / "pack"
    process = start(*pack_args(tiny_model_path, out, drumkits, "--per-source", 1, "--noise", "0.5"),
                    prelude="import sys; sys.modules['matplotlib'] = None")
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == [str(out)]
    assert "contact sheets skipped" in stderr and "pip install -e '.[plots]'" in stderr
    assert not list(out.rglob("*.png")) and manifest.validate(out) == []


def test_the_attribution_carries_the_notices_the_training_datas_licences_ask_for(tmp_path):
    """Review s41 F13: the bundled model's training sets say "copied below" (their MIT notices, in the card's
    notices), and ATTRIBUTION.txt copied nothing below."""
    from bridge import files
    from bridge.engine.modelcard import read_card
    from bridge.pack.driver import ATTRIBUTION_NAME, _write_licence

    card = read_card(constants.REPO_DIR / "models" / "dd-drums-small.yaml")
    model = {"name": card.name, "model_hash": "0" * 64, "licence": card.licence, "provenance": card.provenance,
             "training_data": card.extra.get("training_data"), "notices": card.extra.get("notices")}
    with files.Folder(tmp_path) as folder:
        _write_licence(folder, model)
    text = (tmp_path / ATTRIBUTION_NAME).read_text()
    assert "copied below" in text and text.index("copied below") < text.index("Notices")
    assert "Copyright (c) 2000-2002, 2008 Frank Wen" in text and "Permission is hereby granted" in text
