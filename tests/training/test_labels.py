"""The label rule on the names real kits use, and the three ways a folder labels its one-shots."""

from __future__ import annotations

import pytest

from bridge.errors import BridgeError
from bridge.training import data, labels
from bridge.training.drums import GM_DRUMS

# Instrument and file names as they are in hydrogen-drumkits' drumkit.xml files and make-drums' GM sets.
NAMES = {
    "kick": ["Kick", "BassDrum", "c3 - bass drum 1", "Kick (Tama Superstar 22\")", "Pearl Kick", "Kick Lite 1",
             "VariBreaks Kick 1", "bd_01.flac", "PowR_BD_1.flac", "EE_Kick_Stomp.flac", "Standard Acoustic Bass Drum v60"],
    "snare": ["Snare Jazz", "Snare Rimshot (Pearl Free Floating Maple 14x3.5)", "SN4_08.aiff", "jsnare_01.flac",
              "PearlSnareRimshot-Soft.wav", "d3 - snare 1", "Brush Electric Snare v120"],
    "hat": ["Closed HH", "Hi Hat Opened", "Hi-Hat Pedal (Paiste Alpha Metal edge 14\")", "Sabian Hat Choke",
            "a#3 - hi-hat open", "hh_01.flac", "closehihat3.flac", "HiHatSemiopen-0.wav", "Side OHH", "Standard Pedal Hi-Hat v60"],
    "tom": ["Tom Low", "Floor Tom", "Pearl Tom Floor", "b3 - low tom", "TomHigh-0.wav", "floortom_01.flac",
            "Standard Low-Mid Tom v120", "tom1_a.flac"],
    "cymbal": ["Crash", "Ride Bell", "Crash/Ride Bow (Paiste Rude Crash/Ride 18\")", "China (Paiste Alpha 18\")",
               "Zildjian Splash Choke", "Ride (Custom, Zagrebin 22\")", "d#4 - cymbal 1", "crash16inch", "Standard Chinese Cymbal v60"],
    "clap": ["Hand Clap", "Clap Hard", "HandClap-Soft.wav", "d#3 - clap", "TR-808 Hand Clap v120"],
    "perc": ["Cowbell", "Tambourine Pedal (Pearl PTM-10GH)", "Agogo Low (Pearl ECB-23)", "Conga 1", "Djembe1 Bass",
             "Cajon Thump", "WoodBlock-Soft.wav", "Sangban1 Bell Hit", "Standard Open Triangle v60"],
    None: ["Stick", "Rim Click (Pearl Free Floating Maple 14x3.5)", "Pearl Side Stick", "Finger Snaps", "Zap 1",
           "FX", "Drum 1", "Whistle", "f#4 - ", "Sample: beats_08-37.flac", "redo super opaco", "Snare Tom"],
}


@pytest.mark.parametrize("kind, name", [(kind, name) for kind, names in NAMES.items() for name in names])
def test_the_rule_on_real_kit_names(kind, name):
    assert labels.label(name) == kind


def test_every_gm_drum_key_is_labelled_or_left_out_on_purpose():
    unsure = {"Side Stick", "Short Whistle", "Long Whistle"}
    for key, name in GM_DRUMS.items():
        assert (labels.label(name) is None) == (name in unsure), (key, name)


def test_a_hydrogen_kit_labels_by_instrument_before_file(drumkits):
    kit = {item.path.name: item for item in labels.labelled([drumkits / "Audiophob"])}
    assert kit["86335__zgump__tom-0105.wav"].label == "kick"  # the instrument "Kick" plays a file named tom
    assert kit["29800__stomachache__3.wav"].label == "clap"
    assert "16336__sstokes__ss-ht-crunchtime.wav" not in kit  # "Stick": unsure, left out
    assert {item.kit for item in kit.values()} == {"Audiophob"}
    assert labels.kit_source(drumkits / "Audiophob")["licence"].endswith("Creative Commons 0 License.")


def test_a_folder_of_kits_and_a_folder_of_classes(tmp_path, drumkits):
    everything = labels.labelled([drumkits])
    assert {item.kit for item in everything} >= {"Audiophob", "BJA_Pacific", "rumpf_kit_z01_h2"}
    assert {item.label for item in everything} == set(labels.CLASSES)
    mine = tmp_path / "mine"
    (mine / "Boom").mkdir(parents=True)
    (mine / "Boom" / "anything.flac").symlink_to(drumkits / "Millo-Drums_v.1" / "bd1.flac")
    (mine / "open hat.flac").symlink_to(drumkits / "Millo-Drums_v.1" / "openhat2.flac")
    (mine / "thing.flac").symlink_to(drumkits / "Millo-Drums_v.1" / "stick_Woody.flac")
    (mine / "notes.txt").write_text("not audio")
    found = {item.path.name: (item.label, item.kit) for item in labels.labelled([mine])}
    assert found == {"anything.flac": ("boom", "mine"), "open hat.flac": ("hat", "mine")}
    with pytest.raises(BridgeError, match="not a folder"):
        labels.labelled([mine / "thing.flac"])


def test_class_folders_that_are_links_are_read_and_a_loop_once(tmp_path, drumkits):
    """A producer's library by class is often links to the kits' own folders: they are read as folders are, and a
    link back up the tree (or a second link to the same place) adds nothing twice."""
    kits = tmp_path / "kits" / "808"
    kits.mkdir(parents=True)
    for name in ("bd1.flac", "snare1.flac"):
        (kits / name).write_bytes((drumkits / "Millo-Drums_v.1" / name).read_bytes())
    mine = tmp_path / "by-class"
    mine.mkdir()
    (mine / "kick").symlink_to(kits)  # the whole folder, linked under a class name
    (mine / "kick" / "again").symlink_to(kits)  # a loop: kits/again -> kits
    (mine / "boom").symlink_to(kits)  # the same files under a second class: the first in order wins
    found = sorted((item.path.relative_to(mine).as_posix(), item.label) for item in labels.labelled([mine]))
    assert found == [("boom/bd1.flac", "boom"), ("boom/snare1.flac", "boom")]
    assert data.scan([tmp_path / "kits"]) == [kits / "bd1.flac", kits / "snare1.flac"]
    (mine / "boom").unlink()
    assert [item.label for item in labels.labelled([mine])] == ["kick", "kick"]
