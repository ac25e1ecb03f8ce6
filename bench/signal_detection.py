"""Detection delay and false alarms of the signals engine on the simulated market, per detector
and per fault (economics/scenarios.py replays the cycles), and the tables of docs/signals.md
("Fault scenarios").

Usage: ``python bench/signal_detection.py [--seeds 1 2 3] [--clean-days 7] [--write-docs]``
1. faults: each of the seven faults on its scenario target, per seed: the delay from the
   fault's start to each detector's first signal on the target's stream while the fault is on
   (— : none) and to the
   classification, the delay from its removal to the resolution, and whether it turned
   critical (medians over the seeds; the scenarios have one day of history, so the seasonal
   detector — three days — does not run there);
2. clean weeks: ``--clean-days`` judged after 3 days of history (so Holt-Winters runs), per
   seed: classifications raised (all false alarms) per week, and each detector's alarms per
   week (a run of consecutive intervals is one alarm), in all and per watched series.
``--write-docs`` replaces the block between the ``signal-detection`` markers in docs/signals.md.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "signals.md"
START, END = "<!-- signal-detection:start -->", "<!-- signal-detection:end -->"
DETECTORS = ("cusum", "robust_z", "holt_winters", "threshold")


def _minutes(delta) -> float:
    return delta.total_seconds() / 60


def _spread(values: list[float]) -> str:
    if not values:
        return "—"
    med = statistics.median(values)
    return f"{med:.0f}" if min(values) == max(values) else f"{med:.0f} ({min(values):.0f}–{max(values):.0f})"


def fault_table(seeds: list[int], context) -> str:
    import polars as pl

    from economics import faults as fx
    from economics.scenarios import TARGETS, fault_window, run_fault

    start, end = fault_window()
    lines = [
        (
            "| fault | target | expected | raised as | raised after (min) | cleared after removal (min) | critical "
            "| first cusum | first robust_z | first threshold |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in fx.KINDS:
        raised, cleared, critical, categories = [], [], 0, set()
        first: dict[str, list[float]] = {d: [] for d in DETECTORS}
        for seed in seeds:
            s = run_fault(kind, seed, *context)
            column = "user_id" if kind == fx.DEPLETION else "provider_id"
            mine = s.replay.classifications.filter(
                (pl.col(column) == TARGETS[kind]) & (pl.col("first_seen_at") >= start)
            ).sort("first_seen_at")
            if not mine.is_empty():
                row = mine.row(0, named=True)
                categories.add(row["category"])
                raised.append(_minutes(row["first_seen_at"] - start))
                if row["resolved_at"] is not None:
                    cleared.append(_minutes(row["resolved_at"] - end))
                seen = s.replay.timeline.filter(pl.col("classification_id") == row["classification_id"])
                critical += int((seen["severity"] == "critical").any())
            # A detection is a signal on the target's stream while the fault is on.
            sig = s.replay.signals.filter(
                (pl.col(column) == TARGETS[kind]) & pl.col("detected_at").is_between(start, end, closed="left")
            )
            for d in DETECTORS:
                hits = sig.filter(pl.col("detector") == d)
                if not hits.is_empty():
                    first[d].append(_minutes(hits["detected_at"].min() - start))  # type: ignore[operator]
        lines.append(
            f"| {kind} | {TARGETS[kind]} | {fx.EXPECTED[kind]} | {', '.join(sorted(categories)) or '—'} "
            f"| {_spread(raised)} | {_spread(cleared)} | {critical}/{len(seeds)} "
            f"| {_spread(first['cusum'])} | {_spread(first['robust_z'])} | {_spread(first['threshold'])} |"
        )
    return "\n".join(lines)


def _alarm_runs(signals):
    """Alarms per detector: a run of consecutive intervals of one detector on one metric of
    one stream counts once (a threshold held for an hour is one alarm, not twelve)."""
    import polars as pl

    from economics.metric_streams import GRAIN
    from economics.signal_detection import KEYS

    keys = ["detector", "metric", *KEYS]
    return (
        signals.sort(*[pl.col(k).fill_null("") for k in keys], "detected_at")
        .with_columns(_gap=pl.col("detected_at").diff().over(keys))
        .filter(pl.col("_gap").is_null() | (pl.col("_gap") > GRAIN))
        .group_by("detector")
        .len()
    )


def clean_table(seeds: list[int], days: float, context) -> str:
    from economics.metric_streams import WATCHED
    from economics.scenarios import run_clean

    per_week = 7 / days
    false: list[float] = []
    by_detector: dict[str, list[float]] = {d: [] for d in DETECTORS}
    categories: dict[str, list[float]] = {}
    for seed in seeds:
        started = time.perf_counter()
        s = run_clean(days + 3, days, seed, *context)
        raised = s.replay.classifications
        false.append(raised.height * per_week)
        for c in raised["category"].unique().to_list():
            categories.setdefault(c, []).append(float((raised["category"] == c).sum()) * per_week)
        runs = dict(_alarm_runs(s.replay.signals).iter_rows())
        for d in DETECTORS:
            by_detector[d].append(runs.get(d, 0) * per_week)
        took = time.perf_counter() - started
        print(f"clean seed {seed}: {raised.height} classifications in {days:g} days ({took:.0f} s)")
    # Watched series of the scenario market: 3 provider streams × 7 metrics, 2 instance types × 3.
    series = 3 * len(WATCHED["provider_effect"]) + 2 * len(WATCHED["instance_type"])
    lines = [
        "| clean weeks | per week (median, min–max over seeds) | per watched series per week |",
        "|---|---|---|",
        f"| classifications raised (false alarms) | {_spread(false)} | — |",
    ]
    for c, values in sorted(categories.items()):
        values = values + [0.0] * (len(seeds) - len(values))
        lines.append(f"| … of which {c} | {_spread(values)} | — |")
    for d in DETECTORS:
        med = statistics.median(by_detector[d])
        lines.append(f"| {d} alarms | {_spread(by_detector[d])} | {med / series:.2f} |")
    return "\n".join(lines)


def main() -> None:
    from economics.scenarios import JOBS_PER_HOUR
    from resources.catalog import Catalog
    from resources.settings import DATA_DIR, Settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--clean-days", type=float, default=7.0)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    catalog = Catalog(data_dir=str(DATA_DIR))
    context = (catalog.rate_card(), catalog.prices(), Settings().token_usd_rate)
    started = time.perf_counter()
    faults = fault_table(args.seeds, context)
    print(faults)
    print(f"({time.perf_counter() - started:.0f} s)")
    clean = clean_table(args.seeds, args.clean_days, context)
    print(clean)
    block = "\n".join(
        [
            START,
            (
                f"Measured by `bench/signal_detection.py` (seeds {', '.join(map(str, args.seeds))}; "
                f"{JOBS_PER_HOUR:g} jobs an hour; delays in minutes, median (min–max)):"
            ),
            "",
            faults,
            "",
            clean,
            END,
        ]
    )
    if args.write_docs:
        text = DOC.read_text()
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(head + block + tail)
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
