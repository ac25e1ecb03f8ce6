"""Shipped configuration under ``data/``: effect catalog, style taxonomy, prompt templates,
rate card. Parsed YAML is cached per (path, mtime), so an edited file is picked up without a
restart and an unchanged one is parsed once per process. ``Catalog`` is a plain pydantic model;
``resources.dagster_resources.CatalogResource`` hands it to assets."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from economics.cost_model import RateCard
from resources.yamlio import safe_load


@lru_cache(maxsize=32)
def _load(path: str, mtime: float) -> dict:
    with open(path, encoding="utf-8") as fh:
        return safe_load(fh)


def load_yaml(path: str | Path) -> dict:
    """Parse a YAML file (cached until it changes).

    Raises:
        FileNotFoundError: no such file.
    """
    p = Path(path)
    return _load(str(p), p.stat().st_mtime)


class Catalog(BaseModel):
    """Read access to the shipped catalogs in ``data_dir`` (``Settings.data_dir``: the repo's
    ``data/`` by default).

    Attributes:
        data_dir: folder of ``effects.yaml``, ``rate_card.yaml``, ``style_taxonomy.yaml``,
            ``prompt_templates.yaml``.
        reference_suite_path: the benchmark suite; empty = ``<data_dir>/reference_suite.yaml``.
    """

    model_config = ConfigDict(frozen=True)

    data_dir: str
    reference_suite_path: str = ""

    def _doc(self, name: str) -> dict:
        return load_yaml(Path(self.data_dir) / name)

    def effect_catalog(self) -> dict:
        """The parsed ``effects.yaml`` (``version`` and ``effects``)."""
        return self._doc("effects.yaml")

    def effects(self) -> dict[str, dict]:
        """Effect type → entry (``display_name``, ``price_tokens``, ``params``, rules)."""
        return self.effect_catalog()["effects"]

    def prices(self) -> dict[str, int]:
        """Effect type → list price in tokens (``economics.pricing.job_price`` turns it into
        a job's price)."""
        return {k: int(v["price_tokens"]) for k, v in self.effects().items()}

    def param_ranges(self, effect_type: str) -> dict[str, tuple[int | float, int | float]]:
        """``effects.yaml`` ``param_ranges`` of ``effect_type``: parameter → (lowest,
        highest), inclusive; the parameters a user may set on a run ({} if none).

        Raises:
            KeyError: unknown effect type.
        """
        ranges = self.effects()[effect_type].get("param_ranges") or {}
        return {name: (bounds[0], bounds[1]) for name, bounds in ranges.items()}

    def premiums(self) -> dict[str, float]:
        """``effects.yaml`` ``premiums``: dimension (``quality``, ``speed``) → fraction added
        to a job's price when the uploader favours it (``economics.pricing``); {} if absent."""
        return {k: float(v) for k, v in (self.effect_catalog().get("premiums") or {}).items()}

    def style_taxonomy(self) -> dict:
        """The parsed ``style_taxonomy.yaml``."""
        return self._doc("style_taxonomy.yaml")

    def prompt_templates(self) -> dict:
        """The parsed ``prompt_templates.yaml``."""
        return self._doc("prompt_templates.yaml")

    def rate_card(self) -> RateCard:
        """The rate card (USD per compute-second by instance type)."""
        return RateCard.from_dict(self._doc("rate_card.yaml"))

    def reference_suite(self) -> dict:
        """The benchmark job's reference suite (``reference_suite.yaml``)."""
        return load_yaml(self.reference_suite_path or Path(self.data_dir) / "reference_suite.yaml")
