"""`dd-bridge make-drums` end to end: a real GM soundfont from a Debian package, the real fluidsynth program."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from bridge.errors import BridgeError
from bridge.training import data, drums

# csound-soundfont: 4 MB, public domain (its Debian copyright file says so); ./bootstrap.sh test installs it.
FONT = Path("/usr/share/sounds/sf2/sf_GMbank.sf2")
KITS = ["Standard", "TR 808"]  # two of its nine kits keep the test to seconds
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def font() -> Path:
    if not FONT.is_file() or not shutil.which("fluidsynth"):
        raise RuntimeError(f"{FONT} or fluidsynth is missing: ./bootstrap.sh test installs csound-soundfont "
                           "and fluidsynth")
    return FONT


def make_drums(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", "make-drums", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env or {**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def kit_args(font, out):
    return [font, "--out", out] + [arg for kit in KITS for arg in ("--kit", kit)]


@pytest.fixture(scope="module")
def made(font, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("drums") / "gm"
    result = make_drums(*kit_args(font, out))
    assert result.returncode == 0, result.stderr
    return out, result


def test_the_font_lists_its_drum_kits_only(font):
    names = [kit.name for kit in drums.kits(font)]
    assert names[:2] == ["Standard", "Room"] and "TR 808" in names
    assert not any("SFX" in name for name in names)  # bank 128 program 56 is sound effects, not drums


def test_every_hit_is_a_trimmed_faded_48k_one_shot(made):
    out, result = made
    written = [Path(line) for line in result.stdout.splitlines()]
    wavs = sorted(out.glob("*.wav"))
    assert sorted(written) == wavs and len(wavs) > 40
    names = {p.name for p in wavs}
    assert "Standard Acoustic Snare v60.wav" in names and "TR 808 Bass Drum 1 v60.wav" in names
    for path in wavs:
        kit, rest = next((k, path.stem[len(k) + 1:]) for k in KITS if path.stem.startswith(k + " "))
        key, velocity = rest.rsplit(" v", 1)
        assert key in drums.GM_DRUMS.values() and int(velocity) in drums.VELOCITIES
        info = soundfile.info(path)
        assert (info.samplerate, info.subtype) == (48000, "PCM_16") and info.channels in (1, 2)
        assert info.duration <= drums.MAX_HIT_SECONDS + 1e-3
        samples, _ = soundfile.read(path, always_2d=True, dtype="float32")
        level = np.abs(samples).max(axis=1)
        assert 20 * np.log10(level.max()) == pytest.approx(drums.PEAK_DB, abs=0.01)  # as loud as sample packs
        assert data.onset(samples.T) <= 2  # starts at the attack (the pre-roll, give or take 16-bit rounding)
        assert level[-1] < 1e-3  # faded at the end


def test_kits_sharing_a_sample_give_it_once_and_velocities_differ_in_more_than_level(made):
    out, _ = made
    sounds = [soundfile.read(p, dtype="float32")[0] for p in sorted(out.glob("*.wav"))]
    keys = {tuple(np.round(s * 32767).astype(int).ravel()[:4000]) for s in sounds}
    assert len(keys) == len(sounds)  # no two files hold the same sound


def test_the_folder_says_where_the_sounds_come_from(made):
    licence = (made[0] / drums.LICENCE_FILE).read_text()
    assert "sf_GMbank.sf2" in licence and "csound-soundfont" in licence
    assert "License: public-domain" in licence  # the package's copyright file, verbatim
    assert "Standard, TR 808" in licence and "velocities 60, 120" in licence
    assert "Licence: **public domain**" in licence and "may be trained into weights that ship" in licence
    entry = yaml.safe_load(licence.split("```yaml\n", 1)[1].split("```", 1)[0])  # ready for the model card
    assert entry[0]["licence"] == "public domain" and "csound-soundfont" in entry[0]["licence_source"]


def test_copyleft_and_share_alike_fonts_are_never_marked_for_shipped_weights():
    for package, known in drums.PACKAGE_LICENCES.items():
        copyleft = "GPL" in known.licence or "-SA-" in known.licence
        assert known.ships != copyleft, package


def test_the_same_command_makes_the_same_files_and_never_rewrites_them(made, font, tmp_path):
    out, _ = made
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    again = make_drums(*kit_args(font, out))
    assert again.returncode == 0 and again.stdout == ""  # nothing new: every file was already there
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    fresh = make_drums(*kit_args(font, tmp_path / "fresh"))
    assert fresh.returncode == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "fresh").iterdir()} == {k: v[0] for k, v in before.items()}


def test_another_font_or_options_into_the_same_folder_is_refused(made, font):
    out, _ = made
    result = make_drums(font, "--out", out, "--kit", "Standard", "--velocities", "100")
    assert result.returncode == 1 and "use a new --out folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_fluidsynth_one_line_says_how_to_install_it(font, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": str(tmp_path / "empty")}
    result = make_drums(font, "--out", tmp_path / "out", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "dd-bridge make-drums: error: fluidsynth is not installed: install it with `sudo apt-get install "
        "fluidsynth` (macOS: `brew install fluid-synth`)"]
    assert not (tmp_path / "out").exists()


def test_bad_input_is_one_clear_line(font, tmp_path, drum_samples):
    not_a_font = make_drums(drum_samples["wav"], "--out", tmp_path / "a")
    assert not_a_font.returncode == 1 and "not a SoundFont" in not_a_font.stderr
    cut_short = tmp_path / "cut.sf2"
    cut_short.write_bytes(font.read_bytes()[:100_000])
    result = make_drums(cut_short, "--out", tmp_path / "b")
    assert result.returncode == 1 and "without preset headers" in result.stderr
    unknown = make_drums(font, "--out", tmp_path / "c", "--kit", "Marching")
    assert unknown.returncode == 1 and "0 Standard" in unknown.stderr
    bad_velocity = make_drums(font, "--out", tmp_path / "d", "--velocities", "0,200")
    assert bad_velocity.returncode == 2 and "velocities must be in 1..127" in bad_velocity.stderr
    no_length = make_drums(font, "--out", tmp_path / "e", "--seconds", "0")
    assert no_length.returncode == 1 and "0.05 to 10 seconds" in no_length.stderr
    (tmp_path / "a file").write_text("not a folder")
    into_a_file = make_drums(font, "--out", tmp_path / "a file" / "drums")
    assert into_a_file.returncode == 1 and "cannot make the folder" in into_a_file.stderr
    assert len(into_a_file.stderr.strip().splitlines()) == 1
    assert not any((tmp_path / name).exists() for name in "abcde")
    with pytest.raises(BridgeError, match="no such soundfont"):
        drums.make(tmp_path / "missing.sf2", tmp_path / "f")
