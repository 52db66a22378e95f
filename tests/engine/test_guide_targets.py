"""A guide's target is one it can reach, in every form it may be said (review s42 M4): the tuning measure reads
fundamentals of 20..500 Hz, and a note said by name, by MIDI number or relative to the source outside them was
taken, while the file said it was tuned there (C6 ended at F4)."""

from __future__ import annotations

import pytest
import torch

from bridge.engine.guides.builtin import GuideContext, _note, tuning
from bridge.errors import ConfigError

RATE = 48000


def kick(hertz: float) -> torch.Tensor:
    """A decaying sine at ``hertz``: the tuning measure's plainest sound, [2, L]."""
    t = torch.arange(RATE // 2) / RATE
    tone = torch.sin(2 * torch.pi * hertz * t) * torch.exp(-t * 8)
    return torch.stack([tone, tone])


@pytest.mark.parametrize("text, note", [("A1", 33), ("E0", 16), ("B4", 71), ("33", 33.0), ("55Hz", 33.0)])
def test_notes_the_measure_reads_are_taken_in_every_form(text, note):
    assert _note(text, GuideContext(RATE)) == pytest.approx(note)


@pytest.mark.parametrize("text", ["C6", "84", "Cb-1", "D#0", "127", "1046Hz"])
def test_notes_it_cannot_read_are_one_line_whatever_the_form(text):
    with pytest.raises(ConfigError) as refused:
        _note(text, GuideContext(RATE))
    message = str(refused.value)
    assert "\n" not in message and f"{text!r}" in message
    assert "outside" in message and ("E0..B4 (MIDI 15.5..71.2, 20..500 Hz)" in message or "20..500" in message)


def test_a_shift_off_the_measures_range_is_refused_naming_the_sources_note():
    source = kick(440.0)  # A4, MIDI 69: +2 is B4 (71), +3 is past it
    assert float(tuning(source[None], RATE)[0]) == pytest.approx(69, abs=0.3)
    assert _note("+2", GuideContext(RATE, source=source)) == pytest.approx(71, abs=0.3)
    with pytest.raises(ConfigError, match=r"the target '\+5' \(the source's note 69\.\d \+ 5\) is outside E0\.\.B4"):
        _note("+5", GuideContext(RATE, source=source))


def test_a_shift_of_a_source_without_a_readable_note_is_taken_as_before():
    """The service and the CLI check a guide on a short silence before the render: its "note" is far below any
    (MIDI -36), and +2 of it must not be refused (review s42: every relative tuning was)."""
    silence = torch.zeros(2, RATE // 10)
    assert _note("+2", GuideContext(RATE, source=silence)) < 0
