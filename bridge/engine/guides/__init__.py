"""Guides a producer names: the built-in measures (``builtin``), the registry that finds them and users' plug-ins
through the ``dd_bridge.guides`` entry-point group (``registry``), and saved recipes (``recipes``).

The mechanism they run on, ``LossGuide`` inside ``Guided``, is bridge.engine.guidance; docs/guidance.md is the
producer's reference (formulas, units, weights).
"""
