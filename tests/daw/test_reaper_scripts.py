"""The REAPER actions, run by plain Lua 5.4 with a mock `reaper` table (tests/daw/lua), against a real service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bridge.constants import DEFAULT_NOISE, DEFAULT_STEPS, MAX_COUNT, OSC_PORT, REPO_DIR

SCRIPTS = REPO_DIR / "reaper_scripts"
LUA_TESTS = Path(__file__).resolve().parent / "lua"
ACTIONS = ["Vary selected items", "Generate at edit cursor", "Interpolate between two selected items",
           "Follow selection", "Settings", "Repaint time selection of selected items", "Extend selected items",
           "Keep last heard", "Audition on-off", "Save guides as recipe", "Recipe menu"]


def lua() -> str:
    found = shutil.which("lua5.4")
    assert found, "lua5.4 is missing: ./bootstrap.sh test installs it"
    return found


@pytest.fixture(scope="session")
def dd_bridge(tmp_path_factory) -> Path:
    """A `dd-bridge` launcher in a folder with a space and non-ASCII in its name, as REAPER users have them."""
    folder = tmp_path_factory.mktemp("tools") / "dd bridge tøols"
    folder.mkdir()
    launcher = folder / "dd-bridge"
    launcher.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO_DIR}" exec "{sys.executable}" -m bridge "$@"\n')
    launcher.chmod(0o755)
    return launcher


def free_udp_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_scenario(name: str, work: Path, sample: Path, port: int, command: Path, timeout: float = 400,
                 long: Path | None = None, **extra: str) -> None:
    env = dict(os.environ, DD_SCRIPTS=str(SCRIPTS), DD_WORK=str(work), DD_SAMPLE=str(sample), DD_PORT=str(port),
               DD_COMMAND=str(command), DD_LONG=str(long or sample), **extra)
    result = subprocess.run([lua(), str(LUA_TESTS / "actions_test.lua"), name], env=env, capture_output=True,
                            text=True, timeout=timeout)
    log = work / "REAPER resources" / "exec.log"
    extra = f"\n--- dd-bridge output ---\n{log.read_text(errors='replace')}" if log.exists() else ""
    assert result.returncode == 0, f"lua scenario {name} failed:\n{result.stdout}\n{result.stderr}{extra}"
    assert result.stdout.strip() == f"ok {name}"


@pytest.fixture
def sample(drum_samples) -> Path:
    return drum_samples["wav"]


@pytest.mark.parametrize("name", ["quoting", "midi_item", "missing_command", "settings", "interpolate_needs_two",
                                  "take_regions", "repaint_needs_time_selection", "extend_bad_length", "extend_looped",
                                  "loop_phase", "lead_in", "takes_inherit_level", "follow_refused",
                                  "repaint_loop_key", "interpolate_plays_like_first", "settings_quoted",
                                  "take_fx_and_envelopes", "repaint_loop_section", "interpolate_lead_in",
                                  "unheard_once"])
def test_actions_without_the_service(name, tmp_path, sample, dd_bridge):
    run_scenario(name, tmp_path, sample, OSC_PORT, dd_bridge)


@pytest.mark.parametrize("name", ["stopped_service", "audition_stopped"])
def test_stopped_service_is_a_clear_message(name, tmp_path, sample, dd_bridge):
    run_scenario(name, tmp_path, sample, free_udp_port(), dd_bridge)


@pytest.mark.parametrize("name", ["vary", "generate", "interpolate", "follow_selection", "unknown_model",
                                  "unreadable_source", "vary_inherits", "vary_take_deleted", "placement_fails",
                                  "request_dies", "model_dies"])
def test_actions_with_the_service(name, service, sample, dd_bridge):
    work = service["root"] / name  # inside the service's allowed folders
    work.mkdir()
    run_scenario(name, work, sample, service["port"], dd_bridge)


@pytest.mark.parametrize("name", ["region_offset", "region_playrate", "region_section", "region_reversed",
                                  "interpolate_regions", "follow_region", "follow_loop"])
def test_items_vary_exactly_what_they_play(name, service, sample, long_take, dd_bridge):
    """Issue 12: an item playing 0.2 s of a 3.1 s recording gets variations of exactly that 0.2 s, in place."""
    work = service["root"] / name
    work.mkdir()
    run_scenario(name, work, sample, service["port"], dd_bridge, long=long_take)


@pytest.mark.parametrize("name", ["repaint", "vary_loop"])
def test_repaint_and_loops(name, service, sample, long_take, dd_bridge):
    """Issue 15 in REAPER: the time selection over items repainted in the file's own seconds; looped items
    varied as loops of their bars at the project's tempo."""
    work = service["root"] / name
    work.mkdir()
    run_scenario(name, work, sample, service["port"], dd_bridge, long=long_take)


@pytest.mark.parametrize("name", ["extend_seconds", "extend_bars", "extend_a_chop"])
def test_extend(name, service, sample, long_take, dd_bridge):
    work = service["root"] / name
    work.mkdir()
    run_scenario(name, work, sample, service["port"], dd_bridge, long=long_take)


def run_setting_scenario(name, service, sample, dd_bridge, keys, **env):
    """A scenario that sets the service (`/dd/set KEY ...`); it ends with each key off, and so does this, should
    the scenario die half way (the service is shared by the module's tests)."""
    work = service["root"] / name
    work.mkdir()
    try:
        run_scenario(name, work, sample, service["port"], dd_bridge, **env)
    finally:
        for key in keys:
            subprocess.run([str(dd_bridge), "send", "--port", str(service["port"]), "/dd/set", key, "off"],
                           capture_output=True, timeout=60)


@pytest.mark.parametrize("name", ["keep", "keep_loose"])
def test_keep_last_heard(name, service, sample, dd_bridge):
    """Issue 16 in REAPER: with audition on, Vary places nothing and Keep last heard places what was heard."""
    run_setting_scenario(name, service, sample, dd_bridge, ["audition"])


@pytest.mark.parametrize(("name", "key"), [("settings_guides", "guide"), ("audition_toggle", "audition")])
def test_guides_and_audition_from_reaper(name, key, service, sample, dd_bridge):
    """Issue 14 in REAPER: the Settings' Guides field and the Audition toggle set the service."""
    run_setting_scenario(name, service, sample, dd_bridge, [key])


def test_class_from_reaper_settings(service, sample, dd_bridge, service_takes_class):
    """Issue 14 in REAPER: the Settings' Class and amount join the Guides field in one `/dd/set guide`; a service
    without the class guide refuses it in one line."""
    run_setting_scenario("settings_class", service, sample, dd_bridge, ["guide"],
                         DD_CLASS_GUIDE=str(int(service_takes_class)))


def test_recipe_from_reaper_settings(service, sample, dd_bridge, service_takes_class):
    """Issue 14 in REAPER: the Settings' Recipe field sets `/dd/set recipe` (a built-in one by name, or the
    producer's own in the recipes folder); a name that is not there is refused in one line."""
    run_setting_scenario("settings_recipe", service, sample, dd_bridge, ["recipe", "guide"],
                         DD_CLASS_GUIDE=str(int(service_takes_class)))


def test_save_guides_as_recipe_from_reaper(service, sample, dd_bridge):
    """Issue 14 in REAPER: "Save guides as recipe" keeps the guides the Settings sent as a new recipe file of the
    typed name, which the Settings' Recipe field then takes; a taken name and an empty one are one line each."""
    run_setting_scenario("save_recipe", service, sample, dd_bridge, ["recipe", "guide"])
    recipe = yaml.safe_load((service["recipes"] / "reaper saved.yaml").read_text())
    assert recipe == {"name": "reaper saved", "guides": ["brightness=0.5", "decay=-1"]}


def test_recipe_menu_from_reaper(service, sample, dd_bridge, service_takes_class):
    """Issue 14 in REAPER: "Recipe menu" lists the service's recipes at the mouse, the current one ticked; the one
    picked is set on the service and kept as the Settings' Recipe; off sets none."""
    run_setting_scenario("recipe_menu", service, sample, dd_bridge, ["recipe"],
                         DD_CLASS_GUIDE=str(int(service_takes_class)))


def test_spans_and_bars(tmp_path, sample, long_take, dd_bridge):
    run_scenario("spans_and_bars", tmp_path, sample, OSC_PORT, dd_bridge, long=long_take)


def test_library_defaults_match_the_service():
    code = ('local lib = dofile(arg[1]); print(lib.DEFAULTS.noise, lib.DEFAULTS.steps, lib.DEFAULTS.port, '
            'lib.MAX_COUNT)')
    result = subprocess.run([lua(), "-e", f"reaper = {{}}; arg = {{'{SCRIPTS / 'DD Bridge - lib.lua'}'}}; {code}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    noise, steps, port, max_count = result.stdout.split()
    assert (float(noise), int(steps), int(port), int(max_count)) == (DEFAULT_NOISE, DEFAULT_STEPS, OSC_PORT, MAX_COUNT)


def test_reaper_classes_are_the_live_menus():
    """The Settings' class names, and their amount's limit, are the Live device's Class menu's (one guide)."""
    import json
    import re
    code = 'local lib = dofile(arg[1]); print(table.concat(lib.CLASSES, " "), lib.MAX_CLASS_AMOUNT)'
    result = subprocess.run([lua(), "-e", f"reaper = {{}}; arg = {{'{SCRIPTS / 'DD Bridge - lib.lua'}'}}; {code}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    *classes, limit = result.stdout.split()
    script = (REPO_DIR / "max_patch" / "dd_bridge.js").read_text()
    assert classes == json.loads(re.search(r"^var CLASS_NAMES = (\[.*\]);", script, re.M)[1])
    assert f"var CLASS_AMOUNT_LIMIT = {limit};" in script


def load_make_index():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_index", SCRIPTS / "make_index.py")
    make_index = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_index)
    return make_index


def test_every_action_has_reapack_headers_and_is_indexed(tmp_path):
    make_index = load_make_index()
    for action in ACTIONS:
        tags = make_index.headers(SCRIPTS / f"DD Bridge - {action}.lua")
        assert {"description", "version", "author", "about"} <= set(tags), action
        assert tags["description"] == f"DD Bridge - {action}"
    assert [path.name for path in make_index.actions()] == sorted(f"DD Bridge - {action}.lua" for action in ACTIONS)
    fresh = tmp_path / "index.xml"
    assert make_index.main(["--out", str(fresh)]) == 0
    assert (SCRIPTS / "index.xml").read_text() == fresh.read_text(), \
        "reaper_scripts/index.xml is stale: run `python reaper_scripts/make_index.py` and commit it"


def test_the_indexed_version_is_dated_by_the_commit_it_pins(tmp_path):
    """Review s40 #9: the version's time was a constant, so 1.10 went out with 1.9's date. It is the date of the
    commit whose scripts the index names (the last to change one, by default)."""
    import xml.etree.ElementTree as ElementTree
    from datetime import datetime, timezone
    make_index = load_make_index()
    commits = subprocess.run(["git", "log", "-2", "--format=%H", "--", "reaper_scripts/*.lua"], cwd=REPO_DIR,
                             capture_output=True, text=True, check=True).stdout.split()
    assert commits[0] == make_index.last_script_commit()
    for commit in commits:  # the default, and an earlier version's
        out = tmp_path / f"{commit}.xml"
        assert make_index.main(["--out", str(out), "--commit", commit]) == 0
        made = subprocess.run(["git", "show", "-s", "--format=%cI", commit, "--"], cwd=REPO_DIR, capture_output=True,
                              text=True, check=True).stdout.strip()
        expected = datetime.fromisoformat(made).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert ElementTree.parse(out).getroot().find(".//version").get("time") == expected
    assert make_index.main(["--out", str(tmp_path / "none.xml"), "--commit", "0" * 40]) == 1  # not here: no date
    assert not (tmp_path / "none.xml").exists()


def test_reapack_package_is_pinned_rtf_with_a_nomain_library():
    """ReaPack shows the description as RTF, installs what the URLs name (a commit, never a moving branch), and
    registers only `main` sources as actions: the library is loaded by them, not run."""
    import re
    import xml.etree.ElementTree as ElementTree
    root = ElementTree.parse(SCRIPTS / "index.xml").getroot()
    packages = root.findall("./category/reapack")
    assert len(packages) == 1, "one package for the actions and their library"
    description = packages[0].find("./metadata/description").text
    assert description.startswith("{\\rtf1") and description.rstrip().endswith("}")
    sources = {source.get("file"): source for source in packages[0].iter("source")}
    assert set(sources) == {f"DD Bridge - {action}.lua" for action in ACTIONS} | {"DD Bridge - lib.lua"}
    assert sources["DD Bridge - lib.lua"].get("main") is None
    assert all(sources[f"DD Bridge - {action}.lua"].get("main") == "main" for action in ACTIONS)
    commits = {re.search(r"/([0-9a-f]{40})/reaper_scripts/", source.text)[1] for source in sources.values()}
    assert len(commits) == 1, commits
    commit = commits.pop()
    for name in sources:  # the pinned commit holds exactly the scripts in this tree
        pinned = subprocess.run(["git", "show", f"{commit}:reaper_scripts/{name}"], cwd=REPO_DIR, capture_output=True)
        assert pinned.returncode == 0 and pinned.stdout == (SCRIPTS / name).read_bytes(), \
            f"{name} differs from the commit index.xml names: run `python reaper_scripts/make_index.py` and commit it"
