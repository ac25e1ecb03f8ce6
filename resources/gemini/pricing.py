"""Token usage of Gemini calls and its price in USD (``data/gemini_prices.yaml``).

``Usage`` is what each client operation returns beside its result: the tokens the API
reported (``usageMetadata``) and their price, for the job to record as a cost line. A cache
hit is a ``Usage`` with no tokens and no cost (``cache_hit=True``): the call was paid once,
when the cached answer was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from resources.catalog import load_yaml

PRICES_FILE = "gemini_prices.yaml"
PER_TOKENS = 1_000_000  # the price list's unit: USD per 1M tokens


class ModelPrice(BaseModel):
    """USD per 1M tokens of one model (see the header of ``data/gemini_prices.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    long_context_tokens: int | None = Field(default=None, gt=0)
    input_long: float | None = Field(default=None, ge=0)
    output_long: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _long_rates_together(self) -> ModelPrice:
        long = (self.long_context_tokens, self.input_long, self.output_long)
        if any(v is None for v in long) and any(v is not None for v in long):
            raise ValueError("long_context_tokens, input_long and output_long go together")
        return self

    def usd(self, prompt_tokens: int, output_tokens: int) -> float:
        """Price of one request: prompt tokens at the input rate, output (response + thinking)
        tokens at the output rate; the long rates for the whole request once the prompt passes
        ``long_context_tokens``."""
        long = self.long_context_tokens is not None and prompt_tokens > self.long_context_tokens
        rate_in = self.input_long if long else self.input
        rate_out = self.output_long if long else self.output
        return (prompt_tokens * rate_in + output_tokens * rate_out) / PER_TOKENS  # type: ignore[operator]


class PriceTable(BaseModel):
    """The parsed price list: model id → ``ModelPrice``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    source: str
    models: dict[str, ModelPrice]

    @classmethod
    def load(cls, data_dir: str | Path) -> PriceTable:
        """Read ``<data_dir>/gemini_prices.yaml``.

        Raises:
            FileNotFoundError: no such file; pydantic.ValidationError: a malformed row.
        """
        return cls.model_validate(load_yaml(Path(data_dir) / PRICES_FILE))

    def price(self, model: str) -> ModelPrice:
        """The model's prices.

        Raises:
            KeyError: the model has no row (add one from the source's page).
        """
        try:
            return self.models[model]
        except KeyError:
            known = sorted(self.models)
            raise KeyError(f"no price for Gemini model {model!r} in {PRICES_FILE}; known: {known}") from None


@dataclass(frozen=True)
class Usage:
    """Tokens and price of one client operation (one or more requests).

    Attributes:
        model: the model id billed.
        operation: ``analyze_video`` | ``refine_prompt`` | ``judge``.
        prompt_version: the prompt's ``id@vN``.
        requests: generateContent requests that returned an answer (0 on a cache hit).
        prompt_tokens: ``promptTokenCount`` summed.
        output_tokens: ``candidatesTokenCount`` + ``thoughtsTokenCount`` summed (both billed as
            output).
        usd: price of those tokens.
        cache_hit: the answer came from the analysis cache: no request, no cost.
    """

    model: str
    operation: str
    prompt_version: str
    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    cache_hit: bool = False

    @classmethod
    def from_metadata(cls, model: str, operation: str, prompt_version: str, metadata, price: ModelPrice) -> Usage:
        """Usage of one response from its ``usage_metadata`` (a google-genai
        ``GenerateContentResponseUsageMetadata`` or None, counted as 0 tokens)."""
        prompt = int(getattr(metadata, "prompt_token_count", None) or 0)
        output = int(getattr(metadata, "candidates_token_count", None) or 0) + int(
            getattr(metadata, "thoughts_token_count", None) or 0
        )
        return cls(model, operation, prompt_version, 1, prompt, output, price.usd(prompt, output))

    def as_cache_hit(self) -> Usage:
        """This usage as a later call served from the cache: no request, no tokens, no cost."""
        return replace(self, requests=0, prompt_tokens=0, output_tokens=0, usd=0.0, cache_hit=True)

    def cost_line(self) -> dict:
        """The job's cost line of this call: ``{"kind": "llm", "provider": "gemini", "model",
        "operation", "prompt_version", "requests", "prompt_tokens", "output_tokens", "usd",
        "cache_hit"}``."""
        return {"kind": "llm", "provider": "gemini", **asdict(self)}
