"""`dd-bridge guides`: the guides installed (built-in and plug-ins), with their units and targets, and the saved
recipes (docs/guidance.md)."""

from __future__ import annotations

from bridge.cli.render import recipes_folder
from bridge.engine.guides import recipes, registry


def register(subparsers) -> None:
    guides = subparsers.add_parser("guides", help="list the guides and saved recipes",
                                   description="List the guides --guide NAME=WEIGHT[:TARGET] takes, with their "
                                               "units and targets, and the recipes --recipe NAME finds.")
    guides.set_defaults(run=run_guides)


def run_guides(args) -> int:
    for name, kind in sorted(registry.available().items()):
        print(f"{name} ({getattr(kind, 'unit', '?')}): a positive weight: {getattr(kind, 'summary', '?')}")
        print(f"    target: {getattr(kind, 'target_help', '?')}")
    folder = recipes_folder()
    print(f"recipes in {folder}: {', '.join(recipes.recipe_names(folder)) or 'none'}")
    return 0
