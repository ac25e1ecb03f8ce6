"""docs/signals.md reports the detectors' delays and false alarms on real labelled series: the
table there is what the code computes now."""

from pathlib import Path

from tests.signal_validation import rows, table

DOC = Path(__file__).resolve().parents[1] / "docs" / "signals.md"


def test_the_doc_shows_the_computed_validation_table():
    assert table() in DOC.read_text()


def test_each_detector_finds_its_real_events():
    by = {(d, s.split(" (")[0]): score for d, s, _, score in rows()}
    assert by[("cusum k=0.5 h=5", "Nile")].delays == [4]
    assert by[("cusum k=0.5 h=5", "Nile")].false_alarms == 0
    assert by[("holt_winters 3σ", "Yahoo S5 real")].detected == 7
    assert by[("robust_z 3.5", "Yahoo S5 real")].false_alarms == 0
    # hysteresis raises fewer alerts than the plain threshold on the same limit
    assert by[("hysteresis K=3", "Nile")].alarms < by[("plain threshold", "Nile")].alarms
