"""`dd-bridge bench --quick` runs every row on a tiny model; `dd-bridge export-onnx` writes a usable file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bridge.cli import main
from bridge.engine.backends import onnx as onnx_backend
from bridge.engine.checkpoints import LoadedModel, save_model
from bridge.engine.unet import DanceDiffusionUNet


pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.getbasetemp() / "onnx-cache"
    folder.mkdir(exist_ok=True)
    monkeypatch.setattr(onnx_backend, "cache_dir", lambda: folder)


def test_bench_quick_prints_every_row(capsys):
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    forward, sound = out.split("\n\n")[1:3]
    assert forward.startswith("one forward pass")
    for row in ("diffusers UNet1DModel fp32", "ours, torch fp32 (plain module)", "ours, torch fp32 (fast path)",
                "ours, onnxruntime fp32", "ours, torch bf16 (fast path)"):
        line = next(line for line in forward.splitlines() if line.strip().startswith(row))
        seconds, ratio = line[len(row) + 2:].split()[:2]
        assert float(seconds) > 0 and float(ratio) > 0
    assert "DanceDiffusionPipeline: IPNDM, 100 steps" in sound and "ours: v-iplms" in sound


def test_bench_json_carries_the_same_tables(capsys):
    assert main(["bench", "--quick", "--json", "--no-onnx"]) == 0
    data = json.loads(capsys.readouterr().out)
    forward, sound = data["tables"]
    rows = {row["name"]: row for row in forward["rows"]}
    assert rows["diffusers UNet1DModel fp32"]["ratio"] == 1.0
    # Same weights, same input: our torch paths agree with diffusers to float32 rounding.
    assert rows["ours, torch fp32 (fast path)"]["max_abs_diff"] < 1e-4
    assert rows["ours, torch fp32 (plain module)"]["max_abs_diff"] < 1e-4
    assert "ours, onnxruntime fp32" not in rows
    assert all(row["quality"] is not None for row in sound["rows"])


def test_bench_no_compile_turns_torch_compile_off_while_the_tables_run_and_says_so(capsys, monkeypatch):
    # A lent GPU compiles each fast-path row for minutes (2026-12-04: the sound table alone ran past 240 s):
    # --no-compile gives its figures in seconds, labelled as such.
    import torch._dynamo.config

    from bridge.bench import tables

    seen = []
    real_forward_table = tables.forward_table

    def forward_table(*args, **kwargs):
        seen.append(torch._dynamo.config.disable)
        return real_forward_table(*args, **kwargs)

    monkeypatch.setattr(tables, "forward_table", forward_table)
    assert main(["bench", "--quick", "--json", "--no-onnx", "--only", "forward", "--no-compile"]) == 0
    (table,) = json.loads(capsys.readouterr().out)["tables"]
    assert seen == [True] and torch._dynamo.config.disable is False  # off inside, back on after
    assert any(note.startswith("--no-compile: torch.compile was off") for note in table["notes"])
    assert main(["bench", "--quick", "--json", "--no-onnx", "--only", "forward"]) == 0
    assert seen == [True, False]
    assert not any("--no-compile" in note for note in json.loads(capsys.readouterr().out)["tables"][0]["notes"])


def test_bench_rejects_bad_numbers(capsys, tmp_path):
    assert main(["bench", "--length", "1000"]) == 1
    assert "--length must be a multiple of 8192" in capsys.readouterr().err
    assert main(["bench", "--quick", "--only", "sound", "--sounds", "2"]) == 1
    assert "--sounds must be at least 3" in capsys.readouterr().err
    assert main(["bench", "--quick", "--only", "sound", "--real", str(tmp_path)]) == 1
    assert "--real: need at least 3 readable audio files" in capsys.readouterr().err
    assert main(["bench", "--quick", "--only", "batch"]) == 1  # CUDA only: said at once, not after other tables
    assert "--only batch times a CUDA device's batched renders" in capsys.readouterr().err


def test_bench_sound_table_judges_every_row_against_real_drums(capsys, drumkits):
    kit = drumkits / "Audiophob"
    assert main(["bench", "--quick", "--json", "--only", "sound", "--real", str(kit), "--sounds", "3"]) == 0
    (sound,) = json.loads(capsys.readouterr().out)["tables"]
    pipeline, ours, low = sound["rows"]
    assert pipeline["name"].startswith("DanceDiffusionPipeline") and pipeline["mmd2_change"] is None
    assert all(row["mmd2"] is not None for row in (pipeline, ours, low))
    # Same weights and seeds: our v-iplms steps land ~40 dB from the pipeline's 100 IPNDM steps, so nearly the same
    # sounds and nearly the same distance to real drums: the change and its error under 1 % of the distance. (A
    # fixed 0.002 held while the features' inaudible top band, alike in both, made up most of every distance.)
    near = 0.01 * pipeline["mmd2"]
    assert abs(ours["mmd2_change"]) < near and 0 < ours["mmd2_change_error"] < near
    assert low["mmd2_change"] != 0 and low["mmd2_change_error"] > 0


def test_export_onnx_writes_a_file_onnxruntime_runs(tmp_path, capsys, tiny_config):
    network = DanceDiffusionUNet(tiny_config).eval()
    weights, _ = save_model(LoadedModel.from_network(network, name="tiny", sample_rate=48000, window=64),
                            tmp_path / "tiny")
    out = tmp_path / "tiny.onnx"
    assert main(["export-onnx", "--model", str(weights), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    x, t = torch.randn(2, 2, 64), torch.rand(2)
    with torch.inference_mode():
        assert (onnx_backend.OnnxModel(out)(x, t) - network(x, t)).abs().max() < 1e-4

    assert main(["export-onnx", "--model", str(weights), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["export-onnx", "--model", str(weights), "--out", str(tmp_path / "tiny.bin")]) == 1
    assert "must be named .onnx" in capsys.readouterr().err


def test_bench_steps_table_runs(capsys):
    assert main(["bench", "--quick", "--only", "steps"]) == 0
    out = capsys.readouterr().out
    assert "quality per step" in out
    for sampler in ("v-iplms", "dpmpp-2m", "v-ddim"):
        assert f"{sampler}, 8 steps" in out


def test_bench_without_diffusers_says_in_one_line_what_to_install(tmp_path):
    """A setup without the test extra: diffusers cannot be imported (a None entry in sys.modules makes every
    import of it fail), the bench still runs, and says once, on stderr, what to install for the reference rows."""
    code = ("import sys; sys.modules['diffusers'] = None\n"
            "from bridge.cli import main\n"
            "raise SystemExit(main(['bench', '--quick', '--no-onnx', '--only', 'forward']))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "diffusers" in line]
    assert len(said) == 1 and "pip install -e '.[test]'" in said[0], done.stderr
    assert "diffusers UNet1DModel" not in done.stdout and "ours, torch fp32 (plain module)" in done.stdout
    assert "ratios are to our plain torch module" in done.stdout


def test_bench_train_table_times_each_recipe_row_on_the_same_first_step(capsys):
    assert main(["bench", "--quick", "--json", "--only", "train"]) == 0
    (table,) = json.loads(capsys.readouterr().out)["tables"]
    rows = {row["name"]: row for row in table["rows"]}
    assert list(rows) == ["fp32 (the original recipe)", "bf16 autocast", "fp32, min-snr:5 + pre-emphasis 0.9"]
    assert all(row["seconds"] > 0 for row in rows.values())
    # bf16 takes the same step on the same weights, batch and noise: its first loss is near fp32's, not equal
    assert 0 < rows["bf16 autocast"]["max_abs_diff"] < 0.05
