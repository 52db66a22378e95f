"""Guidance recipes: a named set of guides, weights and ranges in a small YAML file, saved, shared, loaded by name.

```yaml
name: tight-and-bright
guides:
  - brightness=1                 # the --guide form, or a mapping:
  - {guide: decay, weight: 1, target: 0.3s, range: [0.2, 1.0]}
```

A recipe is named by its file (``--recipe FILE``: a path, or a name ending in .yaml/.yml; ``names_a_file``) or by
its name, a file ``NAME.yaml`` in the recipes folder (``<user config dir>/dd-bridge/recipes``, beside config.yaml),
else one of the recipes that ship (``BUILT_IN``). A file named in a recipe's guides (``match=1:ref.flac``,
``class=1:mine.safetensors#boom``) is taken from the recipe file's own folder when relative, so a recipe shared with
its clip beside it matches that clip from wherever it is used. Files are read through bridge.files' YAML reader:
regular files only, bounded, no aliases; every problem is one line naming the file. ``save_recipe`` writes a new
one (from the CLI's `dd-bridge save-recipe`, the service's ``/dd/save_recipe``: what a producer dialled in, saved
by name) and never replaces a file that is there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from bridge import files
from bridge.engine.guides import registry
from bridge.engine.guides.grammar import RECIPE_SUFFIXES, GuideRequest, names_a_file, parse_request
from bridge.errors import ConfigError
from bridge.files import create_new, read_yaml, reason, shown

_NAME = re.compile(r"[\w][\w .-]{0,99}")
# A name is its file's name with ".yaml" added, and file systems take 255 bytes (not letters) for a name: 100 letters
# of a script that takes 3 bytes each (鼓) would not fit.
MAX_NAME_BYTES = 255 - len(".yaml")
_KEYS = {"guide", "weight", "target", "range"}


@dataclass(frozen=True)
class Recipe:
    name: str
    guides: tuple[GuideRequest, ...]
    description: str = ""


# The recipes that ship: sounds a producer names that take more than one dial, each measured on the bundled model
# (docs/guidance.md gives the figures and the command). A file of the same name in the recipes folder is found
# first, so a producer's own edit of one (`dd-bridge guides` prints each's guides to start from) wins.
BUILT_IN = {
    "dark-kick": {
        "description": "a kick with a dark top; add tuning=1:A1 (or your note) for a kick at a note",
        # with tuning=1:A1, of eight sets of guides the nearest the 32 real kicks at MIDI 28-40 of the 12 held-out
        # Hydrogen kits, nearer than the plain new sounds are to the kits' mix since the kick's top is held to its
        # median (classes.CEILING_PERCENTILES_OVER); a decay target rang past those kicks and lifted the hiss over
        # the note: docs/guidance.md, "A kick at a note"
        "guides": ["class=1:kick", "brightness=-0.5"],
    },
    "ringing-tom": {
        "description": "a tom that rings out evenly, as real toms do; add tuning=1:G2 (or your note) for a tom at a "
                       "note",
        # with tuning=1:G2 nearer the 50 real toms within 6 semitones of G2 of the 12 held-out Hydrogen kits than
        # Class and Note alone, whose toms stop in 0.2-0.4 s; the decay target rings them as long as those toms
        # (T60 1.5 s) and falls evenly since a longer target follows an even fall (builtin.even_fall): before
        # that it pumped. brightness=-0.5 as in dark-kick held the top down further but was no nearer them:
        # docs/guidance.md, "A tom at a note"
        "guides": ["class=1:tom", "decay=1:1.5s"],
    },
}


def load_recipe(spec: str, folder: Path) -> Recipe:
    """The recipe ``spec`` names: a file (``names_a_file``), else NAME.yaml (or .yml) in ``folder``, else a
    built-in."""
    if names_a_file(spec):
        return _from_file(Path(spec).expanduser(), folder)
    problem = _name_problem(spec)
    if problem:
        raise ConfigError(f"no recipe {shown(spec)}: {problem}")
    try:
        path = next((folder / f"{spec}{suffix}" for suffix in RECIPE_SUFFIXES if (folder / f"{spec}{suffix}").exists()),
                    None)
    except OSError as error:  # Path.exists raises on a few errors (permission denied on the folder, for one)
        raise ConfigError(f"{folder}: cannot look for the recipe {shown(spec)} there ({reason(error)})") from None
    if path is not None:
        return _from_file(path, folder)
    if spec in BUILT_IN:
        return built_in(spec)
    known = ", ".join(recipe_names(folder)) or "none"
    raise ConfigError(f"no recipe named {shown(spec)} in {folder} (there: {known}; built in: "
                      f"{', '.join(sorted(BUILT_IN))})")


def _from_file(path: Path, folder: Path) -> Recipe:
    """The recipe in the file ``path``, its guides' relative files taken from the file's own folder; ``folder``:
    the recipes folder, named when the file is not there."""
    try:
        data = yaml.load(files.read_regular(path, files.YAML_BYTES).decode("utf-8"), Loader=_TargetsAsWritten)
    except FileNotFoundError:
        stem = Path(path.name).stem
        hint = (f"the recipe named {shown(stem)} is asked for by its name, without {path.suffix}"
                if path.name == str(path) and stem in names(folder) else
                f"a recipe is a name in {folder} or a YAML file")
        raise ConfigError(f"{path}: no such file ({hint})") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        read_yaml(path, ConfigError)  # the same failure again, said as every YAML file's is (one line)
        raise ConfigError(f"{path}: changed while it was read; try again") from None
    # Where the file really is (a link in the recipes folder to a shared recipe: beside the shared one, its clip).
    return _beside(parse_recipe(data, path), path.resolve().parent)


class _TargetsAsWritten(files._NoAliasLoader):  # bridge.files' loader (no aliases: bounded) for a shared file
    """A guide's ``target`` written with a sign kept as written: YAML reads ``+2`` as the number 2, a MIDI note,
    where tuning=1:+2 in the --guide form is two semitones above the source. Only the plus sign is lost that way
    (``-3``, ``2``, ``3000``, and ``.5`` or ``1_000``, which YAML reads as 0.5 and 1000, keep their meaning)."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        for key, value in node.value:
            if (isinstance(key, yaml.ScalarNode) and key.value == "target" and isinstance(value, yaml.ScalarNode)
                    and value.style is None and value.value.startswith("+")):  # plain, signed
                mapping["target"] = value.value
        return mapping


def _beside(recipe: Recipe, here: Path) -> Recipe:
    """``recipe`` with each relative file its guides name taken from ``here``: a recipe shared with its clip beside
    it matches that clip from any working folder, never another clip of the same name there. A target names a file
    where the registry would make it absolute (with_file_targets_resolved: match's clip, class's classifier); the
    file leads the target (FILE, FILE#CLASS), so it is joined onto ``here`` and the registry makes it whole later."""
    known = registry.available()
    guides = []
    for request in recipe.guides:
        if request.target is not None and request.name in known and \
                registry.with_file_targets_resolved([request])[0].target != request.target:
            request = replace(request, target=os.path.join(here, os.path.expanduser(request.target)))
        guides.append(request)
    return replace(recipe, guides=tuple(guides))


def built_in(name: str) -> Recipe:
    """One of the recipes that ship (``BUILT_IN``), by name."""
    return parse_recipe({"name": name, **BUILT_IN[name]}, Path(f"<built-in recipe {name}>"))


def parse_recipe(data: object, path: Path) -> Recipe:
    if not isinstance(data, dict) or not isinstance(data.get("guides"), list) or not data["guides"]:
        raise ConfigError(f"{path}: a recipe is a mapping with a non-empty list 'guides' (and a 'name')")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{path}: name must be a short text (letters, digits, ' .-_'), got {shown(name)}")
    unknown = set(data) - {"name", "guides", "description"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(sorted(map(str, unknown)))} (name, description, guides)")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{path}: description must be text, got {shown(description)}")
    try:
        return Recipe(name, tuple(_guide(item) for item in data["guides"]), description)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _guide(item: object) -> GuideRequest:
    if isinstance(item, str):
        return parse_request(item)
    if not isinstance(item, dict) or set(item) - _KEYS or not isinstance(item.get("guide"), str):
        raise ConfigError(f"each guide is NAME=WEIGHT[:TARGET] or a mapping of {', '.join(sorted(_KEYS))} "
                          f"with 'guide' and 'weight', got {shown(item)}")
    weight, target, span = item.get("weight"), item.get("target"), item.get("range", [0.0, 1.0])
    if isinstance(target, (list, dict)):
        raise ConfigError(f"{item['guide']}: target must be one value (e.g. 0.3s, A1, +2), got {shown(target)}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ConfigError(f"{item['guide']}: weight must be a number, got {shown(weight)}")
    if not (isinstance(span, list) and len(span) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in span)):
        raise ConfigError(f"{item['guide']}: range must be [from, to], noise levels in 0..1, got {shown(span)}")
    return GuideRequest(item["guide"].lower(), float(weight), None if target is None else str(target),
                        float(span[0]), float(span[1]))


def save_recipe(name: str, guides: tuple[GuideRequest, ...] | list[GuideRequest], folder: Path,
                description: str = "") -> Path:
    """A new recipe file ``NAME.yaml`` in ``folder`` (made if missing) holding ``guides`` in the --guide form, which
    ``load_recipe(name)`` reads back as the same guides. A recipe of that name there already is never replaced (a
    producer's file is theirs: delete it, or pick another name); a built-in's name is taken, and the file is then
    the one used (as an edit of a built-in is). ConfigError, one line, for anything else."""
    problem = _name_problem(name)
    if problem or name.strip() != name:
        why = problem or "a recipe's name ends in no space"
        raise ConfigError(f"{why}, got {shown(name)}")
    ending = Path(name).suffix
    if ending.lower() in RECIPE_SUFFIXES:  # NAME.yaml is the file; asked for as bright2.yaml it would be read as a file
        raise ConfigError(f"a recipe's name has no {ending} (the recipe {Path(name).stem} is saved as "
                          f"{Path(name).stem}.yaml), got {shown(name)}")
    if not guides:
        raise ConfigError(f"recipe {shown(name)}: no guides to save (a recipe is one guide or more)")
    try:
        there = [folder / f"{name}{suffix}" for suffix in RECIPE_SUFFIXES if (folder / f"{name}{suffix}").exists()]
    except OSError as error:
        raise ConfigError(f"{folder}: cannot save a recipe there ({reason(error)})") from None
    if there:
        raise ConfigError(f"a recipe named {shown(name)} is already saved ({there[0]}); not replacing it: pick "
                          "another name, or delete that file first")
    data = {"name": name, **({"description": description} if description else {}),
            "guides": [request.text for request in guides]}
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
    parse_recipe(yaml.safe_load(text), Path(f"<recipe {name}>"))  # it reads back, or nothing is written
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return create_new(folder / f"{name}.yaml", text.encode(), ConfigError)
    except OSError as error:
        raise ConfigError(f"{folder}: cannot save a recipe there ({reason(error)})") from None


def names(folder: Path) -> list[str]:
    """Every recipe a render takes by name: the ones saved in ``folder`` and the built-ins, each once, sorted."""
    return sorted(set(recipe_names(folder)) | set(BUILT_IN), key=str.lower)


def recipe_names(folder: Path) -> list[str]:
    """The recipes saved in ``folder`` that can be asked for by name (a file whose name could not, `a!b.yaml` or
    `x.yaml.yaml`, is reached as a file)."""
    if not folder.is_dir():
        return []
    try:
        return sorted(path.stem for path in folder.iterdir() if path.suffix.lower() in RECIPE_SUFFIXES and path.is_file()
                      and not _name_problem(path.stem) and not names_a_file(path.stem))
    except OSError as error:
        raise ConfigError(f"{folder}: cannot list the recipes there ({reason(error)})") from None


def _name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a recipe's (it is its file's name, with .yaml), or None."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return "a recipe's name is a short text (at most 100 letters, digits, ' .-_')"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return (f"a recipe's name is too long for a file name ({size} bytes, at most {MAX_NAME_BYTES}: a letter "
                "such as é takes 2, 鼓 3)")
    return None
