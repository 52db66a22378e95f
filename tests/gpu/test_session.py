"""gpu/session.sh, the one command of a lent GPU session, run here as a dry run (no CUDA, a tiny network, a
budget of two minutes, training taking what the other stages leave), and gpu/handover.py, which cuts the run
into what the device tool returns.

Checked: every stage ran and said how it ended, the script noticed there is no CUDA and still trained, it stopped
within its budget, $OUT holds the expected files within the tool's limits (8 files, 16 MiB each, 64 MiB), and
the returned parts rebuild a run that the same `dd-bridge train` command continues.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bridge.cli import main
from bridge.engine.checkpoints import load_model
from tests.support import one_shots

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
BUDGET = 210  # room for training after the bench stages, and for eval's baselines, on a busy machine

sys.path.insert(0, str(ROOT / "gpu"))
import handover  # noqa: E402


@pytest.fixture(scope="module")
def kit(drumkits, tmp_path_factory):
    """16 real one-shots (2 held out by the run's 10 %, so eval has a reference)."""
    return one_shots.smallest(drumkits, tmp_path_factory.mktemp("kit"), 16)


@pytest.fixture(scope="module")
def held_out(drumkits, tmp_path_factory):
    """6 one-shots of a kit the run never trains on: eval's reference, as gpu/prepare.sh carries three such kits."""
    return one_shots.smallest(drumkits, tmp_path_factory.mktemp("held_out"), 6, kit="Millo-Drums_v.1")


@pytest.fixture(scope="module")
def dry_run(kit, held_out, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    run = tmp_path_factory.mktemp("run") / "dry"
    env = dict(os.environ, OUT=str(out), DD_PYTHON=sys.executable, OMP_NUM_THREADS="1",
               DD_GPU_BUDGET_S=str(BUDGET), DD_GPU_SIZE="tiny", DD_GPU_BATCH="2", DD_GPU_TRAIN_ARGS="--window 4096",
               DD_GPU_TESTS="tests/engine/test_cuda.py tests/engine/test_devices.py", DD_GPU_TEST_S="20",
               DD_GPU_BENCH_S="60", DD_GPU_EVAL_S="75", DD_GPU_EVAL_COUNT="3", DD_GPU_EVAL_BASE="",
               DD_GPU_PACK_S="15", DD_GPU_MARGIN_S="5", DD_GPU_DATA=str(kit), DD_GPU_EVAL_DATA=str(held_out), DD_GPU_RUN=str(run),
               DD_GPU_CARRIED_RUN="")
    env.pop("DD_REQUIRE_CUDA", None)
    started = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "gpu" / "session.sh")], env=env, capture_output=True, text=True,
                          timeout=BUDGET + 120)
    return done, time.monotonic() - started, out, run


def test_every_stage_runs_and_reports_and_training_stops_in_time(dry_run):
    done, seconds, out, run = dry_run
    log = (out / "log.txt").read_text()
    assert done.returncode == 0, log[-3000:]
    assert "CUDA absent" in log
    summary = log[log.index("== summary"):]
    for stage in ("cuda-tests: exit 0", "bench sound: exit 0", "bench forward: exit 0", "train: exit 0",
                  "eval: exit 0", "pack: exit 0"):
        assert stage in summary, summary
    assert "SKIPPED" in log and "no CUDA device" in log  # the CUDA tests say why they did not run here
    assert "stopped: saved" in log  # --time-limit ended the training, not the stage's timeout
    # Within its budget, plus the 15 s a stage may be given to stop after SIGTERM
    assert seconds < BUDGET + 15, seconds


def test_out_holds_the_results_within_the_tools_limits(dry_run):
    _, _, out, _ = dry_run
    files = sorted(p.name for p in out.iterdir())
    assert files == ["bench.json", "eval.txt", "log.txt", "results.tar.00"]
    sizes = [p.stat().st_size for p in out.iterdir()]
    assert len(sizes) <= 8 and max(sizes) <= 16 * MiB and sum(sizes) <= 64 * MiB
    tables = json.loads((out / "bench.json").read_text())["tables"]
    assert [t["title"].split(":")[0] for t in tables] == ["one forward pass (= one sampler step)",
                                                          "one sound end to end"]
    assert "MMD^2" in (out / "eval.txt").read_text()


def test_eval_scores_against_the_held_out_kit_with_the_training_audio_as_the_floor(dry_run, kit, held_out):
    _, _, out, _ = dry_run
    log = (out / "log.txt").read_text()
    stage = log[log.index("== eval ("):log.index("== eval: ")]
    asked = f"eval --model {run_candidate(log)} --data {held_out} --count 3 --train-data {kit}"
    assert re.search(re.escape(asked) + "[ ;]", stage), stage  # the kit itself, not a folder named like it
    # the held-out kit's files are the reference (a silent one is skipped), the training audio the floor
    assert re.search(rf"reference: [1-6] real files; floor: {len(list(kit.iterdir()))} training files", stage), stage


def run_candidate(log: str) -> str:
    return log.split("# candidate ")[1].split("'")[0]


def test_the_returned_parts_rebuild_a_run_that_continues(dry_run, kit, tmp_path, capsys):
    _, _, out, run = dry_run
    step = handover.open_existing(run).step
    state = handover.unpack(out, tmp_path / "back")
    assert (state / "state.pt").exists() and not (state / handover.RESUME_FILE).exists()
    back = handover.open_existing(state)
    there = handover.open_existing(run)
    assert back.step == step and back.elapsed == pytest.approx(there.elapsed)
    for a, b in zip(back.model.state_dict().values(), there.model.state_dict().values()):
        assert (a == b).all()  # the training weights came back exactly
    for a, b in zip(back.ema.state_dict().values(), there.ema.state_dict().values()):
        assert (a == b).all()
    assert main(["train", str(kit), "--out", str(state), "--size", "tiny", "--window", "4096", "--batch-size",
                 "2", "--steps", str(step + 1), "--save-every", "250", "--demo-every", "0"]) == 0
    assert capsys.readouterr().out.split()[0].endswith(f"back-step{step + 1}.safetensors")
    assert handover.unpack.__doc__ and len((state / "loss.csv").read_text().splitlines()) == step + 2


def test_without_room_for_the_training_weights_they_restart_from_the_ema(dry_run, tmp_path):
    _, _, _, run = dry_run
    exported = sum(p.stat().st_size for p in run.glob("*.safetensors"))
    parts = handover.pack(run, tmp_path / "out", budget=exported + 64 * 1024, parts=4)
    assert all(p.stat().st_size <= handover.PART_BYTES for p in parts)
    state = handover.unpack(tmp_path / "out", tmp_path / "back")
    back = handover.open_existing(state)
    for a, b in zip(back.model.state_dict().values(), back.ema.state_dict().values()):
        assert (a == b).all()
    with pytest.raises(SystemExit, match="over the"):
        handover.pack(run, tmp_path / "none", budget=1024, parts=1)
    with pytest.raises(SystemExit, match="not empty"):
        handover.unpack(tmp_path / "out", state)
    assert load_model(next(state.glob("*.safetensors"))).window == 4096


def test_the_run_trains_with_the_kits_recipe_and_records_it(dry_run):
    """session.sh's default recipe flags (what the CPU measurements chose) reach the run's run.yaml."""
    _, _, _, run = dry_run
    script = (ROOT / "gpu" / "session.sh").read_text()
    flags = script.split('KIT_RECIPE="', 1)[1].split('"', 1)[0].split()
    assert flags, "session.sh names no recipe"
    settings = yaml.safe_load((run / "run.yaml").read_text())
    for flag, value in zip(flags[::2], flags[1::2]):
        key = flag.removeprefix("--").replace("-", "_")
        assert str(settings[key]) == value, (key, settings[key], value)


def test_prepare_takes_the_shipped_cards_data_that_is_here():
    """Review s42 r3 H1: the card names its make-drums sets where a session made them (/work/s34/gm-drums), gone
    since; prepare.sh failed on realpath before printing the call and left gpu/carry half built. Now those are
    left out (prepare makes them again at their fixed paths), and every folder it takes from the card is here."""
    result = subprocess.run(["bash", "gpu/prepare.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, DD_PYTHON=sys.executable, DD_GPU_PRINT_CARD_DATA="1"))
    assert result.returncode == 0, result.stderr
    taken = result.stdout.split()
    card = yaml.safe_load((ROOT / "models" / "dd-drums-small.yaml").read_text())["training"]["data"]
    assert taken and set(taken) <= set(card) and all(Path(folder).is_dir() for folder in taken), taken
    for folder in set(card) - set(taken):
        assert Path(folder).name in ("gm-drums", "sonic-pi") and f"the card's {folder}" in result.stderr
