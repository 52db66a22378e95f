"""Which sampler a command uses when none is given (bridge.constants.sampler_for), as a user runs them: new
one-shots from `generate` take dpmpp-2m-sde-karras-eta0.5, a one-shot's variation dpmpp-2m-sde, a loop's v-iplms-sde,
the rest v-iplms, --sampler always wins, and every file names the sampler it was made with so its stored command makes it again."""

from __future__ import annotations

import shlex

import numpy as np

from bridge import constants
from bridge.cli import build_parser, render, sheet
from bridge.engine import clips
from bridge.engine.audio import read_audio, read_metadata
from bridge.engine.seeds import series
from tests.cli.test_render_cli import dd_bridge, written

FAST = ["--steps", "4", "--format", "float"]


def _render(tmp_path, name: str, *args, fast=FAST) -> tuple[np.ndarray, dict]:
    [path] = written(dd_bridge(*args, "--out", tmp_path / name, *fast), 1)
    return read_audio(path).samples, read_metadata(path)


def test_generate_defaults_to_the_half_noise_sde_and_names_it(tmp_path, tiny_model_path):
    new = ("generate", "--model", tiny_model_path, "--seconds", 0.1, "--seed", 11)
    default, meta = _render(tmp_path, "default", *new)
    new_sound = "dpmpp-2m-sde-karras-eta0.5"
    explicit, explicit_meta = _render(tmp_path, "explicit", *new, "--sampler", new_sound)
    assert np.array_equal(default, explicit)
    assert meta["sampler"] == new_sound and f"--sampler {new_sound} " in meta["command"] + " "
    assert meta["command"] == explicit_meta["command"]
    chosen, chosen_meta = _render(tmp_path, "chosen", *new, "--sampler", "v-iplms")  # an explicit sampler wins
    assert not np.array_equal(default, chosen) and chosen_meta["sampler"] == "v-iplms"
    again, _ = _render(tmp_path, "again", *shlex.split(meta["command"])[1:])
    assert np.array_equal(default, again)


def test_vary_without_a_sampler_is_the_sde_to_the_bit_and_made_again(tmp_path, tiny_model_path, drum_samples):
    vary = ("vary", drum_samples["wav"], "--model", tiny_model_path, "--seed", 11)
    default, meta = _render(tmp_path, "default", *vary)
    explicit, _ = _render(tmp_path, "explicit", *vary, "--sampler", "dpmpp-2m-sde")
    assert np.array_equal(default, explicit)
    assert meta["sampler"] == "dpmpp-2m-sde" and "--sampler dpmpp-2m-sde " in meta["command"] + " "
    again, _ = _render(tmp_path, "again", *shlex.split(meta["command"])[1:])  # stochastic, yet seeded: the same
    assert np.array_equal(default, again)
    iplms, _ = _render(tmp_path, "iplms", *vary, "--sampler", "v-iplms")
    assert not np.array_equal(default, iplms)


def test_a_loops_variation_without_a_sampler_is_v_iplms_sde_and_made_again(tmp_path, tiny_model_path, drum_samples):
    # 12 steps: at 4 no step of noise 0.5's grid starts under v-iplms-sde's switch (t = 0.02): all v-iplms.
    twelve = ("--steps", "12", "--format", "float")
    vary = ("vary", drum_samples["wav"], "--model", tiny_model_path, "--seed", 11, "--loop")
    loop, loop_meta = _render(tmp_path, "loop", *vary, fast=twelve)  # a loop's (constants.vary_kind)
    assert loop_meta["sampler"] == "v-iplms-sde" and "--sampler v-iplms-sde " in loop_meta["command"] + " "
    explicit, _ = _render(tmp_path, "explicit", *vary, "--sampler", "v-iplms-sde", fast=twelve)
    assert np.array_equal(loop, explicit)
    # its last steps stochastic, and seeded: the file's own command makes it again
    again, _ = _render(tmp_path, "again", *shlex.split(loop_meta["command"])[1:], fast=())
    assert np.array_equal(loop, again)
    iplms, _ = _render(tmp_path, "iplms", *vary, "--sampler", "v-iplms", fast=twelve)
    assert not np.array_equal(loop, iplms)


def test_interpolate_without_a_sampler_is_v_iplms(tmp_path, tiny_model_path, drum_samples):
    both = ("interpolate", drum_samples["wav"], drum_samples["wav"], "--model", tiny_model_path, "--count", 2)
    paths = written(dd_bridge(*both, "--out", tmp_path / "walk", *FAST), 2)
    assert {read_metadata(path)["sampler"] for path in paths} == {"v-iplms"}


def test_a_sheets_new_sounds_are_rendered_as_generate_makes_them(tmp_path, tiny_model_path, drum_samples):
    """`dd-bridge sheet --source ... --generate K`: the variations' rows dpmpp-2m-sde, the new sounds' row
    dpmpp-2m-sde-karras-eta0.5, and the title names both (in process: the tiles' audio is compared, which the
    picture does not keep)."""
    args = build_parser().parse_args(
        ["sheet", "--source", str(drum_samples["wav"]), "--noise", "0.5", "--count", "1", "--generate", "2",
         "--seconds", "0.1", "--seed", "5", "--steps", "3", "--model", str(tiny_model_path),
         "--out", str(tmp_path / "sheet.png")])
    rows, title = sheet._render_rows(args)
    engine, _model = render.open_engine(args, kind=constants.VARIATION)
    new = clips.generate_clips(engine, 2, 0.1, steps=3, seed=series(5, 2), sampler="dpmpp-2m-sde-karras-eta0.5")
    assert all(np.array_equal(tile.clip.samples, clip.samples) for tile, clip in zip(rows[-1], new))
    varied = clips.vary_clip(engine, read_audio(drum_samples["wav"]), 1, noise=0.5, steps=3, seed=series(5, 1),
                             sampler="dpmpp-2m-sde")
    assert np.array_equal(rows[0][1].clip.samples, varied[0].samples)
    assert "dpmpp-2m-sde, new sounds dpmpp-2m-sde-karras-eta0.5, 3 steps" in title
