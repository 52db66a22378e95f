"""`dd-bridge sheet` as a user runs it: a subprocess on real drum one-shots with a model file, pictures read back."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from PIL import Image

from bridge.pictures import SheetLayout
from tests.cli.test_render_cli import REPO

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ["--steps", "3"]
NO_MATPLOTLIB = "import sys; sys.modules['matplotlib'] = None"  # as on an install without the plots extra


def dd_bridge(*args, prelude: str = "") -> subprocess.CompletedProcess:
    """`dd-bridge ARGS` in a fresh interpreter on this tree; prelude runs first (to take matplotlib away)."""
    code = f"{prelude}\nimport sys; from bridge.cli import main; sys.exit(main())"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600)


def has_layout(image, rows: int, columns: int, dpi: int) -> bool:
    """The picture is as large as the sheet's layout says for so many tiles (to a pixel: matplotlib rounds)."""
    width, height = SheetLayout().size(rows, columns)
    return abs(image.width - width * dpi) <= 1 and abs(image.height - height * dpi) <= 1


def one_line_error(result, *words: str) -> None:
    assert result.returncode != 0, result.stdout
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture(scope="module")
def one_shots(drumkits):
    """A kick and a hat from a kit the bundled model was not trained on, as hydrogen installs them (AIFF)."""
    kit = drumkits / "BJA_Pacific"
    return kit / "BD_01.aiff", kit / "HH_01.aiff"


def test_render_sheet_is_a_picture_of_every_tile_and_the_same_seed_draws_it_again(tmp_path, tiny_model_path,
                                                                                     one_shots):
    kick, hat = one_shots
    command = ["sheet", "--model", tiny_model_path, "--source", kick, "--source", hat, "--noise", "0.2,0.8",
               "--count", 2, "--generate", 3, "--seed", 11, "--dpi", 40, *FAST]
    first = dd_bridge(*command, "--out", tmp_path / "sheet.png")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [str(tmp_path / "sheet.png")]
    with Image.open(tmp_path / "sheet.png") as image:
        image.verify()
        # two source rows of 1 + 2 x 2 tiles, then the row of 3 new sounds
        assert image.format == "PNG" and has_layout(image, 3, 5, 40), image.size
    second = dd_bridge(*command, "--out", tmp_path / "again.png")
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "sheet.png").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.png", "sheet.png"]  # nothing else left behind


def test_files_sheet_draws_a_folder_and_files_in_the_order_given(tmp_path, drumkits, one_shots):
    folder = tmp_path / "results"
    folder.mkdir()
    for source in sorted((drumkits / "circAfrique v4").glob("Djembe1*.wav")):  # 3 WAVs, 44.1 kHz
        (folder / source.name).symlink_to(source)
    out = tmp_path / "look.svg"
    result = dd_bridge("sheet", *one_shots, folder, "--columns", 2, "--out", out)
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert svg.startswith("<?xml") and "</svg>" in svg
    titles = ["BD_01.aiff", "HH_01.aiff", "Djembe1 Bass.wav", "Djembe1 Slap.wav", "Djembe1 Tone.wav"]
    positions = [svg.index(f"<!-- {title} -->") for title in titles]  # matplotlib names each text it draws
    assert positions == sorted(positions)

    png = tmp_path / "look.png"
    assert dd_bridge("sheet", folder, "--columns", 2, "--dpi", 30, "--out", png).returncode == 0
    with Image.open(png) as image:
        assert has_layout(image, math.ceil(3 / 2), 2, 30), image.size


def test_an_existing_picture_is_never_replaced(tmp_path, one_shots):
    out = tmp_path / "sheet.png"
    out.write_bytes(b"my picture")
    result = dd_bridge("sheet", one_shots[0], "--out", out)
    one_line_error(result, str(out), "already exists")
    assert out.read_bytes() == b"my picture"


@pytest.mark.parametrize("case", ["missing source", "not audio", "picture kind", "no folder", "nothing",
                                  "both modes", "noise"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_model_path, one_shots, case):
    out = tmp_path / "sheet.png"
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    args, words = {
        "missing source": (["--model", tiny_model_path, "--source", tmp_path / "gone.wav"], ["gone.wav"]),
        "not audio": ([one_shots[0], not_audio], ["notes.wav"]),
        "picture kind": ([one_shots[0], "--out", tmp_path / "sheet.jpg"], ["sheet.jpg", ".png"]),
        "no folder": ([one_shots[0], "--out", tmp_path / "missing" / "sheet.png"], ["no such folder"]),
        "nothing": ([], ["nothing to draw"]),
        "both modes": ([one_shots[0], "--generate", 2], ["not both"]),
        "noise": (["--source", one_shots[0], "--noise", "0.2,1.5"], ["--noise", "1.5"]),
    }[case]
    if "--out" not in args:
        args = [*args, "--out", out]
    result = dd_bridge("sheet", *args, *FAST)
    if case == "noise":  # an option argparse rejects: its usage line, then the error
        last = result.stderr.splitlines()[-1]
        assert result.returncode == 2 and "--noise" in last and "1.5" in last, result.stderr
    else:
        one_line_error(result, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.wav"]


def test_without_matplotlib_the_command_names_the_extra_before_rendering(tmp_path, tiny_model_path, one_shots):
    result = dd_bridge("sheet", "--model", tiny_model_path, "--source", one_shots[0], "--out", tmp_path / "sheet.png",
                       *FAST, prelude=NO_MATPLOTLIB)
    one_line_error(result, "matplotlib", "pip install -e '.[plots]'")
    assert "%" not in result.stderr  # refused before any render started
    assert not any(tmp_path.iterdir())
