"""Guidance as the service takes it: the guide texts and recipe of a request or of the settings, read into guide
requests and checked at the door, so a typo is one /dd/error line and nothing is queued.

The checks are the ones a render makes (bridge.engine.guides.registry): each guide is built once, on silence, at
the model's rate, so an unknown name, a target its guide cannot read or a weight it refuses is found here and not
minutes later on the render thread. A ``match`` target names a file: it must be a full path that passes the checks
of any source file (bridge.daemon.prefetch.open_source: bridge.files.check_input, an audio header). Reading sources
has no folder rule in the service (only writing has), so neither has a target. Checked guidance is remembered, so a
key press with the same guide= costs a dictionary look-up.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from bridge import files
from bridge.daemon.config import recipes_folder
from bridge.daemon.prefetch import open_source
from bridge.engine.guides import recipes, registry
from bridge.engine.guides.builtin import GuideContext
from bridge.engine.guides.registry import GuideRequest
from bridge.errors import ConfigError
from bridge.files import shown

Guides = tuple[GuideRequest, ...]


def guidance(texts: tuple[str, ...], recipe: str | None, sample_rate: int, *, relative: bool) -> Guides:
    """The recipe's guides and each text's, checked, in the order they act (registry.in_order: one prefetch key
    for one set of guides, however a client lists them); ``relative``: the render has a source, so targets
    relative to it (tuning=1:+2) are allowed. ConfigError or AudioError, one line, if any is bad."""
    requests = list(_recipe(recipe).guides) if recipe else []
    requests += [registry.parse_request(text) for text in texts]
    return checked(tuple(registry.in_order(requests)), sample_rate, relative)


def _recipe(recipe: str) -> recipes.Recipe:
    """The recipe named (in the recipes folder) or at its full path, read within a bounded wait (files.answered): a
    recipe shared from a network folder that stopped answering is refused, not waited on."""
    spec, folder = _recipe_spec(recipe), recipes_folder()
    where = Path(spec).expanduser() if Path(spec).expanduser().is_absolute() else folder / spec
    return files.answered(lambda: recipes.load_recipe(spec, folder), where, ConfigError)


def _recipe_spec(recipe: str) -> str:
    """A recipe's name, or its file as a full path: the service does not share the sender's working folder."""
    path = Path(recipe).expanduser()
    if recipes.names_a_file(recipe) and not path.is_absolute():
        raise ConfigError(f"recipe {shown(recipe)}: give a name in {recipes_folder()} or the file's full path")
    return recipe


@functools.lru_cache(maxsize=64)
def checked(requests: Guides, sample_rate: int, relative: bool) -> Guides:
    """``requests`` with file targets made absolute, after building each on silence (a failure is not cached)."""
    silence = torch.zeros(2, sample_rate)  # what relative targets and a match's clip are measured on at the door

    def load(path: str) -> torch.Tensor:
        open_source(path)  # a full path, a regular readable file within the size bound, with an audio header
        return silence

    registry.build(requests, GuideContext(sample_rate, silence if relative else None, load=load))
    return tuple(registry.with_file_targets_resolved(requests))


def texts(guides: Guides) -> list[str]:
    """The guides as --guide takes them: a file's recipe, its recreate command and the status."""
    return [request.text for request in guides]
