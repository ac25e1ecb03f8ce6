"""How well a detector's alarms match labelled events: detection delay and false alarms.

The scoring follows the change-point literature's margin rule (van den Burg & Williams, "An
Evaluation of Change Point Detection Algorithms", 2020, §4: an annotation counts as found
when a detection falls within a margin of it) made one-sided, because an online detector can
only fire at or after an event:

* an event at index e (or an anomaly window [e, e_end]) is **detected** by the first alarm in
  [e, e_end + margin]; its **delay** is that alarm's index − e (intervals);
* an alarm that detects nothing is a **false alarm**; further alarms inside an event's
  window are neither (one incident, repeated evidence).

Pure: NumPy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """A detector's result on one labelled series.

    Attributes:
        events: labelled events; detected: how many were found.
        delays: per detected event, intervals from the event's start to its first alarm.
        false_alarms: alarms outside every event's window.
        alarms: all alarms.
    """

    events: int
    detected: int
    delays: list[int]
    false_alarms: int
    alarms: int

    @property
    def mean_delay(self) -> float | None:
        """Mean detection delay in intervals, or None when nothing was detected."""
        return sum(self.delays) / len(self.delays) if self.delays else None


def windows_from_labels(labels: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end] index pairs of the runs of 1s in a 0/1 label sequence."""
    out: list[tuple[int, int]] = []
    start = None
    for i, v in enumerate(labels):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(labels) - 1))
    return out


def score(alarms: Sequence[int], events: Sequence[tuple[int, int]], margin: int) -> Score:
    """Detection delay and false alarms of ``alarms`` against labelled ``events``.

    Args:
        alarms: indices where the detector fired.
        events: [start, end] per labelled event (start == end for a change point).
        margin: intervals after an event's end within which an alarm still detects it.
    """
    found: dict[int, int] = {}
    false = 0
    for a in sorted(set(alarms)):
        hits = [i for i, (s, e) in enumerate(events) if s <= a <= e + margin]
        if not hits:
            false += 1
            continue
        for i in hits:
            found.setdefault(i, a - events[i][0])
    return Score(len(events), len(found), [found[i] for i in sorted(found)], false, len(set(alarms)))
