"""Recipe: cross-domain sentiment transfer with knowledge-graph teacher weights.

Four MiniLM teachers fine-tuned on Amazon, IMDb, tweets and NYT editorials are
distilled into one small transformer student. The student also serves Yelp,
movie-review and product-review sentences whose labels are never used: the
graph's relations between domains decide how much each teacher counts there.

>>> from kgkd.recipes import sentiment_transfer
>>> result = sentiment_transfer.run("sentiment_transfer_quick")   # doctest: +SKIP
>>> print(result.table())                                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kgkd.recipes.config import RecipeConfig
from kgkd.recipes.pipeline import RECIPES, RecipeResult, run_recipe

#: Shipped config used when ``run`` gets none.
DEFAULT_CONFIG = "sentiment_transfer"
#: Config of ``kgkd demo`` (a few minutes on 2 CPU cores).
QUICK_CONFIG = "sentiment_transfer_quick"


@RECIPES.register("sentiment_transfer")
def run(
    config: RecipeConfig | str | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
) -> RecipeResult:
    """Run the recipe; ``config`` is a RecipeConfig, a shipped name, a YAML path or a mapping."""
    return run_recipe(config or DEFAULT_CONFIG, overrides, smoke=smoke, expect_modality="text")
