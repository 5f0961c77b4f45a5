"""Graph-aware recipes: a YAML config + one function wiring graph, data, teachers, signals and engine.

>>> from kgkd.recipes import sentiment_transfer, load_config
>>> cfg = load_config("sentiment_transfer_quick", ["distill.engine.epochs=2"])
>>> result = sentiment_transfer.run(cfg)        # doctest: +SKIP

Recipes: :mod:`~kgkd.recipes.sentiment_transfer`, :mod:`~kgkd.recipes.digits_transfer`,
:mod:`~kgkd.recipes.digits_fashion_amalgamation` (registry :data:`RECIPES`).
"""

from typing import Any, Mapping, Sequence

from kgkd.recipes import digits_fashion_amalgamation, digits_transfer, sentiment_transfer
from kgkd.recipes.config import RecipeConfig, config_to_dict, list_configs, load_config
from kgkd.recipes.pipeline import RECIPES, RecipeResult, run_config


def run(
    config: RecipeConfig | str | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
) -> RecipeResult:
    """Run any config with the recipe its ``recipe:`` key names (what ``kgkd run`` does)."""
    if isinstance(config, RecipeConfig):
        config, smoke = config_to_dict(config), False
    cfg = load_config(config, overrides, smoke=smoke)
    return RECIPES.get(cfg.recipe)(cfg)


__all__ = [
    "RECIPES",
    "RecipeConfig",
    "RecipeResult",
    "digits_fashion_amalgamation",
    "digits_transfer",
    "list_configs",
    "load_config",
    "run",
    "run_config",
    "sentiment_transfer",
]
