"""The built Max for Live device: chunk layout, frozen contents, the objects and files it names, its ports."""

from __future__ import annotations

import importlib.util
import json
import re
import struct
from pathlib import Path

import pytest

from bridge.constants import DEFAULT_NOISE, DEFAULT_STEPS, OSC_HOST, OSC_PORT, OSC_REPLY_PORT, REPO_DIR

MAX_PATCH = REPO_DIR / "max_patch"
COMMITTED_DEVICE = MAX_PATCH / "DD Bridge.amxd"

# Objects that ship with Max and Max for Live; anything else would be an external the device cannot carry.
MAX_OBJECTS = {"live.thisdevice", "deferlow", "js", "udpsend", "udpreceive", "prepend", "midiin", "midiout",
               "midiparse", "midiselect", "pattr", "route", "sel"}
MAX_UI = {"newobj", "message", "comment", "textedit", "umenu", "live.dial", "live.numbox", "live.menu", "live.text",
          "live.comment"}


def load_build():
    spec = importlib.util.spec_from_file_location("max_patch_build", MAX_PATCH / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 0
    while position < len(data):
        kind = data[position:position + 4]
        (size,) = struct.unpack("<I", data[position + 4:position + 8])
        chunks.append((kind, data[position + 8:position + 8 + size]))
        position += 8 + size
    assert position == len(data), "chunk sizes do not add up to the file"
    return chunks


def read_frozen(patch: bytes) -> dict[str, tuple[bytes, int]]:
    """name -> (data, flag), read the way Ableton/maxdevtools reads frozen devices."""
    assert patch[:4] == b"mx@c"
    header_size, directory_at = struct.unpack(">IQ", patch[4:16])
    assert header_size == 16
    footer = patch[directory_at:]
    assert footer[:4] == b"dlst" and struct.unpack(">I", footer[4:8])[0] == len(footer)
    files, rest = {}, footer[8:]
    while rest:
        assert rest[:4] == b"dire"
        size = struct.unpack(">I", rest[4:8])[0]
        entry, fields = rest[8:size], {}
        while entry:
            field_size = struct.unpack(">I", entry[4:8])[0]
            fields[entry[:4]] = entry[8:field_size]
            entry = entry[field_size:]
        name = fields[b"fnam"].rstrip(b"\x00").decode("utf-8")
        offset, length = (struct.unpack(">I", fields[key])[0] for key in (b"of32", b"sz32"))
        files[name] = (patch[offset:offset + length], struct.unpack(">I", fields[b"flag"])[0])
        rest = rest[size:]
    return files


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("device") / "DD Bridge.amxd"
    return load_build().build(out=out)


def test_committed_device_is_a_fresh_build(built):
    assert COMMITTED_DEVICE.read_bytes() == built.read_bytes(), \
        "max_patch/DD Bridge.amxd is stale: run `python max_patch/build.py` and commit it"


def test_chunk_layout_is_a_frozen_midi_effect(built):
    chunks = read_chunks(built.read_bytes())
    assert [kind for kind, _ in chunks] == [b"ampf", b"meta", b"ptch"]
    assert chunks[0][1] == b"mmmm"
    files = read_frozen(chunks[2][1])
    assert list(files) == ["DD Bridge.amxd", "dd_bridge.js"]
    assert files["DD Bridge.amxd"][1] == 0x11


def test_device_carries_its_javascript_and_every_object_is_known(built):
    files = read_frozen(read_chunks(built.read_bytes())[2][1])
    device, _ = files["DD Bridge.amxd"]
    assert device.endswith(b"\x00")
    patcher = json.loads(device[:-1].decode("utf-8"))["patcher"]
    boxes = [entry["box"] for entry in patcher["boxes"]]
    ids = {box["id"] for box in boxes}
    for box in boxes:
        assert box["maxclass"] in MAX_UI, box
        if box["maxclass"] == "newobj":
            assert box["text"].split()[0] in MAX_OBJECTS, box["text"]
    for line in patcher["lines"]:
        source, destination = line["patchline"]["source"], line["patchline"]["destination"]
        assert source[0] in ids and destination[0] in ids
        outlets = next(box["numoutlets"] for box in boxes if box["id"] == source[0])
        inlets = next(box["numinlets"] for box in boxes if box["id"] == destination[0])
        assert source[1] < outlets and destination[1] < inlets, line
    scripts = [box["text"].split()[1] for box in boxes if box.get("text", "").startswith("js ")]
    assert scripts == ["dd_bridge.js"]
    assert files["dd_bridge.js"][0] == (MAX_PATCH / "dd_bridge.js").read_bytes()
    assert [entry["name"] for entry in patcher["dependency_cache"]] == scripts
    # The js box has as many outlets as the script declares.
    declared = int(re.search(r"^outlets = (\d+);", files["dd_bridge.js"][0].decode(), re.M).group(1))
    assert next(box["numoutlets"] for box in boxes if box["text"].startswith("js ")) == declared


def test_ports_are_the_service_defaults(built):
    device = read_frozen(read_chunks(built.read_bytes())[2][1])["DD Bridge.amxd"][0]
    texts = {entry["box"].get("text") for entry in json.loads(device[:-1])["patcher"]["boxes"]}
    assert f"udpsend {OSC_HOST} {OSC_PORT}" in texts
    assert f"udpreceive {OSC_REPLY_PORT}" in texts


def test_controls_are_saved_mappable_parameters(built):
    device = read_frozen(read_chunks(built.read_bytes())[2][1])["DD Bridge.amxd"][0]
    patcher = json.loads(device[:-1])["patcher"]
    names = {box["box"]["saved_attribute_attributes"]["valueof"]["parameter_longname"]
             for box in patcher["boxes"] if box["box"].get("parameter_enable")}
    assert {"Noise", "Count", "Steps", "Target", "Vary", "Generate", "Interpolate", "Cancel", "Trigger Low",
            "Trigger High"} <= names
    assert {"Extend", "Repaint", "Keep", "Audition"} <= names
    assert set(patcher["parameters"]) - {"inherited_shortname"} == \
        {box["box"]["id"] for box in patcher["boxes"] if box["box"].get("parameter_enable")}


def test_noise_and_steps_start_at_the_service_defaults(built):
    device = read_frozen(read_chunks(built.read_bytes())[2][1])["DD Bridge.amxd"][0]
    initial = {box["box"]["saved_attribute_attributes"]["valueof"]["parameter_longname"]:
               box["box"]["saved_attribute_attributes"]["valueof"].get("parameter_initial")
               for box in json.loads(device[:-1])["patcher"]["boxes"] if box["box"].get("parameter_enable")}
    assert (initial["Noise"], initial["Steps"]) == ([DEFAULT_NOISE], [DEFAULT_STEPS])
    # Until Live sends the saved values at load, the script's own defaults are what a press sends.
    script = (MAX_PATCH / "dd_bridge.js").read_text()
    defaults = re.search(r"^var settings = \{ noise: ([\d.]+), count: \d+, steps: (\d+),", script, re.M)
    assert (float(defaults.group(1)), int(defaults.group(2))) == (DEFAULT_NOISE, DEFAULT_STEPS)


def test_build_refuses_a_patcher_with_other_ports(tmp_path):
    build = load_build()
    source = json.loads((MAX_PATCH / "DD Bridge.maxpat").read_text())
    for entry in source["patcher"]["boxes"]:
        if entry["box"].get("text", "").startswith("udpsend"):
            entry["box"]["text"] = "udpsend 127.0.0.1 9100"
    patcher = tmp_path / "Other.maxpat"
    patcher.write_text(json.dumps(source))
    (tmp_path / "dd_bridge.js").write_text("")
    with pytest.raises(build.BuildError, match="udpsend 127.0.0.1 9000"):
        build.build(patcher, tmp_path / "Other.amxd")
    assert not (tmp_path / "Other.amxd").exists()


def test_device_javascript_is_es5():
    """Max's classic `js` object runs ES5: no let/const, arrow functions, template strings or classes."""
    source = (MAX_PATCH / "dd_bridge.js").read_text()
    code = re.sub(r'"(?:[^"\\]|\\.)*"|//[^\n]*', '""', source)  # strings and comments may say anything
    for pattern, what in ((r"\blet\s", "let"), (r"\bconst\s", "const"), (r"=>", "an arrow function"),
                          (r"`", "a template string"), (r"\bclass\s", "a class")):
        assert not re.search(pattern, code), f"dd_bridge.js uses {what}, which Max's js object cannot run"
    assert '"use strict";' in source.splitlines()[:10]


def patcher_of(built) -> dict:
    device = read_frozen(read_chunks(built.read_bytes())[2][1])["DD Bridge.amxd"][0]
    return json.loads(device[:-1])["patcher"]


def wires(patcher) -> set[tuple[str, int, str, int]]:
    return {(*line["patchline"]["source"], *line["patchline"]["destination"]) for line in patcher["lines"]}


def test_buttons_are_momentary_and_pass_their_value(built):
    """A toggle's recalled "on" started renders when a set loaded: the buttons are momentary (mode 0), keep no
    initial value, and hand the script their value, which ignores 0 and anything before the device is in the set."""
    patcher = patcher_of(built)
    boxes = {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}
    for name in ("vary", "generate", "interpolate", "cancel", "extend", "repaint", "keep"):
        button = boxes[f"obj-button-{name}"]
        assert button["maxclass"] == "live.text" and button["mode"] == 0, name
        assert not button["saved_attribute_attributes"]["valueof"].get("parameter_initial_enable"), name
        assert boxes[f"obj-prepend-{name}"]["text"] == f"prepend {name}"
        assert {(f"obj-button-{name}", 0, f"obj-prepend-{name}", 0), (f"obj-prepend-{name}", 0, "obj-js", 0)} <= \
            wires(patcher)
    assert not [box for box in boxes.values() if box["maxclass"] == "message" and box.get("text") != "init"]


def test_trigger_notes_are_kept_back_and_other_midi_passes_through(built):
    patcher = patcher_of(built)
    boxes = {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}
    assert boxes["obj-midiselect"]["text"] == "midiselect @ch all @note 0"  # C-2 alone until the script says more
    lines = wires(patcher)
    assert ("obj-midiin", 0, "obj-midiselect", 0) in lines
    assert ("obj-midiselect", 0, "obj-prepend-note", 0) in lines  # the selected notes, as pitch velocity
    assert ("obj-midiselect", 7, "obj-midiout", 0) in lines  # everything unselected, as raw MIDI
    assert not [line for line in lines if line[0] == "obj-midiin" and line[2] == "obj-midiout"], \
        "a direct midiin -> midiout would pass the trigger notes on too"
    assert ("obj-js", 4, "obj-midiselect", 0) in lines
    for key in ("low", "high"):
        values = boxes[f"obj-trigger-{key}"]["saved_attribute_attributes"]["valueof"]
        assert (values["parameter_unitstyle"], values["parameter_initial"]) == (8, [0])  # MIDI note, C-2


def test_each_device_moves_its_reply_port(built):
    assert ("obj-js", 3, "obj-udpreceive", 0) in wires(patcher_of(built))


def test_audition_is_a_saved_toggle_that_passes_its_value(built):
    """Audition is a state, not a press: a toggle saved with the set (off in a new one). The script sends it to the
    service only once connected, so a recalled "on" starts no render (tests/daw/node/audition_loops.test.js)."""
    patcher = patcher_of(built)
    boxes = {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}
    toggle = boxes["obj-button-audition"]
    values = toggle["saved_attribute_attributes"]["valueof"]
    assert (toggle["maxclass"], toggle["mode"]) == ("live.text", 1)
    assert (values["parameter_initial_enable"], values["parameter_initial"]) == (1, [0])
    assert {("obj-button-audition", 0, "obj-prepend-audition", 0), ("obj-prepend-audition", 0, "obj-js", 0)} <= \
        wires(patcher)
    assert boxes["obj-prepend-audition"]["text"] == "prepend audition"


def test_character_dials_are_saved_bipolar_guide_weights(built):
    """Brightness, Decay and Punch are automatable dials over the weights the service's MIDI knobs span (-2..2),
    at the centre (off) in a new set, each reaching the script as `guide <name> <weight>`."""
    knob = re.search(r"^GUIDE_KNOB = ([\d.]+)", (REPO_DIR / "bridge" / "transports" / "midi.py").read_text(), re.M)
    patcher = patcher_of(built)
    boxes = {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}
    for name in ("brightness", "decay", "punch"):
        dial = boxes[f"obj-guide-{name}"]
        values = dial["saved_attribute_attributes"]["valueof"]
        assert (dial["maxclass"], dial["parameter_enable"]) == ("live.dial", 1), name
        assert values["parameter_longname"] == name.capitalize()
        assert (values["parameter_mmin"], values["parameter_mmax"]) == (-float(knob.group(1)), float(knob.group(1)))
        assert (values["parameter_initial_enable"], values["parameter_initial"]) == (1, [0.0])
        assert dial["id"] in patcher["parameters"]
        assert boxes[f"obj-prepend-guide-{name}"]["text"] == f"prepend guide {name}"
        assert {(dial["id"], 0, f"obj-prepend-guide-{name}", 0), (f"obj-prepend-guide-{name}", 0, "obj-js", 0)} <= \
            wires(patcher)
    script = (MAX_PATCH / "dd_bridge.js").read_text()
    assert re.search(r'^var GUIDE_DIALS = \["brightness", "decay", "punch"\];', script, re.M)
    assert f"var GUIDE_WEIGHT_LIMIT = {knob.group(1).rstrip('0').rstrip('.')};" in script


def test_class_menu_and_amount_are_saved_automatable_and_reach_the_script(built):
    """The Class menu (off, then the class guide's names in the script's order) and its Amount dial (0..2, 1 in a new
    set) are parameters Live saves and automates under their names, each wired to its entry point."""
    patcher = patcher_of(built)
    boxes = {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}
    script = (MAX_PATCH / "dd_bridge.js").read_text()
    names = json.loads(re.search(r"^var CLASS_NAMES = (\[.*\]);", script, re.M).group(1))
    assert names == ["kick", "snare", "hat", "tom", "cymbal", "clap", "perc"]
    from bridge.engine.classifier import DEFAULT_CLASSIFIER, load_classifier
    assert list(load_classifier(DEFAULT_CLASSIFIER)[0].classes) == names, "the shipped classifier's classes"
    menu, amount = boxes["obj-guide-class"], boxes["obj-guide-class-amount"]
    menu_values = menu["saved_attribute_attributes"]["valueof"]
    amount_values = amount["saved_attribute_attributes"]["valueof"]
    assert (menu["maxclass"], menu["parameter_enable"], amount["maxclass"], amount["parameter_enable"]) == \
        ("live.menu", 1, "live.dial", 1)
    assert menu_values["parameter_enum"] == ["off"] + names
    assert (menu_values["parameter_type"], menu_values["parameter_mmax"]) == (2, len(names))
    assert (menu_values["parameter_initial_enable"], menu_values["parameter_initial"]) == (1, [0])
    assert (amount_values["parameter_type"], amount_values["parameter_mmin"], amount_values["parameter_mmax"]) == \
        (0, 0.0, 2.0)
    assert "var CLASS_AMOUNT_LIMIT = 2;" in script
    assert (amount_values["parameter_initial_enable"], amount_values["parameter_initial"]) == (1, [1.0])
    assert patcher["parameters"]["obj-guide-class"] == ["Class", "Class", 0]
    assert patcher["parameters"]["obj-guide-class-amount"] == ["Class Amount", "Amount", 0]
    for box, entry in ((menu, "class_menu"), (amount, "class_amount")):
        prepend = f"obj-prepend-{box['id'][4:]}"
        assert boxes[prepend]["text"] == f"prepend {entry}"
        assert {(box["id"], 0, prepend, 0), (prepend, 0, "obj-js", 0)} <= wires(patcher)
        assert re.search(rf"^function {entry}\(", script, re.M), f"{entry} is not an entry point of the script"


def test_recipe_menu_follows_the_service_keeps_its_recipe_by_name_and_save_reaches_the_script(built):
    """The Recipe menu is a umenu the script fills (outlet 5: off, then what /dd/recipes lists; the built-in recipes
    until then, in the service's order); its pick reaches recipe_menu, and the set keeps the recipe by name in a
    pattr stored with the set (a blob parameter: a menu whose items follow a folder cannot be kept by index), whose
    value comes back to recipe_kept. The name field (one line, Return sends it) and the Save button (momentary; its
    press, not its release, bangs the field) reach save_recipe through `route text`."""
    from bridge.engine.guides.recipes import BUILT_IN
    patcher = patcher_of(built)
    boxes = {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}
    script = (MAX_PATCH / "dd_bridge.js").read_text()
    names = json.loads(re.search(r"^var BUILT_IN_RECIPES = (\[.*\]);", script, re.M).group(1))
    assert names == list(BUILT_IN), "the service's built-in recipes, in its order"
    menu = boxes["obj-guide-recipe"]
    assert (menu["maxclass"], menu["presentation"]) == ("umenu", 1)
    assert [item for item in menu["items"] if item != ","] == ["off"] + names  # as it shows before the script runs
    assert "obj-guide-recipe" not in patcher["parameters"]
    outlets = {name: int(value) for name, value in re.findall(r"^var (OUT_\w+) = (\d+);", script, re.M)}
    kept = boxes["obj-recipe-kept"]
    assert kept["text"] == "pattr recipe_kept" and kept["parameter_enable"] == 1
    values = kept["saved_attribute_attributes"]["valueof"]
    assert (values["parameter_type"], values["parameter_invisible"]) == (3, 1), "a blob, stored with the set only"
    assert patcher["parameters"]["obj-recipe-kept"] == ["Recipe Kept", "Recipe", 0]
    field, save = boxes["obj-recipe-name"], boxes["obj-button-save-recipe"]
    assert (field["maxclass"], field["lines"], field["keymode"], field["presentation"]) == ("textedit", 1, 1, 1)
    assert (save["maxclass"], save["mode"], save["text"], save["presentation"]) == ("live.text", 0, "Save", 1)
    assert save["saved_attribute_attributes"]["valueof"]["parameter_initial_enable"] == 0, "no press at load"
    assert patcher["parameters"]["obj-button-save-recipe"] == ["Save Recipe", "Save", 0]
    assert boxes["obj-sel-save-recipe"]["text"] == "sel 1"
    assert boxes["obj-route-recipe-name"]["text"] == "route text"
    assert boxes["obj-label-recipe"]["presentation"] == 1
    for prepend, entry in (("obj-prepend-guide-recipe", "recipe_menu"), ("obj-prepend-recipe-kept", "recipe_kept"),
                           ("obj-prepend-save-recipe", "save_recipe")):
        assert boxes[prepend]["text"] == f"prepend {entry}"
        assert (prepend, 0, "obj-js", 0) in wires(patcher)
        assert re.search(rf"^function {entry}\(", script, re.M), f"{entry} is not an entry point of the script"
    assert {("obj-guide-recipe", 0, "obj-prepend-guide-recipe", 0),
            ("obj-js", outlets["OUT_RECIPE_MENU"], "obj-guide-recipe", 0),
            ("obj-js", outlets["OUT_RECIPE_KEPT"], "obj-recipe-kept", 0),
            ("obj-recipe-kept", 0, "obj-prepend-recipe-kept", 0),
            ("obj-button-save-recipe", 0, "obj-sel-save-recipe", 0), ("obj-sel-save-recipe", 0, "obj-recipe-name", 0),
            ("obj-recipe-name", 0, "obj-route-recipe-name", 0),
            ("obj-route-recipe-name", 0, "obj-prepend-save-recipe", 0)} <= wires(patcher)


def test_note_menu_names_notes_as_live_does_and_sends_midi_numbers_the_tuning_guide_reads(built):
    """The Note menu: off, then MIDI 24-59 under Live's names (C3 = MIDI 60), a saved, automatable parameter wired to
    its entry point; the MIDI number an item stands for is the one the tuning guide reads as that pitch."""
    from bridge.engine.guides import builtin
    patcher = patcher_of(built)
    boxes = {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}
    script = (MAX_PATCH / "dd_bridge.js").read_text()
    lowest = int(re.search(r"^var NOTE_LOWEST = (\d+);", script, re.M).group(1))
    count = int(re.search(r"^var NOTE_COUNT = (\d+);", script, re.M).group(1))
    menu = boxes["obj-guide-note"]
    values = menu["saved_attribute_attributes"]["valueof"]
    assert (menu["maxclass"], menu["parameter_enable"]) == ("live.menu", 1)
    items = values["parameter_enum"]
    assert items[0] == "off" and len(items) == count + 1 and (values["parameter_mmax"], values["parameter_type"]) == \
        (count, 2)
    assert (values["parameter_initial_enable"], values["parameter_initial"]) == (1, [0])
    for index, name in enumerate(items[1:], start=1):
        midi = lowest + index - 1
        assert name == "C C# D D# E F F# G G# A A# B".split()[midi % 12] + str(midi // 12 - 2), name  # Live's names
        # the service names notes one octave up (A4 = 69): Live's A0 is its A1, MIDI 33, 55 Hz
        letter, octave = name.rstrip("-0123456789"), int(name[len(name.rstrip("-0123456789")):])
        assert builtin._note(f"{letter}{octave + 1}", builtin.GuideContext(48000)) == midi
    assert (lowest, items[10]) == (24, "A0")
    assert patcher["parameters"]["obj-guide-note"] == ["Note", "Note", 0]
    assert boxes["obj-prepend-guide-note"]["text"] == "prepend note_menu"
    assert {("obj-guide-note", 0, "obj-prepend-guide-note", 0), ("obj-prepend-guide-note", 0, "obj-js", 0)} <= \
        wires(patcher)
    assert re.search(r"^function note_menu\(", script, re.M), "note_menu is not an entry point of the script"


def test_presented_controls_do_not_overlap(built):
    """What a producer sees: no control covers another in the device's view."""
    shown = [(entry["box"]["id"], entry["box"]["presentation_rect"]) for entry in patcher_of(built)["boxes"]
             if entry["box"].get("presentation")]
    for index, (first, (x1, y1, w1, h1)) in enumerate(shown):
        for second, (x2, y2, w2, h2) in shown[index + 1:]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1, (first, second)
