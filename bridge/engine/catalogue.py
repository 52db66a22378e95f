"""The released models `dd-bridge models get` can fetch: every fact about them in one place.

Sources, checked against the public originals:
- addresses, sample rates, windows and SHA-256 checksums: the ``models_map`` of Harmonai-org/sample-generator's
  ``Dance_Diffusion.ipynb`` (its own "check_model_SHA" option compares against these);
- what each was trained on: the model table in the same notebook;
- licence: Harmonai's ports of the same models on the Hugging Face hub (``harmonai/*``) are tagged MIT; the
  ``.ckpt`` server itself states no licence.
The file sizes are not published anywhere: a download is checked against the server's stated length and the
published checksum, then loaded safely (weights only, see ``bridge.engine.checkpoints``).

``DD_BRIDGE_CATALOGUE`` names a YAML file (a list of entries with the fields of ``Release``) that replaces this
list, e.g. a studio's own models on its own server; ``DD_BRIDGE_MODELS_URL`` replaces the server part of every
address (a mirror holding the same file names).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path


from bridge import files
from bridge.errors import ConfigError

CATALOGUE_ENV = "DD_BRIDGE_CATALOGUE"
MIRROR_ENV = "DD_BRIDGE_MODELS_URL"
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# What `dd-bridge serve` and the README suggest when the bundled demo model is running.
RECOMMENDED = "gwf-440k"

_NOTEBOOK = "https://github.com/Harmonai-org/sample-generator/blob/main/Dance_Diffusion.ipynb"


@dataclass(frozen=True)
class Release:
    name: str  # the name the model gets in your model folder; the .ckpt file is NAME.ckpt
    url: str
    sample_rate: int
    window: int
    trained_on: str
    licence: str
    licence_url: str  # where the licence is stated
    sha256: str | None = None  # None: none published; then checked by size and by loading it safely
    size: int | None = None  # bytes; None: not published, the server's Content-Length is checked instead
    aliases: tuple[str, ...] = ()  # other names it goes by (the notebook's, the hub's)
    checksum_source: str = ""

    def __post_init__(self):
        where = f"catalogue entry {self.name!r}"
        if not isinstance(self.name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$", self.name):
            raise ConfigError(f"{where}: name must be letters, digits, '.', '_', '+' or '-'")
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: url must be an http:// or https:// address, got {self.url!r}")
        for key in ("sample_rate", "window"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{where}: {key} must be a positive whole number, got {value!r}")
        if self.sha256 is not None and not (isinstance(self.sha256, str) and SHA256_PATTERN.match(self.sha256)):
            raise ConfigError(f"{where}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        if self.size is not None and (not isinstance(self.size, int) or self.size <= 0):
            raise ConfigError(f"{where}: size must be a positive number of bytes, got {self.size!r}")
        for key in ("trained_on", "licence", "licence_url", "checksum_source"):
            if not isinstance(getattr(self, key), str):
                raise ConfigError(f"{where}: {key} must be text, got {files.shown(getattr(self, key))}")
        if not all(isinstance(alias, str) for alias in self.aliases):
            raise ConfigError(f"{where}: aliases must be names (text), got {files.shown(list(self.aliases))}")

    @property
    def licence_terms(self) -> str:
        return f"{self.licence} (stated at {self.licence_url})" if self.licence_url else self.licence

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def address(self) -> str:
        """Where to download it from: the catalogue's address, or the same file on the mirror in MIRROR_ENV."""
        mirror = os.environ.get(MIRROR_ENV, "").strip()
        return f"{mirror.rstrip('/')}/{self.file_name}" if mirror else self.url

    @classmethod
    def from_dict(cls, data: object, where: str) -> "Release":
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not {"name", "url", "sample_rate", "window"} <= data.keys():
            raise ConfigError(f"{where}: each entry needs at least name, url, sample_rate and window")
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        values = {"trained_on": "not stated", "licence": "not stated", "licence_url": "", **data}
        aliases = values.get("aliases") or ()
        if not isinstance(aliases, (list, tuple)):
            raise ConfigError(f"{where}: entry {data['name']!r}: aliases must be a list of names, got "
                              f"{files.shown(aliases)}")
        values["aliases"] = tuple(aliases)
        try:
            return cls(**values)
        except ConfigError as error:  # said of the file it is in
            raise ConfigError(f"{where}: {error}") from None


def _release(name, hub, sample_rate, window, sha256, trained_on, aliases=()) -> Release:
    return Release(name=name, url=f"https://model-server.zqevans2.workers.dev/{name}.ckpt", sample_rate=sample_rate,
                   window=window, sha256=sha256, trained_on=trained_on, licence="MIT",
                   licence_url=f"https://huggingface.co/harmonai/{hub}", aliases=tuple(aliases),
                   checksum_source=_NOTEBOOK)


RELEASES: tuple[Release, ...] = (
    _release("gwf-440k", "glitch-440k", 48000, 65536,
             "48caefdcbb7b15e1a0b3d08587446936302535de74b0e05e0d61beba865ba00a",
             "clips from samples provided by glitch.cool", aliases=["glitch-440k"]),
    _release("jmann-small-190k", "jmann-small-190k", 48000, 65536,
             "1e2a23a54e960b80227303d0495247a744fa1296652148da18a4da17c3784e9b",
             "clips from Jonathan Mann's Song-A-Day project"),
    _release("jmann-large-580k", "jmann-large-580k", 48000, 131072,
             "6b32b5ff1c666c4719da96a12fd15188fa875d6f79f8dd8e07b4d54676afa096",
             "clips from Jonathan Mann's Song-A-Day project"),
    _release("maestro-uncond-150k", "maestro-150k", 16000, 65536,
             "49d9abcae642e47c2082cec0b2dce95a45dc6e961805b6500204e27122d09485",
             "piano clips from the MAESTRO dataset", aliases=["maestro-150k"]),
    _release("unlocked-uncond-250k", "unlocked-250k", 16000, 65536,
             "af337c8416732216eeb52db31dcc0d49a8d48e2b3ecaa524cb854c36b5a3503a",
             "clips from the Unlocked Recordings dataset", aliases=["unlocked-250k"]),
    _release("honk-140k", "honk-140k", 16000, 65536,
             "a66847844659d287f55b7adbe090224d55aeafdd4c2b3e1e1c6a02992cb6e792",
             "recordings of the Canada Goose from xeno-canto"),
)


def releases() -> tuple[Release, ...]:
    """The catalogue in use: the file named by CATALOGUE_ENV, else the built-in list."""
    override = os.environ.get(CATALOGUE_ENV, "").strip()
    if not override:
        return RELEASES
    path = Path(override).expanduser()
    data = files.read_yaml(path, lambda problem: ConfigError(f"the catalogue {CATALOGUE_ENV} names: {problem}"))
    if not isinstance(data, list):
        raise ConfigError(f"{path} ({CATALOGUE_ENV}): expected a list of models")
    return tuple(Release.from_dict(entry, f"{path} ({CATALOGUE_ENV})") for entry in data)


def find_release(name: str) -> Release:
    for release in releases():
        if name.lower() in (release.name.lower(), *(alias.lower() for alias in release.aliases)):
            return release
    names = ", ".join(release.name for release in releases())
    raise ConfigError(f"no released model named {name!r}; `dd-bridge models` lists them: {names}")


def release_for_file(stem: str) -> Release | None:
    """The built-in release a .ckpt file name belongs to (nothing inside the files tells them apart)."""
    stem = stem.lower()
    return next((release for release in RELEASES if release.name in stem), None)


def demo_model_hint() -> str:
    """One line for wherever the bundled demo model is in use: what it is and how to get a real one."""
    return (f"the bundled dd-drums-small is a small demo model (crackly, undertrained); for real sounds run "
            f"`dd-bridge models get {RECOMMENDED}`, then use --model {RECOMMENDED} (`dd-bridge models` lists them all)")
