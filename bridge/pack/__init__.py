"""Sample packs (`dd-bridge pack`): thousands of variations across many sources, noise levels and guide settings.

A pack is a plan (plan.py): every file it will hold, each a task fully determined up front (source, region, noise,
seed, settings), so the same arguments give the same bytes whoever renders them. A task becomes a file's bytes in
a worker holding a warm engine (render.py: the same vary path as `dd-bridge vary`); the workers are this process,
local processes, one per GPU or --workers (local.py), or Ray actors (cluster.py, loaded only for --ray: the rest of
DD Bridge never imports Ray). The driver alone writes the pack (driver.py): each file atomically, the manifest
(manifest.py) rewritten atomically as files land, so a rerun skips what is done and verified; then a contact sheet
per source and the model's licence and attribution. docs/packs.md is the producer's side.
"""
