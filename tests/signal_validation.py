"""The detectors on real labelled series (tests/labelled_series.py): detection delay and false
alarms, as docs/signals.md reports them. ``python -m tests.signal_validation`` prints the table;
tests/test_signals_validation.py checks the doc shows what this computes."""

from __future__ import annotations

import numpy as np

from economics import detectors
from economics.detection_scores import Score, score
from tests import labelled_series as ls


def rows() -> list[tuple[str, str, str, Score]]:
    """(detector, series, setting, score) for every validation run."""
    out = []
    nile, belts, yahoo, mit = ls.nile(), ls.seatbelts(), ls.yahoo(), ls.mitdb()
    # Gradual drift: CUSUM, baseline = the first 20 years / 5 years of months.
    for s, base, margin in ((nile, 20, 10), (belts, 60, 12)):
        c = detectors.cusum(s.values, baseline=base)
        out.append(("cusum k=0.5 h=5", s.name, f"baseline {base}, margin {margin}", score(c.alarms, s.events, margin)))
    # Spikes: robust z over the trailing day of hourly points.
    r = detectors.robust_z(yahoo.values, window=24)
    out.append(("robust_z 3.5", yahoo.name, "window 24, margin 3", score(r.alarms, yahoo.events, 3)))
    # Seasonal: Holt-Winters, daily season, fitted on the first 400 points.
    hw = detectors.holt_winters(yahoo.values, season=24, train=400)
    out.append(("holt_winters 3σ", yahoo.name, "season 24, train 400, margin 3", score(hw.alarms, yahoo.events, 3)))
    hw = detectors.holt_winters(belts.values, season=12, train=120)
    out.append(("holt_winters 3σ", belts.name, "season 12, train 120, margin 12", score(hw.alarms, belts.events, 12)))
    # Thresholds with hysteresis: Nile flow below the baseline's 5th percentile raises, above
    # its 25th for K years clears (the limit is on −x: the hysteresis raises above).
    base = nile.values[:20]
    low, clear = np.percentile(base, 5), np.percentile(base, 25)
    for k in (1, 3, 6):
        hy = detectors.hysteresis(-nile.values, -low, -clear if k > 1 else -low, k)
        label = "plain threshold" if k == 1 else f"hysteresis K={k}"
        out.append((label, nile.name, "raise < p5, clear > p25 of 1871–90", score(hy.raised, nile.events, 10)))
    del mit  # kept in labelled_series for the Isolation Forest note in docs/signals.md
    return out


def table() -> str:
    """The markdown table of ``rows``."""
    lines = [
        "| detector | series | setting | events found | delays (intervals) | false alarms | alarms |",
        "|---|---|---|---|---|---|---|",
    ]
    for det, series, setting, s in rows():
        delays = ", ".join(map(str, s.delays)) or "—"
        lines.append(
            f"| {det} | {series} | {setting} | {s.detected}/{s.events} | {delays} | {s.false_alarms} | {s.alarms} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())  # noqa: T201 — the command prints the table for docs/signals.md
