"""Token prices and the cost of one answer, for cost estimates of Anthropic API calls.

>>> cost_usd(Usage(input_tokens=1_000, output_tokens=200), DEFAULT_PRICES["claude-haiku-4-5"])
0.002
"""

from __future__ import annotations

from dataclasses import dataclass

from scout.errors import ConfigError
from scout.types import Usage


@dataclass(frozen=True)
class Prices:
    """US dollars per million (MTok) input and output tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        if self.input_per_mtok < 0 or self.output_per_mtok < 0:
            raise ConfigError(
                f"invalid prices {self.input_per_mtok!r} / {self.output_per_mtok!r} USD per MTok; "
                "input and output prices must be zero or positive"
            )


# Configuration, not a fetched price list: USD per MTok for standard requests without batch or
# prompt-cache discounts, as entered in 2026-12.
# NOTE: prices change, and nothing checks these values against https://www.anthropic.com/pricing.
# Pass your own `Prices` when an estimate matters.
DEFAULT_PRICES: dict[str, Prices] = {
    "claude-haiku-4-5": Prices(input_per_mtok=1.00, output_per_mtok=5.00),
    "claude-3-5-haiku": Prices(input_per_mtok=0.80, output_per_mtok=4.00),
}


def prices_for(model: str, table: dict[str, Prices] | None = None) -> Prices:
    """Look up the prices of `model`, also under a dated id such as `claude-haiku-4-5-20251001`.

    Raises ConfigError for a model the table does not list.
    """
    table = DEFAULT_PRICES if table is None else table
    if model in table:
        return table[model]
    for name in sorted(table, key=len, reverse=True):
        if model.startswith(name + "-"):
            return table[name]
    raise ConfigError(f"no prices known for model {model!r}; known models are {sorted(table)}, or pass Prices explicitly")


def cost_usd(usage: Usage, prices: Prices) -> float:
    """Compute the cost in US dollars of the tokens in `usage`."""
    input_cost = usage.input_tokens * prices.input_per_mtok
    output_cost = usage.output_tokens * prices.output_per_mtok
    return (input_cost + output_cost) / 1_000_000
