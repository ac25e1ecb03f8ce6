"""A user's priority weights: how much the best-result choice values quality, cost and speed.

An upload may carry them; the store keeps them as JSON in ``uploads.priorities``
(``{"quality": w, "cost": w, "speed": w}``, null = the default) and M5's best-result selection
reads them back from the upload row (``economics.best.rank_candidates``). Weights are
relative: they are validated (finite, non-negative, not all zero) and normalised to sum 1,
so ``{"quality": 2, "cost": 1, "speed": 1}`` means 0.5 / 0.25 / 0.25. A weight left out is 0.

Pure: pydantic and the standard library, imported by the API and the assets alike.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from economics.routing import PRIORITY_WEIGHTS

# The named presets (the routing manifest's too), and the default when an upload has none.
DEFAULT_PRIORITY = "balanced"
EXAMPLE = '{"quality": 0.5, "cost": 0.3, "speed": 0.2}'


class Priorities(BaseModel):
    """Weights of quality, cost and speed, each in [0, 1], summing to 1.

    Build with keywords (``Priorities(quality=2, cost=1, speed=1)``, normalised on
    validation), ``Priorities.named("cost")`` (a preset of ``economics.routing.PRIORITY_WEIGHTS``)
    or ``parse_priorities`` (the stored / submitted JSON).

    Raises:
        pydantic.ValidationError (a ValueError): a weight is not a finite number ≥ 0, a key
            other than quality / cost / speed is given, or every weight is 0.
    """

    model_config = ConfigDict(extra="forbid")

    quality: float = Field(default=0.0, ge=0, allow_inf_nan=False, strict=True)
    cost: float = Field(default=0.0, ge=0, allow_inf_nan=False, strict=True)
    speed: float = Field(default=0.0, ge=0, allow_inf_nan=False, strict=True)

    @model_validator(mode="after")
    def _normalise(self) -> Priorities:
        total = self.quality + self.cost + self.speed
        if not total > 0:
            raise ValueError("at least one of quality, cost, speed must be above 0")
        # Plain assignment: the fields are already validated (no validate_assignment).
        self.quality, self.cost, self.speed = self.quality / total, self.cost / total, self.speed / total
        return self

    @classmethod
    def named(cls, name: str = DEFAULT_PRIORITY) -> Priorities:
        """The preset ``name`` (balanced, quality, cost, speed).

        Raises:
            ValueError: no such preset.
        """
        if name not in PRIORITY_WEIGHTS:
            raise ValueError(f"unknown priority {name!r}: one of {', '.join(PRIORITY_WEIGHTS)}")
        return cls(**PRIORITY_WEIGHTS[name])

    def weights(self) -> dict[str, float]:
        """``{"quality", "cost", "speed"}`` → weight, the mapping ``rank_candidates`` takes."""
        return {"quality": self.quality, "cost": self.cost, "speed": self.speed}

    def to_json(self) -> str:
        """The stored form: ``{"quality": w, "cost": w, "speed": w}`` (normalised weights)."""
        return json.dumps(self.weights())


def parse_priorities(raw: str | None) -> Priorities:
    """Priorities from their JSON form (an upload's form field, a stored upload row).

    Args:
        raw: a JSON object with any of ``quality``, ``cost``, ``speed`` (numbers ≥ 0, not all
            0); None or blank = the balanced preset.

    Returns:
        The normalised weights.

    Raises:
        ValueError: with a one-line reason meant for the user (not JSON, not an object,
            unknown key, a weight that is not a finite number ≥ 0, all weights 0).
    """
    if raw is None or not raw.strip():
        return Priorities.named()
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ValueError(f"priorities must be a JSON object such as {EXAMPLE}") from None
    if not isinstance(doc, dict):
        raise ValueError("priorities must be a JSON object with quality, cost and speed weights")
    try:
        return Priorities.model_validate(doc)
    except ValidationError as e:
        raise ValueError(f"priorities: {_reason(e)}") from None


def _reason(error: ValidationError) -> str:
    # pydantic's own message names the model and links to its docs; the user needs the field
    # and what is wrong with it.
    parts = []
    for err in error.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown weight (use quality, cost, speed)"
        parts.append(f"{field}: {msg}" if field else msg)
    return "; ".join(parts)
