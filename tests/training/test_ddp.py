"""`dd-bridge train` under a real `torchrun --nproc-per-node 2` (gloo, CPU) on real drums with a tiny network:
the same losses as one process with the same global batch, files written once, and checkpoints that continue on
any number of processes."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bridge import pictures
from bridge.cli import main
from bridge.errors import ConfigError
from bridge.training.distributed import SINGLE, Group, from_environment
from bridge.training.train import read_losses
from tests.support import one_shots

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # relative: DDP sums two half-batch gradients where one process sums one batch


@pytest.fixture(scope="module")
def kit(tmp_path_factory, drumkits):
    return one_shots.smallest(drumkits, tmp_path_factory.mktemp("kit"), 8)


def arguments(kit, run, steps):
    # Batch 4: two sounds a rank. Both augmentations on (a new run's defaults), so every rank's share of the
    # delays and pitch shifts is tested against what one process draws.
    return ["train", str(kit), "--out", str(run), "--size", "tiny", "--window", "512", "--batch-size", "4",
            "--held-out", "0.25", "--save-every", "1", "--demo-every", "0", "--steps", str(steps)]


def torchrun(*args, nproc=2, timeout_s=None, **popen):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "bridge", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if timeout_s is not None:
        env["DD_DDP_TIMEOUT_S"] = str(timeout_s)
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def finished(process, timeout=120):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def losses(run):
    return [(step, loss) for step, loss, _ in read_losses(run)]


def assert_close(a, b):
    assert [s for s, _ in a] == [s for s, _ in b]
    for (step, x), (_, y) in zip(a, b):
        assert abs(x - y) <= TOLERANCE * abs(y), f"step {step}: {x} vs {y}"


def weights(run):
    return torch.load(run / "state.pt", weights_only=True)


def test_two_processes_train_like_one_and_their_checkpoints_continue_on_either(tmp_path, kit, capsys):
    # One process, 6 steps straight: the reference
    straight = tmp_path / "straight"
    assert main(arguments(kit, straight, 6)) == 0
    capsys.readouterr()

    # Two processes, 2 steps: the same losses; one loss line a step, one export, no file one process lacks
    run = tmp_path / "run"
    out = finished(torchrun(*arguments(kit, run, 2)))
    exported = [line for line in out.splitlines() if line.endswith((".safetensors", ".yaml"))]
    assert [Path(p).name for p in exported] == ["run-step2.safetensors", "run-step2.yaml"]
    assert_close(losses(run), losses(straight)[:2])
    plot = ["loss.png"] if pictures.available() else []
    assert sorted(p.name for p in run.iterdir()) == sorted(["data-files.json", "loss.csv", "run-step2.safetensors",
                                                            "run-step2.yaml", "run.yaml", "state.pt", *plot])
    assert weights(run)["step"] == 2 and "module.input.weight" not in weights(run)["model"]  # the plain module

    # The 2-process checkpoint continued by one process, then by two again: still the straight run
    assert main(arguments(kit, run, 4)) == 0
    assert weights(run)["step"] == 4
    finished(torchrun(*arguments(kit, run, 6)))
    assert_close(losses(run), losses(straight))
    resumed, reference = weights(run), weights(straight)
    assert resumed["step"] == 6
    for key in ("model", "ema"):
        for name, value in reference[key].items():
            assert torch.allclose(resumed[key][name], value, rtol=1e-3, atol=1e-5), (key, name)
    assert torch.equal(resumed["generator"], reference["generator"])  # the same data order from here on


def test_a_rank_that_hangs_takes_the_run_down_and_the_last_save_continues(tmp_path, kit):
    # Rank 1 stopped (SIGSTOP) mid-run: rank 0's next collective gives up after DD_DDP_TIMEOUT_S instead of waiting
    # for ever, torchrun stops the node, and the last save continues in one process. (A rank that dies outright
    # is simpler: its peers' connections reset at once and torchrun's monitor sees the exit.)
    run = tmp_path / "run"
    process = torchrun(*arguments(kit, run, 10_000), start_new_session=True, timeout_s=3)
    hung = None
    try:
        deadline = time.monotonic() + 90
        while not losses(run):  # training: both ranks are in the loop, and step 1 is saved
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-3000:]
            time.sleep(0.2)
        rank0, hung = rank_pid(process.pid, 0), rank_pid(process.pid, 1)
        os.kill(hung, signal.SIGSTOP)
        while running(rank0):  # gives up on its own: the timeout
            assert time.monotonic() < deadline + 60, "rank 0 still waiting for the stopped rank"
            time.sleep(0.2)
        os.kill(hung, signal.SIGCONT)  # so it can take torchrun's SIGTERM
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGCONT)
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    assert "dd-bridge train: unexpected error: RuntimeError:" in err  # rank 0's one line
    saved = weights(run)["step"]
    assert saved >= 1 and [s for s, _ in losses(run)][:saved] == list(range(1, saved + 1))
    assert main(arguments(kit, run, saved + 1)) == 0  # one process continues from the last save
    assert weights(run)["step"] == saved + 1


def test_a_save_that_fails_on_rank_0_stops_every_rank_at_once_with_its_line(tmp_path, kit):
    """Review s41: rank 0's save failing (a full disk) left the other ranks at the barrier after it, or ending on a
    connection reset as "unexpected error". A file size limit (RLIMIT_FSIZE) makes state.pt's write fail as a full
    disk would; the vote after the save ends both ranks with rank 0's reason."""
    limit = 1 << 20  # state.pt of the tiny network is about 14 MB; everything else written is far smaller

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = tmp_path / "run"
    started = time.monotonic()
    process = torchrun(*arguments(kit, run, 3), preexec_fn=small_files)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0 and time.monotonic() - started < 100
    ours = sorted(line for line in err.splitlines() if line.startswith("dd-bridge train:"))  # torchrun's are its own
    assert ours == [f"dd-bridge train: error: {run / 'state.pt'}: cannot save (File too large); nothing was saved",
                    "dd-bridge train: error: stopped: rank 0 could not save the run (its message says why)"], err[-3000:]
    assert not (run / "state.pt").exists() and [s for s, _ in losses(run)] == [1]


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def rank_pid(launcher: int, rank: int) -> int:
    """The pid of the worker torchrun started for rank (its environment says RANK=rank)."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    for pid in map(int, children):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return pid
    raise AssertionError(f"no worker of rank {rank} among {children}")


def test_the_environment_decides_the_group():
    assert from_environment({}) is SINGLE
    assert from_environment({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Group(1, 4, 1)
    with pytest.raises(ConfigError, match="outside"):
        from_environment({"RANK": "4", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})


def test_each_rank_takes_its_share_of_the_global_batch():
    assert [Group(rank, 4).share(8) for rank in range(4)] == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    assert SINGLE.share(3) == slice(0, 3)
    with pytest.raises(ConfigError, match=r"batch size \(6\) must be a multiple of the number of processes \(4\)"):
        Group(0, 4).share(6)
