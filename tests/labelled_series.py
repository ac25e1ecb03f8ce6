"""Real, labelled public series that ship inside installed packages (nothing is downloaded):
what the signal detectors are validated on (docs/signals.md).

* Nile — annual flow of the Nile at Aswan, 1871–1970 (statsmodels.datasets.nile; Cobb 1978):
  a level drop in 1898, when the first Aswan dam was built (index 27).
* Seatbelts — monthly UK drivers killed or seriously injured, 1969–1984, with the change
  point annotated by the Turing Change Point Dataset (van den Burg & Williams 2020) at
  February 1983, when wearing a seat belt became compulsory; shipped by sktime
  (sktime/datasets/data/seatbelts/seatbelts.csv, column ``label``).
* Yahoo S5 — a real series of the Yahoo! Webscope S5 labelled anomaly dataset (Laptev et
  al. 2015), hourly, 1,000 points with 7 labelled anomalies, as curated by TSB-UAD
  (Paparrizos et al. 2022); shipped by sktime (sktime/datasets/data/yahoo/yahoo.csv).
* MIT-BIH — 7,500 samples (360 Hz) of the MIT-BIH Arrhythmia Database (Moody & Mark 1992)
  with one labelled anomalous stretch, from TSB-UAD; shipped by sktime
  (sktime/datasets/data/mitdb/mitdb.csv).

sktime is installed for its data only: the files are located through the distribution's
metadata, never by importing sktime.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import numpy as np
import polars as pl

from economics.detection_scores import windows_from_labels


@dataclass(frozen=True)
class Labelled:
    """A series and its labelled events ([start, end] index pairs)."""

    name: str
    values: np.ndarray
    events: list[tuple[int, int]]
    period: str


def _sktime_csv(path: str) -> pl.DataFrame:
    return pl.read_csv(str(importlib.metadata.distribution("sktime").locate_file(f"sktime/datasets/data/{path}")))


def nile() -> Labelled:
    from statsmodels.datasets import nile as data

    frame = data.load_pandas().data
    years = frame["year"].astype(int).tolist()
    return Labelled("Nile (statsmodels)", frame["volume"].to_numpy(float), [(years.index(1898),) * 2], "year")


def seatbelts() -> Labelled:
    frame = _sktime_csv("seatbelts/seatbelts.csv")
    return Labelled(
        "Seatbelts KSI (TCPD, sktime)",
        frame["KSI"].to_numpy().astype(float),
        windows_from_labels(frame["label"].to_list()),
        "month",
    )


def yahoo() -> Labelled:
    frame = _sktime_csv("yahoo/yahoo.csv")
    return Labelled(
        "Yahoo S5 real (TSB-UAD, sktime)",
        frame["data"].to_numpy().astype(float),
        windows_from_labels(frame["label"].to_list()),
        "hour",
    )


def mitdb() -> Labelled:
    frame = _sktime_csv("mitdb/mitdb.csv")
    return Labelled(
        "MIT-BIH ECG (TSB-UAD, sktime)",
        frame["data"].to_numpy().astype(float),
        windows_from_labels(frame["label"].to_list()),
        "sample (1/360 s)",
    )
