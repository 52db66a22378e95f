"""`dd-bridge make-drums LIBRARY` end to end: a sample library laid out as its Debian package installs it (made here
from real audio files, with a DEP-5 copyright file), and the real sonic-pi-samples package."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bridge.cli import data as data_cli
from bridge.training import data, drums, labels, libraries

ROOT = Path(__file__).resolve().parents[2]
SONIC_PI = libraries.LIBRARIES["sonic-pi"]

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Sonic Pi

Files: *
Copyright: 2016 Samuel Aaron <samaaron@gmail.com>
License: MIT

Files:
 etc/doc/*
 etc/examples/*
Copyright: 2016 Samuel Aaron
License: CC-BY-SA-4.0

Files: etc/samples/bd_808.flac
Copyright: 2013 EKVelika
Source: http://freesound.org/people/EKVelika/sounds/208447/
License: CC0

Files: etc/samples/drum_cymbal_closed.flac
Copyright: 2010 menegass
Source: http://www.freesound.org/people/menegass/sounds/100053/
License: CC0

License: CC0
 Statement of Purpose
 .
 (the licence text)
"""


def make_drums(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", "make-drums", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def hit(kind: str, rate: int, channels: int, seconds: float) -> np.ndarray:
    """A real, recognisable one-shot [frames, channels]: 30 ms of silence, then the attack and its decay."""
    t = np.arange(round(seconds * rate)) / rate
    noise = np.random.default_rng(len(kind)).standard_normal(t.size)
    body = {"kick": np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 8),
            "hat": noise * np.exp(-t * 40) * 0.5,
            "roll": noise * (0.5 + 0.5 * np.sin(2 * np.pi * 12 * t))}[kind]
    body = np.concatenate([np.zeros(round(0.03 * rate)), body])
    return np.stack([body * (0.5 + 0.1 * c) for c in range(channels)], axis=1)


def fake_package(root: Path) -> Path:
    """sonic-pi-samples as the package installs it under root: three samples the table labels (a 44.1 kHz mono
    kick of 1.2 s, a stereo 96 kHz hat), one it leaves out (a roll), the copyright file and the changelog."""
    samples = root / SONIC_PI.folder.lstrip("/")
    samples.mkdir(parents=True)
    soundfile.write(samples / "bd_808.flac", hit("kick", 44100, 1, 1.2), 44100)
    soundfile.write(samples / "bd_mehackit.flac", hit("kick", 44100, 2, 0.3)[::-1].copy(), 44100)  # reversed
    soundfile.write(samples / "drum_cymbal_closed.flac", hit("hat", 96000, 2, 0.2), 96000, subtype="PCM_24")
    soundfile.write(samples / "drum_roll.flac", hit("roll", 44100, 1, 2.0), 44100)
    doc = root / "usr/share/doc" / SONIC_PI.package
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    with gzip.open(doc / "changelog.Debian.gz", "wt") as f:
        f.write("sonic-pi (3.2.2~repack-8) unstable; urgency=medium\n\n  * a change\n")
    return samples


@pytest.fixture
def package(tmp_path) -> Path:
    fake_package(tmp_path / "root")
    return tmp_path / "root"


def test_a_library_becomes_labelled_48k_one_shots_with_their_licence(package, tmp_path):
    out = tmp_path / "sonic-pi"
    result = make_drums("sonic-pi", "--root", package, "--out", out)
    assert result.returncode == 0, result.stderr
    written = sorted(Path(line) for line in result.stdout.splitlines())
    assert written == sorted(out / name for name in ("kick/bd_808.wav", "kick/bd_mehackit.wav",
                                                     "hat/drum_cymbal_closed.wav"))  # by the table: no roll
    for path in written:
        info = soundfile.info(path)
        assert (info.samplerate, info.subtype) == (48000, "PCM_16")
        assert info.duration <= drums.MAX_HIT_SECONDS + 1e-3  # the 1.2 s kick is cut
        samples, _ = soundfile.read(path, always_2d=True, dtype="float32")
        assert 20 * np.log10(np.abs(samples).max()) == pytest.approx(drums.PEAK_DB, abs=0.01)
        assert data.onset(samples.T) <= 2  # the 30 ms of silence before the attack is gone
    assert soundfile.info(out / "kick/bd_808.wav").channels == 1  # mono stays mono
    # the layout train-classifier and train read: each file's class is its sub-folder
    assert {(item.path.name, item.label, item.kit) for item in labels.labelled([out])} == {
        ("bd_808.wav", "kick", "sonic-pi"), ("bd_mehackit.wav", "kick", "sonic-pi"),
        ("drum_cymbal_closed.wav", "hat", "sonic-pi")}
    source = labels.kit_source(out)  # what the classifier's card lists for this folder
    assert source["licence"] == "CC0 and MIT"  # bd_mehackit has no paragraph of its own: Files: * (MIT)
    assert source["kit"] == "sonic-pi samples (sonic-pi-samples 3.2.2~repack-8)"
    assert "make-drums sonic-pi" in source["source"]
    licence = (out / drums.LICENCE_FILE).read_text()
    assert ("| hat/drum_cymbal_closed.wav | hat | drum_cymbal_closed.flac | CC0 | 2010 menegass | "
            "http://www.freesound.org/people/menegass/sounds/100053/ |") in licence
    assert COPYRIGHT.strip() in licence and "drum_roll" not in licence
    assert "may be trained into weights that ship" in licence


def test_run_again_it_keeps_every_file_and_refuses_other_options(package, tmp_path):
    out = tmp_path / "sonic-pi"
    (out / "kick").mkdir(parents=True)
    (out / "kick/bd_808.wav").write_bytes(b"the user's own file")
    first = make_drums("sonic-pi", "--root", package, "--out", out)
    assert first.returncode == 0, first.stderr
    assert (out / "kick/bd_808.wav").read_bytes() == b"the user's own file"  # never overwritten
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    again = make_drums("sonic-pi", "--root", package, "--out", out)
    assert again.returncode == 0 and again.stdout == ""
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before
    other = make_drums("sonic-pi", "--root", package, "--out", out, "--seconds", "0.3")
    assert other.returncode == 1  # one line says why (after the warning that most of the table is not here)
    assert other.stderr.strip().splitlines()[-1].endswith("(see its LICENCE.md): use a new --out folder")
    assert "70 files of the table are not in" in other.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before


def test_a_library_not_installed_says_which_package_to_install(tmp_path):
    result = make_drums("sonic-pi", "--root", tmp_path, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"dd-bridge make-drums: error: sonic-pi: no {tmp_path}/usr/share/sonic-pi/samples: install it with "
        "`sudo apt-get install sonic-pi-samples` (21 MB, no dependencies)"]
    exa = make_drums("exadrums", "--root", tmp_path, "--out", tmp_path / "out")
    assert exa.returncode == 1 and "dpkg-deb -x exadrums_*.deb DIR`, then --root DIR" in exa.stderr
    assert not (tmp_path / "out").exists()


def test_without_its_licence_or_under_another_nothing_is_made(package, tmp_path):
    copyright_file = SONIC_PI.copyright(package)
    copyright_file.write_text(COPYRIGHT.replace("License: CC0\n\nFiles: etc/samples/drum", "License: GPL-2\n\n"
                                                "Files: etc/samples/drum"))
    result = make_drums("sonic-pi", "--root", package, "--out", tmp_path / "a")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "gives bd_808.flac the licence 'GPL-2', not CC0 or MIT" in result.stderr
    copyright_file.unlink()
    result = make_drums("sonic-pi", "--root", package, "--out", tmp_path / "b")
    assert result.returncode == 1 and "without its licence nothing is made" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_options_of_the_other_kind_of_source_are_refused(package, tmp_path):
    kit = make_drums("sonic-pi", "--root", package, "--out", tmp_path / "a", "--kit", "Standard")
    assert kit.returncode == 1 and "--kit: for a soundfont, not the sample library sonic-pi" in kit.stderr
    root = make_drums(tmp_path / "font.sf2", "--root", package, "--out", tmp_path / "b")
    assert root.returncode == 1 and "--root is for a sample library" in root.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_copyright_files_last_matching_paragraph_decides():
    assert libraries.terms(COPYRIGHT, "etc/samples/bd_808.flac")["license"] == "CC0"
    assert libraries.terms(COPYRIGHT, "etc/samples/bd_zum.flac")["license"] == "MIT"  # only Files: *
    assert libraries.terms(COPYRIGHT, "etc/doc/intro.md")["license"] == "CC-BY-SA-4.0"
    assert libraries.terms("Files: a/*\nLicense: BSD-3-Clause\n text", "b/c.wav") == {}


def test_the_table_is_the_one_the_command_line_offers_and_labels_only_known_classes():
    assert tuple(libraries.SOURCES) == data_cli.LIBRARY_NAMES
    for library in libraries.LIBRARIES.values():
        assert set(library.labels.values()) <= set(labels.CLASSES), library.name
    for collection in libraries.COLLECTIONS.values():
        assert set(collection.folders.values()) <= set(labels.CLASSES), collection.name
    # names mislead: these are hi-hats, whatever the word "cymbal" says
    assert {SONIC_PI.labels[f"drum_cymbal_{n}.flac"] for n in ("closed", "pedal", "open")} == {"hat"}
    assert "drum_roll.flac" not in SONIC_PI.labels and "glitch_perc1.flac" not in SONIC_PI.labels


def test_the_real_sonic_pi_samples_package(tmp_path):
    """The table against the package itself (./bootstrap.sh test installs sonic-pi-samples): every file there,
    each under a licence whose weights ship."""
    if not SONIC_PI.samples(Path("/")).is_dir():
        raise RuntimeError("sonic-pi-samples is missing: ./bootstrap.sh test installs it")
    out = tmp_path / "sonic-pi"
    result = make_drums("sonic-pi", "--out", out)
    assert result.returncode == 0, result.stderr
    counts = {label: len(list((out / label).glob("*.wav"))) for label in labels.CLASSES}
    assert counts == {"kick": 18, "snare": 10, "hat": 3, "tom": 7, "cymbal": 5, "clap": 2, "perc": 28}
    assert labels.kit_source(out)["licence"] == "CC0 and MIT"


OSD = libraries.COLLECTIONS["open-source-drumkit"]
OSD_README = """Samples from THE OPEN SOURCE DRUM KIT by Real Music Media.

I am building a VST3 and Standalone plugin with JUCE, it is licensed under the GPLv3.

(The samples are completely public domain)
"""


def fake_clone(root: Path) -> str:
    """The Open Source Drum Kit's repository as `git clone` leaves it: 96 kHz 24-bit stereo hits in its folders
    (a kick, a closed hat two folders down, a rimshot, and a sidestick and a gong that no class takes), its README,
    the plug-in's GPL LICENSE.md; committed, so the clone has a commit. Returns the commit."""
    samples = root / OSD.folder
    for name, kind, seconds in (("kick/kick1.wav", "kick", 1.0), ("hihat/closed-hihat/chh1.wav", "hat", 0.3),
                                ("rimshot/rimshot1.wav", "kick", 0.4), ("sidestick/sidestick1.wav", "hat", 0.3),
                                ("gong/mallet-hit1.wav", "roll", 2.0)):
        (samples / name).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(samples / name, hit(kind, 96000, 2, seconds), 96000, subtype="PCM_24")
    (samples / "kick/kick1.wav.reapeaks").write_bytes(b"not audio")  # REAPER's peak files lie beside them
    (root / "README.md").write_text(OSD_README)
    (root / "LICENSE.md").write_text("GNU GENERAL PUBLIC LICENSE Version 3 (the plug-in's)\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "samples"], check=True)
    return subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def test_a_public_domain_collection_is_labelled_by_its_folders(tmp_path):
    commit = fake_clone(tmp_path / "osd")
    out = tmp_path / "out"
    result = make_drums("open-source-drumkit", "--root", tmp_path / "osd", "--out", out)
    assert result.returncode == 0, result.stderr
    written = sorted(Path(line) for line in result.stdout.splitlines())
    assert written == sorted(out / name for name in ("kick/kick1.wav", "hat/chh1.wav", "snare/rimshot1.wav"))
    for path in written:
        info = soundfile.info(path)
        assert (info.samplerate, info.subtype, info.channels) == (48000, "PCM_16", 2)
        assert info.duration <= drums.MAX_HIT_SECONDS + 1e-3
    assert {(item.path.name, item.label) for item in labels.labelled([out])} == {
        ("kick1.wav", "kick"), ("chh1.wav", "hat"), ("rimshot1.wav", "snare")}
    source = labels.kit_source(out)  # what a card lists: the repository at its commit, public domain
    assert source["licence"] == "public domain"
    assert source["kit"] == f"open-source-drumkit ({OSD.repository}, commit {commit})"
    licence = (out / drums.LICENCE_FILE).read_text()
    assert "| hat/chh1.wav | hat | hihat/closed-hihat/chh1.wav |" in licence
    assert OSD_README.strip() in licence and "may be trained into weights that ship" in licence
    assert "sidestick" not in licence and "gong" not in licence
    # the same clone again: every file kept, nothing written
    again = make_drums("open-source-drumkit", "--root", tmp_path / "osd", "--out", out)
    assert again.returncode == 0 and again.stdout == ""


def test_a_collection_without_its_public_domain_statement_or_not_cloned_makes_nothing(tmp_path):
    missing = make_drums("open-source-drumkit", "--root", tmp_path, "--out", tmp_path / "a")
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "git clone https://github.com/s1m0n-github/the-open-source-drumkit DIR" in missing.stderr
    fake_clone(tmp_path / "osd")
    (tmp_path / "osd/README.md").write_text("Samples from THE OPEN SOURCE DRUM KIT. All rights reserved.\n")
    changed = make_drums("open-source-drumkit", "--root", tmp_path / "osd", "--out", tmp_path / "b")
    assert changed.returncode == 1 and "does not say 'completely public domain'" in changed.stderr
    (tmp_path / "osd/README.md").unlink()
    gone = make_drums("open-source-drumkit", "--root", tmp_path / "osd", "--out", tmp_path / "c")
    assert gone.returncode == 1 and "without its licence nothing is made" in gone.stderr
    assert not any((tmp_path / name).exists() for name in "abc")


MULDJORD = libraries.COLLECTIONS["muldjordkit"]
MULDJORD_README = """# MuldjordKit v1.0

## License

This work is licensed under a <a rel="license" href="https://creativecommons.org/licenses/by/4.0/">
Creative Commons Attribution 4.0 International License</a>.
"""


def fake_multi_mic_clone(root: Path) -> None:
    """MuldjordKit's repository as `git clone` leaves it: 44.1 kHz 24-bit mono FLAC, one file per microphone of
    each hit (`1-KdrumL-OHL.flac`): two kicks and a closed hat, heard by their close microphone, the left overhead
    (a hat's noise) and the left room (a delayed echo of it), the right pair silent, and the kick trigger (a loud
    5 kHz tone that is not sound); a SnareRest hit no class takes; README and LICENSE. Not committed: a copy of
    the files without git's reads the same, its commit "unknown"."""
    rate = 44100
    tone = 0.9 * np.sin(2 * np.pi * 5000 * np.arange(round(0.5 * rate)) / rate)
    for piece, number, close in (("KdrumL", 1, "kick"), ("KdrumL", 2, "kick"), ("HihatClosed", 1, "hat"),
                                 ("SnareRest", 1, "hat")):
        folder = root / MULDJORD.folder / piece
        folder.mkdir(parents=True, exist_ok=True)
        near = hit(close, rate, 1, 0.5)[:, 0] * (1 - 0.3 * (number - 1))
        overhead = hit("hat", rate, 1, 0.5)[:, 0] * 0.2
        for mic, sound in ((piece if piece != "HihatClosed" else "Hihat", near), ("OHL", overhead),
                           ("AmbL", np.roll(overhead, 400) * 0.5), ("OHR", 0 * near), ("AmbR", 0 * near),
                           ("Trigger", tone)):
            soundfile.write(folder / f"{number}-{piece}-{mic}.flac", sound, rate, subtype="PCM_24")
    (root / "README.md").write_text(MULDJORD_README)
    (root / "LICENSE").write_text("Attribution 4.0 International\n")


def test_a_multi_microphone_kit_becomes_one_stereo_one_shot_a_hit(tmp_path):
    fake_multi_mic_clone(tmp_path / "mk")
    out = tmp_path / "out"
    result = make_drums("muldjordkit", "--root", tmp_path / "mk", "--out", out)
    assert result.returncode == 0, result.stderr
    written = sorted(Path(line) for line in result.stdout.splitlines())
    assert written == sorted(out / name for name in ("kick/1-KdrumL.wav", "kick/2-KdrumL.wav",
                                                     "hat/1-HihatClosed.wav"))
    for path in written:
        samples, rate = soundfile.read(path)
        assert (rate, soundfile.info(path).subtype, samples.shape[1]) == (48000, "PCM_16", 2)
        spectrum = np.abs(np.fft.rfft(samples, axis=0)) ** 2
        frequencies = np.fft.rfftfreq(samples.shape[0], 1 / rate)
        tone = spectrum[(frequencies > 4900) & (frequencies < 5100)].sum(axis=0) / spectrum.sum(axis=0)
        assert tone.max() < 0.05  # the trigger's tone is not in the mix (mixed, it would be most of the energy)
        if path.parent.name == "kick":
            # the close microphone in both sides, the left overhead's and room's noise in the left only
            high = spectrum[frequencies > 2000].sum(axis=0) / spectrum.sum(axis=0)
            assert high[0] > 10 * high[1]
            assert np.corrcoef(samples[:, 0], samples[:, 1])[0, 1] > 0.3
    source = labels.kit_source(out)
    assert source["licence"] == "CC-BY-4.0" and "Lars Muldjord" in source["author"]
    assert source["kit"] == f"muldjordkit ({MULDJORD.repository}, commit unknown)"
    licence = (out / drums.LICENCE_FILE).read_text()
    assert "| kick/1-KdrumL.wav | kick | KdrumL/1-KdrumL-*: 5 microphones |" in licence
    assert "may be trained into weights that ship" in licence and MULDJORD_README.strip() in licence
    assert "SnareRest" not in licence and "Trigger" not in licence
    again = make_drums("muldjordkit", "--root", tmp_path / "mk", "--out", out)
    assert again.returncode == 0 and again.stdout == ""
    (tmp_path / "mk/README.md").write_text("# MuldjordKit v1.0\n\nAll rights reserved.\n")
    changed = make_drums("muldjordkit", "--root", tmp_path / "mk", "--out", tmp_path / "other")
    assert changed.returncode == 1 and "does not say 'creative commons attribution 4.0" in changed.stderr
    assert not (tmp_path / "other").exists()
